using System.Globalization;

namespace Kiln.Core.Data;

/// <summary>A named column of a <see cref="DataTable"/>.</summary>
public abstract class Column(string name)
{
    public string Name { get; } = name;

    /// <summary>Rows the backing array can hold.</summary>
    public abstract int Capacity { get; }

    internal abstract void Grow(int capacity);

    internal abstract void CopyRows(Column source, int sourceStart, int destinationStart, int count);

    internal abstract Column NewEmpty(int capacity);
}

/// <summary>Numbers as doubles; NaN marks a missing value.</summary>
public sealed class NumericColumn(string name, double[] values) : Column(name)
{
    public double[] Values { get; private set; } = values;

    public override int Capacity => Values.Length;

    internal override void Grow(int capacity)
    {
        var v = Values;
        Array.Resize(ref v, capacity);
        Values = v;
    }

    internal override void CopyRows(Column source, int sourceStart, int destinationStart, int count) =>
        Array.Copy(((NumericColumn)source).Values, sourceStart, Values, destinationStart, count);

    internal override Column NewEmpty(int capacity) => new NumericColumn(Name, new double[capacity]);

    /// <summary>
    /// True for [-+]digits[.digits][(e|E)[-+]digits] with a digit before the exponent: a cell that a fast decimal parser
    /// (Sep's) and <see cref="TryParseCell"/> read to the same bits.
    /// </summary>
    public static bool IsPlainDecimal(ReadOnlySpan<char> s)
    {
        var i = 0;
        if (i < s.Length && (s[i] == '-' || s[i] == '+')) i++;
        var digits = 0;
        while (i < s.Length && char.IsAsciiDigit(s[i])) { i++; digits++; }
        if (i < s.Length && s[i] == '.')
        {
            i++;
            while (i < s.Length && char.IsAsciiDigit(s[i])) { i++; digits++; }
        }
        if (digits == 0) return false;
        if (i < s.Length && (s[i] == 'e' || s[i] == 'E'))
        {
            i++;
            if (i < s.Length && (s[i] == '-' || s[i] == '+')) i++;
            var exponent = 0;
            while (i < s.Length && char.IsAsciiDigit(s[i])) { i++; exponent++; }
            if (exponent == 0) return false;
        }
        return i == s.Length;
    }

    /// <summary>Parses a cell as invariant-culture number; empty means missing (NaN). False when it is not a number.</summary>
    public static bool TryParseCell(ReadOnlySpan<char> cell, out double value)
    {
        cell = cell.Trim();
        if (cell.IsEmpty) { value = double.NaN; return true; }
        return double.TryParse(cell, NumberStyles.Float, CultureInfo.InvariantCulture, out value);
    }

    /// <summary>A number from text, or NaN when the text is missing or not a number.</summary>
    public static double ParseOrNaN(string? text) =>
        text is not null && TryParseCell(text, out var v) ? v : double.NaN;
}

/// <summary>
/// Text values held as one block of characters (no string a value), as the CSV reader keeps a column whose values barely
/// repeat (an id): value <c>i</c> is <c>Chars[Ends[i-1]..Ends[i]]</c> (from 0 for the first), or missing when
/// <c>Ends[i]</c> is negative (then <c>~Ends[i]</c> is where the next value starts). Arrays may be longer than
/// <see cref="Count"/>.
/// </summary>
public sealed class PackedText(char[] chars, int[] ends, int count)
{
    public char[] Chars { get; } = chars;

    public int[] Ends { get; } = ends;

    public int Count { get; } = count;

    /// <summary>Where value <paramref name="i"/> starts in <see cref="Chars"/>.</summary>
    public int Start(int i) => i == 0 ? 0 : End(i - 1);

    /// <summary>Where value <paramref name="i"/> ends in <see cref="Chars"/>.</summary>
    public int End(int i) => Ends[i] < 0 ? ~Ends[i] : Ends[i];

    public bool IsMissing(int i) => Ends[i] < 0;

    /// <summary>Value <paramref name="i"/> as a string (null when missing).</summary>
    public string? this[int i] => IsMissing(i) ? null : new string(Chars, Start(i), End(i) - Start(i));

    /// <summary>Every value as a string.</summary>
    public string?[] ToStrings()
    {
        var values = new string?[Count];
        for (var i = 0; i < values.Length; i++) values[i] = this[i];
        return values;
    }
}

/// <summary>
/// Text values (category labels, ids, timestamps as written in CSV); null marks a missing value. A column read as
/// <see cref="PackedText"/> makes its strings only when <see cref="Values"/> is first asked for (a batch job's kept id
/// column goes from the CSV reader to the Parquet writer without them).
/// </summary>
public sealed class TextColumn : Column
{
    private string?[]? _values;

    public TextColumn(string name, string?[] values) : base(name) => _values = values;

    public TextColumn(string name, PackedText packed) : base(name) => Packed = packed;

    /// <summary>The values as characters, when the column was made from them (null otherwise).</summary>
    public PackedText? Packed { get; }

    /// <summary>The values; for a packed column, made from its characters on first use (safe from several threads).</summary>
    public string?[] Values
    {
        get
        {
            if (_values is { } v) return v;
            Interlocked.CompareExchange(ref _values, Packed!.ToStrings(), null);
            return _values!;
        }
    }

    public override int Capacity => _values?.Length ?? Packed!.Count;

    internal override void Grow(int capacity)
    {
        var v = Values;
        Array.Resize(ref v, capacity);
        _values = v;
    }

    internal override void CopyRows(Column source, int sourceStart, int destinationStart, int count) =>
        Array.Copy(((TextColumn)source).Values, sourceStart, Values, destinationStart, count);

    internal override Column NewEmpty(int capacity) => new TextColumn(Name, new string?[capacity]);
}

/// <summary>
/// Points in time as <see cref="DateTime"/> ticks (100 ns since 0001-01-01), <see cref="Missing"/> for a missing value:
/// instants (UTC) or, when <see cref="Utc"/> is false, local (wall-clock) times with no zone. Parquet TIMESTAMP columns
/// are read into it; where text is needed (a model input, a SQL TEXT column) <see cref="Format(int)"/> is the one spelling.
/// </summary>
public sealed class TimestampColumn(string name, long[] ticks, bool utc) : Column(name)
{
    /// <summary>The value that marks a missing timestamp.</summary>
    public const long Missing = long.MinValue;

    public long[] Ticks { get; private set; } = ticks;

    /// <summary>True for instants (Parquet isAdjustedToUTC, DuckDB TIMESTAMPTZ), false for local wall-clock times.</summary>
    public bool Utc { get; } = utc;

    public override int Capacity => Ticks.Length;

    /// <summary>The row's time (kind UTC for instants, unspecified for local times), or null when missing.</summary>
    public DateTime? this[int row] => Ticks[row] == Missing ? null : new DateTime(Ticks[row], Utc ? DateTimeKind.Utc : DateTimeKind.Unspecified);

    /// <summary>A row as ISO 8601 text (round-trip form: 7 fractional digits, 'Z' for an instant), or null when missing.</summary>
    public string? Format(int row) => Format(Ticks[row], Utc);

    /// <summary>Ticks as ISO 8601 text, as Kiln has always spelled timestamps read from Parquet.</summary>
    public static string? Format(long ticks, bool utc) => ticks == Missing
        ? null
        : new DateTime(ticks, utc ? DateTimeKind.Utc : DateTimeKind.Unspecified).ToString("O", CultureInfo.InvariantCulture);

    /// <summary>The column as text, every row formatted by <see cref="Format(int)"/>.</summary>
    public TextColumn ToText()
    {
        var text = new string?[Ticks.Length];
        for (var i = 0; i < text.Length; i++) text[i] = Format(Ticks[i], Utc);
        return new TextColumn(Name, text);
    }

    internal override void Grow(int capacity)
    {
        var v = Ticks;
        Array.Resize(ref v, capacity);
        Ticks = v;
    }

    internal override void CopyRows(Column source, int sourceStart, int destinationStart, int count) =>
        Array.Copy(((TimestampColumn)source).Ticks, sourceStart, Ticks, destinationStart, count);

    internal override Column NewEmpty(int capacity) => new TimestampColumn(Name, new long[capacity], Utc);
}

/// <summary>
/// Kiln's columnar batch: named columns of equal length. Readers fill it, training and scoring
/// read it, profiles summarize it. Arrays may be longer than <see cref="RowCount"/>.
/// </summary>
public sealed class DataTable
{
    private readonly List<Column> _columns = [];
    private readonly Dictionary<string, Column> _byName = new(StringComparer.Ordinal);

    public DataTable(int rowCount = 0) => RowCount = rowCount;

    public int RowCount { get; set; }

    public IReadOnlyList<Column> Columns => _columns;

    public Column? Find(string name) => _byName.GetValueOrDefault(name);

    public Column this[string name] => Find(name) ?? throw new KilnException($"column '{name}' is not in the data");

    public NumericColumn Numeric(string name) => this[name] as NumericColumn
        ?? throw new KilnException($"column '{name}' holds text where numbers are expected");

    /// <summary>The column as text: a timestamp column is formatted (<see cref="TimestampColumn.Format(int)"/>).</summary>
    public TextColumn Text(string name) => this[name] switch
    {
        TextColumn t => t,
        TimestampColumn t => t.ToText(),
        _ => throw new KilnException($"column '{name}' holds numbers where text is expected"),
    };

    /// <summary>
    /// This table with its timestamp columns (all, or those named in <paramref name="only"/>) as text, for a consumer that
    /// takes text where Kiln used to hand it timestamps as text (a model's categorical input); the same table when there
    /// are none.
    /// </summary>
    public DataTable TimestampsAsText(IReadOnlyCollection<string>? only = null)
    {
        var any = false;
        foreach (var c in _columns) any |= c is TimestampColumn && (only is null || only.Contains(c.Name));
        if (!any) return this;
        var result = new DataTable(RowCount);
        foreach (var c in _columns) result.Add(c is TimestampColumn t && (only is null || only.Contains(c.Name)) ? t.ToText() : c);
        return result;
    }

    public DataTable Add(Column column)
    {
        if (!_byName.TryAdd(column.Name, column)) throw new KilnException($"column '{column.Name}' appears twice");
        _columns.Add(column);
        return this;
    }

    /// <summary>Concatenates tables with the same columns (the first table's column order).</summary>
    public static DataTable Concat(IReadOnlyList<DataTable> parts)
    {
        if (parts.Count == 1) return parts[0];
        var total = 0;
        foreach (var p in parts) total += p.RowCount;
        var result = new DataTable(total);
        if (parts.Count == 0) return result;
        // Timestamps stay timestamps when every part has them with the same zone rule; beside text (a CSV file among
        // Parquet files) or the other rule they become text, as they were before tables held timestamps.
        var asText = new HashSet<string>(StringComparer.Ordinal);
        foreach (var c in parts[0].Columns)
        {
            if (c is not (TimestampColumn or TextColumn)) continue;
            foreach (var p in parts)
            {
                var other = p.Find(c.Name);
                if ((other is TextColumn) != (c is TextColumn) || (other is TimestampColumn o && c is TimestampColumn t && o.Utc != t.Utc)) asText.Add(c.Name);
            }
        }
        foreach (var c in parts[0].Columns) result.Add(asText.Contains(c.Name) ? new TextColumn(c.Name, new string?[total]) : c.NewEmpty(total));
        var offset = 0;
        foreach (var p in parts)
        {
            foreach (var c in result.Columns)
            {
                var source = p.Find(c.Name) ?? throw new KilnException($"column '{c.Name}' is missing from part of the data");
                c.CopyRows(source is TimestampColumn t && c is TextColumn ? t.ToText() : source, 0, offset, p.RowCount);
            }
            offset += p.RowCount;
        }
        return result;
    }

    /// <summary>The rows at the given indices, in that order.</summary>
    public DataTable Take(ReadOnlySpan<int> rows)
    {
        var result = new DataTable(rows.Length);
        foreach (var c in _columns)
        {
            switch (c)
            {
                case NumericColumn n:
                    var nv = new double[rows.Length];
                    for (var i = 0; i < rows.Length; i++) nv[i] = n.Values[rows[i]];
                    result.Add(new NumericColumn(c.Name, nv));
                    break;
                case TextColumn t:
                    var tv = new string?[rows.Length];
                    for (var i = 0; i < rows.Length; i++) tv[i] = t.Values[rows[i]];
                    result.Add(new TextColumn(c.Name, tv));
                    break;
                case TimestampColumn s:
                    var sv = new long[rows.Length];
                    for (var i = 0; i < rows.Length; i++) sv[i] = s.Ticks[rows[i]];
                    result.Add(new TimestampColumn(c.Name, sv, s.Utc));
                    break;
                default:
                    throw new InvalidOperationException($"a {c.GetType().Name} cannot be taken");
            }
        }
        return result;
    }

    /// <summary>A cell as a JSON-friendly object: double, string (a timestamp in ISO 8601) or null.</summary>
    public object? Cell(string column, int row) => this[column] switch
    {
        NumericColumn n => double.IsNaN(n.Values[row]) ? null : n.Values[row],
        TextColumn t => t.Values[row],
        TimestampColumn s => s.Format(row),
        _ => null,
    };
}
