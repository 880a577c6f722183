namespace Kiln.Tracking;

/// <summary>
/// Experiments and runs: params, metrics with history, tags, and search with MLflow's filter grammar.
/// Single calls (log one metric, set one tag) funnel into <see cref="LogBatchAsync"/>.
/// </summary>
public interface ITrackingStore
{
    Task<string> CreateExperimentAsync(string name, string? artifactLocation = null, IReadOnlyList<KeyValue>? tags = null,
        CancellationToken ct = default);

    Task<Experiment> GetExperimentAsync(string experimentId, CancellationToken ct = default);

    /// <summary>The experiment of that name (active or deleted), or null.</summary>
    Task<Experiment?> GetExperimentByNameAsync(string name, CancellationToken ct = default);

    Task<Page<Experiment>> SearchExperimentsAsync(ExperimentQuery query, CancellationToken ct = default);

    Task RenameExperimentAsync(string experimentId, string newName, CancellationToken ct = default);

    Task DeleteExperimentAsync(string experimentId, CancellationToken ct = default);

    Task RestoreExperimentAsync(string experimentId, CancellationToken ct = default);

    Task SetExperimentTagAsync(string experimentId, string key, string value, CancellationToken ct = default);

    Task<Run> CreateRunAsync(CreateRun request, CancellationToken ct = default);

    Task<Run> GetRunAsync(string runId, CancellationToken ct = default);

    /// <summary>Sets a run's status, end time and name (each when given).</summary>
    Task<RunInfo> UpdateRunAsync(string runId, string? status, long? endTime, string? runName, CancellationToken ct = default);

    Task DeleteRunAsync(string runId, CancellationToken ct = default);

    Task RestoreRunAsync(string runId, CancellationToken ct = default);

    /// <summary>
    /// Logs metrics, params and tags in one transaction: all or nothing. A param logged again with the
    /// same value is accepted; with a different value it is an INVALID_PARAMETER_VALUE error.
    /// </summary>
    Task LogBatchAsync(string runId, IReadOnlyList<Metric>? metrics, IReadOnlyList<KeyValue>? @params,
        IReadOnlyList<KeyValue>? tags, CancellationToken ct = default);

    Task DeleteTagAsync(string runId, string key, CancellationToken ct = default);

    /// <summary>Every point logged for a metric, ordered by step then timestamp.</summary>
    Task<IReadOnlyList<Metric>> GetMetricHistoryAsync(string runId, string key, CancellationToken ct = default);

    Task<Page<Run>> SearchRunsAsync(RunQuery query, CancellationToken ct = default);
}

/// <summary>Registered models, their versions, aliases with an audit history of every move, and MLflow stages.</summary>
public interface IModelRegistry
{
    Task<RegisteredModel> CreateRegisteredModelAsync(string name, string? description = null, IReadOnlyList<KeyValue>? tags = null,
        CancellationToken ct = default);

    Task<RegisteredModel> GetRegisteredModelAsync(string name, CancellationToken ct = default);

    Task<RegisteredModel> RenameRegisteredModelAsync(string name, string newName, CancellationToken ct = default);

    Task<RegisteredModel> UpdateRegisteredModelAsync(string name, string? description, CancellationToken ct = default);

    Task DeleteRegisteredModelAsync(string name, CancellationToken ct = default);

    /// <summary>Models whose name matches a SQL LIKE pattern (all when null), by name.</summary>
    Task<Page<RegisteredModel>> SearchRegisteredModelsAsync(string? nameLike = null, int maxResults = 100, string? pageToken = null,
        CancellationToken ct = default);

    Task SetRegisteredModelTagAsync(string name, string key, string value, CancellationToken ct = default);

    Task DeleteRegisteredModelTagAsync(string name, string key, CancellationToken ct = default);

    /// <summary>Files a new version (numbered one past the highest so far) under an existing registered model.</summary>
    Task<ModelVersion> CreateModelVersionAsync(CreateModelVersion request, CancellationToken ct = default);

    Task<ModelVersion> GetModelVersionAsync(string name, int version, CancellationToken ct = default);

    Task<ModelVersion> UpdateModelVersionAsync(string name, int version, string? description, CancellationToken ct = default);

    Task DeleteModelVersionAsync(string name, int version, CancellationToken ct = default);

    /// <summary>Versions of one model (all models when null) or of one run, newest first.</summary>
    Task<Page<ModelVersion>> SearchModelVersionsAsync(string? name = null, string? runId = null, int maxResults = 1000,
        string? pageToken = null, CancellationToken ct = default);

    Task SetModelVersionTagAsync(string name, int version, string key, string value, CancellationToken ct = default);

    Task DeleteModelVersionTagAsync(string name, int version, string key, CancellationToken ct = default);

    /// <summary>MLflow's stage transition; with archiveExisting, other versions in that stage move to Archived.</summary>
    Task<ModelVersion> TransitionStageAsync(string name, int version, string stage, bool archiveExisting, CancellationToken ct = default);

    /// <summary>Points an alias at a version and records the move (from which version, by whom, when).</summary>
    Task SetAliasAsync(string name, string alias, int version, string? userId = null, CancellationToken ct = default);

    Task DeleteAliasAsync(string name, string alias, string? userId = null, CancellationToken ct = default);

    Task<ModelVersion> GetModelVersionByAliasAsync(string name, string alias, CancellationToken ct = default);

    /// <summary>Every recorded move of the model's aliases (of one alias when given), oldest first.</summary>
    Task<IReadOnlyList<AliasEvent>> GetAliasHistoryAsync(string name, string? alias = null, CancellationToken ct = default);

    /// <summary>Moves an alias back to the version it held before its last move; no artifact is touched.</summary>
    Task<AliasEvent> RollbackAliasAsync(string name, string alias, string? userId = null, CancellationToken ct = default);
}

/// <summary>Files under one root, addressed by relative paths with forward slashes.</summary>
public interface IArtifactStore
{
    /// <summary>Writes a file (replacing it), all or nothing; paths with "..", absolute paths and encoded separators are refused.</summary>
    Task PutAsync(string path, Stream content, CancellationToken ct = default);

    Task<Stream> OpenReadAsync(string path, CancellationToken ct = default);

    /// <summary>The direct children of a directory (the root when path is empty); paths are relative to the root.</summary>
    Task<IReadOnlyList<ArtifactFile>> ListAsync(string? path, CancellationToken ct = default);
}
