using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Kiln.Vectors.Filtering;

/// <summary>
/// A payload index on one key (keyword or integer): for each scalar value found at the key, the slots of the points
/// holding it. Values are keyed as the filter compares them (numbers as numbers, strings ordinally), so the slots
/// listed for a match value are a superset of the points the condition accepts; the filter still checks each one.
/// </summary>
internal sealed class PayloadIndex(string key)
{
    private readonly string[] _path = key.Replace("[]", "", StringComparison.Ordinal).Split('.');
    private readonly Dictionary<string, HashSet<int>> _postings = new(StringComparer.Ordinal);

    public string Key { get; } = key;

    public void Add(int slot, JsonObject? payload)
    {
        foreach (var v in PointFilter.Values(payload, _path))
        {
            if (Term(v) is not { } t) continue;
            if (!_postings.TryGetValue(t, out var set)) _postings[t] = set = [];
            set.Add(slot);
        }
    }

    public void Remove(int slot, JsonObject? payload)
    {
        foreach (var v in PointFilter.Values(payload, _path))
        {
            if (Term(v) is { } t && _postings.TryGetValue(t, out var set))
            {
                set.Remove(slot);
                if (set.Count == 0) _postings.Remove(t);
            }
        }
    }

    /// <summary>How many slots hold one of the values (an upper bound on the points a match condition accepts).</summary>
    public int Count(JsonValue[] values)
    {
        var n = 0;
        foreach (var v in values) if (Term(v) is { } t && _postings.TryGetValue(t, out var set)) n += set.Count;
        return n;
    }

    /// <summary>The slots holding one of the values, in slot order, without repeats.</summary>
    public List<int> Slots(JsonValue[] values)
    {
        var slots = new HashSet<int>();
        foreach (var v in values) if (Term(v) is { } t && _postings.TryGetValue(t, out var set)) slots.UnionWith(set);
        var list = slots.ToList();
        list.Sort();
        return list;
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
