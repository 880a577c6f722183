namespace Kiln.Pipelines.State;

/// <summary>
/// Durable state of pipeline runs: runs, task states, attempts, outputs, logs, leases, the result
/// cache and scheduler cursors. One implementation per database; every one passes the same contract tests.
/// </summary>
public interface IPipelineStore : IAsyncDisposable
{
    /// <summary>Creates the tables if they do not exist.</summary>
    Task InitializeAsync(CancellationToken cancellationToken = default);

    /// <summary>Stores a new run with all its tasks pending, in one transaction.</summary>
    Task CreateRunAsync(RunRecord run, IReadOnlyList<TaskRecord> tasks, CancellationToken cancellationToken = default);

    Task<RunRecord?> GetRunAsync(string runId, CancellationToken cancellationToken = default);

    /// <summary>Runs newest first, optionally of one pipeline and/or in one state.</summary>
    Task<IReadOnlyList<RunRecord>> ListRunsAsync(string? pipeline = null, RunState? state = null, int limit = 50, CancellationToken cancellationToken = default);

    Task<IReadOnlyList<TaskRecord>> GetTasksAsync(string runId, CancellationToken cancellationToken = default);

    /// <summary>One task of a run (its state, latest attempt number, outputs and error), or null.</summary>
    async Task<TaskRecord?> GetTaskAsync(string runId, string task, CancellationToken cancellationToken = default) =>
        (await GetTasksAsync(runId, cancellationToken).ConfigureAwait(false)).FirstOrDefault(t => t.Task == task);

    Task<IReadOnlyList<AttemptRecord>> GetAttemptsAsync(string runId, string? task = null, CancellationToken cancellationToken = default);

    /// <summary>Log lines in the order written, after the id <paramref name="afterId"/>.</summary>
    Task<IReadOnlyList<LogRecord>> GetLogsAsync(string runId, string? task = null, long afterId = 0, int limit = 10_000, CancellationToken cancellationToken = default);

    Task SetRunStateAsync(string runId, RunState state, DateTimeOffset at, string? error = null, CancellationToken cancellationToken = default);

    /// <summary>Sets a task's state without an attempt (skipped, upstream_failed, cancelled, back to pending).</summary>
    Task SetTaskStateAsync(string runId, string task, TaskState state, DateTimeOffset at, string? error = null, CancellationToken cancellationToken = default);

    /// <summary>Records the start of an attempt and moves the task to running, in one transaction.</summary>
    Task StartAttemptAsync(string runId, string task, int attempt, DateTimeOffset at, string? owner, CancellationToken cancellationToken = default);

    /// <summary>
    /// Records an attempt handed to a worker (state <c>queued</c>, no owner yet) and moves the task to running, in one
    /// transaction; the worker that takes it claims it with <see cref="TryClaimAttemptAsync"/>.
    /// </summary>
    Task QueueAttemptAsync(string runId, string task, int attempt, DateTimeOffset at, CancellationToken cancellationToken = default);

    /// <summary>
    /// Claims a queued attempt for <paramref name="owner"/> (a conditional update from <c>queued</c> to <c>running</c>);
    /// false when it is not queued any more (another worker took it, or it ended).
    /// </summary>
    Task<bool> TryClaimAttemptAsync(string runId, string task, int attempt, string owner, DateTimeOffset at, CancellationToken cancellationToken = default);

    /// <summary>
    /// Ends attempt <paramref name="attempt"/>, still <c>running</c> under <paramref name="deadOwner"/>, as interrupted
    /// with <paramref name="error"/>, and starts attempt + 1 for <paramref name="owner"/>, in one transaction; false
    /// (nothing written) when the attempt is no longer running under that owner.
    /// </summary>
    Task<bool> TryTakeOverAttemptAsync(string runId, string task, int attempt, string deadOwner, string error, string owner, DateTimeOffset at,
        CancellationToken cancellationToken = default);

    /// <summary>Records the process group (<c>PGID@HOST</c>) an attempt's commands run in, so a survivor can be killed before a retry.</summary>
    Task SetAttemptProcessGroupAsync(string runId, string task, int attempt, string processGroup, CancellationToken cancellationToken = default);

    /// <summary>Records the end of an attempt and the task's resulting state and outputs, in one transaction.</summary>
    Task EndAttemptAsync(AttemptEnd end, CancellationToken cancellationToken = default);

    Task AppendLogsAsync(IReadOnlyList<LogLine> lines, CancellationToken cancellationToken = default);

    /// <summary>
    /// Takes the run's lease for <paramref name="owner"/> if it is free, expired, already ours, or held by
    /// <paramref name="deadOwner"/> (a process known to be gone). Returns false when another live owner holds it.
    /// </summary>
    Task<bool> TryAcquireLeaseAsync(string runId, string owner, DateTimeOffset now, DateTimeOffset expires, string? deadOwner = null, CancellationToken cancellationToken = default);

    /// <summary>Extends our lease; reports whether we still hold it and whether a cancel was requested.</summary>
    Task<LeaseStatus> RenewLeaseAsync(string runId, string owner, DateTimeOffset expires, CancellationToken cancellationToken = default);

    Task ReleaseLeaseAsync(string runId, string owner, CancellationToken cancellationToken = default);

    /// <summary>Asks whoever executes the run to cancel it (seen at its next heartbeat); false clears the request (resume).</summary>
    Task<bool> RequestCancelAsync(string runId, bool cancel = true, CancellationToken cancellationToken = default);

    Task<CacheEntry?> GetCacheAsync(string key, CancellationToken cancellationToken = default);

    Task PutCacheAsync(CacheEntry entry, CancellationToken cancellationToken = default);

    /// <summary>The last time the scheduler handled a schedule (null before the first time).</summary>
    Task<DateTimeOffset?> GetScheduleCursorAsync(string key, CancellationToken cancellationToken = default);

    Task SetScheduleCursorAsync(string key, DateTimeOffset at, CancellationToken cancellationToken = default);

    /// <summary>
    /// Records that an alert notification (its key: fingerprint and start time) was acted on; false when it
    /// already was, by this process or an earlier one.
    /// </summary>
    Task<bool> TryClaimAlertAsync(string key, string eventName, DateTimeOffset at, CancellationToken cancellationToken = default);

    /// <summary>Forgets a claimed alert (its runs could not start), so a re-delivery tries again.</summary>
    Task ReleaseAlertAsync(string key, CancellationToken cancellationToken = default);
}
