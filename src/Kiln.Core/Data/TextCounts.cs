namespace Kiln.Core.Data;

/// <summary>
/// How often each text value occurs in a column, and how many rows have none: what a categorical profile or a drift
/// test needs of a text column. <see cref="ParquetFile.CountText"/> fills it straight from a file's UTF-8 bytes, so a
/// column of a million labels costs one string per distinct value and no array of a string per row.
/// </summary>
public sealed class TextCounts
{
    private readonly Dictionary<string, int> _ids = new(StringComparer.Ordinal);
    private readonly List<string> _values = [];
    private long[] _counts = new long[16];

    /// <summary>Rows with no value (null).</summary>
    public long Missing { get; private set; }

    /// <summary>Rows with a value.</summary>
    public long Present { get; private set; }

    /// <summary>The count of each value (a new dictionary).</summary>
    public Dictionary<string, long> ToDictionary()
    {
        var result = new Dictionary<string, long>(_values.Count, StringComparer.Ordinal);
        for (var i = 0; i < _values.Count; i++) result[_values[i]] = _counts[i];
        return result;
    }

    /// <summary>Adds rows to the totals (their values are counted one by one with <see cref="Count"/>).</summary>
    internal void AddRows(long present, long missing)
    {
        Present += present;
        Missing += missing;
    }

    /// <summary>Counts one row of the value with this id.</summary>
    internal void Count(int id) => _counts[id]++;

    /// <summary>The id of a value given by its characters; a new value gets one (with a count of 0).</summary>
    internal int Id(ReadOnlySpan<char> value) =>
        _ids.GetAlternateLookup<ReadOnlySpan<char>>().TryGetValue(value, out var id) ? id : Add(new string(value));

    /// <summary>The id of a value; a new value gets one (with a count of 0).</summary>
    internal int Id(string value) => _ids.TryGetValue(value, out var id) ? id : Add(value);

    private int Add(string value)
    {
        var id = _values.Count;
        _values.Add(value);
        _ids[value] = id;
        if (id == _counts.Length) Array.Resize(ref _counts, id * 2);
        return id;
    }
}
