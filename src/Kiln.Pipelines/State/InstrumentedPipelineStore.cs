using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Kiln.Pipelines.State;

/// <summary>
/// The pipeline engine's instruments on a host's meter (kiln server's /metrics): runs created by trigger kind,
/// runs finished by state, task attempts by outcome and their duration. Labels are closed sets (trigger kind,
/// run state, attempt outcome): never run ids, task names or pipeline names, which users choose.
/// </summary>
public sealed class PipelineMetrics
{
    public PipelineMetrics(Meter meter)
    {
        RunsCreated = meter.CreateCounter<long>("kiln.pipeline.runs.created", null, "Pipeline runs created, by trigger kind (api, schedule, event, cli, resume).");
        RunsFinished = meter.CreateCounter<long>("kiln.pipeline.runs.finished", null, "Pipeline runs that reached a final state, by state (succeeded, failed, cancelled).");
        Attempts = meter.CreateCounter<long>("kiln.pipeline.task.attempts", null, "Task attempts ended, by outcome (succeeded, failed, cancelled, interrupted).");
        AttemptDuration = meter.CreateHistogram<double>("kiln.pipeline.task.attempt.duration", "s", "Time from an attempt's start to its end, by outcome.");
    }

    public Counter<long> RunsCreated { get; }

    public Counter<long> RunsFinished { get; }

    public Counter<long> Attempts { get; }

    public Histogram<double> AttemptDuration { get; }

    /// <summary>The kind of a trigger ("event:drift" → "event"), so the label stays a closed set.</summary>
    public static string TriggerKind(string trigger)
    {
        var colon = trigger.IndexOf(':', StringComparison.Ordinal);
        var kind = colon < 0 ? trigger : trigger[..colon];
        return kind is "api" or "schedule" or "event" or "cli" or "resume" or "manual" ? kind : "other";
    }
}

/// <summary>A pipeline store that records <see cref="PipelineMetrics"/> as the engine writes state through it.</summary>
public sealed class InstrumentedPipelineStore(IPipelineStore inner, PipelineMetrics metrics) : IPipelineStore
{
    private readonly ConcurrentDictionary<(string Run, string Task, int Attempt), long> _started = new();

    public IPipelineStore Inner => inner;

    public Task InitializeAsync(CancellationToken cancellationToken = default) => inner.InitializeAsync(cancellationToken);

    public async Task CreateRunAsync(RunRecord run, IReadOnlyList<TaskRecord> tasks, CancellationToken cancellationToken = default)
    {
        await inner.CreateRunAsync(run, tasks, cancellationToken).ConfigureAwait(false);
        metrics.RunsCreated.Add(1, new KeyValuePair<string, object?>("trigger", PipelineMetrics.TriggerKind(run.Trigger)));
    }

    public Task<RunRecord?> GetRunAsync(string runId, CancellationToken cancellationToken = default) => inner.GetRunAsync(runId, cancellationToken);

    public Task<IReadOnlyList<RunRecord>> ListRunsAsync(string? pipeline = null, RunState? state = null, int limit = 50, CancellationToken cancellationToken = default) =>
        inner.ListRunsAsync(pipeline, state, limit, cancellationToken);

    public Task<IReadOnlyList<TaskRecord>> GetTasksAsync(string runId, CancellationToken cancellationToken = default) => inner.GetTasksAsync(runId, cancellationToken);

    public Task<TaskRecord?> GetTaskAsync(string runId, string task, CancellationToken cancellationToken = default) => inner.GetTaskAsync(runId, task, cancellationToken);

    public Task<IReadOnlyList<AttemptRecord>> GetAttemptsAsync(string runId, string? task = null, CancellationToken cancellationToken = default) =>
        inner.GetAttemptsAsync(runId, task, cancellationToken);

    public Task<IReadOnlyList<LogRecord>> GetLogsAsync(string runId, string? task = null, long afterId = 0, int limit = 10_000, CancellationToken cancellationToken = default) =>
        inner.GetLogsAsync(runId, task, afterId, limit, cancellationToken);

    public async Task SetRunStateAsync(string runId, RunState state, DateTimeOffset at, string? error = null, CancellationToken cancellationToken = default)
    {
        await inner.SetRunStateAsync(runId, state, at, error, cancellationToken).ConfigureAwait(false);
        if (state.IsTerminal()) metrics.RunsFinished.Add(1, new KeyValuePair<string, object?>("state", state.Name()));
    }

    public Task SetTaskStateAsync(string runId, string task, TaskState state, DateTimeOffset at, string? error = null, CancellationToken cancellationToken = default) =>
        inner.SetTaskStateAsync(runId, task, state, at, error, cancellationToken);

    public async Task StartAttemptAsync(string runId, string task, int attempt, DateTimeOffset at, string? owner, CancellationToken cancellationToken = default)
    {
        await inner.StartAttemptAsync(runId, task, attempt, at, owner, cancellationToken).ConfigureAwait(false);
        _started[(runId, task, attempt)] = Stopwatch.GetTimestamp();
    }

    public Task QueueAttemptAsync(string runId, string task, int attempt, DateTimeOffset at, CancellationToken cancellationToken = default) =>
        inner.QueueAttemptAsync(runId, task, attempt, at, cancellationToken);

    public async Task<bool> TryClaimAttemptAsync(string runId, string task, int attempt, string owner, DateTimeOffset at, CancellationToken cancellationToken = default)
    {
        var claimed = await inner.TryClaimAttemptAsync(runId, task, attempt, owner, at, cancellationToken).ConfigureAwait(false);
        if (claimed) _started[(runId, task, attempt)] = Stopwatch.GetTimestamp();
        return claimed;
    }

    public async Task<bool> TryTakeOverAttemptAsync(string runId, string task, int attempt, string deadOwner, string error, string owner, DateTimeOffset at,
        CancellationToken cancellationToken = default)
    {
        var taken = await inner.TryTakeOverAttemptAsync(runId, task, attempt, deadOwner, error, owner, at, cancellationToken).ConfigureAwait(false);
        if (taken)
        {
            metrics.Attempts.Add(1, new KeyValuePair<string, object?>("outcome", "interrupted"));
            _started.TryRemove((runId, task, attempt), out _);
            _started[(runId, task, attempt + 1)] = Stopwatch.GetTimestamp();
        }
        return taken;
    }

    public Task SetAttemptProcessGroupAsync(string runId, string task, int attempt, string processGroup, CancellationToken cancellationToken = default) =>
        inner.SetAttemptProcessGroupAsync(runId, task, attempt, processGroup, cancellationToken);

    public async Task EndAttemptAsync(AttemptEnd end, CancellationToken cancellationToken = default)
    {
        await inner.EndAttemptAsync(end, cancellationToken).ConfigureAwait(false);
        var outcome = end.AttemptState is "succeeded" or "failed" or "cancelled" or "interrupted" ? end.AttemptState : "other";
        var tag = new KeyValuePair<string, object?>("outcome", outcome);
        metrics.Attempts.Add(1, tag);
        if (_started.TryRemove((end.RunId, end.Task, end.Attempt), out var t0)) metrics.AttemptDuration.Record(Stopwatch.GetElapsedTime(t0).TotalSeconds, tag);
    }

    public Task AppendLogsAsync(IReadOnlyList<LogLine> lines, CancellationToken cancellationToken = default) => inner.AppendLogsAsync(lines, cancellationToken);

    public Task<bool> TryAcquireLeaseAsync(string runId, string owner, DateTimeOffset now, DateTimeOffset expires, string? deadOwner = null, CancellationToken cancellationToken = default) =>
        inner.TryAcquireLeaseAsync(runId, owner, now, expires, deadOwner, cancellationToken);

    public Task<LeaseStatus> RenewLeaseAsync(string runId, string owner, DateTimeOffset expires, CancellationToken cancellationToken = default) =>
        inner.RenewLeaseAsync(runId, owner, expires, cancellationToken);

    public Task ReleaseLeaseAsync(string runId, string owner, CancellationToken cancellationToken = default) => inner.ReleaseLeaseAsync(runId, owner, cancellationToken);

    public Task<bool> RequestCancelAsync(string runId, bool cancel = true, CancellationToken cancellationToken = default) => inner.RequestCancelAsync(runId, cancel, cancellationToken);

    public Task<CacheEntry?> GetCacheAsync(string key, CancellationToken cancellationToken = default) => inner.GetCacheAsync(key, cancellationToken);

    public Task PutCacheAsync(CacheEntry entry, CancellationToken cancellationToken = default) => inner.PutCacheAsync(entry, cancellationToken);

    public Task<DateTimeOffset?> GetScheduleCursorAsync(string key, CancellationToken cancellationToken = default) => inner.GetScheduleCursorAsync(key, cancellationToken);

    public Task SetScheduleCursorAsync(string key, DateTimeOffset at, CancellationToken cancellationToken = default) => inner.SetScheduleCursorAsync(key, at, cancellationToken);

    public Task<bool> TryClaimAlertAsync(string key, string eventName, DateTimeOffset at, CancellationToken cancellationToken = default) =>
        inner.TryClaimAlertAsync(key, eventName, at, cancellationToken);

    public Task ReleaseAlertAsync(string key, CancellationToken cancellationToken = default) => inner.ReleaseAlertAsync(key, cancellationToken);

    public ValueTask DisposeAsync() => inner.DisposeAsync();
}
