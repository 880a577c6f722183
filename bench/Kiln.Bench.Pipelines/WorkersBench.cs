using System.Diagnostics;
using System.Globalization;
using System.Text;
using Kiln.Pipelines.Definition;
using Kiln.Pipelines.Execution;
using Kiln.Pipelines.State;
using Kiln.Pipelines.Tasks;
using Kiln.Workers;
using Kiln.Workers.Pipelines;
using Npgsql;

/// <summary>
/// Per-task overhead of running a pipeline's tasks through workers (kiln pipeline run --on) against the local path, on
/// the same PostgreSQL pipeline store: a chain of no-op tasks (each waits for the one before, so per-task latency adds
/// up), the local engine and the distributed one in alternating rounds, the ratio per round, medians.
/// The worker is a Hangfire server in this process with the same code as kiln worker (claim, run, record, notify).
/// </summary>
internal static class WorkersBench
{
    public static async Task RunAsync(string[] args)
    {
        var tasks = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 30;
        var rounds = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 7;
        var poll = TimeSpan.FromMilliseconds(args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 200);
        var admin = Environment.GetEnvironmentVariable("KILN_TEST_POSTGRES")
            ?? throw new InvalidOperationException("set KILN_TEST_POSTGRES to a PostgreSQL connection string (a database is created and dropped)");
        var name = $"kiln_bench_{Guid.NewGuid():N}"[..28];
        await using (var c = new NpgsqlConnection(admin))
        {
            await c.OpenAsync();
            await using var cmd = new NpgsqlCommand($"CREATE DATABASE {name}", c);
            await cmd.ExecuteNonQueryAsync();
        }
        var b = new NpgsqlConnectionStringBuilder(admin);
        var uri = $"postgresql://{b.Username}@{b.Host}:{b.Port}/{name}";
        try
        {
            await RunOnAsync(uri, new NpgsqlConnectionStringBuilder(admin) { Database = name }.ConnectionString, tasks, rounds, poll);
        }
        finally
        {
            NpgsqlConnection.ClearAllPools();
            await using var c = new NpgsqlConnection(admin);
            await c.OpenAsync();
            await using var cmd = new NpgsqlCommand($"DROP DATABASE IF EXISTS {name} WITH (FORCE)", c);
            await cmd.ExecuteNonQueryAsync();
        }
    }

    private static async Task RunOnAsync(string uri, string cs, int tasks, int rounds, TimeSpan poll)
    {
        var kinds = TaskKindRegistry.CreateDefault();
        await using var store = await PipelineStores.OpenAsync(uri);
        await using var workerStore = await PipelineStores.OpenAsync(uri); // the worker's own connections, as in another process
        var storage = await WorkerStorage.OpenAsync(uri, new WorkerStorageOptions { QueuePollInterval = poll });
        await using var notifier = new AttemptNotifier(NpgsqlDataSource.Create(cs));
        await using var signals = new AttemptSignals(cs);
        using var stop = new CancellationTokenSource();
        var worker = KilnWorker.RunAsync(storage, new WorkerOptions
        {
            Name = "kiln-worker:bench",
            Queues = [KilnQueues.Pipelines],
            Concurrency = 2,
            Pipelines = new PipelineWorker(workerStore, kinds, null, "kiln-worker:bench", notifier),
        }, null, stop.Token);
        await using var local = new PipelineEngine(store, kinds);
        await using var distributed = new PipelineEngine(store, kinds, null, new DagExecutor(new WorkerAttemptDispatcher(storage, signals)));

        var yaml = new StringBuilder("name: chain\ntasks:\n");
        for (var i = 0; i < tasks; i++)
        {
            yaml.Append(CultureInfo.InvariantCulture, $"  t{i}:\n    kind: noop\n");
            if (i > 0) yaml.Append(CultureInfo.InvariantCulture, $"    depends_on: [t{i - 1}]\n");
        }
        var def = PipelineLoader.Load(yaml.ToString(), kinds, "chain.yaml");

        var spans = new Dictionary<string, List<double>>(StringComparer.Ordinal);
        async Task<double> TimeAsync(PipelineEngine engine)
        {
            var sw = Stopwatch.StartNew();
            var (run, state) = await engine.RunAsync(def);
            sw.Stop();
            if (state != RunState.Succeeded) throw new InvalidOperationException($"run {run.RunId} ended {state}");
            var attempts = await store.GetAttemptsAsync(run.RunId);
            if (attempts.Count != tasks || attempts.Any(a => a.State != "succeeded")) throw new InvalidOperationException($"run {run.RunId}: not every task ran once and succeeded");
            if (engine == distributed) await SpansAsync(cs, run.RunId, attempts, spans);
            return sw.Elapsed.TotalMilliseconds;
        }

        Console.WriteLine($"machine: {Environment.ProcessorCount} cores, load {File.ReadAllText("/proc/loadavg").Split(' ')[0]}; chain of {tasks} noop tasks, {rounds} rounds, queue poll {poll.TotalMilliseconds} ms");
        await TimeAsync(local); // warm-up: JIT, pools, Hangfire's first jobs
        await TimeAsync(distributed);
        var localMs = new List<double>();
        var distMs = new List<double>();
        var ratios = new List<double>();
        var overheads = new List<double>();
        Console.WriteLine($"{"round",5} {"local ms",9} {"workers ms",11} {"ratio",6} {"overhead ms/task",17}");
        for (var r = 0; r < rounds; r++)
        {
            double l, d;
            if (r % 2 == 0)
            {
                l = await TimeAsync(local);
                d = await TimeAsync(distributed);
            }
            else
            {
                d = await TimeAsync(distributed);
                l = await TimeAsync(local);
            }
            localMs.Add(l);
            distMs.Add(d);
            ratios.Add(d / l);
            overheads.Add((d - l) / tasks);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{r + 1,5} {l,9:0} {d,11:0} {d / l,6:0.00} {(d - l) / tasks,17:0.0}"));
        }
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"median: local {Median(localMs):0} ms ({Median(localMs) / tasks:0.0} ms/task), workers {Median(distMs):0} ms ({Median(distMs) / tasks:0.0} ms/task), ratio {Median(ratios):0.00}, overhead {Median(overheads):0.0} ms/task"));
        Console.WriteLine("where a task's time goes through a worker (median over every task of the measured distributed runs, ms; from the timestamps");
        Console.WriteLine("Hangfire and the pipeline store record: job created, Enqueued, Processing, attempt claimed, attempt ended, Succeeded):");
        foreach (var (span, values) in spans)
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {span,-58} {Median(values),7:0.00}   (p90 {Percentile(values, 0.9):0.00})"));
        await stop.CancelAsync();
        await worker;
    }

    /// <summary>
    /// The spans of each task of a distributed run, from what Hangfire (job and state rows) and the pipeline store
    /// (attempt claimed = started_at, ended = finished_at) timestamp; the first task's job is skipped (no task before it).
    /// </summary>
    private static async Task SpansAsync(string cs, string runId, IReadOnlyList<AttemptRecord> attempts, Dictionary<string, List<double>> spans)
    {
        await using var c = new NpgsqlConnection(cs);
        await c.OpenAsync();
        await using var cmd = new NpgsqlCommand("""
            SELECT j.id, j.createdat,
                   (SELECT min(s.createdat) FROM hangfire.state s WHERE s.jobid = j.id AND s.name = 'Enqueued'),
                   (SELECT min(s.createdat) FROM hangfire.state s WHERE s.jobid = j.id AND s.name = 'Processing'),
                   (SELECT min(s.createdat) FROM hangfire.state s WHERE s.jobid = j.id AND s.name = 'Succeeded')
            FROM hangfire.job j WHERE j.arguments::text LIKE '%' || $1 || '%' ORDER BY j.id
            """, c);
        cmd.Parameters.AddWithValue(runId);
        var jobs = new List<(DateTime Created, DateTime Enqueued, DateTime Processing, DateTime? Succeeded)>();
        await using (var r = await cmd.ExecuteReaderAsync())
        {
            while (await r.ReadAsync()) jobs.Add((r.GetDateTime(1), r.GetDateTime(2), r.GetDateTime(3), r.IsDBNull(4) ? null : r.GetDateTime(4)));
        }
        var ordered = attempts.OrderBy(a => int.Parse(a.Task.AsSpan(1), CultureInfo.InvariantCulture)).ToList();
        if (jobs.Count != ordered.Count) return;
        void Add(string name, DateTime from, DateTime to)
        {
            if (!spans.TryGetValue(name, out var list)) spans[name] = list = [];
            list.Add((to - from).TotalMilliseconds);
        }
        for (var i = 1; i < jobs.Count; i++)
        {
            var previousEnd = ordered[i - 1].FinishedAt!.Value.UtcDateTime;
            var (created, enqueued, processing, succeeded) = jobs[i];
            var claimed = ordered[i].StartedAt.UtcDateTime;
            var ended = ordered[i].FinishedAt!.Value.UtcDateTime;
            Add("1 previous task ended -> job created (coordinator)", previousEnd, created);
            Add("2 job created -> Enqueued state (Hangfire client)", created, enqueued);
            Add("3 Enqueued -> Processing (Hangfire fetch, state change)", enqueued, processing);
            Add("4 Processing -> attempt claimed (worker's reads, claim)", processing, claimed);
            Add("5 claimed -> attempt ended (run the task, record its end)", claimed, ended);
            // The last job's Succeeded state may come after the run ended (the coordinator does not wait for it).
            if (succeeded is { } done) Add("6 ended -> Succeeded state (notify, Hangfire state change)", ended, done);
            Add("total: previous task ended -> this task ended", previousEnd, ended);
        }
    }

    private static double Percentile(List<double> values, double q)
    {
        var s = values.Order().ToList();
        return s[Math.Min(s.Count - 1, (int)Math.Floor(q * s.Count))];
    }

    private static double Median(List<double> values)
    {
        var s = values.Order().ToList();
        return s.Count % 2 == 1 ? s[s.Count / 2] : (s[s.Count / 2 - 1] + s[s.Count / 2]) / 2;
    }
}
