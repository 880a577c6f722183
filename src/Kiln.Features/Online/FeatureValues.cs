using System.Globalization;
using System.Text.Json;
using Kiln.Core;
using Kiln.Features.Definitions;

namespace Kiln.Features.Online;

/// <summary>Turns values that arrive as JSON or CLR objects into the CLR value of a dtype, with errors naming the column and row.</summary>
internal static class FeatureValues
{
    public static object? Coerce(object? value, FeatureType type, string column, int row)
    {
        try
        {
            return value switch
            {
                null => null,
                JsonElement { ValueKind: JsonValueKind.Null or JsonValueKind.Undefined } => null,
                JsonElement e => FromJson(e, type),
                _ => FromClr(value, type),
            };
        }
        catch (Exception e) when (e is FormatException or InvalidOperationException or OverflowException or InvalidCastException)
        {
            var shown = value is JsonElement j ? j.GetRawText() : Convert.ToString(value, CultureInfo.InvariantCulture);
            throw new KilnException($"type mismatch in column '{column}' row {row}: {shown} is not {type.Name()}", e);
        }
    }

    private static object FromJson(JsonElement e, FeatureType type) => type switch
    {
        FeatureType.Int32 => e.ValueKind == JsonValueKind.Number ? e.GetInt32() : throw new FormatException(),
        FeatureType.Int64 => e.ValueKind == JsonValueKind.Number ? e.GetInt64() : throw new FormatException(),
        FeatureType.Float32 => e.ValueKind == JsonValueKind.Number ? e.GetSingle() : throw new FormatException(),
        FeatureType.Float64 => e.ValueKind == JsonValueKind.Number ? e.GetDouble() : throw new FormatException(),
        FeatureType.Bool => e.ValueKind is JsonValueKind.True or JsonValueKind.False ? e.GetBoolean() : throw new FormatException(),
        FeatureType.String => e.ValueKind == JsonValueKind.String ? e.GetString()! : throw new FormatException(),
        FeatureType.Timestamp => e.ValueKind == JsonValueKind.String ? ParseTime(e.GetString()!)
            : e.ValueKind == JsonValueKind.Number ? DateTime.UnixEpoch.AddSeconds(e.GetDouble()) : throw new FormatException(),
        _ => throw new FormatException(),
    };

    private static object FromClr(object value, FeatureType type) => type switch
    {
        FeatureType.Int32 => value is int or short or byte or long ? Convert.ToInt32(value, CultureInfo.InvariantCulture) : throw new FormatException(),
        FeatureType.Int64 => value is int or short or byte or long ? Convert.ToInt64(value, CultureInfo.InvariantCulture) : throw new FormatException(),
        FeatureType.Float32 => value is string or bool ? throw new FormatException() : Convert.ToSingle(value, CultureInfo.InvariantCulture),
        FeatureType.Float64 => value is string or bool ? throw new FormatException() : Convert.ToDouble(value, CultureInfo.InvariantCulture),
        FeatureType.Bool => value is bool b ? b : throw new FormatException(),
        FeatureType.String => value is string s ? s : throw new FormatException(),
        FeatureType.Timestamp => value switch
        {
            DateTime t => t.Kind == DateTimeKind.Unspecified ? DateTime.SpecifyKind(t, DateTimeKind.Utc) : t.ToUniversalTime(),
            DateTimeOffset o => o.UtcDateTime,
            string s => ParseTime(s),
            _ => throw new FormatException(),
        },
        _ => throw new FormatException(),
    };

    /// <summary>An ISO 8601 time; without an offset it is UTC.</summary>
    public static DateTime ParseTime(string text) =>
        DateTime.Parse(text, CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal);
}
