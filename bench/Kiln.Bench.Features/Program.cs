// Feature store benchmarks: online reads (in-process p50/p99, SQLite and Redis; HTTP throughput), historical
// retrieval (entity rows x 3 views) and materialization. Sizes come from the command line so the run can be scaled.
//   dotnet run -c Release --project bench/Kiln.Bench.Features -- [--feature-rows N] [--entity-rows N]
//       [--materialize-rows N] [--materialize-entities N] [--reads N] [--redis host:port] [--http-seconds S]
using System.Diagnostics;
using System.Globalization;
using DuckDB.NET.Data;
using Kiln.Features.Definitions;
using Kiln.Features.Http;
using Kiln.Features.Offline;
using Kiln.Features.Online;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

var opts = Args(args);
long featureRows = opts.GetValueOrDefault("feature-rows", 10_000_000);
long entityRows = opts.GetValueOrDefault("entity-rows", 1_000_000);
long materializeRows = opts.GetValueOrDefault("materialize-rows", 10_000_000);
long materializeEntities = opts.GetValueOrDefault("materialize-entities", 1_000_000);
var reads = (int)opts.GetValueOrDefault("reads", 20_000);
var httpSeconds = (int)opts.GetValueOrDefault("http-seconds", 5);
var redis = Environment.GetEnvironmentVariable("KILN_TEST_REDIS") ?? "127.0.0.1:56379";

var dir = Path.Combine(Path.GetTempPath(), "kiln-bench-features-" + Guid.NewGuid().ToString("N")[..8]);
Directory.CreateDirectory(dir);
Console.WriteLine($"machine: {Environment.ProcessorCount} cores, {Environment.OSVersion}, .NET {Environment.Version}; data in {dir}");
try
{
    // ---- data (DuckDB generates it; not timed) ----------------------------------------------------------------
    var perView = featureRows / 3;
    var driverKeys = Math.Max(1, entityRows / 10);
    using (var duck = new DuckDBConnection("DataSource=:memory:"))
    {
        duck.Open();
        for (var v = 0; v < 3; v++)
        {
            Exec(duck, $"""
                COPY (SELECT (i % {driverKeys})::BIGINT AS driver_id,
                             TIMESTAMP '2024-01-01' + to_seconds((hash(i * 7 + {v}) % (86400 * 30))::BIGINT) AS event_timestamp,
                             TIMESTAMP '2024-02-01' + to_seconds(i) AS created,
                             {string.Join(", ", Enumerable.Range(0, 10).Select(f => $"(hash(i + {f * 1000 + v}) % 10000) / 100.0 AS f{f}"))}
                      FROM range({perView}) t(i)) TO '{dir}/view{v}.parquet' (FORMAT parquet)
                """);
        }
        Exec(duck, $"""
            COPY (SELECT (hash(i) % {driverKeys})::BIGINT AS driver_id,
                         TIMESTAMP '2024-01-01' + to_seconds((hash(i * 3) % (86400 * 30))::BIGINT) AS event_timestamp
                  FROM range({entityRows}) t(i)) TO '{dir}/entities.parquet' (FORMAT parquet)
            """);
        Exec(duck, $"""
            COPY (SELECT (i % {materializeEntities})::BIGINT AS driver_id,
                         TIMESTAMP '2024-01-01' + to_seconds((hash(i) % (86400 * 30))::BIGINT) AS event_timestamp,
                         TIMESTAMP '2024-02-01' + to_seconds(i) AS created,
                         {string.Join(", ", Enumerable.Range(0, 10).Select(f => $"(hash(i + {f * 1000}) % 10000) / 100.0 AS f{f}"))}
                  FROM range({materializeRows}) t(i)) TO '{dir}/mat.parquet' (FORMAT parquet)
            """);
    }
    var schema = string.Join("\n", Enumerable.Range(0, 10).Select(f => $"      - {{name: f{f}, dtype: float64}}"));
    File.WriteAllText(Path.Combine(dir, "repo.yaml"), $"""
        project: bench
        entities:
          - {"{"}name: driver, join_keys: [driver_id], value_type: int64{"}"}
        sources:
        {string.Join("\n", Enumerable.Range(0, 3).Select(v => $"  - {{name: s{v}, path: view{v}.parquet, created_timestamp_column: created}}"))}
          - {"{"}name: smat, path: mat.parquet, created_timestamp_column: created{"}"}
        feature_views:
        {string.Join("\n", Enumerable.Range(0, 3).Select(v => $"  - name: v{v}\n    entities: [driver]\n    source: s{v}\n    ttl: 7d\n    schema:\n{schema}"))}
          - name: vmat
            entities: [driver]
            source: smat
            ttl: 0
            schema:
        {schema}
        feature_services:
          - {"{"}name: svc, features: [vmat]{"}"}
        """);
    var repo = RepositoryLoader.Load(dir);

    // ---- historical retrieval ----------------------------------------------------------------------------------
    var features = repo.ResolveFeatures(["v0:f0", "v0:f1", "v0:f2", "v1:f0", "v1:f1", "v1:f2", "v2:f0", "v2:f1", "v2:f2"], "bench");
    var sw = Stopwatch.StartNew();
    var rows = await HistoricalRetrieval.ToFileAsync(repo, Path.Combine(dir, "entities.parquet"), features, Path.Combine(dir, "train.parquet"),
        new RetrievalOptions { FullNames = true });
    Console.WriteLine($"historical retrieval (Kiln: ASOF JOIN on (event, created), ttl filter): {rows:N0} entity rows x 3 views ({featureRows:N0} feature rows, 9 features) -> Parquet in {sw.Elapsed.TotalSeconds:F1} s");

    // ---- the peer: the same point-in-time join as window functions over a union (Feast's Spark/Snowflake shape) -----
    if (opts.GetValueOrDefault("peer", 1) != 0)
    {
        sw.Restart();
        PeerRetrieval(dir);
        Console.WriteLine($"historical retrieval (peer: window functions over a union of entity and feature rows): same rows in {sw.Elapsed.TotalSeconds:F1} s");
        using var check = new DuckDBConnection("DataSource=:memory:");
        check.Open();
        using var cmd = check.CreateCommand();
        cmd.CommandText = $"""
            SELECT (SELECT count(*) FROM (SELECT * EXCLUDE (driver_id, event_timestamp) FROM read_parquet('{dir}/train.parquet') EXCEPT ALL SELECT * EXCLUDE (__row) FROM read_parquet('{dir}/peer.parquet')))
                 + (SELECT count(*) FROM (SELECT * EXCLUDE (__row) FROM read_parquet('{dir}/peer.parquet') EXCEPT ALL SELECT * EXCLUDE (driver_id, event_timestamp) FROM read_parquet('{dir}/train.parquet')))
            """;
        var differing = Convert.ToInt64(cmd.ExecuteScalar(), CultureInfo.InvariantCulture);
        Console.WriteLine($"  rows differing between Kiln and the peer: {differing}");
        if (differing != 0) throw new InvalidOperationException("the peer disagrees with Kiln's retrieval");
    }

    if (opts.GetValueOrDefault("retrieval-only", 0) != 0) return;

    // ---- materialization -----------------------------------------------------------------------------------------
    foreach (var kind in new[] { "sqlite", "redis" })
    {
        var location = kind == "sqlite" ? Path.Combine(dir, "online.db") : $"redis://{redis}";
        await using var store = await OnlineStores.OpenAsync(location);
        sw.Restart();
        var result = await Materializer.MaterializeAsync(repo, store, null, ["vmat"], new DateTime(2023, 1, 1, 0, 0, 0, DateTimeKind.Utc), new DateTime(2025, 1, 1, 0, 0, 0, DateTimeKind.Utc));
        Console.WriteLine($"materialize ({kind}): {materializeRows:N0} source rows -> {result[0].Rows:N0} entities x 10 features in {sw.Elapsed.TotalSeconds:F1} s");

        // ---- online reads, in process --------------------------------------------------------------------------
        var reader = new OnlineFeatureReader(repo, store);
        var random = new Random(42);
        var times = new double[reads];
        for (var i = 0; i < Math.Min(2000, reads); i++) await reader.ReadRowAsync("svc", new Dictionary<string, object?> { ["driver_id"] = (long)random.Next((int)materializeEntities) });
        for (var i = 0; i < reads; i++)
        {
            var key = new Dictionary<string, object?> { ["driver_id"] = (long)random.Next((int)materializeEntities) };
            var t0 = Stopwatch.GetTimestamp();
            var row = await reader.ReadRowAsync("svc", key);
            times[i] = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
            if (row.Count != 10) throw new InvalidOperationException("expected 10 features");
        }
        Array.Sort(times);
        Console.WriteLine($"online read ({kind}, in-process, 1 entity x 10 features, {reads:N0} reads): p50 {times[reads / 2]:F3} ms, p99 {times[(int)(reads * 0.99)]:F3} ms, max {times[^1]:F3} ms");

        // ---- online reads over HTTP -------------------------------------------------------------------------------
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Services.AddKilnFeatures(o =>
        {
            o.RepositoryPath = dir;
            o.OnlineStore = location;
            o.RefreshInterval = TimeSpan.FromHours(1);
        });
        await using var app = builder.Build();
        app.MapKilnFeatureEndpoints();
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        if (File.Exists("/usr/bin/wrk") && opts.GetValueOrDefault("wrk", 1) != 0)
        {
            // wrk (C, one thread, 32 connections) as the load generator: it costs the shared cores far less than HttpClient.
            var script = Path.Combine(dir, "post.lua");
            File.WriteAllText(script, $$$"""
                wrk.method = "POST"
                wrk.headers["Content-Type"] = "application/json"
                math.randomseed(42)
                request = function()
                  return wrk.format(nil, "/get-online-features", nil,
                    '{"feature_service": "svc", "entities": {"driver_id": [' .. math.random(0, {{{materializeEntities - 1}}}) .. ']}}')
                end
                """);
            var wrkArgs = $"-t1 -c32 -d{httpSeconds}s --latency -s {script} {address}";
            await RunAsync("/usr/bin/wrk", $"-t1 -c32 -d2s -s {script} {address}"); // warm-up
            var output = await RunAsync("/usr/bin/wrk", wrkArgs);
            var rps = output.Split('\n').FirstOrDefault(l => l.StartsWith("Requests/sec:", StringComparison.Ordinal))?.Split(':')[1].Trim();
            var p99 = output.Split('\n').FirstOrDefault(l => l.TrimStart().StartsWith("99%", StringComparison.Ordinal))?.Trim();
            var non2xx = output.Split('\n').FirstOrDefault(l => l.Contains("Non-2xx", StringComparison.Ordinal))?.Trim() ?? "0 non-2xx";
            Console.WriteLine($"online read ({kind}, HTTP /get-online-features, wrk {wrkArgs.Split(" -s ")[0]}): {rps} requests/s, latency {p99}, {non2xx}");
            await app.StopAsync();
            if (kind == "redis") await store.DeleteViewAsync("bench", "vmat");
            continue;
        }
        using var http = new HttpClient { BaseAddress = new Uri(address) };
        long done = 0, failed = 0;
        var until = DateTime.UtcNow.AddSeconds(httpSeconds);
        var workers = Enumerable.Range(0, 32).Select(w => Task.Run(async () =>
        {
            var r = new Random(w);
            while (DateTime.UtcNow < until)
            {
                var body = "{\"feature_service\": \"svc\", \"entities\": {\"driver_id\": [" + r.Next((int)materializeEntities).ToString(CultureInfo.InvariantCulture) + "]}}";
                using var response = await http.PostAsync("/get-online-features", new StringContent(body, System.Text.Encoding.UTF8, "application/json"));
                if (response.IsSuccessStatusCode) Interlocked.Increment(ref done); else Interlocked.Increment(ref failed);
            }
        })).ToArray();
        await Task.WhenAll(workers);
        Console.WriteLine($"online read ({kind}, HTTP /get-online-features, 32 clients in the same process, {httpSeconds} s): {done / (double)httpSeconds:N0} requests/s, {failed} failed");
        await app.StopAsync();
        if (kind == "redis") await store.DeleteViewAsync("bench", "vmat");
    }
}
finally
{
    Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
    Directory.Delete(dir, recursive: true);
}

// The peer query: for each view, the entity rows and the feature rows in one relation, ordered by time per key (feature
// rows before an entity row at the same time, older created first), and the last feature row at or before each entity
// row carried forward with last_value(... IGNORE NULLS); the ttl is applied afterwards. One pass of window functions.
static void PeerRetrieval(string dir)
{
    using var c = new DuckDBConnection("DataSource=:memory:");
    c.Open();
    Exec(c, "SET TimeZone = 'UTC'");
    Exec(c, $"CREATE TEMP TABLE e0 AS SELECT * FROM read_parquet('{dir}/entities.parquet')");
    Exec(c, "CREATE TEMP TABLE e AS SELECT rowid AS __row, driver_id, event_timestamp FROM e0");
    for (var v = 0; v < 3; v++)
    {
        Exec(c, $"""
            CREATE TEMP TABLE p{v} AS
            SELECT __row, CASE WHEN m.ts >= event_timestamp - INTERVAL 7 DAY THEN m.f0 END AS v{v}__f0,
                          CASE WHEN m.ts >= event_timestamp - INTERVAL 7 DAY THEN m.f1 END AS v{v}__f1,
                          CASE WHEN m.ts >= event_timestamp - INTERVAL 7 DAY THEN m.f2 END AS v{v}__f2
            FROM (
              SELECT __row, event_timestamp, is_entity,
                     last_value(feat IGNORE NULLS) OVER (PARTITION BY driver_id ORDER BY event_timestamp, is_entity, created NULLS FIRST
                                                         ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS m
              FROM (
                SELECT __row, driver_id, event_timestamp, 1 AS is_entity, NULL::TIMESTAMP AS created, NULL AS feat FROM e
                UNION ALL
                SELECT NULL, driver_id, event_timestamp, 0, created, struct_pack(ts := event_timestamp, f0 := f0, f1 := f1, f2 := f2)
                FROM read_parquet('{dir}/view{v}.parquet')
              )
            ) WHERE is_entity = 1
            """);
    }
    Exec(c, $"""
        COPY (SELECT e.__row, p0.v0__f0, p0.v0__f1, p0.v0__f2, p1.v1__f0, p1.v1__f1, p1.v1__f2, p2.v2__f0, p2.v2__f1, p2.v2__f2
              FROM e JOIN p0 USING (__row) JOIN p1 USING (__row) JOIN p2 USING (__row) ORDER BY e.__row)
        TO '{dir}/peer.parquet' (FORMAT parquet)
        """);
}

static async Task<string> RunAsync(string file, string arguments)
{
    var psi = new ProcessStartInfo(file, arguments) { RedirectStandardOutput = true, RedirectStandardError = true };
    using var p = Process.Start(psi)!;
    var output = await p.StandardOutput.ReadToEndAsync();
    await p.WaitForExitAsync();
    return output;
}

static void Exec(DuckDBConnection c, string sql)
{
    using var cmd = c.CreateCommand();
    cmd.CommandText = sql;
    cmd.ExecuteNonQuery();
}

static Dictionary<string, long> Args(string[] args)
{
    var d = new Dictionary<string, long>();
    for (var i = 0; i + 1 < args.Length; i += 2) d[args[i].TrimStart('-')] = long.Parse(args[i + 1], CultureInfo.InvariantCulture);
    return d;
}
