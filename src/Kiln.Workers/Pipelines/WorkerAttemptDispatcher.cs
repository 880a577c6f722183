using Hangfire;
using Hangfire.Common;
using Hangfire.States;
using Kiln.Core;
using Kiln.Pipelines.Execution;
using Kiln.Pipelines.State;
using Kiln.Storage;

namespace Kiln.Workers.Pipelines;

/// <summary>
/// Runs a pipeline's attempts on workers: each attempt is recorded <c>queued</c> in the pipeline store and enqueued as a
/// Hangfire job on the <c>pipelines</c> queue; the worker that takes it claims it, runs it and records its end, which
/// this dispatcher waits for (woken by the workers' notifications, polling once a second besides). The DAG, retries and
/// caching stay the engine's, in this process.
/// </summary>
public sealed class WorkerAttemptDispatcher(JobStorage storage, AttemptSignals? signals) : IAttemptDispatcher
{
    private readonly BackgroundJobClient _client = new(storage);

    /// <summary>How long a cancelled attempt's worker has to record its end before the coordinator records it.</summary>
    public TimeSpan CancelWait { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>How often the store is read without a notification (and the job's state checked).</summary>
    public TimeSpan PollInterval { get; init; } = TimeSpan.FromSeconds(1);

    public async Task<AttemptOutcome> RunAsync(AttemptDispatch attempt, CancellationToken runCancelled)
    {
        var x = attempt.Execution;
        var runId = x.Run.RunId;
        var task = attempt.Task.Name;
        await x.Store.QueueAttemptAsync(runId, task, attempt.Attempt, x.Time.GetUtcNow(), CancellationToken.None).ConfigureAwait(false);
        attempt.OnStarted();
        var args = new PipelineTaskArgs
        {
            RunId = runId,
            Task = task,
            Attempt = attempt.Attempt,
            Config = attempt.Config.ToJsonString(),
            WorkingDirectory = x.WorkingDirectory,
            // The worker runs with the outputs the coordinator resolved the templates from, without reading them again.
            Upstream = attempt.Upstream.ToDictionary(kv => kv.Key, kv => kv.Value.ToDictionary(o => o.Key, o => o.Value, StringComparer.Ordinal), StringComparer.Ordinal),
        };
        var client = _client;
        var jobId = client.Create(Job.FromExpression<PipelineTaskJob>(j => j.RunAsync(args, CancellationToken.None)), new EnqueuedState(KilnQueues.Pipelines));

        var cancelled = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var registration = runCancelled.Register(() => cancelled.TrySetResult());
        DateTime? cancelDeadline = null;
        var lastJobCheck = DateTime.UtcNow;
        var latestNumber = attempt.Attempt;
        while (true)
        {
            var signal = signals?.Next ?? Task.Delay(Timeout.Infinite, CancellationToken.None);
            // One read tells whether the attempt ended: the worker records the attempt's end and the task's state, latest
            // attempt number and outputs together (a failed attempt leaves the task retrying until this process decides).
            var record = await x.Store.GetTaskAsync(runId, task, CancellationToken.None).ConfigureAwait(false);
            if (record is not null && record.Attempts >= attempt.Attempt && Ended(record.State) is { } ended)
                return new AttemptOutcome(ended, record.Attempts, ended == TaskState.Succeeded ? record.Outputs ?? new Dictionary<string, string>() : null, record.Error, Recorded: true);
            latestNumber = Math.Max(latestNumber, record?.Attempts ?? 0);

            if (runCancelled.IsCancellationRequested)
            {
                if (cancelDeadline is null)
                {
                    // The worker's attempt sees the request within a second and stops; a job not yet taken is deleted.
                    cancelDeadline = DateTime.UtcNow + CancelWait;
                    await x.Store.RequestCancelAsync(runId, true, CancellationToken.None).ConfigureAwait(false);
                    client.Delete(jobId);
                }
                var latest = (await x.Store.GetAttemptsAsync(runId, task, CancellationToken.None).ConfigureAwait(false))
                    .Where(a => a.Attempt >= attempt.Attempt).MaxBy(a => a.Attempt);
                if (latest is null || latest.State == "queued" || DateTime.UtcNow > cancelDeadline)
                    return new AttemptOutcome(TaskState.Cancelled, latestNumber, null, "cancelled");
            }
            else if (DateTime.UtcNow - lastJobCheck >= PollInterval)
            {
                lastJobCheck = DateTime.UtcNow;
                if (JobFailure(jobId) is { } failure) return new AttemptOutcome(TaskState.Failed, latestNumber, null, failure);
            }
            await Task.WhenAny(signal, cancelled.Task, Task.Delay(cancelDeadline is null ? PollInterval : TimeSpan.FromMilliseconds(200), CancellationToken.None)).ConfigureAwait(false);
        }
    }

    /// <summary>The outcome a task's state shows once a worker recorded the end of its attempt; null while it runs (or is queued, or was handed back).</summary>
    private static TaskState? Ended(TaskState state) => state switch
    {
        TaskState.Succeeded => TaskState.Succeeded,
        TaskState.Skipped => TaskState.Skipped,
        TaskState.Cancelled => TaskState.Cancelled,
        TaskState.Retrying or TaskState.Failed => TaskState.Failed,
        _ => null,
    };

    /// <summary>Why the attempt's job ended without the worker recording the attempt's end, or null while it may still.</summary>
    private string? JobFailure(string jobId)
    {
        using var connection = storage.GetConnection();
        var state = connection.GetStateData(jobId);
        return state?.Name switch
        {
            "Failed" => $"its job {jobId} failed on the worker: {(state.Data.TryGetValue("ExceptionMessage", out var m) ? m : state.Reason ?? "no message")}",
            "Deleted" => $"its job {jobId} was deleted (from the dashboard?)",
            _ => null,
        };
    }
}

/// <summary>Runs a pipeline's tasks on workers: the engine's executor and what it holds open.</summary>
public sealed class DistributedPipelines : IAsyncDisposable
{
    private readonly AttemptSignals _signals;

    private DistributedPipelines(JobStorage storage, AttemptSignals signals)
    {
        Storage = storage;
        _signals = signals;
        Executor = new DagExecutor(new WorkerAttemptDispatcher(storage, signals));
    }

    /// <summary>The executor to give the pipeline engine.</summary>
    public IExecutor Executor { get; }

    public JobStorage Storage { get; }

    /// <summary>
    /// Opens the job storage on <paramref name="location"/> (a PostgreSQL database of a Kiln this build can use, else one
    /// line naming <paramref name="option"/>) and starts listening for the workers' notifications.
    /// </summary>
    public static async Task<DistributedPipelines> OpenAsync(string location, string option, CancellationToken ct)
    {
        var storage = await WorkerStorage.OpenAsync(location, null, ct, option).ConfigureAwait(false);
        var cs = StorageLocation.Parse(location, option).PostgresConnectionString
            ?? throw new KilnException($"{option} {StorageLocation.Redact(location)}: expected a postgresql:// URI");
        return new DistributedPipelines(storage, new AttemptSignals(cs));
    }

    /// <summary>How many live workers serve the pipelines queue (a run waits while there are none).</summary>
    public int Workers() => Storage.GetMonitoringApi().Servers().Count(s => s.Queues.Contains(KilnQueues.Pipelines));

    public ValueTask DisposeAsync() => _signals.DisposeAsync();
}
