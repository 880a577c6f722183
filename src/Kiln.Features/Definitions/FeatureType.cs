using System.Text.Json.Serialization;

namespace Kiln.Features.Definitions;

/// <summary>The value type of a feature or of an entity join key.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<FeatureType>))]
public enum FeatureType
{
    Int32,
    Int64,
    Float32,
    Float64,
    String,
    Bool,
    Timestamp,
}

/// <summary>Names and conversions of <see cref="FeatureType"/>.</summary>
public static class FeatureTypes
{
    /// <summary>Parses a schema dtype as written in YAML (Feast's names are accepted too).</summary>
    public static bool TryParse(string text, out FeatureType type)
    {
        switch (text.Trim().ToLowerInvariant())
        {
            case "int32": case "int": case "integer": type = FeatureType.Int32; return true;
            case "int64": case "long": case "bigint": type = FeatureType.Int64; return true;
            case "float32": case "float": type = FeatureType.Float32; return true;
            case "float64": case "double": type = FeatureType.Float64; return true;
            case "string": case "str": type = FeatureType.String; return true;
            case "bool": case "boolean": type = FeatureType.Bool; return true;
            case "timestamp": case "unix_timestamp": case "datetime": type = FeatureType.Timestamp; return true;
            default: type = default; return false;
        }
    }

    /// <summary>The name written in YAML and shown to users.</summary>
    public static string Name(this FeatureType type) => type switch
    {
        FeatureType.Int32 => "int32",
        FeatureType.Int64 => "int64",
        FeatureType.Float32 => "float32",
        FeatureType.Float64 => "float64",
        FeatureType.String => "string",
        FeatureType.Bool => "bool",
        FeatureType.Timestamp => "timestamp",
        _ => type.ToString(),
    };

    /// <summary>The DuckDB column type a feature of this type is cast to.</summary>
    public static string DuckDbType(this FeatureType type) => type switch
    {
        FeatureType.Int32 => "INTEGER",
        FeatureType.Int64 => "BIGINT",
        FeatureType.Float32 => "FLOAT",
        FeatureType.Float64 => "DOUBLE",
        FeatureType.String => "VARCHAR",
        FeatureType.Bool => "BOOLEAN",
        FeatureType.Timestamp => "TIMESTAMP",
        _ => throw new ArgumentOutOfRangeException(nameof(type)),
    };

    /// <summary>Whether a column of the given DuckDB type can feed a feature of this type without loss of meaning.</summary>
    public static bool Accepts(this FeatureType type, string duckType)
    {
        var family = Family(duckType);
        return type switch
        {
            FeatureType.Int32 or FeatureType.Int64 => family == TypeFamily.Integer,
            FeatureType.Float32 or FeatureType.Float64 => family is TypeFamily.Integer or TypeFamily.Float,
            FeatureType.String => family == TypeFamily.String,
            FeatureType.Bool => family == TypeFamily.Bool,
            FeatureType.Timestamp => family == TypeFamily.Timestamp,
            _ => false,
        };
    }

    internal enum TypeFamily { Integer, Float, String, Bool, Timestamp, Other }

    internal static TypeFamily Family(string duckType)
    {
        var t = duckType.ToUpperInvariant();
        if (t is "TINYINT" or "SMALLINT" or "INTEGER" or "BIGINT" or "HUGEINT" or "UTINYINT" or "USMALLINT" or "UINTEGER" or "UBIGINT" or "UHUGEINT")
            return TypeFamily.Integer;
        if (t is "FLOAT" or "DOUBLE" or "REAL" || t.StartsWith("DECIMAL", StringComparison.Ordinal)) return TypeFamily.Float;
        if (t is "VARCHAR" or "TEXT" or "STRING") return TypeFamily.String;
        if (t is "BOOLEAN") return TypeFamily.Bool;
        if (t.StartsWith("TIMESTAMP", StringComparison.Ordinal) || t == "DATE") return TypeFamily.Timestamp;
        return TypeFamily.Other;
    }
}
