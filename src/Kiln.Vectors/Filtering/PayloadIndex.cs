using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Kiln.Vectors.Filtering;

/// <summary>
/// A payload index on one key. Keyword, integer and bool indexes keep, for each scalar value found at the key, the
/// slots of the points holding it (for match conditions); integer, float and datetime indexes keep the values in
/// order with their slots (for range conditions; datetime values are RFC 3339 strings, ordered as instants). Values
/// are keyed as the filter compares them, so the slots an index gives for a condition are a superset of the points
/// the condition accepts; the filter still checks each one. A float index answers a match on numbers as a range of
/// one value. A text (full-text) index keeps, for each word of the strings at the key, the slots holding it.
/// </summary>
internal sealed class PayloadIndex
{
    private readonly string[] _path;
    private readonly Dictionary<string, HashSet<int>>? _postings;
    private readonly SortedSet<(double Value, int Slot)>? _ordered;
    private readonly bool _datetime;
    private readonly Dictionary<string, HashSet<int>>? _words;

    public PayloadIndex(string key, PayloadSchemaType type)
    {
        Key = key;
        _path = key.Replace("[]", "", StringComparison.Ordinal).Split('.');
        if (type is PayloadSchemaType.Keyword or PayloadSchemaType.Integer or PayloadSchemaType.Bool) _postings = new(StringComparer.Ordinal);
        if (type is PayloadSchemaType.Integer or PayloadSchemaType.Float or PayloadSchemaType.Datetime) _ordered = [];
        _datetime = type == PayloadSchemaType.Datetime;
        if (type == PayloadSchemaType.Text) _words = new(StringComparer.Ordinal);
    }

    public string Key { get; }

    public void Add(int slot, JsonObject? payload)
    {
        foreach (var v in PointFilter.Values(payload, _path))
        {
            if (_postings is not null && Term(v) is { } t)
            {
                if (!_postings.TryGetValue(t, out var set)) _postings[t] = set = [];
                set.Add(slot);
            }
            if (_ordered is not null && Ordered(v) is { } x) _ordered.Add((x, slot));
            if (_words is not null && v is JsonValue s && s.GetValueKind() == JsonValueKind.String)
            {
                foreach (var w in PointFilter.Words(s.GetValue<string>()))
                {
                    if (!_words.TryGetValue(w, out var set)) _words[w] = set = [];
                    set.Add(slot);
                }
            }
        }
    }

    public void Remove(int slot, JsonObject? payload)
    {
        foreach (var v in PointFilter.Values(payload, _path))
        {
            if (_postings is not null && Term(v) is { } t && _postings.TryGetValue(t, out var set))
            {
                set.Remove(slot);
                if (set.Count == 0) _postings.Remove(t);
            }
            if (_ordered is not null && Ordered(v) is { } x) _ordered.Remove((x, slot));
            if (_words is not null && v is JsonValue s && s.GetValueKind() == JsonValueKind.String)
            {
                foreach (var w in PointFilter.Words(s.GetValue<string>()))
                {
                    if (_words.TryGetValue(w, out var holding))
                    {
                        holding.Remove(slot);
                        if (holding.Count == 0) _words.Remove(w);
                    }
                }
            }
        }
    }

    /// <summary>How many slots the index gives for the condition (an upper bound on the points it accepts), or null
    /// when this kind of index cannot answer it (a range on a keyword index, a match on a float index).</summary>
    public int? Count(IndexTerm term) => term switch
    {
        MatchTerm m when _postings is not null => m.Values.Sum(v => Term(v) is { } t && _postings.TryGetValue(t, out var set) ? set.Count : 0),
        MatchTerm m when _ordered is not null && !_datetime => m.Values.Sum(v => Equal(v)?.Count ?? 0),
        RangeTerm r when _ordered is not null && r.Datetime == _datetime => View(r).Count,
        TextTerm t when _words is not null => Holding(t).Count,
        _ => null,
    };

    /// <summary>The slots the index gives for the condition (see <see cref="Count"/>), or null.</summary>
    public IEnumerable<int>? Slots(IndexTerm term) => term switch
    {
        MatchTerm m when _postings is not null => m.Values.SelectMany(v => Term(v) is { } t && _postings.TryGetValue(t, out var set) ? set : []),
        MatchTerm m when _ordered is not null && !_datetime => m.Values.SelectMany(v => Equal(v)?.Select(e => e.Slot) ?? []),
        RangeTerm r when _ordered is not null && r.Datetime == _datetime => View(r).Select(e => e.Slot),
        TextTerm t when _words is not null => Holding(t),
        _ => null,
    };

    /// <summary>The entries equal to a number (a match on a float index: the range from the value to itself); null for
    /// a value that is not a number, which no number equals.</summary>
    private SortedSet<(double Value, int Slot)>? Equal(JsonValue v)
    {
        if (v.GetValueKind() != JsonValueKind.Number) return null;
        var x = PointFilter.Number(v);
        return _ordered!.GetViewBetween((x, int.MinValue), (x, int.MaxValue));
    }

    /// <summary>The slots holding every word of the query (intersected from the rarest word's slots on), so the count
    /// is exact for a single-valued key and an upper bound when one point has several strings at the key.</summary>
    private HashSet<int> Holding(TextTerm t)
    {
        var sets = new List<HashSet<int>>(t.Words.Length);
        foreach (var w in t.Words)
        {
            if (!_words!.TryGetValue(w, out var set)) return [];
            sets.Add(set);
        }
        sets.Sort((a, b) => a.Count.CompareTo(b.Count));
        var result = new HashSet<int>(sets[0]);
        for (var i = 1; i < sets.Count && result.Count > 0; i++) result.IntersectWith(sets[i]);
        return result;
    }

    /// <summary>The entries between the range's bounds, both ends included (the filter applies gt and lt exactly).</summary>
    private SortedSet<(double Value, int Slot)> View(RangeTerm r)
    {
        var low = Math.Max(r.Gt ?? double.NegativeInfinity, r.Gte ?? double.NegativeInfinity);
        var high = Math.Min(r.Lt ?? double.PositiveInfinity, r.Lte ?? double.PositiveInfinity);
        return low > high ? [] : _ordered!.GetViewBetween((low, int.MinValue), (high, int.MaxValue));
    }

    /// <summary>A value's place in the order: numbers for integer and float indexes, instants for datetime ones.</summary>
    private double? Ordered(JsonNode? node)
    {
        if (node is not JsonValue v) return null;
        var kind = v.GetValueKind();
        if (!_datetime) return kind == JsonValueKind.Number ? PointFilter.Number(v) : null;
        return kind == JsonValueKind.String && PointFilter.TryDate(v.GetValue<string>(), out var ticks) ? ticks : null;
    }

    private static string? Term(JsonNode? node)
    {
        if (node is not JsonValue v) return null;
        return v.GetValueKind() switch
        {
            JsonValueKind.String => "s" + v.GetValue<string>(),
            JsonValueKind.Number => "n" + (PointFilter.Number(v) is var d && d == 0 ? 0d : d).ToString("R", CultureInfo.InvariantCulture),
            JsonValueKind.True => "t",
            JsonValueKind.False => "f",
            _ => null,
        };
    }
}

/// <summary>A condition that every point matching a filter satisfies, in a form a payload index can answer.</summary>
internal abstract record IndexTerm;

/// <summary>The key holds one of the values (match value, match any).</summary>
internal sealed record MatchTerm(string Key, JsonValue[] Values) : IndexTerm;

/// <summary>The key holds a number (or, for <see cref="Datetime"/>, an RFC 3339 instant, as ticks) within the bounds.</summary>
internal sealed record RangeTerm(string Key, double? Gt, double? Gte, double? Lt, double? Lte, bool Datetime) : IndexTerm;

/// <summary>Every word (lower-cased) is among the words of a string at the key (a text match on a full-text key).</summary>
internal sealed record TextTerm(string Key, string[] Words) : IndexTerm;

/// <summary>At least one of the terms holds (a should clause whose every condition is a match or a range).</summary>
internal sealed record AnyTerm(IndexTerm[] Options) : IndexTerm;
