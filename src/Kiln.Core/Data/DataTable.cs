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

/// <summary>Text values (category labels, ids, timestamps as written); null marks a missing value.</summary>
public sealed class TextColumn(string name, string?[] values) : Column(name)
{
    public string?[] Values { get; private set; } = values;

    public override int Capacity => Values.Length;

    internal override void Grow(int capacity)
    {
        var v = Values;
        Array.Resize(ref v, capacity);
        Values = v;
    }

    internal override void CopyRows(Column source, int sourceStart, int destinationStart, int count) =>
        Array.Copy(((TextColumn)source).Values, sourceStart, Values, destinationStart, count);

    internal override Column NewEmpty(int capacity) => new TextColumn(Name, new string?[capacity]);
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

    public TextColumn Text(string name) => this[name] as TextColumn
        ?? throw new KilnException($"column '{name}' holds numbers where text is expected");

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
        foreach (var c in parts[0].Columns) result.Add(c.NewEmpty(total));
        var offset = 0;
        foreach (var p in parts)
        {
            foreach (var c in result.Columns)
            {
                var source = p.Find(c.Name) ?? throw new KilnException($"column '{c.Name}' is missing from part of the data");
                c.CopyRows(source, 0, offset, p.RowCount);
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
            }
        }
        return result;
    }

    /// <summary>A cell as a JSON-friendly object: double, string or null.</summary>
    public object? Cell(string column, int row) => this[column] switch
    {
        NumericColumn n => double.IsNaN(n.Values[row]) ? null : n.Values[row],
        TextColumn t => t.Values[row],
        _ => null,
    };
}
