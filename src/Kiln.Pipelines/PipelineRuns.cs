using Kiln.Core;
using Kiln.Pipelines.Execution;
using Kiln.Pipelines.Http;
using Kiln.Pipelines.State;
using Kiln.Pipelines.Tasks;
using Kiln.Storage;

namespace Kiln.Pipelines;

/// <summary>
/// The runs of a pipeline store, read and controlled the same way whether the store is embedded (a database this
/// process opens) or a kiln server's (its /api/v1/pipelines API). Which one is chosen once, from the location, by
/// <see cref="PipelineRuns.OpenAsync"/>; the answers are the REST API's shapes in both cases.
/// </summary>
public interface IPipelineRuns : IAsyncDisposable
{
    /// <summary>The server's client when the location is a kiln server (runs started there execute there); null when embedded.</summary>
    PipelineApiClient? Server { get; }

    /// <summary>Runs, newest first.</summary>
    Task<RunListDto> ListRunsAsync(string? pipeline, RunState? state, int limit, CancellationToken cancellationToken = default);

    /// <summary>A run with its tasks and attempts; a <see cref="KilnException"/> naming the run when there is none.</summary>
    Task<RunDetailDto> GetRunAsync(string runId, CancellationToken cancellationToken = default);

    /// <summary>Log lines after the id <paramref name="after"/> (0: from the start), at most 10,000 per call.</summary>
    Task<LogListDto> GetLogsAsync(string runId, string? task, long after, CancellationToken cancellationToken = default);

    /// <summary>Asks for a run to be cancelled; a <see cref="KilnException"/> when it has already finished.</summary>
    Task<RunDto> CancelAsync(string runId, CancellationToken cancellationToken = default);
}

/// <summary>Opens the runs a location names (docs/cli.md#locations).</summary>
public static class PipelineRuns
{
    /// <summary>
    /// http(s):// → the server's API; anything else → the embedded store (null: ./.kiln/kiln.db), with an engine of
    /// <paramref name="kinds"/> to cancel its runs.
    /// </summary>
    public static async Task<IPipelineRuns> OpenAsync(string? location, TaskKindRegistry kinds, CancellationToken cancellationToken = default)
    {
        if (location is not null && StorageLocation.Parse(location, "pipeline store").Kind == StorageKind.Remote)
            return new RemotePipelineRuns(new PipelineApiClient(new Uri(location)));
        var store = await PipelineStores.OpenAsync(location, cancellationToken).ConfigureAwait(false);
        return new StorePipelineRuns(store, new PipelineEngine(store, kinds), ownsStore: true);
    }
}

/// <summary>The runs of an embedded store (what the CLI opens, and what kiln server's API answers from).</summary>
public sealed class StorePipelineRuns(IPipelineStore store, PipelineEngine engine, bool ownsStore) : IPipelineRuns
{
    public PipelineApiClient? Server => null;

    public async Task<RunListDto> ListRunsAsync(string? pipeline, RunState? state, int limit, CancellationToken cancellationToken = default) =>
        new([.. (await store.ListRunsAsync(pipeline, state, limit, cancellationToken).ConfigureAwait(false)).Select(RunDto.From)]);

    public async Task<RunDetailDto> GetRunAsync(string runId, CancellationToken cancellationToken = default)
    {
        var run = await FindAsync(runId, cancellationToken).ConfigureAwait(false);
        var tasks = await store.GetTasksAsync(runId, cancellationToken).ConfigureAwait(false);
        var attempts = await store.GetAttemptsAsync(runId, null, cancellationToken).ConfigureAwait(false);
        return new RunDetailDto(RunDto.From(run), [.. tasks.Select(TaskDto.From)], [.. attempts.Select(AttemptDto.From)]);
    }

    public async Task<LogListDto> GetLogsAsync(string runId, string? task, long after, CancellationToken cancellationToken = default)
    {
        await FindAsync(runId, cancellationToken).ConfigureAwait(false);
        var logs = await store.GetLogsAsync(runId, task, after, 10_000, cancellationToken).ConfigureAwait(false);
        return new LogListDto([.. logs.Select(l => new LogDto(l.Id, l.Task, l.Attempt, l.At, l.Stream, l.Line))], logs.Count == 0 ? after : logs[^1].Id);
    }

    public async Task<RunDto> CancelAsync(string runId, CancellationToken cancellationToken = default)
    {
        var run = await FindAsync(runId, cancellationToken).ConfigureAwait(false);
        if (run.State.IsTerminal()) throw new RunFinishedException($"run {runId} already finished ({run.State.Name()})");
        await engine.CancelAsync(runId, cancellationToken).ConfigureAwait(false);
        return RunDto.From(await FindAsync(runId, cancellationToken).ConfigureAwait(false));
    }

    private async Task<RunRecord> FindAsync(string runId, CancellationToken cancellationToken) =>
        await store.GetRunAsync(runId, cancellationToken).ConfigureAwait(false) ?? throw new RunNotFoundException($"no pipeline run '{runId}'");

    public async ValueTask DisposeAsync()
    {
        if (!ownsStore) return;
        await engine.DisposeAsync().ConfigureAwait(false);
        await store.DisposeAsync().ConfigureAwait(false);
    }
}

/// <summary>The runs of a kiln server, through its API.</summary>
internal sealed class RemotePipelineRuns(PipelineApiClient api) : IPipelineRuns
{
    public PipelineApiClient? Server => api;

    public Task<RunListDto> ListRunsAsync(string? pipeline, RunState? state, int limit, CancellationToken cancellationToken = default) =>
        api.ListRunsAsync(pipeline, state?.Name(), limit, cancellationToken);

    public Task<RunDetailDto> GetRunAsync(string runId, CancellationToken cancellationToken = default) => api.GetRunAsync(runId, cancellationToken);

    public Task<LogListDto> GetLogsAsync(string runId, string? task, long after, CancellationToken cancellationToken = default) =>
        api.GetLogsAsync(runId, task, after, cancellationToken);

    public Task<RunDto> CancelAsync(string runId, CancellationToken cancellationToken = default) => api.CancelAsync(runId, cancellationToken);

    public ValueTask DisposeAsync()
    {
        api.Dispose();
        return ValueTask.CompletedTask;
    }
}

/// <summary>No run has that id (a 404 from the API).</summary>
public sealed class RunNotFoundException(string message) : KilnException(message);

/// <summary>The run has already finished, so it cannot be cancelled (a 409 from the API).</summary>
public sealed class RunFinishedException(string message) : KilnException(message);
