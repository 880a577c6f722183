using System.Collections.Concurrent;
using Kiln.Core.Packaging;
using Kiln.Testing;

namespace Kiln.Serving.Tests;

public sealed class HotSwapTests
{
    private const string Row = """{"amount": 420.5, "hour": 3, "merchant": "online"}""";

    [Fact]
    public async Task A_replaced_package_is_swapped_in_without_a_failed_request_and_a_broken_one_leaves_the_old_serving()
    {
        using var dir = new TempDir("kiln-swap");
        var path = dir.File("fraud");
        TestPackages.CreateFraud(path, seed: 1, trees: 10);
        var v1 = DirectoryModelLocator.ContentVersion(path);
        // The next two versions are built aside first, so that only the swap into place is timed by the test.
        var v2Dir = TestPackages.CreateFraud(dir.File("v2"), seed: 5, trees: 30);
        var v2 = DirectoryModelLocator.ContentVersion(v2Dir);
        var v3Dir = TestPackages.CreateFraud(dir.File("v3"), seed: 9, trees: 15);
        var v3 = DirectoryModelLocator.ContentVersion(v3Dir);
        TestPackages.Corrupt(v3Dir);
        Assert.NotEqual(v1, v2);

        await using var server = await OwnServer.StartAsync(new ServeOptions
        {
            Models = [new ModelSpec(path)], Port = 0, GrpcPort = null, PollInterval = TimeSpan.FromMilliseconds(100),
        });

        // Four clients post in a loop through both swaps; every answer is recorded in order.
        using var stop = new CancellationTokenSource();
        var answers = new ConcurrentQueue<(int Client, int Seq, int Status, string? Version)>();
        var clients = Enumerable.Range(0, 4).Select(c => Task.Run(async () =>
        {
            for (var seq = 0; seq < 20_000 && !stop.IsCancellationRequested; seq++)
            {
                var (status, body) = await server.PostAsync("/predict", Row);
                answers.Enqueue((c, seq, status, status == 200 ? body.GetProperty("version").GetString() : body.ToString()));
            }
        })).ToList();

        await WaitUntil(() => answers.Count > 50);
        TestPackages.ReplaceDirectory(v2Dir, path);
        await WaitUntil(() => answers.Any(a => a.Version == v2));
        var countAtV2 = answers.Count;
        await WaitUntil(() => answers.Count > countAtV2 + 50);

        // A version that fails verification: the old one keeps serving, and /ready says why.
        TestPackages.ReplaceDirectory(v3Dir, path);
        await WaitUntil(() => server.Host.Models.Default.FailedVersion == v3);
        var countAtV3 = answers.Count;
        await WaitUntil(() => answers.Count > countAtV3 + 50);
        stop.Cancel();
        await Task.WhenAll(clients);

        Assert.All(answers, a => Assert.True(a.Status == 200, $"client {a.Client} request {a.Seq}: {a.Status} {a.Version}"));
        Assert.Equal([v1, v2], answers.Select(a => a.Version).Distinct().Order().ToList().OrderBy(v => v == v2).ToList());
        foreach (var perClient in answers.GroupBy(a => a.Client))
        {
            // Once a client has seen v2, it never sees v1 again.
            var ordered = perClient.OrderBy(a => a.Seq).Select(a => a.Version).ToList();
            var firstV2 = ordered.IndexOf(v2);
            if (firstV2 >= 0) Assert.DoesNotContain(v1, ordered.Skip(firstV2));
        }
        Assert.Equal(v2, (await server.PostAsync("/predict", Row)).Body.GetProperty("version").GetString());

        var (readyStatus, ready) = await server.GetAsync("/ready");
        Assert.Equal(200, readyStatus);
        var model = ready.GetProperty("models")[0];
        Assert.Equal(v2, model.GetProperty("version").GetString());
        Assert.Equal(v3, model.GetProperty("failed_version").GetString());
        Assert.Contains("SHA-256 mismatch", model.GetProperty("last_error").GetString());

        var metrics = await server.MetricsAsync();
        Assert.Contains($"kiln_serve_model_loads_total{{model=\"fraud\",version=\"{v2}\",outcome=\"success\"}} 1", metrics);
        Assert.Contains($"kiln_serve_model_loads_total{{model=\"fraud\",version=\"{v3}\",outcome=\"failure\"}} 1", metrics);
        Assert.Contains($"kiln_serve_model_ready{{model=\"fraud\",version=\"{v2}\"}} 1", metrics);
    }

    [Fact]
    public async Task A_model_that_cannot_load_at_start_keeps_the_server_not_ready_but_alive()
    {
        using var dir = new TempDir("kiln-swap");
        var path = TestPackages.CreateFraud(dir.File("fraud"));
        TestPackages.Corrupt(path);
        await using var server = await OwnServer.StartAsync(new ServeOptions { Models = [new ModelSpec(path)], Port = 0, GrpcPort = null, PollInterval = TimeSpan.Zero });
        Assert.Equal(200, (await server.GetAsync("/health")).Status);
        var (status, ready) = await server.GetAsync("/ready");
        Assert.Equal(503, status);
        Assert.False(ready.GetProperty("ready").GetBoolean());
        Assert.Equal("failed", ready.GetProperty("models")[0].GetProperty("state").GetString());
        Assert.Contains("model.zip", ready.GetProperty("models")[0].GetProperty("last_error").GetString());
        Assert.Equal(503, (await server.GetAsync("/v2/health/ready")).Status);
        var (predict, problem) = await server.PostAsync("/predict", Row);
        Assert.Equal(503, predict);
        Assert.Contains("not loaded", problem.GetProperty("detail").GetString());
    }

    private static async Task WaitUntil(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "timed out waiting");
            await Task.Delay(20);
        }
    }
}
