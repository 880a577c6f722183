using System.Text.Json;
using System.Text.Json.Serialization;

namespace Kiln.Core;

/// <summary>JSON settings shared by every Kiln file format and API: snake_case, no nulls written, indented files.</summary>
public static class KilnJson
{
    /// <summary>Options for human-readable files (package manifests, profiles, reports).</summary>
    public static JsonSerializerOptions Files { get; } = Create(indented: true);

    /// <summary>Options for wire formats (compact).</summary>
    public static JsonSerializerOptions Wire { get; } = Create(indented: false);

    private static JsonSerializerOptions Create(bool indented)
    {
        var options = new JsonSerializerOptions
        {
            PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
            DictionaryKeyPolicy = null,
            DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
            WriteIndented = indented,
            NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
            TypeInfoResolver = CoreJsonContext.Default,
        };
        options.Converters.Add(new JsonStringEnumConverter<Profiling.ColumnKind>(JsonNamingPolicy.SnakeCaseLower));
        options.Converters.Add(new JsonStringEnumConverter<Packaging.ModelTask>(JsonNamingPolicy.SnakeCaseLower));
        options.Converters.Add(new JsonStringEnumConverter<Packaging.ModelRuntime>(JsonNamingPolicy.SnakeCaseLower));
        options.MakeReadOnly();
        return options;
    }
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals)]
[JsonSerializable(typeof(Profiling.DatasetProfile))]
[JsonSerializable(typeof(Packaging.PackageManifest))]
[JsonSerializable(typeof(Packaging.ModelSignature))]
[JsonSerializable(typeof(Packaging.PackageMetadata))]
[JsonSerializable(typeof(Packaging.PackageProfile))]
[JsonSerializable(typeof(List<Dictionary<string, JsonElement>>))]
[JsonSerializable(typeof(Dictionary<string, JsonElement>))]
internal sealed partial class CoreJsonContext : JsonSerializerContext;
