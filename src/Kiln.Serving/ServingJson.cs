using System.Text.Json.Serialization;

namespace Kiln.Serving;

/// <summary>GET /health.</summary>
public sealed record HealthResponse(string Status);

/// <summary>GET /ready: overall readiness and each model's detail.</summary>
public sealed record ReadyResponse(bool Ready, List<ModelStatus> Models);

/// <summary>One model as /ready and /models report it.</summary>
public sealed record ModelStatus(string Name, string Uri, string State, string? Version, DateTimeOffset? LoadedAt, string? Task,
    string? FailedVersion, string? LastError, DateTimeOffset? LastErrorAt);

/// <summary>MLflow's error shape.</summary>
public sealed record MlflowError(string ErrorCode, string Message);

/// <summary>The Open Inference Protocol's error shape.</summary>
public sealed record V2Error(string Error);

public sealed record V2ServerMetadata(string Name, string Version, List<string> Extensions);

public sealed record V2Live(bool Live);

public sealed record V2Ready(bool Ready);

public sealed record V2ModelReady(string Name, bool Ready);

public sealed record V2TensorMetadata(string Name, string Datatype, List<long> Shape);

public sealed record V2ModelMetadata(string Name, List<string> Versions, string Platform, List<V2TensorMetadata> Inputs, List<V2TensorMetadata> Outputs);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(HealthResponse))]
[JsonSerializable(typeof(ReadyResponse))]
[JsonSerializable(typeof(List<ModelStatus>))]
[JsonSerializable(typeof(MlflowError))]
[JsonSerializable(typeof(V2Error))]
[JsonSerializable(typeof(V2ServerMetadata))]
[JsonSerializable(typeof(V2Live))]
[JsonSerializable(typeof(V2Ready))]
[JsonSerializable(typeof(V2ModelReady))]
[JsonSerializable(typeof(V2ModelMetadata))]
internal sealed partial class ServingJsonContext : JsonSerializerContext;
