using System.Collections.Concurrent;
using Kiln.Testing;
using Kiln.Tracking;

namespace Kiln.Server.Tests;

/// <summary>Tests against the real `kiln server` binary: a client written by others, and a crash during ingestion.</summary>
public sealed class RealServerTests
{
    [Fact]
    public async Task Npm_mlflow_client_drives_a_whole_run_lifecycle()
    {
        var js = Path.Combine(TestEnvironment.RepoRoot, "tests", "js");
        Assert.True(Directory.Exists(Path.Combine(js, "node_modules", "mlflow")),
            "tests/js/node_modules/mlflow is missing: run `npm install` in tests/js (test.sh does)");
        using var dir = new TempDir("kiln-npm");
        await using var server = await RealServer.StartAsync(dir.Path);
        var result = await Proc.RunAsync("node", ["mlflow-lifecycle.js"], js,
            env: new Dictionary<string, string> { ["KILN_URL"] = server.Address.ToString().TrimEnd('/') }, timeout: TimeSpan.FromMinutes(2));
        Assert.True(result.ExitCode == 0, $"{result}\nserver log:\n{server.Log}");
        Assert.StartsWith("LIFECYCLE OK", result.StdOut, StringComparison.Ordinal);

        // What the npm client wrote is there for Kiln's own client too.
        var runId = result.StdOut.Trim().Split(' ')[^1];
        await using var stores = TrackingStores.Open(server.Address.ToString());
        var run = await stores.Tracking.GetRunAsync(runId);
        Assert.Equal(RunStatus.Finished, run.Info.Status);
        Assert.Equal(0.8, run.Metric("auc"));
    }

    public static TheoryData<string> Backends() => ["sqlite", "postgres"];

    [Theory]
    [MemberData(nameof(Backends))]
    public async Task Kill_9_during_ingestion_loses_no_acknowledged_write(string backend)
    {
        using var dir = new TempDir("kiln-kill");
        string db = dir.Path;
        TestDatabase? pgDatabase = null;
        if (backend == "postgres")
        {
            pgDatabase = await TestDatabase.CreateAsync();
            db = pgDatabase.ConnectionString;
        }
        try
        {
            string runId;
            var acknowledged = new ConcurrentBag<(int Writer, long Step)>();
            var failures = 0;
            await using (var server = await RealServer.StartAsync(db, dir.Path))
            {
                await using var stores = TrackingStores.Open(server.Address.ToString());
                var exp = await stores.Tracking.CreateExperimentAsync("crash");
                runId = (await stores.Tracking.CreateRunAsync(new CreateRun(exp))).RunId;
                using var stop = new CancellationTokenSource();
                var writers = Enumerable.Range(0, 4).Select(w => Task.Run(async () =>
                {
                    for (long batch = 0; batch < 100_000 && !stop.IsCancellationRequested; batch++)
                    {
                        var metrics = Enumerable.Range(0, 20).Select(i => new Metric($"w{w}", i, 1, (batch * 20) + i)).ToList();
                        try
                        {
                            await stores.Tracking.LogBatchAsync(runId, metrics, null, null);
                        }
                        catch (TrackingException)
                        {
                            // The server died mid-request: this batch was never acknowledged.
                            Interlocked.Increment(ref failures);
                            return;
                        }
                        foreach (var m in metrics) acknowledged.Add((w, m.Step));
                    }
                })).ToArray();
                // Let ingestion run, then kill the server while batches are in flight.
                for (var i = 0; i < 100 && acknowledged.Count < 1000; i++) await Task.Delay(50);
                await server.KillHardAsync();
                await Task.WhenAll(writers);
                stop.Cancel();
            }
            Assert.True(acknowledged.Count >= 1000, $"only {acknowledged.Count} points were acknowledged before the kill");
            Assert.True(failures > 0, "no writer saw the server die: the kill came after ingestion ended");

            // It starts again cleanly on the same data, and every acknowledged point is there.
            await using var restarted = await RealServer.StartAsync(db, dir.Path);
            await using var after = TrackingStores.Open(restarted.Address.ToString());
            for (var w = 0; w < 4; w++)
            {
                var stored = (await after.Tracking.GetMetricHistoryAsync(runId, $"w{w}")).Select(m => m.Step).ToHashSet();
                var missing = acknowledged.Where(a => a.Writer == w && !stored.Contains(a.Step)).ToList();
                Assert.True(missing.Count == 0, $"writer {w}: {missing.Count} acknowledged points missing after restart");
            }
            await after.Tracking.LogMetricAsync(runId, "after-restart", 1);
            Assert.Equal(1, (await after.Tracking.GetRunAsync(runId)).Metric("after-restart"));
        }
        finally
        {
            if (pgDatabase is not null) await pgDatabase.DisposeAsync();
        }
    }
}
