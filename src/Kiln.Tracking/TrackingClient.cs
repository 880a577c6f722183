using Kiln.Tracking.Artifacts;

namespace Kiln.Tracking;

/// <summary>
/// The small API training jobs use: get or create an experiment by name, start a run, log params and
/// metrics in batches, upload a directory (the model package) as artifacts, end the run, and
/// register a model version from runs:/RUN_ID/PATH. Works the same embedded and through a server.
/// </summary>
public sealed class TrackingClient(TrackingStores stores)
{
    public TrackingStores Stores { get; } = stores;

    /// <summary>The id of the experiment of that name, created when missing (restored when deleted).</summary>
    public async Task<string> GetOrCreateExperimentAsync(string name, CancellationToken ct = default)
    {
        var existing = await Stores.Tracking.GetExperimentByNameAsync(name, ct).ConfigureAwait(false);
        if (existing is not null)
        {
            if (existing.LifecycleStage == LifecycleStage.Deleted)
                await Stores.Tracking.RestoreExperimentAsync(existing.ExperimentId, ct).ConfigureAwait(false);
            return existing.ExperimentId;
        }
        try
        {
            return await Stores.Tracking.CreateExperimentAsync(name, ct: ct).ConfigureAwait(false);
        }
        catch (TrackingException e) when (e.Code == ErrorCode.ResourceAlreadyExists)
        {
            // Another job created it between our look-up and our create.
            return (await Stores.Tracking.GetExperimentByNameAsync(name, ct).ConfigureAwait(false))!.ExperimentId;
        }
    }

    /// <summary>Starts a run in the named experiment (created when missing).</summary>
    public async Task<ActiveRun> StartRunAsync(string experimentName, string? runName = null, IReadOnlyList<KeyValue>? tags = null,
        CancellationToken ct = default)
    {
        var experimentId = await GetOrCreateExperimentAsync(experimentName, ct).ConfigureAwait(false);
        var run = await Stores.Tracking.CreateRunAsync(new CreateRun(experimentId, runName, Environment.UserName, null, tags), ct).ConfigureAwait(false);
        return new ActiveRun(Stores, run.Info);
    }

    /// <summary>
    /// Registers a model version from a source URI (runs:/RUN_ID/PATH, mlflow-artifacts:/…), creating
    /// the registered model when it does not exist yet.
    /// </summary>
    public async Task<ModelVersion> RegisterModelAsync(string name, string source, string? description = null, CancellationToken ct = default)
    {
        try
        {
            await Stores.Registry.GetRegisteredModelAsync(name, ct).ConfigureAwait(false);
        }
        catch (TrackingException e) when (e.Code == ErrorCode.ResourceDoesNotExist)
        {
            try
            {
                await Stores.Registry.CreateRegisteredModelAsync(name, ct: ct).ConfigureAwait(false);
            }
            catch (TrackingException e2) when (e2.Code == ErrorCode.ResourceAlreadyExists)
            {
            }
        }
        return await Stores.Registry.CreateModelVersionAsync(new CreateModelVersion(name, source, ModelUris.RunIdOf(source), description,
            UserId: Environment.UserName), ct).ConfigureAwait(false);
    }
}

/// <summary>A run in progress: log to it, upload its artifacts, end it.</summary>
public sealed class ActiveRun(TrackingStores stores, RunInfo info)
{
    public RunInfo Info { get; } = info;

    public string RunId => Info.RunId;

    public string ExperimentId => Info.ExperimentId;

    public Task LogParamsAsync(IEnumerable<KeyValuePair<string, string>> @params, CancellationToken ct = default) =>
        ChunkedAsync(@params.Select(p => new KeyValue(p.Key, p.Value)).ToList(), Limits.MaxBatchParams,
            chunk => stores.Tracking.LogBatchAsync(RunId, null, chunk, null, ct));

    public Task SetTagsAsync(IEnumerable<KeyValuePair<string, string>> tags, CancellationToken ct = default) =>
        ChunkedAsync(tags.Select(p => new KeyValue(p.Key, p.Value)).ToList(), Limits.MaxBatchTags,
            chunk => stores.Tracking.LogBatchAsync(RunId, null, null, chunk, ct));

    public Task LogMetricsAsync(IEnumerable<Metric> metrics, CancellationToken ct = default) =>
        ChunkedAsync(metrics.ToList(), Limits.MaxBatchMetrics, chunk => stores.Tracking.LogBatchAsync(RunId, chunk, null, null, ct));

    public Task LogMetricAsync(string key, double value, long step = 0, CancellationToken ct = default) =>
        stores.Tracking.LogMetricAsync(RunId, key, value, step, ct: ct);

    /// <summary>Uploads a local directory under ARTIFACT_PATH in the run's artifacts; returns runs:/RUN_ID/ARTIFACT_PATH.</summary>
    public async Task<string> LogArtifactsAsync(string localDirectory, string artifactPath, CancellationToken ct = default)
    {
        var path = LocalArtifactStore.Normalize(artifactPath, allowEmpty: true);
        await ArtifactTransfer.UploadDirectoryAsync(stores.Artifacts, localDirectory, ArtifactUris.Join(ArtifactUris.RunRoot(Info), path), ct)
            .ConfigureAwait(false);
        return $"runs:/{RunId}/{path}";
    }

    /// <summary>Ends the run: FINISHED by default, FAILED or KILLED when the job did not succeed.</summary>
    public Task EndAsync(string status = RunStatus.Finished, CancellationToken ct = default) =>
        stores.Tracking.UpdateRunAsync(RunId, status, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), null, ct);

    private static async Task ChunkedAsync<T>(List<T> items, int size, Func<List<T>, Task> send)
    {
        for (var i = 0; i < items.Count; i += size) await send(items.GetRange(i, Math.Min(size, items.Count - i))).ConfigureAwait(false);
    }
}
