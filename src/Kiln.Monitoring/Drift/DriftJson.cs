using System.Text.Json;
using System.Text.Json.Serialization;
using Kiln.Core.Profiling;

namespace Kiln.Monitoring.Drift;

/// <summary>JSON for drift reports: snake_case, nulls left out, as every Kiln format.</summary>
public static class DriftJson
{
    /// <summary>Indented options for report files.</summary>
    public static JsonSerializerOptions Options { get; } = CreateOptions(DriftJsonContext.Default);

    /// <summary>Serializes a report.</summary>
    public static string Serialize(DriftReport report) => JsonSerializer.Serialize(report, Options);

    /// <summary>Reads a report back.</summary>
    public static DriftReport? Deserialize(string json) => JsonSerializer.Deserialize<DriftReport>(json, Options);

    /// <summary>The options of every monitoring report file (drift, window), over a source-generated resolver.</summary>
    internal static JsonSerializerOptions CreateOptions(System.Text.Json.Serialization.Metadata.IJsonTypeInfoResolver resolver)
    {
        var options = new JsonSerializerOptions
        {
            PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
            DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
            WriteIndented = true,
            NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
            TypeInfoResolver = resolver,
        };
        options.Converters.Add(new JsonStringEnumConverter<ColumnKind>(JsonNamingPolicy.SnakeCaseLower));
        options.MakeReadOnly();
        return options;
    }
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals)]
[JsonSerializable(typeof(DriftReport))]
internal sealed partial class DriftJsonContext : JsonSerializerContext;
