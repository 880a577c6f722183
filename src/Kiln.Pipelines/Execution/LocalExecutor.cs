using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Threading.Channels;
using Kiln.Pipelines.Definition;
using Kiln.Pipelines.State;

namespace Kiln.Pipelines.Execution;

/// <summary>Runs tasks in this process: every ready task starts at once, up to the pipeline's concurrency limit.</summary>
public sealed class LocalExecutor() : DagExecutor(InProcessDispatcher.Instance);

/// <summary>
/// The engine's state machine over a run's DAG: every ready task is started at once (up to the pipeline's concurrency
/// limit), with caching, retries and upstream outcomes decided here; where an attempt runs is the
/// <see cref="IAttemptDispatcher"/>'s (in this process, or a worker's job).
/// </summary>
public class DagExecutor(IAttemptDispatcher dispatcher) : IExecutor
{
    public async Task<RunState> ExecuteAsync(RunExecution x, CancellationToken cancellationToken)
    {
        var run = new LocalRun(x, dispatcher);
        return await run.ExecuteAsync(cancellationToken).ConfigureAwait(false);
    }

    private sealed class LocalRun
    {
        private readonly RunExecution _x;
        private readonly PipelineDefinition _def;
        private readonly IPipelineStore _store;
        private readonly TaskDefinition[] _tasks;
        private readonly Dictionary<string, int> _index;
        private readonly List<int>[] _dependents;
        private readonly int[] _remaining;
        private readonly TaskState[] _state;
        private readonly int[] _attempts;
        private readonly IReadOnlyDictionary<string, string>?[] _outputs;
        private readonly IAttemptDispatcher _dispatcher;
        /// <summary>
        /// A task came back cancelled and the store says the run's cancel was asked for: the run is being cancelled even if
        /// the cancel token has not fired yet (a worker saw the request before this process's next look at the store).
        /// </summary>
        private bool _cancelSeen;
        private readonly Channel<(int Index, TaskState State)> _done = Channel.CreateUnbounded<(int, TaskState)>(new UnboundedChannelOptions { SingleReader = true });

        public LocalRun(RunExecution x, IAttemptDispatcher dispatcher)
        {
            _x = x;
            _dispatcher = dispatcher;
            _def = x.Definition;
            _store = x.Store;
            _tasks = [.. _def.Tasks];
            var n = _tasks.Length;
            _index = new Dictionary<string, int>(n, StringComparer.Ordinal);
            for (var i = 0; i < n; i++) _index[_tasks[i].Name] = i;
            _dependents = new List<int>[n];
            for (var i = 0; i < n; i++) _dependents[i] = [];
            for (var i = 0; i < n; i++) foreach (var d in _tasks[i].DependsOn) _dependents[_index[d]].Add(i);
            _remaining = new int[n];
            _state = new TaskState[n];
            _attempts = new int[n];
            _outputs = new IReadOnlyDictionary<string, string>?[n];
        }

        private string RunId => _x.Run.RunId;

        private DateTimeOffset Now => _x.Time.GetUtcNow();

        public async Task<RunState> ExecuteAsync(CancellationToken ct)
        {
            await LoadAsync().ConfigureAwait(false);
            await ScheduleAsync(ct).ConfigureAwait(false);

            if (ct.IsCancellationRequested || _cancelSeen)
            {
                for (var i = 0; i < _tasks.Length; i++)
                {
                    if (_state[i].IsTerminal()) continue;
                    _state[i] = TaskState.Cancelled;
                    await _store.SetTaskStateAsync(RunId, _tasks[i].Name, TaskState.Cancelled, Now, "the run was cancelled before this task started", CancellationToken.None).ConfigureAwait(false);
                    Notify(i, TaskState.Cancelled, null);
                }
                return RunState.Cancelled;
            }
            var failed = false;
            foreach (var s in _state) failed |= s is TaskState.Failed or TaskState.UpstreamFailed or TaskState.Cancelled;
            return failed ? RunState.Failed : RunState.Succeeded;
        }

        /// <summary>Reads the stored task states; tasks left running by a dead process get their attempt marked interrupted.</summary>
        private async Task LoadAsync()
        {
            var records = await _store.GetTasksAsync(RunId, CancellationToken.None).ConfigureAwait(false);
            var seen = 0;
            foreach (var r in records)
            {
                if (!_index.TryGetValue(r.Task, out var i))
                    throw new Kiln.Core.KilnException($"run {RunId}: stored task '{r.Task}' is not in pipeline '{_def.Name}' any more; the pipeline changed since the run started");
                seen++;
                _attempts[i] = r.Attempts;
                switch (r.State)
                {
                    case TaskState.Succeeded:
                        _state[i] = TaskState.Succeeded;
                        _outputs[i] = r.Outputs ?? new Dictionary<string, string>();
                        break;
                    case TaskState.Skipped:
                        _state[i] = TaskState.Skipped;
                        break;
                    case TaskState.Running:
                        var survivors = await KillSurvivorsAsync(r).ConfigureAwait(false);
                        await _store.EndAttemptAsync(new AttemptEnd
                        {
                            RunId = RunId,
                            Task = r.Task,
                            Attempt = r.Attempts,
                            AttemptState = "interrupted",
                            TaskState = TaskState.Pending,
                            At = Now,
                            Error = $"interrupted: the process running it ({_x.PreviousOwner ?? "unknown"}) stopped{survivors}; resumed by {_x.Owner}",
                        }, CancellationToken.None).ConfigureAwait(false);
                        _state[i] = TaskState.Pending;
                        break;
                    case TaskState.Pending:
                        _state[i] = TaskState.Pending;
                        break;
                    default:
                        // failed, retrying, cancelled, upstream_failed: a resumed run tries them again.
                        await _store.SetTaskStateAsync(RunId, r.Task, TaskState.Pending, Now, null, CancellationToken.None).ConfigureAwait(false);
                        _state[i] = TaskState.Pending;
                        break;
                }
            }
            if (seen != _tasks.Length)
                throw new Kiln.Core.KilnException($"run {RunId}: the store holds {seen} tasks but pipeline '{_def.Name}' has {_tasks.Length}; the pipeline changed since the run started");
        }

        /// <summary>
        /// Before an interrupted task runs again, whatever its last attempt started must be gone (a command still
        /// writing beside its second copy is the failure this prevents): the recorded process group is killed.
        /// </summary>
        private async Task<string> KillSurvivorsAsync(TaskRecord r)
        {
            var attempts = await _store.GetAttemptsAsync(RunId, r.Task, CancellationToken.None).ConfigureAwait(false);
            var last = attempts.FirstOrDefault(a => a.Attempt == r.Attempts);
            if (last?.ProcessGroup is not { } recorded) return "";
            if (ProcessGroups.LocalGroup(recorded) is not { } pgid) return $" (its process group {recorded} is on another host)";
            return "; " + await ProcessGroups.KillSurvivorsAsync(pgid, RunId, r.Task, TimeSpan.FromSeconds(10)).ConfigureAwait(false);
        }

        private async Task ScheduleAsync(CancellationToken ct)
        {
            var ready = new Queue<int>();
            for (var i = 0; i < _tasks.Length; i++)
            {
                if (_state[i].IsTerminal()) continue;
                var waiting = 0;
                foreach (var d in _tasks[i].DependsOn) if (!_state[_index[d]].IsTerminal()) waiting++;
                _remaining[i] = waiting;
                if (waiting == 0) ready.Enqueue(i);
            }

            var running = 0;
            var limit = Math.Max(1, _def.MaxConcurrency);
            while (true)
            {
                while (ready.Count > 0 && running < limit && !ct.IsCancellationRequested && !_cancelSeen)
                {
                    var i = ready.Dequeue();
                    var blocked = Blocked(i);
                    if (blocked is { } st)
                    {
                        _state[i] = st;
                        var why = st == TaskState.Skipped ? "an upstream task was skipped" : "an upstream task did not succeed";
                        await _store.SetTaskStateAsync(RunId, _tasks[i].Name, st, Now, why, CancellationToken.None).ConfigureAwait(false);
                        Notify(i, st, why);
                        Release(i, ready);
                        continue;
                    }
                    running++;
                    _state[i] = TaskState.Running;
                    var index = i;
                    _ = Task.Run(() => RunTaskAsync(index, ct), CancellationToken.None);
                }
                if (running == 0) break;
                var (done, state) = await _done.Reader.ReadAsync(CancellationToken.None).ConfigureAwait(false);
                running--;
                _state[done] = state;
                if (state == TaskState.Cancelled && !ct.IsCancellationRequested && !_cancelSeen)
                    _cancelSeen = (await _store.GetRunAsync(RunId, CancellationToken.None).ConfigureAwait(false))?.CancelRequested == true;
                Release(done, ready);
            }
        }

        private TaskState? Blocked(int i)
        {
            var skipped = false;
            foreach (var d in _tasks[i].DependsOn)
            {
                var s = _state[_index[d]];
                if (s is TaskState.Failed or TaskState.UpstreamFailed or TaskState.Cancelled) return TaskState.UpstreamFailed;
                if (s == TaskState.Skipped) skipped = true;
            }
            return skipped ? TaskState.Skipped : null;
        }

        private void Release(int i, Queue<int> ready)
        {
            foreach (var j in _dependents[i])
            {
                if (_state[j].IsTerminal()) continue;
                if (--_remaining[j] == 0) ready.Enqueue(j);
            }
        }

        private void Notify(int i, TaskState state, string? error) =>
            _x.OnTaskStateChanged?.Invoke(new TaskStateChange(RunId, _tasks[i].Name, state, _attempts[i], error));

        private async Task RunTaskAsync(int i, CancellationToken ct)
        {
            TaskState final;
            try
            {
                final = await AttemptsAsync(i, ct).ConfigureAwait(false);
            }
            catch (Exception e)
            {
                // The store failed or the task could not even be prepared: the task fails, the run goes on.
                final = ct.IsCancellationRequested ? TaskState.Cancelled : TaskState.Failed;
                try
                {
                    await _store.SetTaskStateAsync(RunId, _tasks[i].Name, final, Now, e.Message, CancellationToken.None).ConfigureAwait(false);
                }
                catch (Exception)
                {
                    // The store is unreachable: the state stays as last written, and a resume runs the task again.
                }
                Notify(i, final, e.Message);
            }
            _done.Writer.TryWrite((i, final));
        }

        private async Task<TaskState> AttemptsAsync(int i, CancellationToken ct)
        {
            var t = _tasks[i];
            var upstream = new Dictionary<string, IReadOnlyDictionary<string, string>>(StringComparer.Ordinal);
            foreach (var d in t.DependsOn) upstream[d] = _outputs[_index[d]] ?? new Dictionary<string, string>();

            JsonConfig config;
            try
            {
                config = new JsonConfig(Templates.Resolve(t.Config, Lookup));
            }
            catch (Kiln.Core.KilnException e)
            {
                var at = _attempts[i] + 1;
                _attempts[i] = at;
                await _store.StartAttemptAsync(RunId, t.Name, at, Now, _x.Owner, CancellationToken.None).ConfigureAwait(false);
                await EndAsync(i, at, "failed", TaskState.Failed, e.Message, null, null).ConfigureAwait(false);
                return TaskState.Failed;
            }

            string? cacheKey = null;
            if (t.Cache)
            {
                cacheKey = CacheKey(t, config.Value, upstream);
                var hit = await _store.GetCacheAsync(cacheKey, CancellationToken.None).ConfigureAwait(false);
                if (hit is not null)
                {
                    _outputs[i] = hit.Outputs;
                    await _store.AppendLogsAsync([new LogLine(RunId, t.Name, 0, Now, "stdout", $"cache hit: reusing the outputs of run {hit.RunId} task {hit.Task} ({cacheKey[..12]})")], CancellationToken.None).ConfigureAwait(false);
                    await EndAsync(i, 0, "succeeded", TaskState.Succeeded, null, hit.Outputs, cacheKey, cached: true).ConfigureAwait(false);
                    return TaskState.Succeeded;
                }
            }

            var failures = 0;
            var random = Random.Shared;
            while (true)
            {
                var attempt = ++_attempts[i];
                var outcome = await _dispatcher.RunAsync(new AttemptDispatch
                {
                    Execution = _x,
                    Task = t,
                    Attempt = attempt,
                    Config = attempt == 1 ? config.Value : (System.Text.Json.Nodes.JsonObject)config.Value.DeepClone(),
                    Upstream = upstream,
                    CacheKey = cacheKey,
                    OnStarted = () => Notify(i, TaskState.Running, null),
                }, ct).ConfigureAwait(false);
                // A worker that took over an interrupted attempt ran it as the next one.
                attempt = _attempts[i] = Math.Max(attempt, outcome.Attempt);
                switch (outcome.State)
                {
                    case TaskState.Succeeded:
                        _outputs[i] = outcome.Outputs ?? new Dictionary<string, string>();
                        if (outcome.Recorded) Notify(i, TaskState.Succeeded, null);
                        else await EndAsync(i, attempt, "succeeded", TaskState.Succeeded, null, _outputs[i], cacheKey).ConfigureAwait(false);
                        if (cacheKey is not null)
                            await _store.PutCacheAsync(new CacheEntry(cacheKey, _outputs[i]!, RunId, t.Name, Now), CancellationToken.None).ConfigureAwait(false);
                        return TaskState.Succeeded;
                    case TaskState.Skipped:
                        if (outcome.Recorded) Notify(i, TaskState.Skipped, outcome.Error);
                        else await EndAsync(i, attempt, "skipped", TaskState.Skipped, outcome.Error, null, null).ConfigureAwait(false);
                        return TaskState.Skipped;
                    case TaskState.Cancelled:
                        if (outcome.Recorded) Notify(i, TaskState.Cancelled, outcome.Error);
                        else await EndAsync(i, attempt, "cancelled", TaskState.Cancelled, outcome.Error ?? "cancelled", null, null).ConfigureAwait(false);
                        return TaskState.Cancelled;
                }

                var error = outcome.Error ?? "failed";
                failures++;
                if (failures >= t.Retry.MaxAttempts)
                {
                    await EndFailedAsync(i, attempt, TaskState.Failed, error, outcome.Recorded).ConfigureAwait(false);
                    return TaskState.Failed;
                }
                var delay = t.Retry.DelayAfter(failures, random.NextDouble());
                await EndFailedAsync(i, attempt, TaskState.Retrying, $"{error} (retrying in {Duration(delay)})", outcome.Recorded).ConfigureAwait(false);
                try
                {
                    await Task.Delay(delay, _x.Time, ct).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    await _store.SetTaskStateAsync(RunId, t.Name, TaskState.Cancelled, Now, "cancelled while waiting to retry", CancellationToken.None).ConfigureAwait(false);
                    Notify(i, TaskState.Cancelled, null);
                    return TaskState.Cancelled;
                }
            }
        }

        /// <summary>A failed attempt: its end (unless a worker wrote it) and the task's state, which retries decide here.</summary>
        private async Task EndFailedAsync(int i, int attempt, TaskState state, string error, bool recorded)
        {
            if (!recorded)
            {
                await EndAsync(i, attempt, "failed", state, error, null, null).ConfigureAwait(false);
                return;
            }
            await _store.SetTaskStateAsync(RunId, _tasks[i].Name, state, Now, error, CancellationToken.None).ConfigureAwait(false);
            Notify(i, state, error);
        }

        private async Task EndAsync(int i, int attempt, string attemptState, TaskState state, string? error,
            IReadOnlyDictionary<string, string>? outputs, string? cacheKey, bool cached = false)
        {
            await _store.EndAttemptAsync(new AttemptEnd
            {
                RunId = RunId,
                Task = _tasks[i].Name,
                Attempt = attempt,
                AttemptState = attemptState,
                TaskState = state,
                At = Now,
                Error = error,
                Outputs = outputs,
                CacheKey = cacheKey,
                Cached = cached,
            }, CancellationToken.None).ConfigureAwait(false);
            Notify(i, state, error);
        }

        private string? Lookup(string path)
        {
            var parts = path.Split('.');
            return parts[0] switch
            {
                "params" => _x.Run.Parameters.GetValueOrDefault(parts[1]),
                "tasks" when parts.Length == 4 => _index.TryGetValue(parts[1], out var j) && _outputs[j] is { } o
                    ? o.GetValueOrDefault(parts[3]) ?? throw new Kiln.Core.KilnException($"task '{parts[1]}' has no output '{parts[3]}' (it has: {string.Join(", ", o.Keys)})")
                    : throw new Kiln.Core.KilnException($"task '{parts[1]}' has no outputs (it did not succeed)"),
                "run" => parts[1] switch
                {
                    "id" => RunId,
                    "trigger" => _x.Run.Trigger,
                    "scheduled_time" => (_x.Run.ScheduledFor ?? _x.Run.CreatedAt).ToString("O", CultureInfo.InvariantCulture),
                    _ => null,
                },
                "pipeline" => _def.Name,
                _ => null,
            };
        }

        private string CacheKey(TaskDefinition t, System.Text.Json.Nodes.JsonObject config, Dictionary<string, IReadOnlyDictionary<string, string>> upstream)
        {
            var sb = new StringBuilder("kiln-task-cache-v1\n");
            sb.Append(_def.Name).Append('\n').Append(t.Name).Append('\n').Append(t.Kind).Append('\n');
            sb.Append(Templates.Canonical(config)).Append('\n');
            sb.Append(t.Step?.Method.ToString()).Append('\n');
            foreach (var (name, outputs) in upstream.OrderBy(kv => kv.Key, StringComparer.Ordinal))
            {
                sb.Append(name).Append(':');
                foreach (var (k, v) in outputs.OrderBy(kv => kv.Key, StringComparer.Ordinal)) sb.Append(k).Append('=').Append(v.Length).Append(':').Append(v).Append(';');
                sb.Append('\n');
            }
            return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(sb.ToString())));
        }

        private static string Duration(TimeSpan t) => AttemptRunner.Duration(t);
    }

    private readonly record struct JsonConfig(System.Text.Json.Nodes.JsonObject Value);
}
