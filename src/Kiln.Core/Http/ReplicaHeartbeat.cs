using System.Text.Json.Serialization;

namespace Kiln.Core.Http;

/// <summary>
/// What a kiln serve replica sends kiln server every interval (POST /api/v1/serving/replicas, kiln serve --register):
/// the address it answers on, the model versions it serves, and how often it will beat.
/// </summary>
public sealed record ReplicaHeartbeat(
    [property: JsonPropertyName("url")] string Url,
    [property: JsonPropertyName("models")] IReadOnlyList<ReplicaHeartbeatModel> Models,
    [property: JsonPropertyName("interval_seconds")] double IntervalSeconds);

/// <summary>One model a replica serves and the version it has loaded (null while none is loaded).</summary>
public sealed record ReplicaHeartbeatModel(
    [property: JsonPropertyName("name")] string Name,
    [property: JsonPropertyName("version")] string? Version);

/// <summary>kiln server's answer to a heartbeat: until when the replica stays listed without another.</summary>
public sealed record ReplicaHeartbeatAccepted(
    [property: JsonPropertyName("url")] string Url,
    [property: JsonPropertyName("expires_at")] DateTimeOffset ExpiresAt);

/// <summary>The replicas kiln server knows of (GET /api/v1/serving/replicas).</summary>
public sealed record ReplicaList([property: JsonPropertyName("replicas")] IReadOnlyList<ReplicaListItem> Replicas);

/// <summary>A replica as GET /api/v1/serving/replicas lists it.</summary>
public sealed record ReplicaListItem(
    [property: JsonPropertyName("url")] string Url,
    [property: JsonPropertyName("models")] IReadOnlyList<ReplicaHeartbeatModel> Models,
    [property: JsonPropertyName("configured")] bool Configured,
    [property: JsonPropertyName("last_heartbeat")] DateTimeOffset? LastHeartbeat,
    [property: JsonPropertyName("expires_at")] DateTimeOffset? ExpiresAt);

/// <summary>Source-generated JSON of the replica registry's messages.</summary>
[JsonSerializable(typeof(ReplicaHeartbeat))]
[JsonSerializable(typeof(ReplicaHeartbeatAccepted))]
[JsonSerializable(typeof(ReplicaList))]
public sealed partial class ReplicaJsonContext : JsonSerializerContext;
