using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Kiln.Features.Online;

namespace Kiln.Features.Http;

/// <summary>Feast's get-online-features request: features or a feature service, and entities column-major.</summary>
public sealed class GetOnlineFeaturesRequest
{
    public List<string>? Features { get; set; }
    public string? FeatureService { get; set; }
    public Dictionary<string, List<JsonElement>>? Entities { get; set; }
    public bool FullFeatureNames { get; set; }
}

/// <summary>Feast's get-online-features response: names, then one column per name with values, statuses and event times.</summary>
public sealed class GetOnlineFeaturesResponse
{
    public required OnlineFeaturesMetadata Metadata { get; init; }
    public required List<OnlineFeatureVector> Results { get; init; }
}

public sealed class OnlineFeaturesMetadata
{
    public required List<string> FeatureNames { get; init; }
}

public sealed class OnlineFeatureVector
{
    public required List<JsonNode?> Values { get; init; }
    public required List<FeatureStatus> Statuses { get; init; }
    public required List<string> EventTimestamps { get; init; }
}

/// <summary>Feast's push request: rows column-major (<c>df</c>) for a push source (or, in Kiln, a feature view).</summary>
public sealed class PushRequest
{
    public string? PushSourceName { get; set; }
    public string? FeatureView { get; set; }
    public Dictionary<string, List<JsonElement>>? Df { get; set; }
    public PushTarget To { get; set; } = PushTarget.Online;
    public bool AllowRegistryCache { get; set; } = true;
}

public sealed class PushResponse
{
    public required List<string> Views { get; init; }
    public required int Rows { get; init; }
    public required int WrittenOnline { get; init; }
    public required bool WrittenOffline { get; init; }
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(GetOnlineFeaturesRequest))]
[JsonSerializable(typeof(GetOnlineFeaturesResponse))]
[JsonSerializable(typeof(PushRequest))]
[JsonSerializable(typeof(PushResponse))]
[JsonSerializable(typeof(JsonNode))]
[JsonSerializable(typeof(long))]
[JsonSerializable(typeof(int))]
[JsonSerializable(typeof(double))]
[JsonSerializable(typeof(float))]
[JsonSerializable(typeof(bool))]
[JsonSerializable(typeof(string))]
public sealed partial class FeatureJsonContext : JsonSerializerContext;
