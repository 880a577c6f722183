using System.Globalization;
using System.Text;
using System.Text.Json;
using Kiln.Testing;

namespace Kiln.Cli.Tests;

/// <summary>
/// The loop of issue 8 end to end with real processes: `kiln serve` follows models:/fraud@production
/// while `kiln pipeline run` trains, gates, registers and promotes a better model.
/// </summary>
public class LoopTests
{
    private static string Quickstart => Path.Combine(TestEnvironment.RepoRoot, "examples", "quickstart");

    [Fact]
    public async Task Promoting_a_better_model_changes_what_serving_answers_with_no_failed_request()
    {
        using var dir = new TempDir();
        var store = dir.File("store");
        // A deliberately weak first model: one tree with two leaves, on the same data.
        var weak = dir.File("weak.yaml");
        var spec = await File.ReadAllTextAsync(Path.Combine(Quickstart, "spec.yaml"));
        spec = spec.Replace("data: transactions.csv", $"data: {Path.Combine(Quickstart, "transactions.csv")}", StringComparison.Ordinal)
            .Replace("trees: 100", "trees: 1", StringComparison.Ordinal).Replace("leaves: 32", "leaves: 2", StringComparison.Ordinal);
        await File.WriteAllTextAsync(weak, spec);
        string[] Loop(string specPath) =>
        [
            "pipeline", "run", Path.Combine(TestEnvironment.RepoRoot, "examples", "pipelines", "quickstart-loop.yaml"),
            "--param", $"spec={specPath}", "--param", $"data={Path.Combine(Quickstart, "transactions.csv")}",
            "--param", $"tracking_uri={store}", "--param", "min_metric=0.5",
        ];
        var first = await KilnCli.RunAsync(Loop(weak), dir.Path);
        Assert.True(first.ExitCode == 0, first.ToString());

        var port = TestEnvironment.FreePort();
        using var serve = KilnCli.Start(["serve", "--model", "models:/fraud@production", "--tracking-uri", store, "--port",
            port.ToString(CultureInfo.InvariantCulture), "--grpc-port", "-1", "--poll-interval", "1s"], dir.Path);
        try
        {
            using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(10) };
            await WaitReadyAsync(http, serve);
            var request = """{"amount": 950.0, "hour": 2, "merchant_category": "jewelry", "card_present": "no", "distance_from_home_km": 80.0, "customer_age": 30}""";
            Assert.Equal("1", (await PredictAsync(http, request)).Version);

            // Clients keep asking while the pipeline promotes a better model.
            using var stop = new CancellationTokenSource();
            var failures = 0;
            var versions = new System.Collections.Concurrent.ConcurrentBag<string>();
            var clients = Enumerable.Range(0, 3).Select(_ => Task.Run(async () =>
            {
                while (!stop.IsCancellationRequested)
                {
                    try { versions.Add((await PredictAsync(http, request)).Version); }
                    catch (Exception) { Interlocked.Increment(ref failures); }
                }
            })).ToArray();

            var second = await KilnCli.RunAsync(Loop(Path.Combine(Quickstart, "spec.yaml")), dir.Path);
            Assert.True(second.ExitCode == 0, second.ToString());
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (DateTime.UtcNow < deadline && !versions.Contains("2")) await Task.Delay(200);
            await Task.Delay(500);
            stop.Cancel();
            await Task.WhenAll(clients);

            Assert.Equal(0, failures);
            Assert.Contains("2", versions);
            Assert.Equal("2", (await PredictAsync(http, request)).Version);
        }
        finally
        {
            if (!serve.HasExited) serve.Kill(entireProcessTree: true);
        }
    }

    private static async Task WaitReadyAsync(HttpClient http, System.Diagnostics.Process process)
    {
        var deadline = DateTime.UtcNow.AddSeconds(90);
        while (DateTime.UtcNow < deadline && !process.HasExited)
        {
            try
            {
                if ((await http.GetAsync(new Uri("/ready", UriKind.Relative))).IsSuccessStatusCode) return;
            }
            catch (HttpRequestException) { }
            await Task.Delay(200);
        }
        Assert.Fail("kiln serve never became ready");
    }

    private static async Task<(string Version, double Probability)> PredictAsync(HttpClient http, string body)
    {
        using var response = await http.PostAsync(new Uri("/predict", UriKind.Relative), new StringContent(body, Encoding.UTF8, "application/json"));
        var text = await response.Content.ReadAsStringAsync();
        if (!response.IsSuccessStatusCode) throw new HttpRequestException($"{(int)response.StatusCode}: {text}");
        using var doc = JsonDocument.Parse(text);
        return (doc.RootElement.GetProperty("version").GetString()!, doc.RootElement.GetProperty("probability").GetDouble());
    }
}
