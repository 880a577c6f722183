using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using Kiln.Core.Data;
using Kiln.Core.PredictionLog;
using Kiln.Server.Tests;
using Kiln.Testing;

namespace Kiln.Web.Tests;

/// <summary>
/// The quickstart run twice in one directory (two runs of the fraud model, versions 1 and 2, production on 2); a drifted
/// hour in the prediction log; a pipeline whose middle task fails, run once; then the real `kiln server` on that
/// directory's store with the log and the pipelines, as a user would start it.
/// </summary>
public sealed class UiFixture : IAsyncLifetime
{
    private readonly TempDir _dir = new("kiln-ui");
    private RealServer? _server;

    public Uri Address => _server!.Address;

    public string Dir => _dir.Path;

    public string Db => _dir.File(".kiln");

    public string ServerLog => _server?.Log ?? "";

    public async Task InitializeAsync()
    {
        var quickstart = Path.Combine(TestEnvironment.RepoRoot, "examples", "quickstart");
        for (var i = 0; i < 2; i++)
        {
            var r = await KilnCli.RunAsync(["quickstart", "--dir", quickstart], _dir.Path);
            Assert.True(r.ExitCode == 0, r.ToString());
        }
        WriteDriftedLog();
        var features = await KilnCli.RunAsync(["features", "apply", Path.Combine(TestEnvironment.RepoRoot, "examples", "features"), "--feature-registry", Db], _dir.Path);
        Assert.True(features.ExitCode == 0, features.ToString());
        Directory.CreateDirectory(_dir.File("pipelines"));
        await File.WriteAllTextAsync(_dir.File("pipelines/nightly.yaml"), """
            name: nightly
            description: Prepare, train (fails), publish.
            tasks:
              prepare:
                kind: shell
                command: echo prepared
              train:
                kind: shell
                depends_on: prepare
                command: echo "no training data today" >&2; exit 3
              publish:
                kind: shell
                depends_on: train
                command: echo published
            """);
        // A continuous monitor of the drifted log, every 2 s, with a rule on the proxy metric prediction_mean.
        await File.WriteAllTextAsync(_dir.File("monitoring.yaml"), """
            interval: 2s
            targets:
              - model: models:/fraud@production
                name: fraud
                window: 1d
                min_rows: 1
            rules:
              - name: fraud_prediction_mean_high
                metric: kiln_monitor_prediction_mean
                labels: { model: fraud }
                threshold: 0.5
            """);
        _server = await RealServer.StartAsync(Db, _dir.Path, ["--log-dir", LogDir, "--pipelines", _dir.File("pipelines"), "--monitor", _dir.File("monitoring.yaml")]);
        FailedPipelineRun = await RunPipelineAsync();
    }

    /// <summary>The quickstart's prediction log (kiln quickstart serves one request into it).</summary>
    public string LogDir => Path.Combine(Db, "prediction-log");

    /// <summary>The id of the nightly pipeline's run, which failed at its train task.</summary>
    public string FailedPipelineRun { get; private set; } = "";

    /// <summary>Starts the nightly pipeline through the API and waits for it to finish; returns the run id.</summary>
    public async Task<string> RunPipelineAsync()
    {
        using var http = Client();
        using var started = await http.PostAsync(new Uri("/api/v1/pipelines/runs", UriKind.Relative),
            new StringContent("""{"pipeline":"nightly"}""", Encoding.UTF8, "application/json"));
        var body = await started.Content.ReadAsStringAsync();
        Assert.True(started.IsSuccessStatusCode, body);
        var id = JsonDocument.Parse(body).RootElement.GetProperty("run_id").GetString()!;
        for (var i = 0; i < 300; i++)
        {
            var state = JsonDocument.Parse(await http.GetStringAsync(new Uri($"/api/v1/pipelines/runs/{id}", UriKind.Relative)))
                .RootElement.GetProperty("run").GetProperty("state").GetString();
            if (state is "failed" or "succeeded" or "cancelled") return id;
            await Task.Delay(100);
        }
        throw new TimeoutException($"pipeline run {id} did not finish");
    }

    /// <summary>
    /// 2,000 rows of examples/quickstart/recent.csv (the quickstart's later, drifted period) logged as version 2 of fraud
    /// answered them in the last hour, written by Kiln's Parquet writer in the log's layout; amount is tripled on top, so
    /// at least that feature drifts whatever the period does.
    /// </summary>
    private void WriteDriftedLog()
    {
        var lines = File.ReadAllLines(Path.Combine(TestEnvironment.RepoRoot, "examples", "quickstart", "recent.csv")).Skip(1).Take(2000)
            .Select(l => l.Split(',')).ToList();
        var now = DateTime.UtcNow;
        var dir = PredictionLogLayout.PartitionDirectory(LogDir, "fraud", "2", DateOnly.FromDateTime(now));
        Directory.CreateDirectory(dir);
        ParquetColumn[] columns =
        [
            new(PredictionLogLayout.RequestId, ParquetColumnKind.Text, true),
            new(PredictionLogLayout.Timestamp, ParquetColumnKind.Timestamp, false),
            new(PredictionLogLayout.Row, ParquetColumnKind.Int32, false),
            new(PredictionLogLayout.InputPrefix + "amount", ParquetColumnKind.Double, true),
            new(PredictionLogLayout.InputPrefix + "hour", ParquetColumnKind.Double, true),
            new(PredictionLogLayout.InputPrefix + "merchant_category", ParquetColumnKind.Text, true),
            new(PredictionLogLayout.InputPrefix + "card_present", ParquetColumnKind.Text, true),
            new(PredictionLogLayout.InputPrefix + "distance_from_home_km", ParquetColumnKind.Double, true),
            new(PredictionLogLayout.InputPrefix + "customer_age", ParquetColumnKind.Double, true),
            new(PredictionLogLayout.Prediction, ParquetColumnKind.Text, true),
            new(PredictionLogLayout.Value, ParquetColumnKind.Double, false),
        ];
        static double Num(string s) => s.Length == 0 ? double.NaN : double.Parse(s, CultureInfo.InvariantCulture);
        using var stream = File.Create(Path.Combine(dir, "part-ui-test.parquet"));
        using var writer = new ParquetTableWriter(stream, columns);
        var n = lines.Count;
        writer.BeginRowGroup(n);
        writer.WriteText([.. lines.Select(l => (string?)l[0])]);
        writer.WriteTimestamp([.. Enumerable.Range(0, n).Select(i => now.AddMinutes(-30).AddMilliseconds(i))]);
        writer.WriteInt32([.. Enumerable.Repeat(0, n)]);
        writer.WriteDouble([.. lines.Select(l => Num(l[1]) * 3)]);
        writer.WriteDouble([.. lines.Select(l => Num(l[2]))]);
        writer.WriteText([.. lines.Select(l => (string?)l[3])]);
        writer.WriteText([.. lines.Select(l => (string?)l[4])]);
        writer.WriteDouble([.. lines.Select(l => Num(l[5]))]);
        writer.WriteDouble([.. lines.Select(l => Num(l[6]))]);
        writer.WriteText([.. Enumerable.Repeat((string?)"0", n)]);
        writer.WriteDouble([.. Enumerable.Repeat(0.1, n)]);
        writer.EndRowGroup();
        writer.Finish();
    }

    public HttpClient Client() => new(new HttpClientHandler { AllowAutoRedirect = false }) { BaseAddress = Address };

    public async Task<(HttpStatusCode Status, string Html)> GetAsync(string path)
    {
        using var http = Client();
        using var r = await http.GetAsync(new Uri(path, UriKind.Relative));
        return (r.StatusCode, await r.Content.ReadAsStringAsync());
    }

    public async Task DisposeAsync()
    {
        if (_server is not null) await _server.DisposeAsync();
        _dir.Dispose();
    }
}
