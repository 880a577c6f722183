using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Kiln.Monitoring.Tests.Continuous;
using Kiln.Testing;

namespace Kiln.Monitoring.Tests.Observability;

/// <summary>
/// The shipped dashboards and rules against real processes: every metric they read is exposed by `kiln serve
/// --monitor` and `kiln server`; and end to end, a real Prometheus with the shipped configuration and rules
/// scrapes them, the drift alert fires, a real Alertmanager with the shipped route delivers it to kiln server, and
/// the retraining pipeline runs exactly once.
/// </summary>
public sealed partial class ObservabilityProcessTests : IDisposable
{
    private readonly TempDir _dir = new("kiln-observability");
    private readonly List<Process> _processes = [];

    public void Dispose()
    {
        foreach (var p in _processes)
        {
            try
            {
                if (!p.HasExited) p.Kill(entireProcessTree: true);
                p.WaitForExit(10_000);
            }
            catch (InvalidOperationException)
            {
            }
            p.Dispose();
        }
        _dir.Dispose();
    }

    private static string Port(int p) => p.ToString(CultureInfo.InvariantCulture);

    /// <summary>kiln serve --monitor on the shop model, after drifted traffic (x centred on 2.5, one color) with labels posted for it.</summary>
    private async Task<(Process Process, HttpClient Http, string Url)> StartServeAsync(string package, string monitorYaml)
    {
        var monitoring = _dir.File("serve-monitoring.yaml");
        await File.WriteAllTextAsync(monitoring, monitorYaml);
        var port = TestEnvironment.FreePort();
        var process = KilnCli.Start(["serve", "--model", package, "--port", Port(port), "--grpc-port", "-1", "--log-dir", _dir.File("logs"),
            "--monitor", monitoring, "--log-roll", "1s", "--poll-interval", "0"]);
        _processes.Add(process);
        var url = $"http://127.0.0.1:{Port(port)}";
        var http = new HttpClient { BaseAddress = new Uri(url), Timeout = TimeSpan.FromSeconds(20) };
        await ProcessPolling.PollAsync(async () => ((int)(await http.GetAsync("/ready")).StatusCode).ToString(CultureInfo.InvariantCulture), s => s == "200", process, "kiln serve readiness", 120);

        var rng = new Random(2);
        var rows = Enumerable.Range(0, 300).Select(_ => 2.5 + rng.NextDouble() * 2 - 1).ToList();
        var body = "[" + string.Join(",", rows.Select(x => string.Create(CultureInfo.InvariantCulture, $$"""{"x": {{x:F4}}, "color": "red"}"""))) + "]";
        using var response = await http.PostAsync("/predict", new StringContent(body, Encoding.UTF8, "application/json"));
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, text);
        var requestId = JsonDocument.Parse(text).RootElement.GetProperty("request_id").GetString();
        // Labels for the rows (the truth of the training data: y = 1 when x is above 0, noisily), so realized metrics exist.
        var items = string.Join(",", rows.Select((x, i) => $$"""{"request_id":"{{requestId}}","row":{{i}},"label":{{(x + rng.NextDouble() - 0.5 > 2.5 ? 1 : 0)}}}"""));
        using var feedback = await http.PostAsync("/api/v1/feedback", new StringContent($$"""{"items":[{{items}}]}""", Encoding.UTF8, "application/json"));
        Assert.True(feedback.IsSuccessStatusCode, await feedback.Content.ReadAsStringAsync());
        return (process, http, url);
    }

    /// <summary>kiln server --pipelines with a retrain pipeline listening to drift_alert.</summary>
    private async Task<(Process Process, HttpClient Http, string Url)> StartServerAsync()
    {
        Directory.CreateDirectory(_dir.File("pipelines"));
        await File.WriteAllTextAsync(_dir.File("pipelines/retrain.yaml"), """
            name: retrain
            parameters:
              model: none
              fingerprint: none
            triggers:
              - event: drift_alert
            tasks:
              train:
                kind: shell
                command: echo "retraining {{ params.model }} for alert {{ params.fingerprint }}"
            """);
        var port = TestEnvironment.FreePort();
        var process = KilnCli.Start(["server", "--db", _dir.File("db"), "--port", Port(port), "--pipelines", _dir.File("pipelines")]);
        _processes.Add(process);
        var url = $"http://127.0.0.1:{Port(port)}";
        var http = new HttpClient { BaseAddress = new Uri(url), Timeout = TimeSpan.FromSeconds(20) };
        await ProcessPolling.PollAsync(() => http.GetStringAsync("/api/v1/pipelines"), s => s.Contains("retrain", StringComparison.Ordinal), process, "kiln server's pipelines", 120);
        return (process, http, url);
    }

    private const string ServeMonitoring = """
        interval: 1s
        targets:
          - model: pkg
            window: 1h
        rules:
          - name: shop_drift
            metric: kiln_monitor_dataset_drift
            threshold: 0.5
            for: 1s
        """;

    /// <summary>Metric names in an exposition: sample names, and every name a TYPE line declares (histograms with their suffixes).</summary>
    private static HashSet<string> Exposed(string exposition)
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var line in exposition.Split('\n'))
        {
            if (line.StartsWith("# TYPE ", StringComparison.Ordinal))
            {
                var parts = line.Split(' ');
                names.Add(parts[2]);
                if (parts[3] == "histogram") names.UnionWith([parts[2] + "_bucket", parts[2] + "_sum", parts[2] + "_count"]);
            }
            else if (line.Length > 0 && line[0] != '#')
            {
                names.Add(SampleName().Match(line).Value);
            }
        }
        return names;
    }

    [GeneratedRegex(@"^[a-zA-Z_:][a-zA-Z0-9_:]*")]
    private static partial Regex SampleName();

    [Fact]
    public async Task Every_metric_the_dashboards_and_rules_read_is_exposed_by_real_kiln_serve_and_kiln_server()
    {
        var package = await ShopModel.TrainAsync(_dir);
        var (serveProcess, serve, _) = await StartServeAsync(package, ServeMonitoring);
        var (serverProcess, server, _) = await StartServerAsync();

        // Traffic on kiln server: tracking, pipelines, an event that runs a pipeline, an Alertmanager notification.
        Assert.True((await server.GetAsync("/api/2.0/mlflow/experiments/search?max_results=10")).IsSuccessStatusCode);
        using (var ev = await server.PostAsync("/api/v1/pipelines/events/drift_alert", new StringContent("""{"payload":{"model":"shop"}}""", Encoding.UTF8, "application/json")))
            Assert.Equal(202, (int)ev.StatusCode);
        await ProcessPolling.PollAsync(() => server.GetStringAsync("/api/v1/pipelines/runs?state=succeeded"),
            s => JsonDocument.Parse(s).RootElement.GetProperty("runs").GetArrayLength() == 1, serverProcess, "the pipeline run succeeding");
        using (var am = await server.PostAsync("/api/v1/pipelines/alertmanager", new StringContent("""{"version":"4","alerts":[]}""", Encoding.UTF8, "application/json")))
            Assert.Equal(202, (int)am.StatusCode);

        // A drifted window with labels: the drift, proxy and realized gauges are all there.
        var serveMetrics = await ProcessPolling.PollAsync(() => serve.GetStringAsync("/metrics"),
            m => m.Contains("kiln_monitor_dataset_drift{model=\"shop\"} 1\n", StringComparison.Ordinal) && m.Contains("kiln_monitor_realized_auc{", StringComparison.Ordinal),
            serveProcess, "drift and realized gauges on kiln serve's /metrics");
        var serverMetrics = await server.GetStringAsync("/metrics");
        Assert.Contains("kiln_pipeline_task_attempts_total{outcome=\"succeeded\"} 1\n", serverMetrics);
        Assert.Contains("kiln_pipeline_runs_created_total{trigger=\"event\"} 1\n", serverMetrics);
        Assert.Contains("kiln_server_requests_total{area=\"pipelines\",route=\"/api/v1/pipelines/events/{eventName}\",method=\"POST\",status=\"202\"} 1\n", serverMetrics);
        Assert.Contains("kiln_server_request_duration_seconds_bucket{area=\"tracking\",route=\"/api/2.0/mlflow/experiments/search\",method=\"GET\",le=\"+Inf\"} 1\n", serverMetrics);
        foreach (var m in new[] { serveMetrics, serverMetrics })
        {
            var check = await Proc.RunAsync(ObservabilityFiles.Tool("promtool"), ["check", "metrics"], stdin: m, timeout: TimeSpan.FromSeconds(30));
            Assert.True(check.ExitCode == 0, check.ToString());
        }

        var exposedByServe = Exposed(serveMetrics);
        var exposedByServer = Exposed(serverMetrics);
        var recorded = ObservabilityFiles.RecordedNames();
        var missing = new List<string>();
        var checkedNames = new HashSet<string>();
        foreach (var (where, expr) in ObservabilityFiles.Expressions())
        {
            foreach (var name in ObservabilityFiles.MetricNames(expr))
            {
                // Prometheus's own series, and the rules' recorded series (whose own expressions are checked here too).
                if (name is "up" or "ALERTS" || recorded.Contains(name)) continue;
                checkedNames.Add(name);
                var found = name.StartsWith("kiln_serve_", StringComparison.Ordinal) ? exposedByServe.Contains(name)
                    : name.StartsWith("kiln_server_", StringComparison.Ordinal) || name.StartsWith("kiln_pipeline_", StringComparison.Ordinal) ? exposedByServer.Contains(name)
                    : name.StartsWith("process_", StringComparison.Ordinal) || name.StartsWith("dotnet_", StringComparison.Ordinal) ? exposedByServe.Contains(name) && exposedByServer.Contains(name)
                    : exposedByServe.Contains(name) || exposedByServer.Contains(name);
                if (!found) missing.Add($"{name} ({where})");
            }
        }
        Assert.True(missing.Count == 0, "read by dashboards or rules but exposed by no kiln process:\n" + string.Join("\n", missing.Distinct()));
        Assert.True(checkedNames.Count >= 30, $"only {checkedNames.Count} metric names checked");
        Assert.Contains("kiln_monitor_reference_prediction_std", checkedNames);
        Assert.Contains("kiln_pipeline_task_attempt_duration_seconds_bucket", checkedNames);
    }
}
