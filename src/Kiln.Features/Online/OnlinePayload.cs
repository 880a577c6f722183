using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Kiln.Features.Definitions;
using Kiln.Features.Offline;

namespace Kiln.Features.Online;

/// <summary>The stored form of one view's values for one entity: a JSON object of feature name to value (times as microseconds).</summary>
public static class OnlinePayload
{
    public static string Encode(IReadOnlyList<FeatureField> fields, ReadOnlySpan<object?> values)
    {
        var buffer = new ArrayBufferWriter<byte>(64 + 16 * fields.Count);
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            for (var i = 0; i < fields.Count; i++)
            {
                w.WritePropertyName(fields[i].Name);
                WriteValue(w, values[i]);
            }
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    private static void WriteValue(Utf8JsonWriter w, object? value)
    {
        switch (value)
        {
            case null: w.WriteNullValue(); break;
            case long l: w.WriteNumberValue(l); break;
            case int i: w.WriteNumberValue(i); break;
            case short s: w.WriteNumberValue(s); break;
            case double d when double.IsFinite(d): w.WriteNumberValue(d); break;
            case float f when float.IsFinite(f): w.WriteNumberValue(f); break;
            case double d: w.WriteStringValue(d.ToString(CultureInfo.InvariantCulture)); break;
            case float f: w.WriteStringValue(f.ToString(CultureInfo.InvariantCulture)); break;
            case decimal m: w.WriteNumberValue(m); break;
            case bool b: w.WriteBooleanValue(b); break;
            case string s: w.WriteStringValue(s); break;
            case DateTime t: w.WriteNumberValue(DuckDb.ToMicros(t.Kind == DateTimeKind.Unspecified ? DateTime.SpecifyKind(t, DateTimeKind.Utc) : t.ToUniversalTime())); break;
            case DateTimeOffset o: w.WriteNumberValue(DuckDb.ToMicros(o.UtcDateTime)); break;
            case JsonElement e: e.WriteTo(w); break;
            default: w.WriteStringValue(Convert.ToString(value, CultureInfo.InvariantCulture)); break;
        }
    }

    /// <summary>Reads the wanted features from a payload: (found, value typed as the field's dtype).</summary>
    public static void Decode(string payload, IReadOnlyList<FeatureField> wanted, Span<(bool Found, object? Value)> into)
    {
        using var doc = JsonDocument.Parse(payload);
        var root = doc.RootElement;
        for (var i = 0; i < wanted.Count; i++)
        {
            into[i] = root.TryGetProperty(wanted[i].Name, out var e) ? (true, Typed(e, wanted[i].Dtype)) : (false, null);
        }
    }

    /// <summary>A JSON value as the CLR value of a dtype (null for JSON null).</summary>
    public static object? Typed(JsonElement e, FeatureType type)
    {
        if (e.ValueKind == JsonValueKind.Null) return null;
        return type switch
        {
            FeatureType.Int32 => e.GetInt32(),
            FeatureType.Int64 => e.GetInt64(),
            FeatureType.Float32 => e.ValueKind == JsonValueKind.String ? float.Parse(e.GetString()!, CultureInfo.InvariantCulture) : e.GetSingle(),
            FeatureType.Float64 => e.ValueKind == JsonValueKind.String ? double.Parse(e.GetString()!, CultureInfo.InvariantCulture) : e.GetDouble(),
            FeatureType.Bool => e.GetBoolean(),
            FeatureType.Timestamp => e.ValueKind == JsonValueKind.Number
                ? DuckDb.FromMicros(e.GetInt64())
                : DateTime.Parse(e.GetString()!, CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal),
            _ => e.ValueKind == JsonValueKind.String ? e.GetString() : e.GetRawText(),
        };
    }
}
