using System.Runtime.InteropServices;
using Encoding = System.Text.Encoding;
using ParquetSharp;
using ParquetSharp.Schema;

namespace Kiln.Core.Data;

/// <summary>The value kinds <see cref="ParquetTableWriter"/> writes.</summary>
public enum ParquetColumnKind
{
    /// <summary>
    /// UTF-8 text (BYTE_ARRAY, STRING), dictionary-encoded, except a column whose first row group's values are nearly all
    /// distinct (an id) when the file is written by <see cref="ParquetTableWriter.WriteRowGroup"/>: that one is plain.
    /// </summary>
    Text,

    /// <summary>DOUBLE.</summary>
    Double,

    /// <summary>INT32.</summary>
    Int32,

    /// <summary>INT64 TIMESTAMP(MICROS, adjusted to UTC).</summary>
    Timestamp,

    /// <summary>INT64.</summary>
    Int64,

    /// <summary>BOOLEAN.</summary>
    Boolean,

    /// <summary>INT64 TIMESTAMP(MICROS) of local (wall-clock) time, not adjusted to UTC.</summary>
    LocalTimestamp,
}

/// <summary>A top-level column of a flat Parquet file.</summary>
public sealed record ParquetColumn(string Name, ParquetColumnKind Kind, bool Nullable);

/// <summary>
/// Kiln's one Parquet writer, on ParquetSharp: flat tables written a row group at a time, column by column straight
/// from the caller's arrays (NaN or null are the missing values of a nullable column). Snappy-compressed; text
/// dictionary-encoded, numbers and timestamps plain (dictionary-encoding doubles costs more time than it saves
/// space); min/max statistics on every column, so readers skip row groups by time. A text column whose values barely
/// repeat (an id kept by a batch job) is written plain too: its dictionary would be the values again plus an index a
/// row, for a hash and a probe a value; the file is opened at the first row group, so that <see cref="WriteRowGroup"/>
/// can look at the values first (<see cref="MostlyDistinct"/>). Used by the prediction log, batch outputs, feedback
/// labels and every table Kiln writes as Parquet.
/// </summary>
public sealed class ParquetTableWriter : IDisposable
{
    /// <summary>The start of the footer's created_by.</summary>
    public const string CreatedBy = "Kiln";

    private readonly ParquetColumn[] _columns;
    private readonly Stream _stream;
    private readonly Compression _compression;
    private ParquetFileWriter? _writer;
    private RowGroupWriter? _group;
    private int _rows = -1;
    private int _next;
    private short[] _levels = [];
    private byte[] _utf8 = [];
    private ByteArray[] _bytes = [];
    private double[] _doubles = [];
    private long[] _longs = [];
    private bool _finished;

    /// <summary>Starts a file on <paramref name="stream"/> (written from its current position; left open).</summary>
    public ParquetTableWriter(Stream stream, IReadOnlyList<ParquetColumn> columns, Compression compression = Compression.Snappy)
    {
        if (columns.Count == 0) throw new ArgumentException("a Parquet file needs at least one column", nameof(columns));
        _columns = [.. columns];
        _stream = stream;
        _compression = compression;
    }

    /// <summary>Opens the file (nothing is written before); text columns in <paramref name="plain"/> get no dictionary.</summary>
    private ParquetFileWriter Open(HashSet<string>? plain)
    {
        if (_writer is not null) return _writer;
        var nodes = new Node[_columns.Length];
        var properties = new WriterPropertiesBuilder().Compression(_compression).CreatedBy(CreatedBy + " (ParquetSharp)");
        try
        {
            for (var i = 0; i < _columns.Length; i++)
            {
                var c = _columns[i];
                var repetition = c.Nullable ? Repetition.Optional : Repetition.Required;
                using var logical = c.Kind switch
                {
                    ParquetColumnKind.Text => LogicalType.String(),
                    ParquetColumnKind.Timestamp => LogicalType.Timestamp(true, TimeUnit.Micros),
                    ParquetColumnKind.LocalTimestamp => LogicalType.Timestamp(false, TimeUnit.Micros),
                    _ => LogicalType.None(),
                };
                var physical = c.Kind switch
                {
                    ParquetColumnKind.Text => PhysicalType.ByteArray,
                    ParquetColumnKind.Double => PhysicalType.Double,
                    ParquetColumnKind.Int32 => PhysicalType.Int32,
                    ParquetColumnKind.Boolean => PhysicalType.Boolean,
                    _ => PhysicalType.Int64,
                };
                nodes[i] = new PrimitiveNode(c.Name, repetition, logical, physical);
                if (c.Kind != ParquetColumnKind.Text || plain?.Contains(c.Name) == true) properties.DisableDictionary(c.Name);
            }
            using var schema = new GroupNode("schema", Repetition.Required, nodes);
            using var props = properties.Build();
            return _writer = new ParquetFileWriter(_stream, schema, props, null, leaveOpen: true);
        }
        finally
        {
            foreach (var n in nodes) n?.Dispose();
            properties.Dispose();
        }
    }

    /// <summary>Text columns written without a dictionary in this file (decided at its first row group).</summary>
    public IReadOnlyCollection<string> PlainTextColumns { get; private set; } = [];

    /// <summary>Values looked at to decide whether a text column is mostly distinct.</summary>
    public const int DistinctSample = 4096;

    /// <summary>
    /// True when at least 1,024 of the first <see cref="DistinctSample"/> values are present and more than 90 % of
    /// them are distinct: a dictionary would hold nearly every value once more, so the column is written plain.
    /// </summary>
    public static bool MostlyDistinct(ReadOnlySpan<string?> values)
    {
        var sample = values[..Math.Min(values.Length, DistinctSample)];
        var seen = new HashSet<string>(sample.Length, StringComparer.Ordinal);
        var present = 0;
        foreach (var v in sample)
        {
            if (v is null) continue;
            present++;
            seen.Add(v);
        }
        return present >= 1024 && seen.Count * 10 > present * 9;
    }

    /// <summary>Writes a table as one Parquet file with one row group (numbers as nullable doubles, text as strings, timestamps as timestamps).</summary>
    public static void Write(DataTable table, Stream stream)
    {
        var columns = table.Columns.Select(c => new ParquetColumn(c.Name, c switch
        {
            NumericColumn => ParquetColumnKind.Double,
            TimestampColumn { Utc: true } => ParquetColumnKind.Timestamp,
            TimestampColumn => ParquetColumnKind.LocalTimestamp,
            _ => ParquetColumnKind.Text,
        }, true)).ToArray();
        using var w = new ParquetTableWriter(stream, columns);
        w.WriteRowGroup(table);
        w.Finish();
    }

    /// <summary>Writes the table's columns (same order and names as this file's) as one row group.</summary>
    public void WriteRowGroup(DataTable table)
    {
        var n = table.RowCount;
        if (_writer is null)
        {
            HashSet<string>? plain = null;
            foreach (var c in _columns)
            {
                // a packed column is one the CSV reader found to be unique (an id)
                if (c.Kind == ParquetColumnKind.Text && table.Find(c.Name) is TextColumn t && (t.Packed is not null || MostlyDistinct(t.Values.AsSpan(0, n))))
                    (plain ??= new(StringComparer.Ordinal)).Add(c.Name);
            }
            Open(plain);
            if (plain is not null) PlainTextColumns = plain;
        }
        BeginRowGroup(n);
        foreach (var c in _columns)
        {
            var column = table[c.Name];
            switch (c.Kind)
            {
                case ParquetColumnKind.Text when column is TextColumn { Packed: { } p }: WriteText(p, 0, n); break;
                case ParquetColumnKind.Text when column is TextColumn t: WriteText(t.Values.AsSpan(0, n)); break;
                case ParquetColumnKind.Text when column is TimestampColumn times: WriteText(times.ToText().Values.AsSpan(0, n)); break;
                case ParquetColumnKind.Text: WriteText(table.Numeric(c.Name).Values.AsSpan(0, n).ToArray().Select(v => double.IsNaN(v) ? null : v.ToString("R", System.Globalization.CultureInfo.InvariantCulture)).ToArray()); break;
                case ParquetColumnKind.Double: WriteDouble(table.Numeric(c.Name).Values.AsSpan(0, n)); break;
                case ParquetColumnKind.Int32 or ParquetColumnKind.Int64 or ParquetColumnKind.Boolean: WriteWhole(table.Numeric(c.Name).Values.AsSpan(0, n)); break;
                default:
                    if (column is TimestampColumn s) WriteTimestampTicks(s.Ticks.AsSpan(0, n));
                    else WriteTimestampText(table.Text(c.Name).Values.AsSpan(0, n));
                    break;
            }
        }
        EndRowGroup();
    }

    /// <summary>Opens a row group of <paramref name="rows"/> rows; then write every column in order and end it.</summary>
    public void BeginRowGroup(int rows)
    {
        if (_finished || _rows >= 0) throw new InvalidOperationException(_finished ? "the file is finished" : "a row group is already open");
        ArgumentOutOfRangeException.ThrowIfNegative(rows);
        _group = Open(null).AppendRowGroup();
        _rows = rows;
        _next = 0;
        if (_levels.Length < rows) _levels = new short[rows];
    }

    /// <summary>Ends the open row group once every column has been written.</summary>
    public void EndRowGroup()
    {
        if (_rows < 0) throw new InvalidOperationException("no row group is open");
        if (_next != _columns.Length) throw new InvalidOperationException($"row group ended after {_next} of {_columns.Length} columns");
        _group!.Close();
        _group.Dispose();
        _group = null;
        Rows += _rows;
        _rows = -1;
    }

    /// <summary>Rows written in finished row groups.</summary>
    public long Rows { get; private set; }

    /// <summary>Writes the footer. The stream stays open; flush and close it after.</summary>
    public void Finish()
    {
        if (_rows >= 0) throw new InvalidOperationException("a row group is still open");
        if (_finished) return;
        _finished = true;
        Open(null).Close();
    }

    /// <summary>
    /// The next column, as text (null = missing). A value that is the same string instance as the one before it (a
    /// model name repeated down a column, a label the model shares) is encoded to UTF-8 once and its bytes given again.
    /// </summary>
    public void WriteText(ReadOnlySpan<string?> values)
    {
        var c = Next(ParquetColumnKind.Text, values.Length);
        var total = 0;
        string? last = null;
        foreach (var v in values)
        {
            if (v is null || ReferenceEquals(v, last)) continue;
            total += Encoding.UTF8.GetMaxByteCount(v.Length);
            last = v;
        }
        if (_utf8.Length < total) _utf8 = new byte[Math.Max(total, _utf8.Length * 2)];
        var offsets = _longs.Length >= values.Length ? _longs : _longs = new long[Math.Max(values.Length, 1024)];
        var at = 0;
        var present = 0;
        last = null;
        for (var i = 0; i < values.Length; i++)
        {
            var v = values[i];
            if (v is null)
            {
                if (!c.Nullable) throw new InvalidOperationException($"column '{c.Name}' is required but row {i} is missing");
                _levels[i] = 0;
                continue;
            }
            _levels[i] = 1;
            if (ReferenceEquals(v, last))
            {
                offsets[present] = offsets[present - 1];
                present++;
                continue;
            }
            var len = Encoding.UTF8.GetBytes(v, _utf8.AsSpan(at));
            offsets[present++] = ((long)at << 32) | (uint)len;
            at += len;
            last = v;
        }
        WriteBytes(c, values.Length, present, offsets);
    }

    /// <summary>
    /// The next column, as values [<paramref name="from"/>, <paramref name="from"/> + <paramref name="count"/>) of
    /// packed text (a missing value is null): a batch job's kept id column, the prediction log's request ids.
    /// </summary>
    public void WriteText(PackedText values, int from, int count)
    {
        ArgumentNullException.ThrowIfNull(values);
        ArgumentOutOfRangeException.ThrowIfNegative(from);
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(from + count, values.Count, nameof(count));
        var c = Next(ParquetColumnKind.Text, count);
        var total = Encoding.UTF8.GetMaxByteCount(count == 0 ? 0 : values.End(from + count - 1) - values.Start(from));
        if (_utf8.Length < total) _utf8 = new byte[Math.Max(total, _utf8.Length * 2)];
        var offsets = _longs.Length >= count ? _longs : _longs = new long[Math.Max(count, 1024)];
        var at = 0;
        var present = 0;
        var chars = values.Chars;
        for (var i = 0; i < count; i++)
        {
            var row = from + i;
            if (values.IsMissing(row))
            {
                if (!c.Nullable) throw new InvalidOperationException($"column '{c.Name}' is required but row {i} is missing");
                _levels[i] = 0;
                continue;
            }
            _levels[i] = 1;
            var start = values.Start(row);
            var len = Encoding.UTF8.GetBytes(chars.AsSpan(start, values.End(row) - start), _utf8.AsSpan(at));
            offsets[present++] = ((long)at << 32) | (uint)len;
            at += len;
        }
        WriteBytes(c, count, present, offsets);
    }

    private void WriteBytes(ParquetColumn c, int rows, int present, long[] offsets)
    {
        if (_bytes.Length < present) _bytes = new ByteArray[Math.Max(present, 1024)];
        var pin = GCHandle.Alloc(_utf8, GCHandleType.Pinned);
        try
        {
            var basePtr = pin.AddrOfPinnedObject();
            for (var i = 0; i < present; i++) _bytes[i] = new ByteArray(basePtr + (int)(offsets[i] >> 32), (int)(uint)offsets[i]);
            using var w = (ColumnWriter<ByteArray>)_group!.NextColumn();
            w.WriteBatch(rows, c.Nullable ? _levels.AsSpan(0, rows) : ReadOnlySpan<short>.Empty, ReadOnlySpan<short>.Empty, _bytes.AsSpan(0, present));
        }
        finally
        {
            pin.Free();
        }
    }

    /// <summary>The next column, as doubles (NaN = missing in a nullable column).</summary>
    public void WriteDouble(ReadOnlySpan<double> values)
    {
        var c = Next(ParquetColumnKind.Double, values.Length);
        using var w = (ColumnWriter<double>)_group!.NextColumn();
        if (!c.Nullable)
        {
            w.WriteBatch(values);
            return;
        }
        if (_doubles.Length < values.Length) _doubles = new double[Math.Max(values.Length, 1024)];
        var present = 0;
        for (var i = 0; i < values.Length; i++)
        {
            var v = values[i];
            if (double.IsNaN(v)) _levels[i] = 0;
            else
            {
                _levels[i] = 1;
                _doubles[present++] = v;
            }
        }
        w.WriteBatch(values.Length, _levels.AsSpan(0, values.Length), ReadOnlySpan<short>.Empty, _doubles.AsSpan(0, present));
    }

    /// <summary>The next column, as 32-bit integers (none missing).</summary>
    public void WriteInt32(ReadOnlySpan<int> values)
    {
        var c = Next(ParquetColumnKind.Int32, values.Length);
        using var w = (ColumnWriter<int>)_group!.NextColumn();
        if (!c.Nullable) w.WriteBatch(values);
        else
        {
            _levels.AsSpan(0, values.Length).Fill(1);
            w.WriteBatch(values.Length, _levels.AsSpan(0, values.Length), ReadOnlySpan<short>.Empty, values);
        }
    }

    /// <summary>The next column (INT32, INT64 or BOOLEAN) from whole numbers held as doubles (NaN = missing).</summary>
    public void WriteWhole(ReadOnlySpan<double> values)
    {
        var c = Next(_columns[_next].Kind, values.Length);
        var present = 0;
        var ints = c.Kind == ParquetColumnKind.Int32 ? new int[values.Length] : null;
        var bools = c.Kind == ParquetColumnKind.Boolean ? new bool[values.Length] : null;
        if (_longs.Length < values.Length) _longs = new long[Math.Max(values.Length, 1024)];
        for (var i = 0; i < values.Length; i++)
        {
            var v = values[i];
            if (double.IsNaN(v))
            {
                if (!c.Nullable) throw new InvalidOperationException($"column '{c.Name}' is required but row {i} is missing");
                _levels[i] = 0;
                continue;
            }
            _levels[i] = 1;
            if (ints is not null) ints[present++] = (int)v;
            else if (bools is not null) bools[present++] = v != 0;
            else _longs[present++] = (long)v;
        }
        var levels = c.Nullable ? _levels.AsSpan(0, values.Length) : Span<short>.Empty;
        using var column = _group!.NextColumn();
        switch (column)
        {
            case ColumnWriter<int> w: w.WriteBatch(values.Length, levels, ReadOnlySpan<short>.Empty, ints.AsSpan(0, present)); break;
            case ColumnWriter<bool> w: w.WriteBatch(values.Length, levels, ReadOnlySpan<short>.Empty, bools.AsSpan(0, present)); break;
            case ColumnWriter<long> w: w.WriteBatch(values.Length, levels, ReadOnlySpan<short>.Empty, _longs.AsSpan(0, present)); break;
        }
    }

    /// <summary>The next column, as timestamps (UTC; a local or unspecified kind is taken as UTC), none missing.</summary>
    public void WriteTimestamp(ReadOnlySpan<DateTime> values)
    {
        var c = Next(_columns[_next].Kind is ParquetColumnKind.LocalTimestamp ? ParquetColumnKind.LocalTimestamp : ParquetColumnKind.Timestamp, values.Length);
        if (_longs.Length < values.Length) _longs = new long[Math.Max(values.Length, 1024)];
        for (var i = 0; i < values.Length; i++) _longs[i] = Micros(values[i].Ticks);
        using var w = (ColumnWriter<long>)_group!.NextColumn();
        if (!c.Nullable) w.WriteBatch(_longs.AsSpan(0, values.Length));
        else
        {
            _levels.AsSpan(0, values.Length).Fill(1);
            w.WriteBatch(values.Length, _levels.AsSpan(0, values.Length), ReadOnlySpan<short>.Empty, _longs.AsSpan(0, values.Length));
        }
    }

    /// <summary>The next column, as timestamps (UTC; null = missing).</summary>
    public void WriteTimestamp(ReadOnlySpan<DateTime?> values)
    {
        var c = Next(_columns[_next].Kind is ParquetColumnKind.LocalTimestamp ? ParquetColumnKind.LocalTimestamp : ParquetColumnKind.Timestamp, values.Length);
        if (_longs.Length < values.Length) _longs = new long[Math.Max(values.Length, 1024)];
        var present = 0;
        for (var i = 0; i < values.Length; i++)
        {
            if (values[i] is not { } t)
            {
                if (!c.Nullable) throw new InvalidOperationException($"column '{c.Name}' is required but row {i} is missing");
                _levels[i] = 0;
                continue;
            }
            _levels[i] = 1;
            _longs[present++] = Micros(t.Ticks);
        }
        using var w = (ColumnWriter<long>)_group!.NextColumn();
        w.WriteBatch(values.Length, c.Nullable ? _levels.AsSpan(0, values.Length) : ReadOnlySpan<short>.Empty, ReadOnlySpan<short>.Empty, _longs.AsSpan(0, present));
    }

    /// <summary>
    /// The next column, as timestamps from <see cref="DateTime"/> ticks (<see cref="TimestampColumn.Missing"/> = missing),
    /// written in microseconds (a tick's last digit is dropped, as for every timestamp Kiln writes).
    /// </summary>
    public void WriteTimestampTicks(ReadOnlySpan<long> ticks)
    {
        var c = Next(_columns[_next].Kind is ParquetColumnKind.LocalTimestamp ? ParquetColumnKind.LocalTimestamp : ParquetColumnKind.Timestamp, ticks.Length);
        if (_longs.Length < ticks.Length) _longs = new long[Math.Max(ticks.Length, 1024)];
        var present = 0;
        for (var i = 0; i < ticks.Length; i++)
        {
            if (ticks[i] == TimestampColumn.Missing)
            {
                if (!c.Nullable) throw new InvalidOperationException($"column '{c.Name}' is required but row {i} is missing");
                _levels[i] = 0;
                continue;
            }
            _levels[i] = 1;
            _longs[present++] = Micros(ticks[i]);
        }
        using var w = (ColumnWriter<long>)_group!.NextColumn();
        w.WriteBatch(ticks.Length, c.Nullable ? _levels.AsSpan(0, ticks.Length) : ReadOnlySpan<short>.Empty, ReadOnlySpan<short>.Empty, _longs.AsSpan(0, present));
    }

    /// <summary>The next column, as timestamps from ISO 8601 text (null = missing), as <see cref="ParquetFile"/> reads them.</summary>
    public void WriteTimestampText(ReadOnlySpan<string?> values)
    {
        var c = Next(_columns[_next].Kind is ParquetColumnKind.LocalTimestamp ? ParquetColumnKind.LocalTimestamp : ParquetColumnKind.Timestamp, values.Length);
        if (_longs.Length < values.Length) _longs = new long[Math.Max(values.Length, 1024)];
        var present = 0;
        for (var i = 0; i < values.Length; i++)
        {
            var v = values[i];
            if (v is null)
            {
                if (!c.Nullable) throw new InvalidOperationException($"column '{c.Name}' is required but row {i} is missing");
                _levels[i] = 0;
                continue;
            }
            if (!DateTime.TryParse(v, System.Globalization.CultureInfo.InvariantCulture,
                    System.Globalization.DateTimeStyles.AdjustToUniversal | System.Globalization.DateTimeStyles.AssumeUniversal, out var t))
                throw new KilnException($"column '{c.Name}': '{v}' is not a timestamp");
            _levels[i] = 1;
            _longs[present++] = Micros(t.Ticks);
        }
        using var w = (ColumnWriter<long>)_group!.NextColumn();
        w.WriteBatch(values.Length, c.Nullable ? _levels.AsSpan(0, values.Length) : ReadOnlySpan<short>.Empty, ReadOnlySpan<short>.Empty, _longs.AsSpan(0, present));
    }

    /// <summary>Microseconds from 1970 of a <see cref="DateTime"/> tick count, rounded down (also before 1970).</summary>
    private static long Micros(long ticks) => Math.DivRem(ticks - DateTime.UnixEpoch.Ticks, 10, out var rest) - (rest < 0 ? 1 : 0);

    private ParquetColumn Next(ParquetColumnKind kind, int rows)
    {
        if (_rows < 0) throw new InvalidOperationException("no row group is open");
        if (_next >= _columns.Length) throw new InvalidOperationException("every column of the row group is already written");
        var c = _columns[_next];
        if (c.Kind != kind) throw new InvalidOperationException($"column '{c.Name}' is {c.Kind}, not {kind}");
        if (rows != _rows) throw new InvalidOperationException($"column '{c.Name}' has {rows} values for a row group of {_rows} rows");
        _next++;
        return c;
    }

    public void Dispose()
    {
        _group?.Dispose();
        _writer?.Dispose();
    }
}
