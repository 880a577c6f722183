using System.Text.Json.Nodes;
using Kiln.Pipelines.Definition;
using Kiln.Pipelines.State;
using Kiln.Pipelines.Tasks;

namespace Kiln.Pipelines.Execution;

/// <summary>Where the attempts of a run's tasks run: in the executing process, or as jobs on workers.</summary>
public interface IAttemptDispatcher
{
    /// <summary>
    /// Runs one attempt and returns how it ended. <paramref name="runCancelled"/> is signalled when the run is
    /// cancelled; the executor decides retries, caching and the task's state from the outcome.
    /// </summary>
    Task<AttemptOutcome> RunAsync(AttemptDispatch attempt, CancellationToken runCancelled);
}

/// <summary>One attempt the executor decided to run: the task, its attempt number and its resolved config.</summary>
public sealed class AttemptDispatch
{
    public required RunExecution Execution { get; init; }
    public required TaskDefinition Task { get; init; }
    public required int Attempt { get; init; }

    /// <summary>The task's config with every template resolved.</summary>
    public required JsonObject Config { get; init; }

    public required IReadOnlyDictionary<string, IReadOnlyDictionary<string, string>> Upstream { get; init; }

    /// <summary>The task's cache key when it is cached (the executor stores the outputs under it).</summary>
    public string? CacheKey { get; init; }

    /// <summary>Tells the executor the attempt started (progress display).</summary>
    public required Action OnStarted { get; init; }
}

/// <summary>
/// How an attempt ended: <see cref="State"/> is succeeded, skipped, cancelled or failed; <see cref="Attempt"/> the
/// attempt that ended (later than the one dispatched when a worker took over an interrupted one);
/// <see cref="Recorded"/> true when the end is already in the store (a worker wrote it).
/// </summary>
public sealed record AttemptOutcome(TaskState State, int Attempt, IReadOnlyDictionary<string, string>? Outputs, string? Error, bool Recorded = false);

/// <summary>Everything one attempt of a task needs to run in this process.</summary>
public sealed class AttemptRun
{
    public required IPipelineStore Store { get; init; }
    public required ITaskKind Kind { get; init; }
    public required RunRecord Run { get; init; }
    public required string PipelineName { get; init; }
    public required TaskDefinition Task { get; init; }
    public required int Attempt { get; init; }
    public required JsonObject Config { get; init; }
    public required IReadOnlyDictionary<string, IReadOnlyDictionary<string, string>> Upstream { get; init; }
    public string WorkingDirectory { get; init; } = Environment.CurrentDirectory;
    public IServiceProvider? Services { get; init; }
    public TimeProvider Time { get; init; } = TimeProvider.System;
    public TimeSpan LogFlushInterval { get; init; } = TimeSpan.FromSeconds(1);
}

/// <summary>
/// Runs one attempt of a task in this process: the kind with its context, the task's timeout, its log lines written
/// to the store as they come (at least every <see cref="AttemptRun.LogFlushInterval"/>), its process group recorded.
/// It writes neither the attempt's start nor its end: the caller does (the local executor, or a worker's job).
/// </summary>
public static class AttemptRunner
{
    /// <param name="cancelled">Signalled when the attempt must stop (the run is cancelled, the worker stops).</param>
    public static async Task<AttemptOutcome> RunAsync(AttemptRun a, CancellationToken cancelled)
    {
        var t = a.Task;
        var log = new TaskLogBuffer(a.Run.RunId, t.Name, a.Attempt, a.Time);
        using var attemptCts = CancellationTokenSource.CreateLinkedTokenSource(cancelled);
        if (t.Timeout is { } timeout) attemptCts.CancelAfter(timeout);
        using var flushStop = new CancellationTokenSource();
        var flusher = FlushLoopAsync(a, log, flushStop.Token);
        var context = new TaskContext
        {
            RunId = a.Run.RunId,
            PipelineName = a.PipelineName,
            Task = t,
            Attempt = a.Attempt,
            Config = a.Config,
            Parameters = a.Run.Parameters,
            Upstream = a.Upstream,
            Log = log,
            CancellationToken = attemptCts.Token,
            WorkingDirectory = a.WorkingDirectory,
            Services = a.Services,
            ProcessGroupStarted = pgid => a.Store.SetAttemptProcessGroupAsync(a.Run.RunId, t.Name, a.Attempt, ProcessGroups.Describe(pgid), CancellationToken.None),
        };
        AttemptOutcome outcome;
        try
        {
            var result = await a.Kind.ExecuteAsync(context).WaitAsync(attemptCts.Token).ConfigureAwait(false);
            outcome = new AttemptOutcome(TaskState.Succeeded, a.Attempt, result, null);
        }
        catch (TaskSkippedException e)
        {
            log.Info($"skipped: {e.Message}");
            outcome = new AttemptOutcome(TaskState.Skipped, a.Attempt, null, e.Message);
        }
        catch (OperationCanceledException) when (cancelled.IsCancellationRequested)
        {
            log.Error("cancelled");
            outcome = new AttemptOutcome(TaskState.Cancelled, a.Attempt, null, "cancelled");
        }
        catch (Exception e)
        {
            var error = attemptCts.IsCancellationRequested && t.Timeout is { } to
                ? $"timed out after {Duration(to)}"
                : e is TaskFailedException ? e.Message : $"{e.GetType().Name}: {e.Message}";
            log.Error(error);
            outcome = new AttemptOutcome(TaskState.Failed, a.Attempt, null, error);
        }
        finally
        {
            await flushStop.CancelAsync().ConfigureAwait(false);
            await flusher.ConfigureAwait(false);
        }
        await FlushAsync(a, log).ConfigureAwait(false);
        return outcome;
    }

    private static async Task FlushAsync(AttemptRun a, TaskLogBuffer log)
    {
        var lines = log.Drain();
        if (lines.Count > 0) await a.Store.AppendLogsAsync(lines, CancellationToken.None).ConfigureAwait(false);
    }

    private static async Task FlushLoopAsync(AttemptRun a, TaskLogBuffer log, CancellationToken stop)
    {
        try
        {
            while (true)
            {
                await Task.Delay(a.LogFlushInterval, stop).ConfigureAwait(false);
                await FlushAsync(a, log).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    internal static string Duration(TimeSpan t) =>
        t.TotalSeconds < 1 ? $"{t.TotalMilliseconds:0}ms"
        : t.TotalMinutes < 1 ? $"{t.TotalSeconds:0.#}s"
        : t.TotalHours < 1 ? $"{t.TotalMinutes:0.#}m" : $"{t.TotalHours:0.#}h";
}

/// <summary>Runs attempts in the executing process (the embedded default).</summary>
public sealed class InProcessDispatcher : IAttemptDispatcher
{
    public static InProcessDispatcher Instance { get; } = new();

    public async Task<AttemptOutcome> RunAsync(AttemptDispatch attempt, CancellationToken runCancelled)
    {
        var x = attempt.Execution;
        await x.Store.StartAttemptAsync(x.Run.RunId, attempt.Task.Name, attempt.Attempt, x.Time.GetUtcNow(), x.Owner, CancellationToken.None).ConfigureAwait(false);
        attempt.OnStarted();
        x.Kinds.TryGet(attempt.Task.Kind, out var kind);
        return await AttemptRunner.RunAsync(new AttemptRun
        {
            Store = x.Store,
            Kind = kind!,
            Run = x.Run,
            PipelineName = x.Definition.Name,
            Task = attempt.Task,
            Attempt = attempt.Attempt,
            Config = attempt.Config,
            Upstream = attempt.Upstream,
            WorkingDirectory = x.WorkingDirectory,
            Services = x.Services,
            Time = x.Time,
            LogFlushInterval = x.LogFlushInterval,
        }, runCancelled).ConfigureAwait(false);
    }
}
