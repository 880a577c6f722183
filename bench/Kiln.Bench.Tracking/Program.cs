// Tracking benchmarks: log-batch latency, sustained ingestion, search over many runs.
// Usage: dotnet run -c Release --project bench/Kiln.Bench.Tracking -- [--backends sqlite,postgres,http]
//        [--seconds 30] [--runs 100000] [--postgres "Host=127.0.0.1;Port=55432;Username=postgres;Database=postgres"]
using System.Data.Common;
using System.Diagnostics;
using System.Globalization;
using Kiln.Server;
using Kiln.Tracking;
using Kiln.Tracking.Sql;
using Npgsql;

var opts = Args.Parse(args);
var results = new List<string>();
Console.Error.WriteLine($"machine: {Environment.ProcessorCount} cores, load average {File.ReadAllText("/proc/loadavg").Split(' ')[0]}");
foreach (var backend in opts.Backends)
{
    await using var env = await BenchEnv.CreateAsync(backend, opts.Postgres);
    var stores = env.Stores;
    var tracking = stores.Tracking;

    // 1. log-batch of 1000 metrics: p50 / p95 over 200 batches after 20 warm-up batches.
    var exp = await tracking.CreateExperimentAsync("bench-" + Guid.NewGuid().ToString("N"));
    var run = (await tracking.CreateRunAsync(new CreateRun(exp))).RunId;
    var lat = new List<double>();
    for (var b = 0; b < 220; b++)
    {
        var batch = new List<Metric>(1000);
        for (var i = 0; i < 1000; i++) batch.Add(new Metric($"m{i % 10}", i * 0.5, 1_700_000_000_000 + b, (b * 100) + (i / 10)));
        var sw = Stopwatch.StartNew();
        await tracking.LogBatchAsync(run, batch, null, null);
        if (b >= 20) lat.Add(sw.Elapsed.TotalMilliseconds);
    }
    results.Add($"| {backend} | log-batch, 1000 metrics | p50 {P(lat, 0.5):F1} ms, p95 {P(lat, 0.95):F1} ms |");
    Console.Error.WriteLine(results[^1]);

    // 2. sustained ingestion: 16 writers, batches of 1000, for --seconds; every acknowledged point counted back.
    var runs = new List<string>();
    for (var i = 0; i < 16; i++) runs.Add((await tracking.CreateRunAsync(new CreateRun(exp))).RunId);
    long acked = 0;
    var until = DateTime.UtcNow.AddSeconds(opts.Seconds);
    var clock = Stopwatch.StartNew();
    var errors = 0;
    await Task.WhenAll(Enumerable.Range(0, 16).Select(w => Task.Run(async () =>
    {
        for (long b = 0; b < 10_000_000 && DateTime.UtcNow < until; b++)
        {
            var batch = new List<Metric>(1000);
            for (var i = 0; i < 1000; i++) batch.Add(new Metric("loss", i, 1_700_000_000_000 + b, (b * 1000) + i));
            try
            {
                await tracking.LogBatchAsync(runs[w], batch, null, null);
                Interlocked.Add(ref acked, batch.Count);
            }
            catch (Exception e)
            {
                Interlocked.Increment(ref errors);
                Console.Error.WriteLine($"writer {w}: {e.Message}");
                return;
            }
        }
    })));
    var seconds = clock.Elapsed.TotalSeconds;
    long stored = 0;
    foreach (var r in runs) stored += (await tracking.GetMetricHistoryAsync(r, "loss")).Count;
    results.Add($"| {backend} | sustained ingestion, 16 writers × 1000-point batches, {opts.Seconds} s | {acked / seconds:N0} points/s; {acked:N0} acknowledged, {stored:N0} stored, {errors} errors |");
    Console.Error.WriteLine(results[^1]);

    // 3. search with a metric filter and order_by over --runs runs in one experiment.
    if (backend != "http")
    {
        var big = await tracking.CreateExperimentAsync("search-" + Guid.NewGuid().ToString("N"));
        await env.SeedRunsAsync(big, opts.Runs);
        var q = new RunQuery([big], "metrics.acc > 0.5 AND params.model = 'fasttree'", ["metrics.acc DESC"], MaxResults: 100);
        var first = await tracking.SearchRunsAsync(q);
        var slat = new List<double>();
        for (var i = 0; i < 30; i++)
        {
            var sw = Stopwatch.StartNew();
            var page = await tracking.SearchRunsAsync(q);
            slat.Add(sw.Elapsed.TotalMilliseconds);
            if (page.Items.Count != 100) throw new InvalidOperationException("search returned a short page");
        }
        results.Add($"| {backend} | search `metrics.acc > 0.5 AND params.model = 'fasttree'` order_by `metrics.acc DESC`, 100 results, over {opts.Runs:N0} runs | p50 {P(slat, 0.5):F1} ms, p95 {P(slat, 0.95):F1} ms |");
        Console.Error.WriteLine(results[^1]);
    }
}
Console.WriteLine("| backend | measure | result |");
Console.WriteLine("| --- | --- | --- |");
foreach (var r in results) Console.WriteLine(r);

static double P(List<double> xs, double q)
{
    var s = xs.Order().ToList();
    return s[(int)Math.Min(s.Count - 1, Math.Floor(q * s.Count))];
}

internal sealed record Args(string[] Backends, int Seconds, int Runs, string Postgres)
{
    public static Args Parse(string[] a)
    {
        string Get(string name, string def)
        {
            var i = Array.IndexOf(a, name);
            return i >= 0 && i + 1 < a.Length ? a[i + 1] : def;
        }
        return new Args(Get("--backends", "sqlite,postgres,http").Split(','), int.Parse(Get("--seconds", "30"), CultureInfo.InvariantCulture),
            int.Parse(Get("--runs", "100000"), CultureInfo.InvariantCulture),
            Get("--postgres", Environment.GetEnvironmentVariable("KILN_TEST_POSTGRES") ?? "Host=127.0.0.1;Port=55432;Username=postgres;Database=postgres"));
    }
}

/// <summary>A fresh store per backend: SQLite in a temp dir, a fresh PostgreSQL database, or a kiln server (SQLite) over loopback HTTP.</summary>
internal sealed class BenchEnv : IAsyncDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "kiln-bench-" + Guid.NewGuid().ToString("N"));
    private string? _pgAdmin;
    private string? _pgDb;
    private Microsoft.AspNetCore.Builder.WebApplication? _app;
    private SqlDatabase? _db;

    public TrackingStores Stores { get; private set; } = null!;

    public static async Task<BenchEnv> CreateAsync(string backend, string postgres)
    {
        var env = new BenchEnv();
        Directory.CreateDirectory(env._dir);
        switch (backend)
        {
            case "sqlite":
                env.Stores = TrackingStores.Open(env._dir);
                env._db = SqlDatabase.Sqlite(Path.Combine(env._dir, "kiln.db"));
                break;
            case "postgres":
                env._pgAdmin = postgres;
                env._pgDb = "kiln_bench_" + Guid.NewGuid().ToString("N");
                await using (var c = new NpgsqlConnection(postgres))
                {
                    await c.OpenAsync();
                    await using var cmd = new NpgsqlCommand($"CREATE DATABASE {env._pgDb}", c);
                    await cmd.ExecuteNonQueryAsync();
                }
                var cs = new NpgsqlConnectionStringBuilder(postgres) { Database = env._pgDb, MaxPoolSize = 32 }.ToString();
                env.Stores = TrackingStores.Open(cs, Path.Combine(env._dir, "artifacts"));
                env._db = SqlDatabase.Postgres(cs);
                break;
            case "http":
                env._app = KilnServer.BuildApp(new KilnServerOptions { Db = env._dir, Port = 0 });
                await env._app.StartAsync();
                env.Stores = TrackingStores.Open(KilnServer.Address(env._app).ToString());
                break;
            default:
                throw new ArgumentException($"unknown backend {backend}");
        }
        return env;
    }

    /// <summary>Bulk-loads runs (with an acc metric, a model param and a name tag) straight into the tables, in one transaction.</summary>
    public async Task SeedRunsAsync(string experimentId, int count)
    {
        var sw = Stopwatch.StartNew();
        var rng = new Random(42);
        if (_db!.IsPostgres)
        {
            // Server-side generation: the same rows as the SQLite branch, without 400,000 round trips.
            await _db.WriteAsync(async (c, tx) =>
            {
                foreach (var sql in (string[])[
                    $"INSERT INTO runs (run_id, experiment_id, run_name, user_id, status, start_time, end_time, lifecycle_stage, artifact_uri) SELECT md5('{experimentId}-' || i), {experimentId}, 'run-' || i, 'bench', 'FINISHED', 1700000000000 + i, 1700000000000 + i, 'active', 'mlflow-artifacts:/{experimentId}/' || md5('{experimentId}-' || i) || '/artifacts' FROM generate_series(0, {count - 1}) AS i",
                    $"INSERT INTO latest_metrics (run_id, key, step, timestamp, value, is_nan) SELECT md5('{experimentId}-' || i), 'acc', 0, 1700000000000 + i, random(), 0 FROM generate_series(0, {count - 1}) AS i",
                    $"INSERT INTO metrics (run_id, key, step, timestamp, value, is_nan) SELECT run_id, key, step, timestamp, value, is_nan FROM latest_metrics WHERE run_id IN (SELECT run_id FROM runs WHERE experiment_id = {experimentId})",
                    $"INSERT INTO params (run_id, key, value) SELECT md5('{experimentId}-' || i), 'model', CASE WHEN i % 3 = 0 THEN 'lightgbm' ELSE 'fasttree' END FROM generate_series(0, {count - 1}) AS i"])
                {
                    await using var cmd = c.CreateCommand();
                    cmd.CommandText = sql;
                    cmd.Transaction = tx;
                    cmd.CommandTimeout = 600;
                    await cmd.ExecuteNonQueryAsync();
                }
            }, CancellationToken.None);
        }
        else await _db.WriteAsync(async (c, tx) =>
        {
            var exp = long.Parse(experimentId, CultureInfo.InvariantCulture);
            await using var run = Cmd(c, tx, "INSERT INTO runs (run_id, experiment_id, run_name, user_id, status, start_time, end_time, lifecycle_stage, artifact_uri) VALUES (@id, @e, @n, 'bench', 'FINISHED', @t, @t, 'active', @a)", "id", "e", "n", "t", "a");
            await using var metric = Cmd(c, tx, "INSERT INTO latest_metrics (run_id, key, step, timestamp, value, is_nan) VALUES (@id, 'acc', 0, @t, @v, 0)", "id", "t", "v");
            await using var hist = Cmd(c, tx, "INSERT INTO metrics (run_id, key, step, timestamp, value, is_nan) VALUES (@id, 'acc', 0, @t, @v, 0)", "id", "t", "v");
            await using var param = Cmd(c, tx, "INSERT INTO params (run_id, key, value) VALUES (@id, 'model', @m)", "id", "m");
            for (var i = 0; i < count; i++)
            {
                var id = Guid.NewGuid().ToString("N");
                var t = 1_700_000_000_000L + i;
                var acc = rng.NextDouble();
                Set(run, id, exp, $"run-{i}", t, $"mlflow-artifacts:/{exp}/{id}/artifacts");
                await run.ExecuteNonQueryAsync();
                Set(metric, id, t, acc);
                await metric.ExecuteNonQueryAsync();
                Set(hist, id, t, acc);
                await hist.ExecuteNonQueryAsync();
                Set(param, id, i % 3 == 0 ? "lightgbm" : "fasttree");
                await param.ExecuteNonQueryAsync();
            }
        }, CancellationToken.None);
        Console.Error.WriteLine($"seeded {count:N0} runs in {sw.Elapsed.TotalSeconds:F1} s");
        await using var conn = await _db.OpenAsync(CancellationToken.None);
        await using var analyze = conn.CreateCommand();
        analyze.CommandText = "ANALYZE";
        await analyze.ExecuteNonQueryAsync();
    }

    private static DbCommand Cmd(DbConnection c, DbTransaction tx, string sql, params string[] names)
    {
        var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        cmd.Transaction = tx;
        foreach (var n in names)
        {
            var p = cmd.CreateParameter();
            p.ParameterName = n;
            cmd.Parameters.Add(p);
        }
        return cmd;
    }

    private static void Set(DbCommand cmd, params object[] values)
    {
        for (var i = 0; i < values.Length; i++) cmd.Parameters[i].Value = values[i];
    }

    public async ValueTask DisposeAsync()
    {
        await Stores.DisposeAsync();
        if (_db is not null) await _db.DisposeAsync();
        if (_app is not null)
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }
        if (_pgDb is not null)
        {
            NpgsqlConnection.ClearAllPools();
            await using var c = new NpgsqlConnection(_pgAdmin);
            await c.OpenAsync();
            await using var cmd = new NpgsqlCommand($"DROP DATABASE IF EXISTS {_pgDb} WITH (FORCE)", c);
            await cmd.ExecuteNonQueryAsync();
        }
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }
}
