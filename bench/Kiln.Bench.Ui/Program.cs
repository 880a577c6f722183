// Web UI benchmark: page answer times of kiln server's UI at 100,000 runs and 1,000,000 metric points, each against the
// JSON API call that reads the same data (the "peer": what a script or MLflow's client gets), in alternating rounds.
// Usage: dotnet run -c Release --project bench/Kiln.Bench.Ui -- [--runs 100000] [--steps 10] [--rounds 30]
using System.Data.Common;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using Kiln.Server;
using Kiln.Storage;
using Kiln.Tracking;

var runs = Arg("--runs", 100_000);
var steps = Arg("--steps", 10);
var rounds = Arg("--rounds", 30);
Console.Error.WriteLine($"machine: {Environment.ProcessorCount} cores, load average {File.ReadAllText("/proc/loadavg").Split(' ')[0]}");

var dir = Path.Combine(Path.GetTempPath(), "kiln-bench-ui-" + Guid.NewGuid().ToString("N"));
Directory.CreateDirectory(dir);
try
{
    var (experiment, runIds) = await SeedAsync(dir, runs, steps);
    var options = new KilnServerOptions { Db = dir, Port = 0 };
    await using var app = KilnServer.BuildApp(options);
    await app.StartAsync();
    using var http = new HttpClient { BaseAddress = KilnServer.Address(app) };

    var deepToken = Kiln.Tracking.Search.PageToken.Encode(runs - 50);
    var filter = Uri.EscapeDataString("metrics.acc > 0.5 AND params.model = 'fasttree'");
    var order = Uri.EscapeDataString("metrics.acc DESC");
    var compare = string.Join('&', runIds.Take(5).Select(r => "run=" + r));
    var search = $$"""{"experiment_ids":["{{experiment}}"],"max_results":50}""";
    var searchFiltered = $$"""{"experiment_ids":["{{experiment}}"],"max_results":50,"filter":"metrics.acc > 0.5 AND params.model = 'fasttree'","order_by":["metrics.acc DESC"]}""";
    // (page, UI request, the API request for the same data)
    var cases = new (string Name, Func<Task<HttpResponseMessage>> Ui, Func<Task<HttpResponseMessage>> Api)[]
    {
        ("runs table, first 50", () => http.GetAsync($"/experiments/{experiment}"), () => Post("/api/2.0/mlflow/runs/search", search)),
        ("runs table, filter + sort by metric", () => http.GetAsync($"/experiments/{experiment}?filter={filter}&order={order}"), () => Post("/api/2.0/mlflow/runs/search", searchFiltered)),
        // The UI's "Next page" link of the default order is a keyset cursor (before=TIME:SKIP); the API pages by offset.
        ("runs table, last page", () => http.GetAsync($"/experiments/{experiment}?before={1_700_000_000_000L + 49}:0"),
            () => Post("/api/2.0/mlflow/runs/search", $$"""{"experiment_ids":["{{experiment}}"],"max_results":50,"page_token":"{{deepToken}}"}""")),
        ($"run page ({steps}-step charts)", () => http.GetAsync($"/runs/{runIds[0]}"), () => http.GetAsync($"/api/2.0/mlflow/metrics/get-history?run_id={runIds[0]}&metric_key=loss")),
        ("compare 5 runs", () => http.GetAsync($"/compare?{compare}"), () => http.GetAsync($"/api/2.0/mlflow/runs/get?run_id={runIds[0]}")),
        ("experiments list", () => http.GetAsync("/experiments"), () => http.GetAsync("/api/2.0/mlflow/experiments/search?max_results=100")),
    };
    Console.WriteLine($"| page | UI p50 | UI p95 | API p50 | UI / API (median of per-round ratios) |");
    Console.WriteLine("| --- | --- | --- | --- | --- |");
    foreach (var (name, ui, api) in cases)
    {
        for (var w = 0; w < 3; w++)
        {
            await Time(ui);
            await Time(api);
        }
        var u = new List<double>();
        var a = new List<double>();
        var ratio = new List<double>();
        for (var r = 0; r < rounds; r++)
        {
            // Alternate which goes first so neither always meets a warm cache.
            double tu, ta;
            if (r % 2 == 0) { tu = await Time(ui); ta = await Time(api); }
            else { ta = await Time(api); tu = await Time(ui); }
            u.Add(tu);
            a.Add(ta);
            ratio.Add(tu / ta);
        }
        Console.WriteLine($"| {name} | {P(u, 0.5):F1} ms | {P(u, 0.95):F1} ms | {P(a, 0.5):F1} ms | {P(ratio, 0.5):F2} |");
    }
    await app.StopAsync();

    Task<HttpResponseMessage> Post(string path, string json) => http.PostAsync(path, new StringContent(json, Encoding.UTF8, "application/json"));
}
finally
{
    Directory.Delete(dir, recursive: true);
}

static async Task<double> Time(Func<Task<HttpResponseMessage>> call)
{
    var sw = Stopwatch.StartNew();
    using var r = await call();
    var body = await r.Content.ReadAsByteArrayAsync();
    var ms = sw.Elapsed.TotalMilliseconds;
    if (!r.IsSuccessStatusCode) throw new InvalidOperationException($"{r.RequestMessage?.RequestUri}: {(int)r.StatusCode} {Encoding.UTF8.GetString(body)[..Math.Min(300, body.Length)]}");
    return ms;
}

static double P(List<double> xs, double q)
{
    var s = xs.Order().ToList();
    return s[(int)Math.Min(s.Count - 1, Math.Round(q * (s.Count - 1)))];
}

int Arg(string name, int fallback)
{
    var i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1], CultureInfo.InvariantCulture) : fallback;
}

// Runs with an acc metric, a loss metric logged over STEPS steps, a model param; bulk-loaded in one transaction.
static async Task<(string Experiment, List<string> Runs)> SeedAsync(string dir, int count, int steps)
{
    var sw = Stopwatch.StartNew();
    string experiment;
    await using (var stores = TrackingStores.Open(dir))
    {
        experiment = await stores.Tracking.CreateExperimentAsync("ui-bench");
    }
    var ids = new List<string>(count);
    await using var db = MetadataDatabase.Open(dir, "--db");
    var rng = new Random(42);
    await db.WriteAsync(async (c, tx) =>
    {
        var exp = long.Parse(experiment, CultureInfo.InvariantCulture);
        await using var run = Cmd(c, tx, "INSERT INTO runs (run_id, experiment_id, run_name, user_id, status, start_time, end_time, lifecycle_stage, artifact_uri) VALUES (@id, @e, @n, 'bench', 'FINISHED', @t, @t, 'active', @a)", "id", "e", "n", "t", "a");
        await using var latest = Cmd(c, tx, "INSERT INTO latest_metrics (run_id, key, step, timestamp, value, is_nan) VALUES (@id, @k, @s, @t, @v, 0)", "id", "k", "s", "t", "v");
        await using var hist = Cmd(c, tx, "INSERT INTO metrics (run_id, key, step, timestamp, value, is_nan) VALUES (@id, @k, @s, @t, @v, 0)", "id", "k", "s", "t", "v");
        await using var param = Cmd(c, tx, "INSERT INTO params (run_id, key, value) VALUES (@id, 'model', @m)", "id", "m");
        for (var i = 0; i < count; i++)
        {
            var id = Guid.NewGuid().ToString("N");
            ids.Add(id);
            var t = 1_700_000_000_000L + i;
            Set(run, id, exp, $"run-{i}", t, $"mlflow-artifacts:/{exp}/{id}/artifacts");
            await run.ExecuteNonQueryAsync();
            var acc = rng.NextDouble();
            Set(latest, id, "acc", 0L, t, acc);
            await latest.ExecuteNonQueryAsync();
            var loss = 1.0;
            for (var s = 0; s < steps; s++)
            {
                loss *= 0.9 + rng.NextDouble() * 0.05;
                Set(hist, id, "loss", (long)s, t + s, loss);
                await hist.ExecuteNonQueryAsync();
            }
            Set(latest, id, "loss", (long)(steps - 1), t + steps - 1, loss);
            await latest.ExecuteNonQueryAsync();
            Set(param, id, i % 3 == 0 ? "lightgbm" : "fasttree");
            await param.ExecuteNonQueryAsync();
        }
    }, CancellationToken.None);
    await db.WriteAsync(async (c, tx) =>
    {
        await using var analyze = Cmd(c, tx, "ANALYZE");
        await analyze.ExecuteNonQueryAsync();
    }, CancellationToken.None);
    Console.Error.WriteLine($"seeded {count:N0} runs and {(long)count * steps:N0} metric points in {sw.Elapsed.TotalSeconds:F1} s");
    // The newest runs first, as the table shows them.
    ids.Reverse();
    return (experiment, ids);
}

static DbCommand Cmd(DbConnection c, DbTransaction tx, string sql, params string[] names)
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

static void Set(DbCommand cmd, params object[] values)
{
    for (var i = 0; i < values.Length; i++) cmd.Parameters[i].Value = values[i];
}
