using System.Collections.Concurrent;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Threading.Channels;
using Kiln.Pipelines.Definition;
using Kiln.Pipelines.State;
using Kiln.Pipelines.Tasks;

namespace Kiln.Pipelines.Execution;

/// <summary>Runs tasks in this process: every ready task starts at once, up to the pipeline's concurrency limit.</summary>
public sealed class LocalExecutor : IExecutor
{
    public async Task<RunState> ExecuteAsync(RunExecution x, CancellationToken cancellationToken)
    {
        var run = new LocalRun(x);
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
        private readonly ConcurrentDictionary<TaskLogBuffer, byte> _activeLogs = new();
        private readonly Channel<(int Index, TaskState State)> _done = Channel.CreateUnbounded<(int, TaskState)>(new UnboundedChannelOptions { SingleReader = true });

        public LocalRun(RunExecution x)
        {
            _x = x;
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

            using var flushCts = new CancellationTokenSource();
            var flusher = FlushLoopAsync(flushCts.Token);
            try
            {
                await ScheduleAsync(ct).ConfigureAwait(false);
            }
            finally
            {
                await flushCts.CancelAsync().ConfigureAwait(false);
                await flusher.ConfigureAwait(false);
            }

            if (ct.IsCancellationRequested)
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
                while (ready.Count > 0 && running < limit && !ct.IsCancellationRequested)
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
            _x.Kinds.TryGet(t.Kind, out var kind);
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
                await _store.StartAttemptAsync(RunId, t.Name, attempt, Now, _x.Owner, CancellationToken.None).ConfigureAwait(false);
                Notify(i, TaskState.Running, null);
                var log = new TaskLogBuffer(RunId, t.Name, attempt, _x.Time);
                _activeLogs.TryAdd(log, 0);
                using var attemptCts = CancellationTokenSource.CreateLinkedTokenSource(ct);
                if (t.Timeout is { } timeout) attemptCts.CancelAfter(timeout);
                var context = new TaskContext
                {
                    RunId = RunId,
                    PipelineName = _def.Name,
                    Task = t,
                    Attempt = attempt,
                    Config = attempt == 1 ? config.Value : (System.Text.Json.Nodes.JsonObject)config.Value.DeepClone(),
                    Parameters = _x.Run.Parameters,
                    Upstream = upstream,
                    Log = log,
                    CancellationToken = attemptCts.Token,
                    WorkingDirectory = _x.WorkingDirectory,
                    Services = _x.Services,
                    ProcessGroupStarted = pgid => _store.SetAttemptProcessGroupAsync(RunId, t.Name, attempt, ProcessGroups.Describe(pgid), CancellationToken.None),
                };
                string error;
                try
                {
                    var result = await kind!.ExecuteAsync(context).WaitAsync(attemptCts.Token).ConfigureAwait(false);
                    await FlushAsync(log).ConfigureAwait(false);
                    _outputs[i] = result;
                    await EndAsync(i, attempt, "succeeded", TaskState.Succeeded, null, result, cacheKey).ConfigureAwait(false);
                    if (cacheKey is not null)
                        await _store.PutCacheAsync(new CacheEntry(cacheKey, result, RunId, t.Name, Now), CancellationToken.None).ConfigureAwait(false);
                    return TaskState.Succeeded;
                }
                catch (TaskSkippedException e)
                {
                    log.Info($"skipped: {e.Message}");
                    await FlushAsync(log).ConfigureAwait(false);
                    await EndAsync(i, attempt, "skipped", TaskState.Skipped, e.Message, null, null).ConfigureAwait(false);
                    return TaskState.Skipped;
                }
                catch (OperationCanceledException) when (ct.IsCancellationRequested)
                {
                    log.Error("cancelled");
                    await FlushAsync(log).ConfigureAwait(false);
                    await EndAsync(i, attempt, "cancelled", TaskState.Cancelled, "cancelled", null, null).ConfigureAwait(false);
                    return TaskState.Cancelled;
                }
                catch (Exception e)
                {
                    error = attemptCts.IsCancellationRequested && t.Timeout is { } to
                        ? $"timed out after {Duration(to)}"
                        : e is TaskFailedException ? e.Message : $"{e.GetType().Name}: {e.Message}";
                    log.Error(error);
                    await FlushAsync(log).ConfigureAwait(false);
                }
                finally
                {
                    _activeLogs.TryRemove(log, out _);
                }

                failures++;
                if (failures >= t.Retry.MaxAttempts)
                {
                    await EndAsync(i, attempt, "failed", TaskState.Failed, error, null, null).ConfigureAwait(false);
                    return TaskState.Failed;
                }
                var delay = t.Retry.DelayAfter(failures, random.NextDouble());
                await EndAsync(i, attempt, "failed", TaskState.Retrying, $"{error} (retrying in {Duration(delay)})", null, null).ConfigureAwait(false);
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

        private async Task FlushAsync(TaskLogBuffer log)
        {
            var lines = log.Drain();
            if (lines.Count > 0) await _store.AppendLogsAsync(lines, CancellationToken.None).ConfigureAwait(false);
        }

        private async Task FlushLoopAsync(CancellationToken stop)
        {
            try
            {
                while (true)
                {
                    await Task.Delay(_x.LogFlushInterval, stop).ConfigureAwait(false);
                    foreach (var log in _activeLogs.Keys) await FlushAsync(log).ConfigureAwait(false);
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

    private readonly record struct JsonConfig(System.Text.Json.Nodes.JsonObject Value);
}
