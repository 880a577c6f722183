using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using Kiln.Core;
using Kiln.Pipelines.Definition;
using Kiln.Pipelines.State;
using Kiln.Pipelines.Tasks;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Kiln.Pipelines.Execution;

/// <summary>Settings of a <see cref="PipelineEngine"/>.</summary>
public sealed class PipelineEngineOptions
{
    /// <summary>How long a run's lease lasts without a heartbeat; after that another process may take the run over.</summary>
    public TimeSpan LeaseDuration { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How often the lease is renewed and cancel requests are looked for.</summary>
    public TimeSpan HeartbeatInterval { get; set; } = TimeSpan.FromSeconds(2);

    public TimeSpan LogFlushInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>The directory shell tasks run in.</summary>
    public string WorkingDirectory { get; set; } = Environment.CurrentDirectory;

    /// <summary>Handed to task kinds through <see cref="TaskContext.Services"/>.</summary>
    public IServiceProvider? Services { get; set; }
}

/// <summary>
/// Starts, executes, resumes and cancels pipeline runs. A run is executed under a lease in the
/// store (owner <c>pid@host/instance</c>, renewed by a heartbeat) so that a restarted process can
/// tell a run whose process died from one still in progress.
/// </summary>
public sealed partial class PipelineEngine : IAsyncDisposable
{
    private readonly IPipelineStore _store;
    private readonly TaskKindRegistry _kinds;
    private readonly IExecutor _executor;
    private readonly PipelineEngineOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<string, (Task<RunState> Task, CancellationTokenSource Cts)> _background = new();
    private readonly ConcurrentDictionary<string, CancellationTokenSource> _local = new();
    private readonly CancellationTokenSource _shutdown = new();
    private int _disposed;

    public PipelineEngine(IPipelineStore store, TaskKindRegistry kinds, PipelineEngineOptions? options = null,
        IExecutor? executor = null, TimeProvider? time = null, ILogger<PipelineEngine>? logger = null)
    {
        _store = store;
        _kinds = kinds;
        _options = options ?? new PipelineEngineOptions();
        _executor = executor ?? new LocalExecutor();
        _time = time ?? TimeProvider.System;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        Owner = $"{Environment.ProcessId}@{Environment.MachineName}/{Guid.NewGuid().ToString("N")[..8]}";
    }

    public IPipelineStore Store => _store;

    public TaskKindRegistry Kinds => _kinds;

    /// <summary>The pipelines this engine knows by name (HTTP starts, event triggers, the scheduler).</summary>
    public PipelineCatalog Catalog { get; } = new();

    /// <summary>This engine's lease owner name.</summary>
    public string Owner { get; }

    /// <summary>Raised on every task state change of runs this engine executes.</summary>
    public event Action<TaskStateChange>? TaskStateChanged;

    /// <summary>Stores a new run (all tasks pending) without executing it.</summary>
    public async Task<RunRecord> CreateRunAsync(PipelineDefinition definition, IReadOnlyDictionary<string, string>? parameters = null,
        string trigger = "manual", DateTimeOffset? scheduledFor = null, CancellationToken cancellationToken = default)
    {
        var resolved = definition.ResolveParameters(parameters);
        var now = _time.GetUtcNow();
        var run = new RunRecord
        {
            RunId = NewRunId(now),
            Pipeline = definition.Name,
            State = RunState.Pending,
            Trigger = trigger,
            Parameters = resolved,
            DefinitionText = definition.SourceText,
            SourcePath = definition.SourcePath,
            CreatedAt = now,
            ScheduledFor = scheduledFor,
        };
        var tasks = definition.Tasks.Select(t => new TaskRecord
        {
            RunId = run.RunId,
            Task = t.Name,
            Kind = t.Kind,
            State = TaskState.Pending,
            DependsOn = t.DependsOn,
        }).ToList();
        await _store.CreateRunAsync(run, tasks, cancellationToken).ConfigureAwait(false);
        Log.RunCreated(_logger, run.RunId, definition.Name, trigger);
        return run;
    }

    /// <summary>Creates a run and executes it to the end in this call.</summary>
    public async Task<(RunRecord Run, RunState State)> RunAsync(PipelineDefinition definition, IReadOnlyDictionary<string, string>? parameters = null,
        string trigger = "manual", CancellationToken cancellationToken = default)
    {
        var run = await CreateRunAsync(definition, parameters, trigger, null, cancellationToken).ConfigureAwait(false);
        var state = await ExecuteAsync(run.RunId, definition, cancellationToken).ConfigureAwait(false);
        return (run, state);
    }

    /// <summary>Creates a run and executes it in the background; returns once it is stored.</summary>
    public async Task<RunRecord> StartAsync(PipelineDefinition definition, IReadOnlyDictionary<string, string>? parameters = null,
        string trigger = "manual", DateTimeOffset? scheduledFor = null, CancellationToken cancellationToken = default)
    {
        var run = await CreateRunAsync(definition, parameters, trigger, scheduledFor, cancellationToken).ConfigureAwait(false);
        StartBackground(run.RunId, ct => ExecuteAsync(run.RunId, definition, ct));
        return run;
    }

    /// <summary>Waits for a run this engine executes in the background (returns at once for others).</summary>
    public async Task<RunState?> WaitAsync(string runId, CancellationToken cancellationToken = default)
    {
        if (!_background.TryGetValue(runId, out var entry)) return (await _store.GetRunAsync(runId, cancellationToken).ConfigureAwait(false))?.State;
        return await entry.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    private void StartBackground(string runId, Func<CancellationToken, Task<RunState>> body)
    {
        var cts = CancellationTokenSource.CreateLinkedTokenSource(_shutdown.Token);
        var task = Task.Run(async () =>
        {
            try
            {
                return await body(cts.Token).ConfigureAwait(false);
            }
            catch (Exception e)
            {
                Log.BackgroundRunFailed(_logger, runId, e);
                return RunState.Failed;
            }
        }, CancellationToken.None);
        _background[runId] = (task, cts);
        _ = task.ContinueWith(_ =>
        {
            if (_background.TryRemove(runId, out var e)) e.Cts.Dispose();
        }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    /// <summary>Executes a stored run under this engine's lease until every task is final.</summary>
    /// <exception cref="KilnException">another live process holds the run.</exception>
    public async Task<RunState> ExecuteAsync(string runId, PipelineDefinition definition, CancellationToken cancellationToken = default, string? deadOwner = null)
    {
        var previousOwner = (await _store.GetRunAsync(runId, cancellationToken).ConfigureAwait(false))?.Owner;
        var now = _time.GetUtcNow();
        if (!await _store.TryAcquireLeaseAsync(runId, Owner, now, now + _options.LeaseDuration, deadOwner, cancellationToken).ConfigureAwait(false))
        {
            var held = await _store.GetRunAsync(runId, cancellationToken).ConfigureAwait(false)
                ?? throw new KilnException($"no pipeline run '{runId}'");
            throw new KilnException($"run {runId} is being executed by {held.Owner} (lease until {held.LeaseExpires:u}); cancel it or wait");
        }
        var run = await _store.GetRunAsync(runId, cancellationToken).ConfigureAwait(false) ?? throw new KilnException($"no pipeline run '{runId}'");
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        _local[runId] = cts;
        if (run.CancelRequested) await cts.CancelAsync().ConfigureAwait(false);
        using var heartbeatStop = new CancellationTokenSource();
        var heartbeat = HeartbeatAsync(runId, cts, heartbeatStop.Token);
        RunState state;
        try
        {
            await _store.SetRunStateAsync(runId, RunState.Running, _time.GetUtcNow(), null, CancellationToken.None).ConfigureAwait(false);
            Log.RunStarted(_logger, runId, definition.Name, Owner);
            state = await _executor.ExecuteAsync(new RunExecution
            {
                Run = run,
                Definition = definition,
                Store = _store,
                Kinds = _kinds,
                Owner = Owner,
                PreviousOwner = previousOwner,
                Time = _time,
                WorkingDirectory = _options.WorkingDirectory,
                Services = _options.Services,
                LogFlushInterval = _options.LogFlushInterval,
                OnTaskStateChanged = c => TaskStateChanged?.Invoke(c),
            }, cts.Token).ConfigureAwait(false);
            var error = state switch
            {
                RunState.Failed => await FailureSummaryAsync(runId).ConfigureAwait(false),
                RunState.Cancelled => "cancelled",
                _ => null,
            };
            await _store.SetRunStateAsync(runId, state, _time.GetUtcNow(), error, CancellationToken.None).ConfigureAwait(false);
            Log.RunFinished(_logger, runId, state.Name());
        }
        finally
        {
            _local.TryRemove(runId, out _);
            await heartbeatStop.CancelAsync().ConfigureAwait(false);
            await heartbeat.ConfigureAwait(false);
            await _store.ReleaseLeaseAsync(runId, Owner, CancellationToken.None).ConfigureAwait(false);
        }
        return state;
    }

    private async Task<string> FailureSummaryAsync(string runId)
    {
        var tasks = await _store.GetTasksAsync(runId, CancellationToken.None).ConfigureAwait(false);
        var failed = tasks.Where(t => t.State == TaskState.Failed).Select(t => $"{t.Task}: {t.Error}").ToList();
        return failed.Count == 0 ? "a task did not succeed" : $"task {string.Join("; ", failed)}";
    }

    private async Task HeartbeatAsync(string runId, CancellationTokenSource run, CancellationToken stop)
    {
        try
        {
            while (!stop.IsCancellationRequested)
            {
                await Task.Delay(_options.HeartbeatInterval, _time, stop).ConfigureAwait(false);
                try
                {
                    var status = await _store.RenewLeaseAsync(runId, Owner, _time.GetUtcNow() + _options.LeaseDuration, stop).ConfigureAwait(false);
                    if (status.CancelRequested && !run.IsCancellationRequested)
                    {
                        Log.CancelRequested(_logger, runId);
                        await run.CancelAsync().ConfigureAwait(false);
                    }
                    else if (!status.StillOwner && !run.IsCancellationRequested)
                    {
                        Log.LeaseLost(_logger, runId);
                        await run.CancelAsync().ConfigureAwait(false);
                    }
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    Log.HeartbeatFailed(_logger, runId, e);
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>
    /// Continues a run: a run left running by a dead process (or with an expired lease), or a failed or
    /// cancelled run whose unfinished tasks should run again. Succeeded tasks keep their outputs and are not re-run.
    /// </summary>
    /// <param name="definition">The pipeline; null to use the YAML stored with the run.</param>
    public async Task<RunState> ResumeAsync(string runId, PipelineDefinition? definition = null, CancellationToken cancellationToken = default)
    {
        var (run, def, dead) = await PrepareResumeAsync(runId, definition, cancellationToken).ConfigureAwait(false);
        if (run.State == RunState.Succeeded) return RunState.Succeeded;
        return await ExecuteAsync(runId, def, cancellationToken, dead).ConfigureAwait(false);
    }

    /// <summary>Checks that a run can be resumed, then resumes it in the background.</summary>
    public async Task ResumeInBackgroundAsync(string runId, CancellationToken cancellationToken = default)
    {
        var (run, def, dead) = await PrepareResumeAsync(runId, null, cancellationToken).ConfigureAwait(false);
        if (run.State == RunState.Succeeded) return;
        StartBackground(runId, ct => ExecuteAsync(runId, def, ct, dead));
    }

    private async Task<(RunRecord Run, PipelineDefinition Definition, string? DeadOwner)> PrepareResumeAsync(string runId, PipelineDefinition? definition, CancellationToken ct)
    {
        var run = await _store.GetRunAsync(runId, ct).ConfigureAwait(false) ?? throw new KilnException($"no pipeline run '{runId}'");
        string? dead = null;
        if (run.Owner is not null && run.Owner != Owner)
        {
            var expired = run.LeaseExpires is null || run.LeaseExpires < _time.GetUtcNow();
            if (IsDead(run.Owner)) dead = run.Owner;
            else if (!expired)
                throw new KilnException($"run {runId} is still being executed by {run.Owner} (lease until {run.LeaseExpires:u}); it can be resumed once that process stops");
        }
        if (run.CancelRequested) await _store.RequestCancelAsync(runId, false, ct).ConfigureAwait(false);
        var def = definition ?? (run.DefinitionText is null ? Catalog.Find(run.Pipeline) : null);
        if (def is null)
        {
            if (run.DefinitionText is null)
                throw new KilnException($"run {runId} of '{run.Pipeline}' was defined in C#; resume it from the program that defines it (PipelineEngine.ResumeAsync with the definition)");
            def = PipelineLoader.Load(run.DefinitionText, _kinds, run.SourcePath);
        }
        return (run, def, dead);
    }

    /// <summary>Finds runs left running by dead processes (or with expired leases) and resumes them in the background.</summary>
    public async Task<IReadOnlyList<string>> RecoverAsync(CancellationToken cancellationToken = default)
    {
        var resumed = new List<string>();
        foreach (var run in await _store.ListRunsAsync(null, RunState.Running, 1000, cancellationToken).ConfigureAwait(false))
        {
            if (_local.ContainsKey(run.RunId) || run.Owner == Owner) continue;
            var expired = run.LeaseExpires is null || run.LeaseExpires < _time.GetUtcNow();
            if (!expired && (run.Owner is null || !IsDead(run.Owner))) continue;
            PipelineDefinition? def = Catalog.Find(run.Pipeline) is { } known && known.SourceText == run.DefinitionText ? known : null;
            if (def is null && run.DefinitionText is null)
            {
                Log.CannotRecover(_logger, run.RunId, run.Pipeline);
                continue;
            }
            var id = run.RunId;
            Log.Recovering(_logger, id, run.Owner ?? "none");
            StartBackground(id, ct => ResumeAsync(id, def, ct));
            resumed.Add(id);
        }
        return resumed;
    }

    /// <summary>
    /// Cancels a run: the process executing it stops its tasks at its next heartbeat. A run nobody
    /// executes (pending, or its process died) is marked cancelled at once. Returns false for an unknown or finished run.
    /// </summary>
    public async Task<bool> CancelAsync(string runId, CancellationToken cancellationToken = default)
    {
        var run = await _store.GetRunAsync(runId, cancellationToken).ConfigureAwait(false);
        if (run is null || run.State.IsTerminal()) return false;
        await _store.RequestCancelAsync(runId, true, cancellationToken).ConfigureAwait(false);
        if (_local.TryGetValue(runId, out var cts))
        {
            await cts.CancelAsync().ConfigureAwait(false);
            return true;
        }
        var unowned = run.Owner is null || run.LeaseExpires < _time.GetUtcNow() || IsDead(run.Owner);
        if (unowned)
        {
            var now = _time.GetUtcNow();
            foreach (var t in await _store.GetTasksAsync(runId, cancellationToken).ConfigureAwait(false))
            {
                if (t.State.IsTerminal()) continue;
                if (t.State == TaskState.Running)
                {
                    var attempt = (await _store.GetAttemptsAsync(runId, t.Task, cancellationToken).ConfigureAwait(false)).FirstOrDefault(a => a.Attempt == t.Attempts);
                    var killed = ProcessGroups.LocalGroup(attempt?.ProcessGroup) is { } pgid
                        ? "; " + await ProcessGroups.KillSurvivorsAsync(pgid, runId, t.Task, TimeSpan.FromSeconds(10)).ConfigureAwait(false)
                        : "";
                    await _store.EndAttemptAsync(new AttemptEnd
                    {
                        RunId = runId, Task = t.Task, Attempt = t.Attempts, AttemptState = "interrupted",
                        TaskState = TaskState.Cancelled, At = now, Error = "cancelled after its process stopped" + killed,
                    }, cancellationToken).ConfigureAwait(false);
                }
                else
                {
                    await _store.SetTaskStateAsync(runId, t.Task, TaskState.Cancelled, now, "cancelled", cancellationToken).ConfigureAwait(false);
                }
            }
            await _store.SetRunStateAsync(runId, RunState.Cancelled, now, "cancelled", cancellationToken).ConfigureAwait(false);
        }
        return true;
    }

    /// <summary>
    /// Starts every catalog pipeline whose <c>triggers:</c> name <paramref name="eventName"/>. Payload entries
    /// whose keys are parameters of the pipeline become its parameter values; the rest are ignored.
    /// </summary>
    public async Task<IReadOnlyList<RunRecord>> TriggerByEventAsync(string eventName, IReadOnlyDictionary<string, string>? payload = null,
        CancellationToken cancellationToken = default)
    {
        var started = new List<RunRecord>();
        foreach (var def in Catalog.ForEvent(eventName))
        {
            var parameters = new Dictionary<string, string>(StringComparer.Ordinal);
            if (payload is not null)
            {
                foreach (var p in def.Parameters)
                {
                    if (payload.TryGetValue(p.Name, out var v)) parameters[p.Name] = v;
                }
            }
            started.Add(await StartAsync(def, parameters, $"event:{eventName}", null, cancellationToken).ConfigureAwait(false));
        }
        return started;
    }

    /// <summary>True when the owner ran on this host and its process is gone.</summary>
    public static bool IsDead(string owner)
    {
        var at = owner.IndexOf('@', StringComparison.Ordinal);
        var slash = owner.IndexOf('/', StringComparison.Ordinal);
        if (at <= 0 || slash < at) return false;
        var host = owner[(at + 1)..slash];
        if (!string.Equals(host, Environment.MachineName, StringComparison.OrdinalIgnoreCase)) return false;
        if (!int.TryParse(owner[..at], NumberStyles.Integer, CultureInfo.InvariantCulture, out var pid)) return false;
        try
        {
            using var p = Process.GetProcessById(pid);
            return p.HasExited;
        }
        catch (ArgumentException)
        {
            return true;
        }
        catch (InvalidOperationException)
        {
            return true;
        }
    }

    private static string NewRunId(DateTimeOffset now) =>
        $"{now.UtcDateTime:yyyyMMdd-HHmmss}-{Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(3))}";

    /// <summary>Cancels the runs this engine executes in the background and waits for them.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1) return;
        await _shutdown.CancelAsync().ConfigureAwait(false);
        foreach (var (_, (task, _)) in _background)
        {
            try
            {
                await task.ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or KilnException)
            {
            }
        }
        _shutdown.Dispose();
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 8001, Level = LogLevel.Information, Message = "Pipeline run {RunId} of {Pipeline} created (trigger {Trigger})")]
        public static partial void RunCreated(ILogger logger, string runId, string pipeline, string trigger);

        [LoggerMessage(EventId = 8002, Level = LogLevel.Information, Message = "Pipeline run {RunId} of {Pipeline} started by {Owner}")]
        public static partial void RunStarted(ILogger logger, string runId, string pipeline, string owner);

        [LoggerMessage(EventId = 8003, Level = LogLevel.Information, Message = "Pipeline run {RunId} finished: {State}")]
        public static partial void RunFinished(ILogger logger, string runId, string state);

        [LoggerMessage(EventId = 8004, Level = LogLevel.Error, Message = "Pipeline run {RunId} stopped with an error")]
        public static partial void BackgroundRunFailed(ILogger logger, string runId, Exception e);

        [LoggerMessage(EventId = 8005, Level = LogLevel.Warning, Message = "Pipeline run {RunId}: lease lost to another process; stopping")]
        public static partial void LeaseLost(ILogger logger, string runId);

        [LoggerMessage(EventId = 8006, Level = LogLevel.Information, Message = "Pipeline run {RunId}: cancel requested")]
        public static partial void CancelRequested(ILogger logger, string runId);

        [LoggerMessage(EventId = 8007, Level = LogLevel.Warning, Message = "Pipeline run {RunId}: heartbeat failed")]
        public static partial void HeartbeatFailed(ILogger logger, string runId, Exception e);

        [LoggerMessage(EventId = 8008, Level = LogLevel.Warning, Message = "Recovering pipeline run {RunId} left by {Owner}")]
        public static partial void Recovering(ILogger logger, string runId, string owner);

        [LoggerMessage(EventId = 8009, Level = LogLevel.Warning, Message = "Pipeline run {RunId} of {Pipeline} was orphaned but is defined in code; resume it from its program")]
        public static partial void CannotRecover(ILogger logger, string runId, string pipeline);
    }
}
