using System.Globalization;
using System.Text;
using System.Text.Json;
using Kiln.Testing;

namespace Kiln.Features.Tests;

/// <summary>The user's path with the real binary: apply, train from the service, materialize, serve, predict by entity key.</summary>
public sealed class FeatureServiceCliTests
{
    [Fact]
    public async Task Train_from_a_feature_service_then_serve_it_by_entity_key()
    {
        using var world = new RideWorld(seed: 3);
        Task<Proc.Result> Kiln(params string[] args) => KilnCli.RunAsync(args, workingDirectory: world.Dir.Path);

        // The old spelling still works (the materialize below reads what it applied), with one warning line.
        var apply = await Kiln("features", "apply", "repo", "--registry", "registry.db");
        Assert.True(apply.ExitCode == 0, apply.ToString());
        Assert.StartsWith("warning: --registry is now --feature-registry\n", apply.StdErr, StringComparison.Ordinal);

        var train = await Kiln("train", "train.yaml", "--out", "pkg", "--json");
        Assert.True(train.ExitCode == 0, train.ToString());
        var show = await Kiln("package", "show", "pkg");
        Assert.True(show.ExitCode == 0, show.ToString());
        using (var metadata = JsonDocument.Parse(File.ReadAllText(world.Dir.File("pkg/metadata.json"))))
        {
            var fs = metadata.RootElement.GetProperty("feature_store");
            Assert.Equal("acceptance", fs.GetProperty("service").GetString());
            Assert.Equal(1, fs.GetProperty("definitions_version").GetInt32());
            Assert.Equal("driver_stats:trips", fs.GetProperty("inputs").GetProperty("trips").GetString());
        }

        var end = world.Now.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture);
        var start = world.Now.AddDays(-30).ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture);
        var materialize = await Kiln("features", "materialize", "repo", "--start", start, "--end", end, "--feature-registry", "registry.db", "--online-store", "online.db");
        Assert.True(materialize.ExitCode == 0, materialize.ToString());

        var port = TestEnvironment.FreePort();
        using var process = KilnCli.Start(["serve", "--model", "pkg", "--port", port.ToString(CultureInfo.InvariantCulture), "--grpc-port", "-1", "--poll-interval", "0",
            "--online-store", "online.db", "--feature-registry", "registry.db"], workingDirectory: world.Dir.Path);
        try
        {
            using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(30) };
            var deadline = DateTime.UtcNow.AddSeconds(90);
            var ready = false;
            while (!ready && DateTime.UtcNow < deadline && !process.HasExited)
            {
                try { ready = (await http.GetAsync("/ready")).IsSuccessStatusCode; }
                catch (HttpRequestException) { }
                if (!ready) await Task.Delay(200);
            }
            Assert.True(ready, "kiln serve never became ready");

            using var ok = await http.PostAsync("/predict", new StringContent("""{"driver_id": 7, "amount": 80.5}""", Encoding.UTF8, "application/json"));
            var okBody = await ok.Content.ReadAsStringAsync();
            Assert.True(ok.IsSuccessStatusCode, okBody);
            using (var doc = JsonDocument.Parse(okBody))
            {
                Assert.Equal("acceptance", doc.RootElement.GetProperty("feature_service").GetString());
                Assert.InRange(doc.RootElement.GetProperty("probability").GetDouble(), 0, 1);
            }
            using var unknown = await http.PostAsync("/predict", new StringContent("""{"driver_id": 44, "amount": 80.5}""", Encoding.UTF8, "application/json"));
            Assert.Contains("\"missing_features\":{\"conv_rate\":\"NOT_FOUND\"", await unknown.Content.ReadAsStringAsync());

            using var bad = await http.PostAsync("/predict", new StringContent("""{"amount": 80.5}""", Encoding.UTF8, "application/json"));
            Assert.Equal(400, (int)bad.StatusCode);
            Assert.Contains("driver_id: missing entity key", await bad.Content.ReadAsStringAsync());
        }
        finally
        {
            if (!process.HasExited) process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
        }
    }

    [Fact]
    public async Task Spec_mistakes_name_the_key_and_nothing_is_written()
    {
        using var world = new RideWorld(seed: 4);
        Task<Proc.Result> Kiln(params string[] args) => KilnCli.RunAsync(args, workingDirectory: world.Dir.Path);
        var spec = File.ReadAllText(world.Dir.File("train.yaml"));

        File.WriteAllText(world.Dir.File("both.yaml"), spec.Replace("features_from:", "data: entities.parquet\nfeatures_from:", StringComparison.Ordinal));
        var r = await Kiln("train", "both.yaml", "--out", "pkg");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("'features_from' cannot be given together with 'data'", r.StdErr);

        File.WriteAllText(world.Dir.File("typo.yaml"), spec.Replace("  service: acceptance", "  servce: acceptance", StringComparison.Ordinal));
        r = await Kiln("train", "typo.yaml", "--out", "pkg");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("typo.yaml:4:3: features_from: unknown key 'servce' (did you mean 'service'?;", r.StdErr);

        // Not applied yet: the registry says so.
        r = await Kiln("train", "train.yaml", "--out", "pkg");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("features_from:", r.StdErr);
        Assert.Contains("nothing applied yet", r.StdErr);

        Assert.Equal(0, (await Kiln("features", "apply", "repo", "--feature-registry", "registry.db")).ExitCode);
        File.WriteAllText(world.Dir.File("speed.yaml"), spec.Replace("  amount: numeric", "  speed: numeric", StringComparison.Ordinal));
        r = await Kiln("train", "speed.yaml", "--out", "pkg");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("feature 'speed' is neither a feature of service 'acceptance' (conv_rate, trips, tier) nor a column of the entity table entities.parquet (driver_id, event_timestamp, amount, accepted)", r.StdErr);

        File.WriteAllText(world.Dir.File("service.yaml"), spec.Replace("service: acceptance", "service: nope", StringComparison.Ordinal));
        r = await Kiln("train", "service.yaml", "--out", "pkg");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("unknown feature service 'nope' (known: acceptance)", r.StdErr);
        Assert.False(Directory.Exists(world.Dir.File("pkg")));
    }
}
