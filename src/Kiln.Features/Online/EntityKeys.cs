using System.Globalization;
using System.Text;
using System.Text.Json;
using Kiln.Core;
using Kiln.Features.Definitions;

namespace Kiln.Features.Online;

/// <summary>
/// The canonical text of an entity key, the same whether the key comes from a Parquet column, a JSON request or C#:
/// integers in invariant decimal, strings as they are, booleans as true/false; several join keys joined by U+001F.
/// </summary>
public static class EntityKeys
{
    private const char Separator = '\u001f';

    /// <summary>The canonical text of one join key value; throws a KilnException naming the key when it cannot be one.</summary>
    public static string Canonical(object? value, string joinKey, FeatureType? declared)
    {
        string text;
        bool isInteger;
        switch (value)
        {
            case null:
                throw new KilnException($"join key '{joinKey}': value is null");
            case JsonElement { ValueKind: JsonValueKind.Number } n when n.TryGetInt64(out var l):
                text = l.ToString(CultureInfo.InvariantCulture); isInteger = true; break;
            case JsonElement { ValueKind: JsonValueKind.String } s:
                text = s.GetString()!; isInteger = false; break;
            case JsonElement { ValueKind: JsonValueKind.True or JsonValueKind.False } b:
                text = b.GetBoolean() ? "true" : "false"; isInteger = false; break;
            case JsonElement other:
                throw new KilnException($"join key '{joinKey}': {other.GetRawText()} is not a key value (integer, string or boolean)");
            case long or int or short or byte or sbyte or ushort or uint or ulong:
                text = Convert.ToString(value, CultureInfo.InvariantCulture)!; isInteger = true; break;
            case string s:
                text = s; isInteger = false; break;
            case bool b:
                text = b ? "true" : "false"; isInteger = false; break;
            default:
                throw new KilnException($"join key '{joinKey}': a {value.GetType().Name} is not a key value (integer, string or boolean)");
        }
        if (declared is FeatureType.Int32 or FeatureType.Int64 && !isInteger)
            throw new KilnException($"type mismatch for join key '{joinKey}': '{text}' is not {declared.Value.Name()}");
        if (declared is FeatureType.String && isInteger)
            throw new KilnException($"type mismatch for join key '{joinKey}': {text} is a number, the entity declares string");
        return text;
    }

    /// <summary>Joins the canonical values of a view's join keys (in the view's key order).</summary>
    public static string Combine(ReadOnlySpan<string> canonicalValues)
    {
        if (canonicalValues.Length == 1) return canonicalValues[0];
        var sb = new StringBuilder();
        for (var i = 0; i < canonicalValues.Length; i++)
        {
            if (i > 0) sb.Append(Separator);
            sb.Append(canonicalValues[i]);
        }
        return sb.ToString();
    }
}
