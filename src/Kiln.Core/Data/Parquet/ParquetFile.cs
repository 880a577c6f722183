using System.Buffers;
using System.Globalization;
using ParquetSharp;

namespace Kiln.Core.Data;

/// <summary>What a flat Parquet column holds, as Kiln reads it.</summary>
public enum ParquetValueType
{
    Boolean,

    /// <summary>INT32, and the narrower integers stored in it.</summary>
    Int32,

    /// <summary>INT64 (and unsigned 32-bit integers, which need it).</summary>
    Int64,

    Float,

    Double,

    /// <summary>Decimal numbers stored as INT32 or INT64, read as doubles.</summary>
    Decimal,

    /// <summary>UTF-8 text (BYTE_ARRAY: STRING, ENUM, JSON or unannotated).</summary>
    Text,

    /// <summary>A point in time: TIMESTAMP in any unit, with or without a time zone, or legacy INT96.</summary>
    Timestamp,

    /// <summary>A list of FLOAT or DOUBLE (Parquet's LIST, three-level or legacy two-level): read as text, a JSON list per row.</summary>
    NumberList,

    /// <summary>Nested, or a type Kiln does not read (see <see cref="ParquetField.Unsupported"/>).</summary>
    Unsupported,
}

/// <summary>A top-level column of a Parquet file: its type, nullability, and for timestamps the unit and time zone.</summary>
public sealed record ParquetField(string Name, ParquetValueType Type, bool Nullable)
{
    /// <summary>The leaf's index in the file's schema (-1 for nested columns).</summary>
    public int Index { get; init; } = -1;

    /// <summary>Timestamps: ticks (100 ns) per stored unit; 0 for nanoseconds (stored value / 100) and INT96.</summary>
    internal long TicksPerUnit { get; init; }

    /// <summary>Timestamps: true for instants (UTC-adjusted), false for local (wall-clock) times.</summary>
    public bool Utc { get; init; }

    /// <summary>Decimals: the scale.</summary>
    internal int Scale { get; init; }

    /// <summary>Unsigned integer columns (read through their unsigned value).</summary>
    internal bool Unsigned { get; init; }

    /// <summary>Number lists: the elements may be null (the leaf is optional).</summary>
    internal bool ElementNullable { get; init; }

    internal PhysicalType Physical { get; init; }

    /// <summary>Why Kiln cannot read the column (nested, or the type), for unsupported columns.</summary>
    public string? Unsupported { get; init; }

    /// <summary>True for numbers and booleans (what a numeric column can be read from directly).</summary>
    public bool IsNumber => Type is ParquetValueType.Boolean or ParquetValueType.Int32 or ParquetValueType.Int64
        or ParquetValueType.Float or ParquetValueType.Double or ParquetValueType.Decimal;
}

/// <summary>
/// Kiln's one Parquet reader, on ParquetSharp (Apache Arrow's C++ Parquet implementation): the schema of the top-level
/// columns, the row groups, and one column of one row group at a time into the arrays of a <see cref="DataTable"/>
/// (numbers as doubles with NaN for missing, text as strings with null, timestamps as ticks in a <see cref="TimestampColumn"/>).
/// Only the columns asked for are read. An instance is not safe to share between threads: parallel readers open one each.
/// Every failure is a <see cref="KilnException"/> naming the file (and the column and row group where there is one).
/// </summary>
public sealed class ParquetFile : IDisposable
{
    private readonly ParquetFileReader _reader;
    private readonly Dictionary<string, ParquetField> _byName = new(StringComparer.Ordinal);
    private readonly RowGroupReader?[] _groups;

    private ParquetFile(string path, ParquetFileReader reader)
    {
        Path = path;
        _reader = reader;
        using var meta = reader.FileMetaData;
        CreatedBy = meta.CreatedBy;
        var schema = meta.Schema;
        var fields = new List<ParquetField>();
        for (var i = 0; i < schema.NumColumns; i++)
        {
            var d = schema.Column(i);
            using var columnPath = d.Path;
            var parts = columnPath.ToDotVector();
            var name = parts[0];
            var nested = new ParquetField(name, ParquetValueType.Unsupported, true) { Unsupported = "a nested column (struct, list or map)" };
            if (_byName.TryGetValue(name, out var seen))
            {
                // A second leaf under one name: a struct or a list of structs, not a list of numbers.
                if (seen.Type == ParquetValueType.NumberList) fields[fields.IndexOf(seen)] = _byName[name] = nested;
                continue;
            }
            var field = parts.Length > 1 || d.MaxRepetitionLevel > 0
                ? NumberList(d, name, i, parts.Length) ?? nested
                : Describe(d, name, i);
            _byName[name] = field;
            fields.Add(field);
        }
        Fields = fields;
        var groups = meta.NumRowGroups;
        _groups = new RowGroupReader?[groups];
        RowGroupRows = new long[groups];
        for (var g = 0; g < groups; g++) RowGroupRows[g] = Group(g).MetaData.NumRows;
    }

    public string Path { get; }

    /// <summary>The writer the footer names (created_by).</summary>
    public string? CreatedBy { get; }

    /// <summary>The top-level columns in file order; nested or unreadable ones have type <see cref="ParquetValueType.Unsupported"/>.</summary>
    public IReadOnlyList<ParquetField> Fields { get; }

    /// <summary>Rows in each row group.</summary>
    public long[] RowGroupRows { get; }

    public int RowGroupCount => RowGroupRows.Length;

    /// <summary>
    /// Parquet.Net (6.x) writes INT64 timestamp statistics in another unit than the column's: its files' min/max are not
    /// used to skip row groups (their timestamps are read instead).
    /// </summary>
    private bool TrustedStatistics => CreatedBy is null || !CreatedBy.StartsWith("Parquet.Net", StringComparison.OrdinalIgnoreCase);

    /// <summary>Opens a file; a missing, truncated or non-Parquet file is refused in one line naming it.</summary>
    public static ParquetFile Open(string path)
    {
        if (!File.Exists(path)) throw new KilnException($"{path}: no such file");
        ParquetFileReader? reader = null;
        try
        {
            reader = new ParquetFileReader(path);
            return new ParquetFile(path, reader);
        }
        catch (Exception e) when (e is ParquetException or IOException or InvalidOperationException or ArgumentException)
        {
            reader?.Dispose();
            throw new KilnException($"{path}: not a readable Parquet file ({FirstLine(e.Message)})", e);
        }
    }

    public ParquetField? Find(string name) => _byName.GetValueOrDefault(name);

    /// <summary>The column by name; a missing column is an error naming the file, the column and the columns there are.</summary>
    public ParquetField Field(string name) => Find(name)
        ?? throw new KilnException($"{Path}: column '{name}' is missing (the file has: {string.Join(", ", Fields.Select(f => f.Name))})");

    /// <summary>The column by name, refused in one line if Kiln cannot read it.</summary>
    public ParquetField Readable(string name)
    {
        var f = Field(name);
        if (f.Type == ParquetValueType.Unsupported) throw new KilnException($"{Path}: column '{name}' is {f.Unsupported}, which Kiln cannot read");
        return f;
    }

    /// <summary>The column as numbers (NaN for missing); text is parsed (a cell that is not a number is an error naming its row).</summary>
    public double[] ReadNumbers(int group, ParquetField field, long firstRow = 0)
    {
        var values = new double[Rows(group)];
        ReadNumbers(group, field, new ArraySegment<double>(values), firstRow);
        return values;
    }

    /// <summary>
    /// The column as numbers, written into <paramref name="destination"/> (exactly the row group's rows long), so a
    /// whole file can be read into one array per column without a copy per row group.
    /// </summary>
    public void ReadNumbers(int group, ParquetField field, ArraySegment<double> destination, long firstRow = 0) => Guard(group, field, () =>
    {
        var rows = Rows(group);
        if (destination.Count != rows) throw new ArgumentException($"the destination holds {destination.Count} values, the row group {rows}", nameof(destination));
        var column = Group(group).Column(field.Index);
        using var _ = column;
        switch (field.Type)
        {
            case ParquetValueType.Double:
                {
                    var present = ReadPacked((ColumnReader<double>)column, field, destination.AsSpan(), out var levels);
                    Spread(destination.AsSpan(), present, levels, double.NaN);
                    break;
                }
            case ParquetValueType.Float: Widen<float>(column, field, destination, v => v); break;
            case ParquetValueType.Boolean: Widen<bool>(column, field, destination, v => v ? 1 : 0); break;
            case ParquetValueType.Int32 when field.Unsigned: Widen<int>(column, field, destination, v => (uint)v); break;
            case ParquetValueType.Int32: Widen<int>(column, field, destination, v => v); break;
            case ParquetValueType.Int64 when field.Unsigned: Widen<long>(column, field, destination, v => (ulong)v); break;
            case ParquetValueType.Int64: Widen<long>(column, field, destination, v => v); break;
            case ParquetValueType.Decimal when field.Physical == PhysicalType.Int32:
                {
                    var scale = Math.Pow(10, field.Scale);
                    Widen<int>(column, field, destination, v => v / scale);
                    break;
                }
            case ParquetValueType.Decimal:
                {
                    var scale = Math.Pow(10, field.Scale);
                    Widen<long>(column, field, destination, v => v / scale);
                    break;
                }
            case ParquetValueType.Text:
                {
                    var text = ReadTextCore(column, rows);
                    var values = destination.AsSpan();
                    for (var i = 0; i < rows; i++)
                    {
                        if (!NumericColumn.TryParseCell(text[i], out values[i]))
                            throw new KilnException($"{Path}: row {firstRow + i + 1}, column '{field.Name}': '{text[i]}' is not a number");
                    }
                    break;
                }
            default:
                throw new KilnException($"{Path}: column '{field.Name}' holds {Describe(field)}, not numbers");
        }
        return true;
    });

    /// <summary>The column as text (null for missing): numbers in their shortest round-trip form, timestamps in ISO 8601,
    /// number lists as JSON lists (a null element as null).</summary>
    public string?[] ReadText(int group, ParquetField field) => Guard(group, field, () =>
    {
        var rows = Rows(group);
        if (field.Type == ParquetValueType.NumberList)
        {
            using var column = Group(group).Column(field.Index);
            return field.Physical == PhysicalType.Float
                ? ReadListsCore((ColumnReader<float>)column, field, rows, (sb, v) => sb.Append(v.ToString("R", CultureInfo.InvariantCulture)), float.IsFinite)
                : ReadListsCore((ColumnReader<double>)column, field, rows, (sb, v) => sb.Append(v.ToString("R", CultureInfo.InvariantCulture)), double.IsFinite);
        }
        if (field.Type == ParquetValueType.Text)
        {
            using var column = Group(group).Column(field.Index);
            return ReadTextCore(column, rows);
        }
        var text = new string?[rows];
        if (field.Type == ParquetValueType.Timestamp)
        {
            var ticks = new long[rows];
            ReadTicksCore(group, field, ticks, 0);
            for (var i = 0; i < rows; i++) text[i] = TimestampColumn.Format(ticks[i], field.Utc);
            return text;
        }
        var numbers = ReadNumbers(group, field);
        for (var i = 0; i < rows; i++) text[i] = double.IsNaN(numbers[i]) ? null : numbers[i].ToString("R", CultureInfo.InvariantCulture);
        return text;
    });

    /// <summary>
    /// Adds a text column chunk's values to <paramref name="counts"/> by value, straight from the column's UTF-8 bytes:
    /// one string per distinct value, none per row (what a categorical profile or drift test needs of a text column).
    /// </summary>
    public void CountText(int group, ParquetField field, TextCounts counts) => Guard(group, field, () =>
    {
        ArgumentNullException.ThrowIfNull(counts);
        if (field.Type != ParquetValueType.Text) throw new KilnException($"{Path}: column '{field.Name}' holds {Describe(field)}, not text");
        using var column = Group(group).Column(field.Index);
        CountTextCore(column, Rows(group), counts);
        return true;
    });

    /// <summary>A timestamp column as <see cref="DateTime"/>s (UTC for instants, unspecified for local times); missing rows are <see cref="DateTime.MinValue"/>.</summary>
    public DateTime[] ReadTimestamps(int group, ParquetField field)
    {
        var ticks = ReadTimestampTicks(group, field);
        var kind = field.Utc ? DateTimeKind.Utc : DateTimeKind.Unspecified;
        var result = new DateTime[ticks.Length];
        for (var i = 0; i < ticks.Length; i++) result[i] = ticks[i] == TimestampColumn.Missing ? DateTime.MinValue : new DateTime(ticks[i], kind);
        return result;
    }

    /// <summary>A timestamp column as <see cref="DateTime"/> ticks (<see cref="TimestampColumn.Missing"/> for missing rows).</summary>
    public long[] ReadTimestampTicks(int group, ParquetField field, long firstRow = 0)
    {
        var ticks = new long[Rows(group)];
        ReadTimestampTicks(group, field, new ArraySegment<long>(ticks), firstRow);
        return ticks;
    }

    /// <summary>A timestamp column's ticks written into <paramref name="destination"/> (exactly the row group's rows long).</summary>
    public void ReadTimestampTicks(int group, ParquetField field, ArraySegment<long> destination, long firstRow = 0) => Guard(group, field, () =>
    {
        if (field.Type != ParquetValueType.Timestamp) throw new KilnException($"{Path}: column '{field.Name}' holds {Describe(field)}, not timestamps");
        if (destination.Count != Rows(group)) throw new ArgumentException($"the destination holds {destination.Count} values, the row group {Rows(group)}", nameof(destination));
        ReadTicksCore(group, field, destination.AsSpan(), firstRow);
        return true;
    });

    /// <summary>The smallest and largest timestamp of a row group from its statistics, when the file has them.</summary>
    public (DateTime Min, DateTime Max)? TimestampRange(int group, ParquetField field)
    {
        if (field.Type != ParquetValueType.Timestamp || field.Physical != PhysicalType.Int64 || !TrustedStatistics) return null;
        try
        {
            using var chunk = Group(group).MetaData.GetColumnChunkMetaData(field.Index);
            if (!chunk.IsStatsSet) return null;
            using var stats = chunk.Statistics;
            if (stats is Statistics<long> s && s.HasMinMax && ToTicks(s.Min, field) is { } min && ToTicks(s.Max, field) is { } max)
            {
                var kind = field.Utc ? DateTimeKind.Utc : DateTimeKind.Unspecified;
                return (new DateTime(min, kind), new DateTime(max, kind));
            }
        }
        catch (ParquetException)
        {
            // No usable statistics: the caller reads the timestamps.
        }
        return null;
    }

    /// <summary>
    /// Reads the requested columns of a row group into a table: numbers as numbers, everything as text when text is asked
    /// for; a requested column that is missing or unreadable is refused naming the file and the column.
    /// </summary>
    public DataTable ReadRowGroup(int group, IReadOnlyList<ColumnRequest> requests, long firstRow = 0)
    {
        var fields = requests.Select(r => Readable(r.Name)).ToArray();
        var table = new DataTable(Rows(group));
        for (var r = 0; r < requests.Count; r++) table.Add(ReadColumn(group, fields[r], requests[r].Type, firstRow));
        return table;
    }

    /// <summary>One column of a row group as a <see cref="DataTable"/> column of the requested type (a timestamp asked for as text is a <see cref="TimestampColumn"/>).</summary>
    public Column ReadColumn(int group, ParquetField field, ColumnType type, long firstRow = 0)
    {
        if (type == ColumnType.Text && field.Type == ParquetValueType.Timestamp) return new TimestampColumn(field.Name, ReadTimestampTicks(group, field, firstRow), field.Utc);
        if (type == ColumnType.Text) return new TextColumn(field.Name, ReadText(group, field));
        if (field.Type == ParquetValueType.Timestamp)
            throw new KilnException($"{Path}: column '{field.Name}' holds timestamps, which Kiln cannot read as numbers");
        return new NumericColumn(field.Name, ReadNumbers(group, field, firstRow));
    }

    /// <summary>Reads a row group's column into a whole-file column, at the group's first row <paramref name="offset"/>.</summary>
    public void ReadColumn(int group, ParquetField field, Column destination, int offset)
    {
        ArgumentNullException.ThrowIfNull(destination);
        switch (destination)
        {
            case NumericColumn n:
                if (field.Type == ParquetValueType.Timestamp)
                    throw new KilnException($"{Path}: column '{field.Name}' holds timestamps, which Kiln cannot read as numbers");
                ReadNumbers(group, field, new ArraySegment<double>(n.Values, offset, Rows(group)), offset);
                break;
            case TextColumn t:
                var text = ReadText(group, field);
                Array.Copy(text, 0, t.Values, offset, text.Length);
                break;
            case TimestampColumn s:
                ReadTimestampTicks(group, field, new ArraySegment<long>(s.Ticks, offset, Rows(group)), offset);
                break;
            default:
                throw new ArgumentException($"a {destination.GetType().Name} is not read from Parquet", nameof(destination));
        }
    }

    public void Dispose()
    {
        foreach (var g in _groups) g?.Dispose();
        _reader.Dispose();
    }

    /// <summary>How a column's type is named in messages.</summary>
    public static string Describe(ParquetField f) => f.Type switch
    {
        ParquetValueType.Unsupported => f.Unsupported ?? "an unsupported type",
        ParquetValueType.Timestamp => f.Utc ? "timestamps (UTC)" : "timestamps (local time)",
        ParquetValueType.NumberList => f.Physical == PhysicalType.Float ? "lists of floats" : "lists of doubles",
        _ => f.Type.ToString().ToLowerInvariant(),
    };

    private RowGroupReader Group(int g) => _groups[g] ??= _reader.RowGroup(g);

    private int Rows(int group) => checked((int)RowGroupRows[group]);

    private T Guard<T>(int group, ParquetField field, Func<T> read)
    {
        if (field.Type == ParquetValueType.Unsupported) throw new KilnException($"{Path}: column '{field.Name}' is {field.Unsupported}, which Kiln cannot read");
        try
        {
            return read();
        }
        catch (Exception e) when (e is ParquetException or IOException or InvalidOperationException or InvalidCastException or ArgumentException)
        {
            throw new KilnException($"{Path}: column '{field.Name}', row group {group}: unreadable ({FirstLine(e.Message)})", e);
        }
    }

    private static string FirstLine(string message)
    {
        var end = message.IndexOfAny(['\r', '\n']);
        return (end < 0 ? message : message[..end]).Trim();
    }

    /// <summary>
    /// Reads a column chunk's values packed at the front of <paramref name="values"/>; returns how many are present.
    /// <paramref name="levels"/> receives the definition levels (rented; null for required columns).
    /// </summary>
    private static int ReadPacked<T>(ColumnReader<T> reader, ParquetField field, Span<T> values, out short[]? levels) where T : unmanaged
    {
        var rows = values.Length;
        levels = field.Nullable ? ArrayPool<short>.Shared.Rent(Math.Max(rows, 1)) : null;
        long read = 0, present = 0;
        while (read < rows && reader.HasNext)
        {
            var n = reader.ReadBatch(rows - read, levels is null ? Span<short>.Empty : levels.AsSpan((int)read), Span<short>.Empty,
                values[(int)present..], out var valuesRead);
            if (n == 0) break;
            read += n;
            present += valuesRead;
        }
        if (read != rows) throw new InvalidOperationException($"the column chunk holds {read} of the row group's {rows} rows");
        return (int)present;
    }

    /// <summary>Moves packed values to the rows whose definition level says present, filling the rest with <paramref name="missing"/>.</summary>
    private static void Spread<T>(Span<T> values, int present, short[]? levels, T missing)
    {
        if (levels is null) return;
        try
        {
            if (present == values.Length) return;
            var max = (short)1;
            for (var i = values.Length - 1; i >= 0; i--)
                values[i] = levels[i] == max ? values[--present] : missing;
        }
        finally
        {
            ArrayPool<short>.Shared.Return(levels);
        }
    }

    private static void Widen<T>(ColumnReader column, ParquetField field, ArraySegment<double> destination, Func<T, double> convert) where T : unmanaged
    {
        var rows = destination.Count;
        var result = destination.AsSpan();
        var raw = ArrayPool<T>.Shared.Rent(Math.Max(rows, 1));
        try
        {
            ReadPacked((ColumnReader<T>)column, field, raw.AsSpan(0, rows), out var levels);
            if (levels is null)
            {
                for (var i = 0; i < rows; i++) result[i] = convert(raw[i]);
                return;
            }
            var next = 0;
            for (var i = 0; i < rows; i++) result[i] = levels[i] == 1 ? convert(raw[next++]) : double.NaN;
            ArrayPool<short>.Shared.Return(levels);
        }
        finally
        {
            ArrayPool<T>.Shared.Return(raw);
        }
    }

    /// <summary>
    /// Text straight from the column's byte arrays. A value of up to <see cref="InternLength"/> characters is looked up
    /// among the strings this chunk already made (by its characters, decoded on the stack), so a category repeated over a
    /// million rows is one string, not a million, and nothing is allocated for it per row; longer values, and every value
    /// once a chunk has <see cref="InternEntries"/> distinct ones (ids), are made as they come.
    /// </summary>
    private static unsafe string?[] ReadTextCore(ColumnReader column, int rows)
    {
        var reader = (ColumnReader<ByteArray>)column;
        var nullable = column.ColumnDescriptor.MaxDefinitionLevel > 0;
        var result = new string?[rows];
        const int Batch = 4096;
        var values = ArrayPool<ByteArray>.Shared.Rent(Batch);
        var levels = nullable ? ArrayPool<short>.Shared.Rent(Batch) : null;
        var interned = new Dictionary<string, string>(StringComparer.Ordinal);
        var lookup = interned.GetAlternateLookup<ReadOnlySpan<char>>();
        Span<char> chars = stackalloc char[InternLength];
        var interning = true;
        var looked = 0;
        try
        {
            var row = 0;
            while (row < rows && reader.HasNext)
            {
                var n = (int)reader.ReadBatch(Math.Min(Batch, rows - row), levels is null ? Span<short>.Empty : levels.AsSpan(0, Batch), Span<short>.Empty,
                    values.AsSpan(0, Batch), out _);
                if (n == 0) break;
                var next = 0;
                for (var i = 0; i < n; i++, row++)
                {
                    if (levels is not null && levels[i] == 0) continue;
                    var v = values[next++];
                    var bytes = new ReadOnlySpan<byte>((void*)v.Pointer, v.Length);
                    if (v.Length > InternLength || !interning)
                    {
                        result[row] = System.Text.Encoding.UTF8.GetString(bytes);
                        continue;
                    }
                    var length = System.Text.Encoding.UTF8.GetChars(bytes, chars);
                    if (!lookup.TryGetValue(chars[..length], out var text))
                    {
                        text = new string(chars[..length]);
                        interned[text] = text;
                    }
                    result[row] = text;
                    // Too many, or mostly distinct after a sample (ids, free text): from here on, looking up only costs.
                    if (interned.Count >= InternEntries || (++looked == InternSample && interned.Count > InternSample / 2)) interning = false;
                }
            }
            if (row != rows) throw new InvalidOperationException($"the column chunk holds {row} of the row group's {rows} rows");
            return result;
        }
        finally
        {
            ArrayPool<ByteArray>.Shared.Return(values);
            if (levels is not null) ArrayPool<short>.Shared.Return(levels);
        }
    }

    /// <summary>Slots of <see cref="CountTextCore"/>'s table of value addresses (a power of two).</summary>
    private const int AddressSlots = 256;

    /// <summary>
    /// A dictionary-encoded chunk (how Kiln's writer, DuckDB and Arrow store text) hands every row of one value the
    /// address of that value in its dictionary page, so a small table keyed by address finds the value's id after one
    /// comparison of its bytes with a copy kept in the slot (the copy makes a reused page buffer safe: a plain-encoded
    /// page may put other bytes at an address seen before). A value not found there is decoded on the stack and looked up
    /// by its characters, as <see cref="ReadTextCore"/> does; values longer than <see cref="InternLength"/> bytes are
    /// made into strings as they come.
    /// </summary>
    private static unsafe void CountTextCore(ColumnReader column, int rows, TextCounts counts)
    {
        var reader = (ColumnReader<ByteArray>)column;
        var nullable = column.ColumnDescriptor.MaxDefinitionLevel > 0;
        const int Batch = 4096;
        var values = ArrayPool<ByteArray>.Shared.Rent(Batch);
        var levels = nullable ? ArrayPool<short>.Shared.Rent(Batch) : null;
        var slotAddress = new nint[AddressSlots];
        var slotLength = new int[AddressSlots];
        var slotId = new int[AddressSlots];
        var slotBytes = new byte[AddressSlots * InternLength];
        Span<char> chars = stackalloc char[InternLength];
        try
        {
            var row = 0;
            while (row < rows && reader.HasNext)
            {
                var n = (int)reader.ReadBatch(Math.Min(Batch, rows - row), levels is null ? Span<short>.Empty : levels.AsSpan(0, Batch), Span<short>.Empty,
                    values.AsSpan(0, Batch), out var present);
                if (n == 0) break;
                row += n;
                counts.AddRows((int)present, n - (int)present);
                for (var i = 0; i < (int)present; i++)
                {
                    var v = values[i];
                    var bytes = new ReadOnlySpan<byte>((void*)v.Pointer, v.Length);
                    if (v.Length > InternLength)
                    {
                        counts.Count(counts.Id(System.Text.Encoding.UTF8.GetString(bytes)));
                        continue;
                    }
                    var slot = (int)(((ulong)v.Pointer * 0x9E3779B97F4A7C15UL) >> 56);
                    var copy = slotBytes.AsSpan(slot * InternLength, v.Length);
                    if (slotAddress[slot] == v.Pointer && slotLength[slot] == v.Length && bytes.SequenceEqual(copy))
                    {
                        counts.Count(slotId[slot]);
                        continue;
                    }
                    var id = counts.Id(chars[..System.Text.Encoding.UTF8.GetChars(bytes, chars)]);
                    slotAddress[slot] = v.Pointer;
                    slotLength[slot] = v.Length;
                    slotId[slot] = id;
                    bytes.CopyTo(copy);
                    counts.Count(id);
                }
            }
            if (row != rows) throw new InvalidOperationException($"the column chunk holds {row} of the row group's {rows} rows");
        }
        finally
        {
            ArrayPool<ByteArray>.Shared.Return(values);
            if (levels is not null) ArrayPool<short>.Shared.Return(levels);
        }
    }

    /// <summary>
    /// Rows of a number list column as JSON lists, from the column's repetition levels (0 starts a row) and definition
    /// levels (the maximum: a value; one less with nullable elements: a null element; one less than the repeated
    /// level: an empty list; lower: a null list). A NaN or infinite element, which JSON cannot hold, is written as a string.
    /// </summary>
    private static string?[] ReadListsCore<T>(ColumnReader<T> reader, ParquetField field, int rows, Action<System.Text.StringBuilder, T> append, Func<T, bool> finite)
        where T : unmanaged
    {
        var result = new string?[rows];
        var maxDef = reader.ColumnDescriptor.MaxDefinitionLevel;
        var repeatedDef = (short)(maxDef - (field.ElementNullable ? 1 : 0));
        const int Batch = 8192;
        var defs = new short[Batch];
        var reps = new short[Batch];
        var values = new T[Batch];
        var sb = new System.Text.StringBuilder();
        var row = -1;
        var open = false;
        void Close()
        {
            if (open) result[row] = sb.Append(']').ToString();
            open = false;
        }
        while (reader.HasNext)
        {
            var n = (int)reader.ReadBatch(Batch, defs, reps, values, out _);
            if (n == 0) break;
            var next = 0;
            for (var i = 0; i < n; i++)
            {
                if (reps[i] == 0)
                {
                    Close();
                    if (++row >= rows) throw new InvalidOperationException($"the column chunk holds more than the row group's {rows} rows");
                    if (defs[i] < repeatedDef - 1) continue; // a null list
                    sb.Clear().Append('[');
                    open = true;
                    if (defs[i] == repeatedDef - 1) continue; // an empty list
                }
                else if (sb.Length > 1) sb.Append(", ");
                if (defs[i] == maxDef)
                {
                    var v = values[next++];
                    if (finite(v)) append(sb, v);
                    else sb.Append('"').Append(v).Append('"');
                }
                else sb.Append("null");
            }
        }
        Close();
        if (row + 1 != rows) throw new InvalidOperationException($"the column chunk holds {row + 1} of the row group's {rows} rows");
        return result;
    }

    /// <summary>Text values up to this many bytes are made once per chunk (see <see cref="ReadTextCore"/>).</summary>
    private const int InternLength = 64;

    /// <summary>A chunk stops making each distinct text value once after this many (a column of ids).</summary>
    private const int InternEntries = 65_536;

    /// <summary>
    /// A chunk also stops interning when half of the values among its first this many are distinct: a column of ids
    /// or free text, where looking each value up first only costs (a category column has a few values repeated).
    /// </summary>
    private const int InternSample = 1_024;

    /// <summary>
    /// A timestamp chunk's values as <see cref="DateTime"/> ticks (nanoseconds rounded down to 100 ns), missing rows as
    /// <see cref="TimestampColumn.Missing"/>; a value outside what <see cref="DateTime"/> holds (years 1 to 9999) is refused naming its row.
    /// </summary>
    private void ReadTicksCore(int group, ParquetField field, Span<long> result, long firstRow)
    {
        var rows = result.Length;
        using var column = Group(group).Column(field.Index);
        if (field.Physical == PhysicalType.Int96)
        {
            var raw = ArrayPool<Int96>.Shared.Rent(Math.Max(rows, 1));
            try
            {
                ReadPacked((ColumnReader<Int96>)column, field, raw.AsSpan(0, rows), out var int96Levels);
                var next = 0;
                for (var i = 0; i < rows; i++)
                {
                    if (int96Levels is not null && int96Levels[i] != 1) { result[i] = TimestampColumn.Missing; continue; }
                    var v = raw[next++];
                    var nanos = (long)(((ulong)(uint)v.B << 32) | (uint)v.A);
                    var days = v.C - 2440588L; // the Julian day of 1970-01-01
                    result[i] = Math.Abs(days) < 4_000_000 && nanos <= TimeSpan.TicksPerDay * 100
                        ? Checked(DateTime.UnixEpoch.Ticks + days * TimeSpan.TicksPerDay + nanos / 100, field, firstRow + i)
                        : Checked(-1, field, firstRow + i);
                }
                if (int96Levels is not null) ArrayPool<short>.Shared.Return(int96Levels);
            }
            finally
            {
                ArrayPool<Int96>.Shared.Return(raw);
            }
            return;
        }
        // Read packed into the front of the result, then moved to their rows from the back (values only move right).
        var present = ReadPacked((ColumnReader<long>)column, field, result, out var levels);
        try
        {
            for (var i = rows - 1; i >= 0; i--)
            {
                if (levels is not null && levels[i] != 1) { result[i] = TimestampColumn.Missing; continue; }
                var stored = result[--present];
                result[i] = ToTicks(stored, field)
                    ?? throw new KilnException($"{Path}: row {firstRow + i + 1}, column '{field.Name}': the timestamp {stored} {Unit(field)} from 1970 is outside the years 1 to 9999");
            }
        }
        finally
        {
            if (levels is not null) ArrayPool<short>.Shared.Return(levels);
        }
    }

    private long Checked(long ticks, ParquetField field, long row) =>
        ticks >= 0 && ticks <= DateTime.MaxValue.Ticks
            ? ticks
            : throw new KilnException($"{Path}: row {row + 1}, column '{field.Name}': the timestamp is outside the years 1 to 9999");

    private static string Unit(ParquetField field) => field.TicksPerUnit switch
    {
        0 => "ns",
        10 => "µs",
        _ => "ms",
    };

    /// <summary>A stored INT64 timestamp as <see cref="DateTime"/> ticks (rounded down), or null outside DateTime's range.</summary>
    private static long? ToTicks(long stored, ParquetField field)
    {
        long ticks;
        if (field.TicksPerUnit == 0) ticks = Math.DivRem(stored, 100, out var rest) - (rest < 0 ? 1 : 0);
        else if (stored > long.MaxValue / field.TicksPerUnit || stored < long.MinValue / field.TicksPerUnit) return null;
        else ticks = stored * field.TicksPerUnit;
        var unixTicks = DateTime.UnixEpoch.Ticks;
        return ticks < -unixTicks || ticks > DateTime.MaxValue.Ticks - unixTicks ? null : unixTicks + ticks;
    }

    /// <summary>
    /// A list of FLOAT or DOUBLE: one repetition level, the leaf under a repeated group (name.list.element, three-level)
    /// or itself repeated (name.array, the legacy two-level form); null for any other nested column.
    /// </summary>
    private static ParquetField? NumberList(ColumnDescriptor d, string name, int index, int depth)
    {
        if (d.MaxRepetitionLevel != 1 || depth is not (2 or 3) || d.PhysicalType is not (PhysicalType.Float or PhysicalType.Double)) return null;
        using var logical = d.LogicalType;
        if (logical is not NoneLogicalType) return null;
        using var leaf = d.SchemaNode;
        var elementNullable = leaf.Repetition == Repetition.Optional;
        if (depth == 2 && leaf.Repetition != Repetition.Repeated) return null;
        return new ParquetField(name, ParquetValueType.NumberList, d.MaxDefinitionLevel > (elementNullable ? 2 : 1))
        {
            Index = index,
            Physical = d.PhysicalType,
            ElementNullable = elementNullable,
        };
    }

    private static ParquetField Describe(ColumnDescriptor d, string name, int index)
    {
        var nullable = d.MaxDefinitionLevel > 0;
        var physical = d.PhysicalType;
        using var logical = d.LogicalType;
        ParquetField Of(ParquetValueType type) => new(name, type, nullable) { Index = index, Physical = physical };
        ParquetField Refused(string what) => new(name, ParquetValueType.Unsupported, nullable) { Unsupported = what, Physical = physical };
        switch (logical)
        {
            case TimestampLogicalType t when physical == PhysicalType.Int64:
                return Of(ParquetValueType.Timestamp) with
                {
                    Utc = t.IsAdjustedToUtc,
                    TicksPerUnit = t.TimeUnit switch { TimeUnit.Millis => TimeSpan.TicksPerMillisecond, TimeUnit.Micros => 10, _ => 0 },
                };
            case DecimalLogicalType dec when physical is PhysicalType.Int32 or PhysicalType.Int64:
                return Of(ParquetValueType.Decimal) with { Scale = dec.Scale };
            case IntLogicalType i when physical == PhysicalType.Int32:
                return Of(i.IsSigned ? ParquetValueType.Int32 : ParquetValueType.Int64) with { Unsigned = !i.IsSigned };
            case IntLogicalType i when physical == PhysicalType.Int64:
                return Of(ParquetValueType.Int64) with { Unsigned = !i.IsSigned };
            case StringLogicalType or EnumLogicalType or JsonLogicalType or NoneLogicalType when physical == PhysicalType.ByteArray:
                return Of(ParquetValueType.Text);
            case NoneLogicalType:
                break;
            default:
                return Refused($"of type {logical} ({physical})");
        }
        return physical switch
        {
            PhysicalType.Boolean => Of(ParquetValueType.Boolean),
            PhysicalType.Int32 => Of(ParquetValueType.Int32),
            PhysicalType.Int64 => Of(ParquetValueType.Int64),
            PhysicalType.Float => Of(ParquetValueType.Float),
            PhysicalType.Double => Of(ParquetValueType.Double),
            PhysicalType.Int96 => Of(ParquetValueType.Timestamp) with { Utc = false },
            _ => Refused($"of type {physical}"),
        };
    }
}
