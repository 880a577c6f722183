using System.Text.Json.Serialization;

namespace Kiln.Tracking.Mlflow;

// MLflow REST API 2.0 messages, field for field (snake_case on the wire). Optional fields are null
// when absent; MLflow's int64 fields are JSON numbers, and strings holding numbers are accepted too.

public sealed class MlflowError
{
    public string? ErrorCode { get; set; }
    public string? Message { get; set; }
}

public sealed class KeyValueDto
{
    public string? Key { get; set; }
    public string? Value { get; set; }
}

public sealed class MetricDto
{
    public string? Key { get; set; }
    public double Value { get; set; }
    public long? Timestamp { get; set; }
    public long? Step { get; set; }
}

public sealed class ExperimentDto
{
    public string? ExperimentId { get; set; }
    public string? Name { get; set; }
    public string? ArtifactLocation { get; set; }
    public string? LifecycleStage { get; set; }
    public long LastUpdateTime { get; set; }
    public long CreationTime { get; set; }
    public List<KeyValueDto>? Tags { get; set; }
}

public sealed class RunInfoDto
{
    public string? RunId { get; set; }
    public string? RunUuid { get; set; }
    public string? RunName { get; set; }
    public string? ExperimentId { get; set; }
    public string? UserId { get; set; }
    public string? Status { get; set; }
    public long StartTime { get; set; }
    public long? EndTime { get; set; }
    public string? ArtifactUri { get; set; }
    public string? LifecycleStage { get; set; }
}

public sealed class RunDataDto
{
    public List<MetricDto>? Metrics { get; set; }
    public List<KeyValueDto>? Params { get; set; }
    public List<KeyValueDto>? Tags { get; set; }
}

public sealed class RunDto
{
    public RunInfoDto? Info { get; set; }
    public RunDataDto? Data { get; set; }
}

public sealed class CreateExperimentRequest
{
    public string? Name { get; set; }
    public string? ArtifactLocation { get; set; }
    public List<KeyValueDto>? Tags { get; set; }
}

public sealed class ExperimentIdResponse
{
    public string? ExperimentId { get; set; }
}

public sealed class ExperimentRequest
{
    public string? ExperimentId { get; set; }
    public string? NewName { get; set; }
    public string? Key { get; set; }
    public string? Value { get; set; }
}

public sealed class ExperimentResponse
{
    public ExperimentDto? Experiment { get; set; }
}

public sealed class SearchExperimentsRequest
{
    public int? MaxResults { get; set; }
    public string? PageToken { get; set; }
    public string? Filter { get; set; }
    public List<string>? OrderBy { get; set; }
    public string? ViewType { get; set; }
}

public sealed class ExperimentsResponse
{
    public List<ExperimentDto>? Experiments { get; set; }
    public string? NextPageToken { get; set; }
}

public sealed class CreateRunRequest
{
    public string? ExperimentId { get; set; }
    public string? UserId { get; set; }
    public string? RunName { get; set; }
    public long? StartTime { get; set; }
    public List<KeyValueDto>? Tags { get; set; }
}

public sealed class RunResponse
{
    public RunDto? Run { get; set; }
}

/// <summary>Every run-scoped write: run_id (or the older run_uuid) plus the fields of that call.</summary>
public sealed class RunRequest
{
    public string? RunId { get; set; }
    public string? RunUuid { get; set; }
    public string? Key { get; set; }
    public string? Value { get; set; }
    public string? Status { get; set; }
    public long? EndTime { get; set; }
    public string? RunName { get; set; }
}

public sealed class LogMetricRequest
{
    public string? RunId { get; set; }
    public string? RunUuid { get; set; }
    public string? Key { get; set; }
    public double? Value { get; set; }
    public long? Timestamp { get; set; }
    public long? Step { get; set; }
}

public sealed class UpdateRunResponse
{
    public RunInfoDto? RunInfo { get; set; }
}

public sealed class LogBatchRequest
{
    public string? RunId { get; set; }
    public string? RunUuid { get; set; }
    public List<MetricDto>? Metrics { get; set; }
    public List<KeyValueDto>? Params { get; set; }
    public List<KeyValueDto>? Tags { get; set; }
}

public sealed class SearchRunsRequest
{
    public List<string>? ExperimentIds { get; set; }
    public string? Filter { get; set; }
    public string? RunViewType { get; set; }
    public int? MaxResults { get; set; }
    public List<string>? OrderBy { get; set; }
    public string? PageToken { get; set; }
}

public sealed class SearchRunsResponse
{
    public List<RunDto>? Runs { get; set; }
    public string? NextPageToken { get; set; }
}

public sealed class MetricHistoryResponse
{
    public List<MetricDto>? Metrics { get; set; }
    public string? NextPageToken { get; set; }
}

public sealed class FileInfoDto
{
    public string? Path { get; set; }
    public bool IsDir { get; set; }
    public long? FileSize { get; set; }
}

public sealed class ListArtifactsResponse
{
    public string? RootUri { get; set; }
    public List<FileInfoDto>? Files { get; set; }
    public string? NextPageToken { get; set; }
}

public sealed class EmptyResponse;

// ---- model registry ----

public sealed class RegisteredModelAliasDto
{
    public string? Alias { get; set; }
    public string? Version { get; set; }
}

public sealed class RegisteredModelDto
{
    public string? Name { get; set; }
    public long CreationTimestamp { get; set; }
    public long LastUpdatedTimestamp { get; set; }
    public string? Description { get; set; }
    public List<ModelVersionDto>? LatestVersions { get; set; }
    public List<KeyValueDto>? Tags { get; set; }
    public List<RegisteredModelAliasDto>? Aliases { get; set; }
}

public sealed class ModelVersionDto
{
    public string? Name { get; set; }
    public string? Version { get; set; }
    public long CreationTimestamp { get; set; }
    public long LastUpdatedTimestamp { get; set; }
    public string? Description { get; set; }
    public string? UserId { get; set; }
    public string? CurrentStage { get; set; }
    public string? Source { get; set; }
    public string? RunId { get; set; }
    public string? RunLink { get; set; }
    public string? Status { get; set; }
    public List<KeyValueDto>? Tags { get; set; }
    public List<string>? Aliases { get; set; }
}

/// <summary>Every registry request body: the fields of all registry calls (each call reads its own).</summary>
public sealed class RegistryRequest
{
    public string? Name { get; set; }
    public string? NewName { get; set; }
    public string? Description { get; set; }
    public string? Version { get; set; }
    public string? Source { get; set; }
    public string? RunId { get; set; }
    public string? RunLink { get; set; }
    public string? Key { get; set; }
    public string? Value { get; set; }
    public string? Stage { get; set; }
    public bool? ArchiveExistingVersions { get; set; }
    public string? Alias { get; set; }
    public List<string>? Stages { get; set; }
    public List<KeyValueDto>? Tags { get; set; }
}

public sealed class RegisteredModelResponse
{
    public RegisteredModelDto? RegisteredModel { get; set; }
}

public sealed class RegisteredModelsResponse
{
    public List<RegisteredModelDto>? RegisteredModels { get; set; }
    public string? NextPageToken { get; set; }
}

public sealed class ModelVersionResponse
{
    public ModelVersionDto? ModelVersion { get; set; }
}

public sealed class ModelVersionsResponse
{
    public List<ModelVersionDto>? ModelVersions { get; set; }
    public string? NextPageToken { get; set; }
}

public sealed class DownloadUriResponse
{
    public string? ArtifactUri { get; set; }
}

// ---- Kiln's native /api/v1 (what MLflow lacks) ----

public sealed class AliasEventDto
{
    public long Id { get; set; }
    public string? Name { get; set; }
    public string? Alias { get; set; }
    public string? Action { get; set; }
    public int? FromVersion { get; set; }
    public int? ToVersion { get; set; }
    public string? UserId { get; set; }
    public long Timestamp { get; set; }
}

public sealed class AliasHistoryResponse
{
    public List<AliasEventDto>? Events { get; set; }
}

public sealed class AliasTargetResponse
{
    public string? Name { get; set; }
    public string? Alias { get; set; }
    public int Version { get; set; }
}

/// <summary>The source-generated serializers of every MLflow and native tracking message.</summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    NumberHandling = JsonNumberHandling.AllowReadingFromString | JsonNumberHandling.AllowNamedFloatingPointLiterals,
    PropertyNameCaseInsensitive = false)]
[JsonSerializable(typeof(MlflowError))]
[JsonSerializable(typeof(CreateExperimentRequest))]
[JsonSerializable(typeof(ExperimentIdResponse))]
[JsonSerializable(typeof(ExperimentRequest))]
[JsonSerializable(typeof(ExperimentResponse))]
[JsonSerializable(typeof(SearchExperimentsRequest))]
[JsonSerializable(typeof(ExperimentsResponse))]
[JsonSerializable(typeof(CreateRunRequest))]
[JsonSerializable(typeof(RunResponse))]
[JsonSerializable(typeof(RunRequest))]
[JsonSerializable(typeof(LogMetricRequest))]
[JsonSerializable(typeof(UpdateRunResponse))]
[JsonSerializable(typeof(LogBatchRequest))]
[JsonSerializable(typeof(SearchRunsRequest))]
[JsonSerializable(typeof(SearchRunsResponse))]
[JsonSerializable(typeof(MetricHistoryResponse))]
[JsonSerializable(typeof(ListArtifactsResponse))]
[JsonSerializable(typeof(EmptyResponse))]
[JsonSerializable(typeof(RegistryRequest))]
[JsonSerializable(typeof(RegisteredModelResponse))]
[JsonSerializable(typeof(RegisteredModelsResponse))]
[JsonSerializable(typeof(ModelVersionResponse))]
[JsonSerializable(typeof(ModelVersionsResponse))]
[JsonSerializable(typeof(DownloadUriResponse))]
[JsonSerializable(typeof(AliasEventDto))]
[JsonSerializable(typeof(AliasHistoryResponse))]
[JsonSerializable(typeof(AliasTargetResponse))]
public sealed partial class MlflowJson : JsonSerializerContext;
