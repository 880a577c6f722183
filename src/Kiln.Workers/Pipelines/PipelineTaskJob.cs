using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using Hangfire;
using Kiln.Core;
using Kiln.Pipelines.Definition;
using Kiln.Pipelines.Execution;
using Kiln.Pipelines.State;
using Kiln.Pipelines.Tasks;

namespace Kiln.Workers.Pipelines;

/// <summary>One attempt of a pipeline task handed to a worker: the run, the task, the attempt and what the coordinator resolved.</summary>
public sealed class PipelineTaskArgs
{
    public string RunId { get; set; } = "";

    public string Task { get; set; } = "";

    /// <summary>The attempt the coordinator queued (state <c>queued</c> in the pipeline store).</summary>
    public int Attempt { get; set; }

    /// <summary>The task's config with its templates resolved by the coordinator, as JSON.</summary>
    public string Config { get; set; } = "{}";

    /// <summary>The coordinator's working directory: shell tasks run there when it exists on the worker (a shared volume).</summary>
    public string? WorkingDirectory { get; set; }

    /// <summary>The outputs of the task's upstream tasks, as the coordinator knows them; null (a job from an older coordinator): read from the store.</summary>
    public Dictionary<string, Dictionary<string, string>>? Upstream { get; set; }
}

/// <summary>The Hangfire job a worker runs for one attempt of a pipeline task (the <c>pipelines</c> queue).</summary>
/// <param name="worker">The worker's pipeline side; null in a process that is not a kiln worker serving the pipelines queue.</param>
public sealed class PipelineTaskJob(PipelineWorker? worker)
{
    /// <summary>A job without a pipeline store (what Hangfire's default activator makes): it refuses to run.</summary>
    public PipelineTaskJob()
        : this(null)
    {
    }

    /// <summary>
    /// Claims the attempt in the pipeline store, runs it and records its end there. Not retried by Hangfire: retries are
    /// the pipeline's (a new attempt and a new job, decided by the coordinator); a job run again after its worker died
    /// takes the interrupted attempt over, or returns without running when the attempt already ended.
    /// </summary>
    [AutomaticRetry(Attempts = 0, OnAttemptsExceeded = AttemptsExceededAction.Fail)]
    [Queue(KilnQueues.Pipelines)]
    public Task<string> RunAsync(PipelineTaskArgs args, CancellationToken cancellationToken) =>
        (worker ?? throw new KilnException("this process runs no pipeline tasks (start kiln worker with the pipelines queue)")).RunAttemptAsync(args, cancellationToken);
}

/// <summary>
/// The pipeline side of a worker: the pipeline store (the same database as the jobs), the task kinds and the host's
/// services. Every state change of an attempt is a conditional update in the store, so a job delivered twice (its
/// first worker killed) never runs a task that already succeeded.
/// </summary>
public sealed class PipelineWorker(IPipelineStore store, TaskKindRegistry kinds, IServiceProvider? services, string name, AttemptNotifier? notifier)
{
    private readonly ConcurrentDictionary<string, (RunRecord Run, PipelineDefinition Definition)> _runs = new(StringComparer.Ordinal);

    /// <summary>How often a running attempt looks for a cancel request on its run.</summary>
    public TimeSpan CancelCheckInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>The name recorded as the owner of the attempts this worker runs.</summary>
    public string Name => name;

    public IPipelineStore Store => store;

    internal async Task<string> RunAttemptAsync(PipelineTaskArgs args, CancellationToken stop)
    {
        var now = DateTimeOffset.UtcNow;
        int attempt;
        // The usual case in one round trip: the attempt is still queued and its run neither ended nor being cancelled.
        if (await store.TryClaimAttemptAsync(args.RunId, args.Task, args.Attempt, name, now, CancellationToken.None).ConfigureAwait(false))
        {
            attempt = args.Attempt;
        }
        else
        {
            var current = await store.GetRunAsync(args.RunId, CancellationToken.None).ConfigureAwait(false);
            if (current is null) return $"run {args.RunId} does not exist";
            if (current.State.IsTerminal()) return $"run {args.RunId} already {current.State.Name()}: nothing to do";
            var latest = (await store.GetAttemptsAsync(args.RunId, args.Task, CancellationToken.None).ConfigureAwait(false))
                .Where(a => a.Attempt >= args.Attempt).MaxBy(a => a.Attempt);
            if (latest is null) return $"run {args.RunId} task {args.Task} has no attempt {args.Attempt}";
            switch (latest.State)
            {
                case "queued":
                    // Not claimed although queued: the run is being cancelled (its coordinator records the attempt cancelled).
                    return $"attempt {latest.Attempt} not started: run {args.RunId} is being cancelled";
                case "running":
                    // Hangfire hands a job out again only once its worker stopped renewing it (killed, or the machine lost):
                    // that worker is gone. What it started must be gone too before the task runs again here.
                    var survivors = ProcessGroups.LocalGroup(latest.ProcessGroup) is { } pgid
                        ? "; " + await ProcessGroups.KillSurvivorsAsync(pgid, args.RunId, args.Task, TimeSpan.FromSeconds(10)).ConfigureAwait(false)
                        : latest.ProcessGroup is { } other ? $" (its process group {other} is on another host)" : "";
                    var error = $"interrupted: the worker running it ({latest.Owner ?? "unknown"}) stopped{survivors}; taken over by {name}";
                    if (!await store.TryTakeOverAttemptAsync(args.RunId, args.Task, latest.Attempt, latest.Owner ?? "", error, name, now, CancellationToken.None).ConfigureAwait(false))
                        return $"attempt {latest.Attempt} was taken over by another worker";
                    attempt = latest.Attempt + 1;
                    break;
                case "interrupted":
                    // Its worker was stopped (SIGTERM) and handed the job back: the next attempt runs here.
                    attempt = latest.Attempt + 1;
                    await store.StartAttemptAsync(args.RunId, args.Task, attempt, now, name, CancellationToken.None).ConfigureAwait(false);
                    break;
                default:
                    return $"attempt {latest.Attempt} already {latest.State}: not run again";
            }
            // The coordinator learns of the new attempt number now, not only at its end.
            await NotifyAsync(args.RunId).ConfigureAwait(false);
        }

        AttemptOutcome outcome;
        var cancelRequested = false;
        try
        {
            var (run, definition) = await RunOfAsync(args.RunId).ConfigureAwait(false);
            var task = definition.Tasks.FirstOrDefault(t => t.Name == args.Task)
                ?? throw new KilnException($"pipeline '{definition.Name}' has no task '{args.Task}'");
            if (!kinds.TryGet(task.Kind, out var kind)) throw new KilnException($"task '{task.Name}': this worker has no task kind '{task.Kind}'");
            var upstream = new Dictionary<string, IReadOnlyDictionary<string, string>>(StringComparer.Ordinal);
            if (args.Upstream is { } sent)
            {
                foreach (var d in task.DependsOn) upstream[d] = sent.TryGetValue(d, out var o) ? o : new Dictionary<string, string>();
            }
            else if (task.DependsOn.Count > 0)
            {
                var records = await store.GetTasksAsync(args.RunId, CancellationToken.None).ConfigureAwait(false);
                foreach (var d in task.DependsOn) upstream[d] = records.FirstOrDefault(r => r.Task == d)?.Outputs ?? new Dictionary<string, string>();
            }
            var config = JsonNode.Parse(args.Config) as JsonObject ?? throw new KilnException($"task '{task.Name}': its job carries no config object");
            using var cancel = CancellationTokenSource.CreateLinkedTokenSource(stop);
            using var watchStop = new CancellationTokenSource();
            var watcher = WatchCancelAsync(args.RunId, cancel, () => cancelRequested = true, watchStop.Token);
            try
            {
                outcome = await AttemptRunner.RunAsync(new AttemptRun
                {
                    Store = store,
                    Kind = kind,
                    Run = run,
                    PipelineName = definition.Name,
                    Task = task,
                    Attempt = attempt,
                    Config = config,
                    Upstream = upstream,
                    WorkingDirectory = args.WorkingDirectory is { } wd && Directory.Exists(wd) ? wd : Environment.CurrentDirectory,
                    Services = services,
                }, cancel.Token).ConfigureAwait(false);
            }
            finally
            {
                await watchStop.CancelAsync().ConfigureAwait(false);
                await watcher.ConfigureAwait(false);
            }
        }
        catch (KilnException e)
        {
            outcome = new AttemptOutcome(TaskState.Failed, attempt, null, e.Message);
        }

        var end = new AttemptEnd
        {
            RunId = args.RunId,
            Task = args.Task,
            Attempt = attempt,
            AttemptState = "failed",
            TaskState = TaskState.Retrying, // the coordinator decides between a retry and failing the task
            At = DateTimeOffset.UtcNow,
            Error = outcome.Error,
        };
        if (outcome.State == TaskState.Cancelled && !cancelRequested)
        {
            // Hangfire's token fired: the job was deleted (the run's cancel, or the dashboard) or the worker is stopping.
            var current = await store.GetRunAsync(args.RunId, CancellationToken.None).ConfigureAwait(false);
            cancelRequested = current is null || current.CancelRequested || current.State.IsTerminal();
        }
        if (outcome.State == TaskState.Cancelled && !cancelRequested && stop.IsCancellationRequested)
        {
            // This worker is stopping (SIGTERM past its shutdown timeout): the job goes back to the queue and the next
            // worker runs the task as a new attempt.
            await store.EndAttemptAsync(end with
            {
                AttemptState = "interrupted", TaskState = TaskState.Running,
                Error = $"interrupted: the worker running it ({name}) stopped; its job went back to the queue",
            }, CancellationToken.None).ConfigureAwait(false);
            stop.ThrowIfCancellationRequested();
        }
        end = outcome.State switch
        {
            TaskState.Succeeded => end with { AttemptState = "succeeded", TaskState = TaskState.Succeeded, Outputs = outcome.Outputs },
            TaskState.Skipped => end with { AttemptState = "skipped", TaskState = TaskState.Skipped },
            TaskState.Cancelled => end with { AttemptState = "cancelled", TaskState = TaskState.Cancelled },
            _ => end,
        };
        // The store notifies the coordinator in the same round trip as it records the end.
        await store.EndAttemptAsync(end, CancellationToken.None).ConfigureAwait(false);
        return $"attempt {attempt} of {args.Task} {end.AttemptState} on {name}";
    }

    /// <summary>
    /// The run and its definition, read and parsed once per run on this worker: what a worker needs of a run (its id,
    /// parameters and YAML) does not change while it runs; its state and cancel request are read by the claim and the watcher.
    /// </summary>
    private async Task<(RunRecord Run, PipelineDefinition Definition)> RunOfAsync(string runId)
    {
        if (_runs.TryGetValue(runId, out var known)) return known;
        var run = await store.GetRunAsync(runId, CancellationToken.None).ConfigureAwait(false)
            ?? throw new KilnException($"run {runId} does not exist");
        if (run.DefinitionText is null)
            throw new KilnException($"run {run.RunId} of '{run.Pipeline}' was defined in C#; its tasks cannot run on a worker");
        var definition = PipelineLoader.Load(run.DefinitionText, kinds, run.SourcePath);
        if (_runs.Count > 256) _runs.Clear();
        _runs[runId] = (run, definition);
        return (run, definition);
    }

    /// <summary>Cancels the attempt when its run is asked to cancel, or has ended (its coordinator gave up on it).</summary>
    private async Task WatchCancelAsync(string runId, CancellationTokenSource cancel, Action requested, CancellationToken stop)
    {
        try
        {
            while (true)
            {
                await Task.Delay(CancelCheckInterval, stop).ConfigureAwait(false);
                try
                {
                    var run = await store.GetRunAsync(runId, stop).ConfigureAwait(false);
                    if (run is null || run.CancelRequested || run.State.IsTerminal())
                    {
                        requested();
                        await cancel.CancelAsync().ConfigureAwait(false);
                        return;
                    }
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    // The store is unreachable for a moment: look again at the next tick.
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private async Task NotifyAsync(string runId)
    {
        if (notifier is not null) await notifier.NotifyAsync(runId).ConfigureAwait(false);
    }
}
