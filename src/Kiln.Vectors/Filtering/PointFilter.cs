using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Kiln.Vectors.Filtering;

/// <summary>
/// A Qdrant filter (must / should / must_not of conditions: match value, match any, match except, match text, range,
/// is_empty, is_null, has_id, and nested filters), parsed once and evaluated per point. A text match is a substring
/// match unless the collection has a full-text index on the key (see <see cref="For"/>).
/// Keys are dotted paths; an array on the way is searched element by element ("a[].b" and "a.b" alike),
/// and a condition holds when any value found at the path satisfies it.
/// </summary>
public sealed class PointFilter
{
    private readonly Func<PointId, JsonObject?, bool> _predicate;
    private readonly JsonNode _node;
    private readonly string _field;
    private readonly bool _hasText;
    private readonly IReadOnlySet<string> _textKeys;
    private PointFilter? _bound;

    private PointFilter(JsonNode node, string field, IReadOnlySet<string> textKeys)
    {
        var hasText = false;
        _predicate = ParseFilter(node, field, textKeys, ref hasText);
        _hasText = hasText;
        _node = node;
        _field = field;
        _textKeys = textKeys;
        Terms = IndexTerms(node, textKeys);
    }

    /// <summary>Conditions every matching point satisfies, which a payload index may answer: the must conditions that
    /// are a match (value, any) or a range, those of filters nested in must, and a should clause made only of such
    /// conditions (as "one of them"). Each bounds the candidates when its key has a fitting index.</summary>
    internal IReadOnlyList<IndexTerm> Terms { get; }

    public bool Matches(PointId id, JsonObject? payload) => _predicate(id, payload);

    /// <summary>Null for an absent or JSON-null filter; otherwise the parsed filter or an error naming the field.</summary>
    public static PointFilter? Parse(JsonNode? node, string field = "filter") =>
        node is null ? null : new PointFilter(node, field, NoKeys);

    private static readonly IReadOnlySet<string> NoKeys = new HashSet<string>(StringComparer.Ordinal);

    /// <summary>This filter as evaluated in a collection whose full-text (text) payload indexes are on
    /// <paramref name="textKeys"/>: a text match on one of those keys holds when every word of the query is among the
    /// words of the value (Qdrant's word tokenizer, lower-cased); on any other key it stays a substring match.</summary>
    public PointFilter For(IReadOnlySet<string> textKeys)
    {
        if (!_hasText || textKeys.SetEquals(_textKeys)) return this;
        var bound = _bound;
        if (bound is not null && bound._textKeys.SetEquals(textKeys)) return bound;
        bound = new PointFilter(_node, _field, textKeys);
        _bound = bound;
        return bound;
    }

    /// <summary>The words of a text as a full-text index keeps them: runs of letters and digits, lower-cased.</summary>
    internal static List<string> Words(string text)
    {
        var words = new List<string>();
        var start = -1;
        for (var i = 0; i <= text.Length; i++)
        {
            var inWord = i < text.Length && char.IsLetterOrDigit(text[i]);
            if (inWord && start < 0) start = i;
            else if (!inWord && start >= 0)
            {
                words.Add(text[start..i].ToLowerInvariant());
                start = -1;
            }
        }
        return words;
    }

    /// <summary>A key as written in a condition, in the form payload indexes are keyed by (no "[]").</summary>
    internal static string NormalKey(string key) => key.Replace("[]", "", StringComparison.Ordinal);

    /// <summary>The index terms of a filter already checked by <see cref="ParseFilter"/>.</summary>
    private static List<IndexTerm> IndexTerms(JsonNode node, IReadOnlySet<string> textKeys)
    {
        var terms = new List<IndexTerm>();
        foreach (var c in Clause(node["must"]))
        {
            if (c is JsonObject o && (o.ContainsKey("must") || o.ContainsKey("should") || o.ContainsKey("must_not"))) terms.AddRange(IndexTerms(o, textKeys));
            else if (Term(c, textKeys) is { } t) terms.Add(t);
        }
        var should = Clause(node["should"]).Select(c => Term(c, textKeys)).ToList();
        if (should.Count > 0 && should.All(t => t is not null)) terms.Add(should.Count == 1 ? should[0]! : new AnyTerm([.. should!]));
        return terms;
    }

    private static IEnumerable<JsonNode?> Clause(JsonNode? clause) => clause switch
    {
        JsonArray a => a,
        JsonObject o => [o],
        _ => [],
    };

    /// <summary>A match (value, any; text on a full-text key) or range condition as an index term; null for any other condition.</summary>
    private static IndexTerm? Term(JsonNode? condition, IReadOnlySet<string> textKeys)
    {
        if (condition is not JsonObject o || o["key"] is not JsonValue k || k.GetValueKind() != JsonValueKind.String) return null;
        var key = k.GetValue<string>();
        if (o["match"] is JsonObject m)
        {
            if (m["value"] is JsonValue v) return new MatchTerm(key, [v]);
            if (m["any"] is JsonArray any && any.All(x => x is JsonValue)) return new MatchTerm(key, [.. any.Select(x => (JsonValue)x!)]);
            if (m["text"] is JsonValue text && text.GetValueKind() == JsonValueKind.String && textKeys.Contains(NormalKey(key))
                && Words(text.GetValue<string>()) is { Count: > 0 } words)
            {
                return new TextTerm(key, [.. words]);
            }
            return null;
        }
        if (o["range"] is not JsonObject r) return null;
        double? gt = null, gte = null, lt = null, lte = null;
        bool? datetime = null;
        foreach (var (name, value) in r)
        {
            if (value is not JsonValue jv) continue;
            var isDate = jv.GetValueKind() == JsonValueKind.String;
            double ticks = 0;
            if (!(jv.GetValueKind() == JsonValueKind.Number || (isDate && TryDate(jv.GetValue<string>(), out ticks))) || (datetime is { } d && d != isDate)) return null;
            datetime = isDate;
            var bound = isDate ? ticks : Number(jv);
            switch (name)
            {
                case "gt": gt = bound; break;
                case "gte": gte = bound; break;
                case "lt": lt = bound; break;
                case "lte": lte = bound; break;
                default: return null;
            }
        }
        return datetime is null ? null : new RangeTerm(key, gt, gte, lt, lte, datetime.Value);
    }

    private static Func<PointId, JsonObject?, bool> ParseFilter(JsonNode node, string field, IReadOnlySet<string> textKeys, ref bool hasText)
    {
        if (node is not JsonObject o) throw new VectorInputException($"{field}: a filter is an object with must, should or must_not");
        var must = new List<Func<PointId, JsonObject?, bool>>();
        var should = new List<Func<PointId, JsonObject?, bool>>();
        var mustNot = new List<Func<PointId, JsonObject?, bool>>();
        foreach (var (key, value) in o)
        {
            var target = key switch
            {
                "must" => must,
                "should" => should,
                "must_not" => mustNot,
                _ => throw new VectorInputException($"{field}.{key}: unknown filter clause (expected must, should or must_not)"),
            };
            if (value is null) continue;
            if (value is JsonArray array)
            {
                for (var i = 0; i < array.Count; i++) target.Add(ParseCondition(array[i], $"{field}.{key}[{i}]", textKeys, ref hasText));
            }
            else
            {
                target.Add(ParseCondition(value, $"{field}.{key}", textKeys, ref hasText));
            }
        }
        var m = must.ToArray();
        var s = should.ToArray();
        var n = mustNot.ToArray();
        return (id, payload) =>
        {
            foreach (var c in m) if (!c(id, payload)) return false;
            foreach (var c in n) if (c(id, payload)) return false;
            if (s.Length == 0) return true;
            foreach (var c in s) if (c(id, payload)) return true;
            return false;
        };
    }

    private static Func<PointId, JsonObject?, bool> ParseCondition(JsonNode? node, string field, IReadOnlySet<string> textKeys, ref bool hasText)
    {
        if (node is not JsonObject o) throw new VectorInputException($"{field}: a condition is an object");
        if (o.ContainsKey("must") || o.ContainsKey("should") || o.ContainsKey("must_not")) return ParseFilter(o, field, textKeys, ref hasText);
        if (o["has_id"] is { } hasId)
        {
            if (hasId is not JsonArray ids) throw new VectorInputException($"{field}.has_id: a list of point ids");
            var set = new HashSet<PointId>();
            for (var i = 0; i < ids.Count; i++) set.Add(PointId.Parse(ids[i], $"{field}.has_id[{i}]"));
            return (id, _) => set.Contains(id);
        }
        if (o["is_empty"] is { } isEmpty)
        {
            var path = ParseKey(isEmpty["key"], $"{field}.is_empty.key");
            return (_, payload) =>
            {
                foreach (var v in Values(payload, path)) if (v is not null) return false;
                return true;
            };
        }
        if (o["is_null"] is { } isNull)
        {
            var path = ParseKey(isNull["key"], $"{field}.is_null.key");
            return (_, payload) =>
            {
                foreach (var v in Values(payload, path)) if (v is null) return true;
                return false;
            };
        }
        if (!o.ContainsKey("key")) throw new VectorInputException($"{field}: expected key with match or range, has_id, is_empty, is_null or a nested filter");
        var keyPath = ParseKey(o["key"], $"{field}.key");
        if (o["match"] is { } match)
        {
            var fullText = textKeys.Contains(string.Join('.', keyPath));
            if (match is JsonObject mo && mo.ContainsKey("text")) hasText = true;
            return ParseMatch(match, keyPath, $"{field}.match", fullText);
        }
        if (o["range"] is { } range) return ParseRange(range, keyPath, $"{field}.range");
        throw new VectorInputException($"{field}: a field condition needs match or range");
    }

    private static Func<PointId, JsonObject?, bool> ParseMatch(JsonNode match, string[] path, string field, bool fullText)
    {
        if (match is not JsonObject m) throw new VectorInputException($"{field}: an object with value, any or except");
        if (m.TryGetPropertyValue("value", out var value))
        {
            var expected = Scalar(value, $"{field}.value");
            return (_, payload) =>
            {
                foreach (var v in Values(payload, path)) if (ScalarEquals(v, expected)) return true;
                return false;
            };
        }
        if (m.TryGetPropertyValue("any", out var anyNode))
        {
            if (anyNode is not JsonArray any) throw new VectorInputException($"{field}.any: a list of strings, integers or booleans, got {anyNode?.ToJsonString() ?? "null"}");
            var options = any.Select((x, i) => Scalar(x, $"{field}.any[{i}]")).ToArray();
            return (_, payload) =>
            {
                foreach (var v in Values(payload, path))
                {
                    foreach (var option in options) if (ScalarEquals(v, option)) return true;
                }
                return false;
            };
        }
        if (m.TryGetPropertyValue("except", out var exceptNode))
        {
            if (exceptNode is not JsonArray except) throw new VectorInputException($"{field}.except: a list of strings, integers or booleans, got {exceptNode?.ToJsonString() ?? "null"}");
            var options = except.Select((x, i) => Scalar(x, $"{field}.except[{i}]")).ToArray();
            // Qdrant's semantics: holds when some value at the key is none of the list (for an array, one element outside
            // the list is enough); a missing key, a null or an empty array holds no value, so it does not hold (Qdrant's
            // condition checker answers false for an empty field and for null under except).
            return (_, payload) =>
            {
                foreach (var v in Values(payload, path))
                {
                    if (v is null) continue;
                    var listed = false;
                    foreach (var option in options)
                    {
                        if (ScalarEquals(v, option))
                        {
                            listed = true;
                            break;
                        }
                    }
                    if (!listed) return true;
                }
                return false;
            };
        }
        if (m.TryGetPropertyValue("text", out var textNode))
        {
            if (textNode is not JsonValue text || text.GetValueKind() != JsonValueKind.String) throw new VectorInputException($"{field}.text: a string, got {textNode?.ToJsonString() ?? "null"}");
            var needle = text.GetValue<string>();
            if (fullText)
            {
                // A full-text index on the key: every word of the query among the value's words.
                var wanted = Words(needle).Distinct(StringComparer.Ordinal).ToArray();
                return (_, payload) =>
                {
                    foreach (var v in Values(payload, path))
                    {
                        if (v is not JsonValue s || s.GetValueKind() != JsonValueKind.String) continue;
                        var words = Words(s.GetValue<string>());
                        if (wanted.All(words.Contains)) return true;
                    }
                    return false;
                };
            }
            // No full-text index: Qdrant's exact substring match.
            return (_, payload) =>
            {
                foreach (var v in Values(payload, path))
                {
                    if (v is JsonValue s && s.GetValueKind() == JsonValueKind.String && s.GetValue<string>().Contains(needle, StringComparison.Ordinal)) return true;
                }
                return false;
            };
        }
        throw new VectorInputException($"{field}: expected value, any (a list), except (a list) or text");
    }

    private static Func<PointId, JsonObject?, bool> ParseRange(JsonNode range, string[] path, string field)
    {
        if (range is not JsonObject r || r.Count == 0) throw new VectorInputException($"{field}: an object with gt, gte, lt or lte");
        double? gt = null, gte = null, lt = null, lte = null;
        var datetime = false;
        foreach (var (k, v) in r)
        {
            if (v is null) continue;
            double bound;
            if (v is JsonValue jv && jv.GetValueKind() == JsonValueKind.Number) bound = Number(jv);
            else if (v is JsonValue sv && sv.GetValueKind() == JsonValueKind.String && TryDate(sv.GetValue<string>(), out var ticks))
            {
                bound = ticks;
                datetime = true;
            }
            else throw new VectorInputException($"{field}.{k}: a number or an RFC 3339 date-time, got {v.ToJsonString()}");
            switch (k)
            {
                case "gt": gt = bound; break;
                case "gte": gte = bound; break;
                case "lt": lt = bound; break;
                case "lte": lte = bound; break;
                default: throw new VectorInputException($"{field}.{k}: unknown bound (expected gt, gte, lt or lte)");
            }
        }
        return (_, payload) =>
        {
            foreach (var v in Values(payload, path))
            {
                if (v is not JsonValue jv) continue;
                double x;
                var kind = jv.GetValueKind();
                if (!datetime && kind == JsonValueKind.Number) x = Number(jv);
                else if (datetime && kind == JsonValueKind.String && TryDate(jv.GetValue<string>(), out var t)) x = t;
                else continue;
                if ((gt is null || x > gt) && (gte is null || x >= gte) && (lt is null || x < lt) && (lte is null || x <= lte)) return true;
            }
            return false;
        };
    }

    internal static bool TryDate(string text, out double ticks)
    {
        if (DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var d))
        {
            ticks = d.UtcTicks;
            return true;
        }
        ticks = 0;
        return false;
    }

    private static string[] ParseKey(JsonNode? key, string field)
    {
        if (key is JsonValue v && v.GetValueKind() == JsonValueKind.String && v.GetValue<string>().Length > 0)
        {
            return v.GetValue<string>().Replace("[]", "", StringComparison.Ordinal).Split('.');
        }
        throw new VectorInputException($"{field}: a payload key such as \"city\" or \"address.city\"");
    }

    private static JsonValue Scalar(JsonNode? node, string field)
    {
        if (node is JsonValue v && v.GetValueKind() is JsonValueKind.String or JsonValueKind.Number or JsonValueKind.True or JsonValueKind.False) return v;
        throw new VectorInputException($"{field}: a string, integer or boolean, got {node?.ToJsonString() ?? "null"}");
    }

    /// <summary>A JSON number as a double, whether it was parsed from text or built in memory from an int or a long.</summary>
    internal static double Number(JsonValue v) =>
        v.TryGetValue<double>(out var d) ? d
        : v.TryGetValue<long>(out var l) ? l
        : v.TryGetValue<int>(out var i) ? i
        : v.TryGetValue<ulong>(out var u) ? u
        : v.TryGetValue<float>(out var f) ? f
        : v.TryGetValue<decimal>(out var m) ? (double)m
        : double.Parse(v.ToJsonString(), CultureInfo.InvariantCulture);

    internal static bool ScalarEquals(JsonNode? actual, JsonValue expected)
    {
        if (actual is not JsonValue a) return false;
        var ka = a.GetValueKind();
        var ke = expected.GetValueKind();
        if (ka == JsonValueKind.Number && ke == JsonValueKind.Number) return Number(a) == Number(expected);
        if (ka == JsonValueKind.String && ke == JsonValueKind.String) return string.Equals(a.GetValue<string>(), expected.GetValue<string>(), StringComparison.Ordinal);
        if (ka is JsonValueKind.True or JsonValueKind.False) return ka == ke;
        return false;
    }

    /// <summary>Every value found at the path, arrays flattened; a missing key yields nothing, a JSON null yields null.</summary>
    internal static IEnumerable<JsonNode?> Values(JsonObject? payload, string[] path)
    {
        if (payload is null) yield break;
        var results = new List<JsonNode?>();
        Collect(payload, path, 0, results);
        foreach (var r in results) yield return r;
    }

    private static void Collect(JsonNode? node, string[] path, int depth, List<JsonNode?> results)
    {
        if (node is JsonArray array)
        {
            foreach (var item in array) Collect(item, path, depth, results);
            return;
        }
        if (depth == path.Length)
        {
            results.Add(node);
            return;
        }
        if (node is JsonObject o && o.TryGetPropertyValue(path[depth], out var child)) Collect(child, path, depth + 1, results);
    }
}
