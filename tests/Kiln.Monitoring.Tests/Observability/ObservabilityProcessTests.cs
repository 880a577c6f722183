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
/// --monitor`, `kiln server` and `kiln worker` (on the test PostgreSQL, KILN_TEST_POSTGRES); and end to end, a real Prometheus with the shipped configuration and rules
/// scrapes them, the drift alert fires, a real Alertmanager with the shipped route delivers it to kiln server, and
/// the retraining pipeline runs exactly once.
/// </summary>
public sealed partial class ObservabilityProcessTests : IAsyncLifetime
{
    private readonly TempDir _dir = new("kiln-observability");
    private readonly List<Process> _processes = [];
    private readonly List<TestDatabase> _databases = [];

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
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
        foreach (var database in _databases) await database.DisposeAsync();
        _dir.Dispose();
    }

    /// <summary>
    /// kiln worker --metrics-port on a fresh database of the test PostgreSQL, after it ran a distributed batch job
    /// (`kiln batch --distributed`, 40 rows in 2 partitions): returns its /metrics.
    /// </summary>
    private async Task<string> RunWorkerJobAsync(string package)
    {
        var database = await TestDatabase.CreateAsync("kiln_obs");
        _databases.Add(database);
        var db = database.Uri;
        var port = TestEnvironment.FreePort();
        var worker = KilnCli.Start(["worker", "--db", db, "--concurrency", "2", "--metrics-port", Port(port)]);
        _processes.Add(worker);
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{Port(port)}"), Timeout = TimeSpan.FromSeconds(20) };
        await ProcessPolling.PollAsync(() => http.GetStringAsync("/health"), s => s == "ok", worker, "kiln worker's metrics listener", 120);

        await File.WriteAllTextAsync(_dir.File("worker-in.csv"),
            "x,color\n" + string.Concat(Enumerable.Range(0, 40).Select(i => string.Create(CultureInfo.InvariantCulture, $"{i / 10.0 - 2},{(i % 2 == 0 ? "red" : "blue")}\n"))));
        var batch = await KilnCli.RunAsync(["batch", "--model", package, "--input", _dir.File("worker-in.csv"), "--output", _dir.File("worker-out"),
            "--distributed", "--db", db, "--partitions", "2"], _dir.Path, timeout: TimeSpan.FromMinutes(5));
        Assert.True(batch.ExitCode == 0, batch.ToString());
        var metrics = await http.GetStringAsync("/metrics");
        // What the job did, counted by the worker: 40 rows written in 2 parts by 2 partition jobs, one scorer load.
        Assert.Contains("kiln_batch_rows_total{outcome=\"scored\"} 40\n", metrics);
        Assert.Contains("kiln_batch_parts_total{outcome=\"written\"} 2\n", metrics);
        Assert.Contains("kiln_worker_jobs_total{queue=\"batch\",outcome=\"succeeded\"} 2\n", metrics);
        Assert.Contains("kiln_worker_job_duration_seconds_count{queue=\"batch\",outcome=\"succeeded\"} 2\n", metrics);
        Assert.Contains("kiln_worker_busy{queue=\"batch\"} 0\n", metrics);
        Assert.Contains("kiln_worker_concurrency 2\n", metrics);
        Assert.Contains("kiln_worker_scorer_loads_total{outcome=\"loaded\"} 1\n", metrics);
        return metrics;
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

    /// <summary>kiln server --pipelines with a retrain pipeline listening to drift_alert: a shell step, then batch scoring of 40 rows.</summary>
    private async Task<(Process Process, HttpClient Http, string Url)> StartServerAsync(string package)
    {
        Directory.CreateDirectory(_dir.File("pipelines"));
        await File.WriteAllTextAsync(_dir.File("score-in.csv"),
            "x,color\n" + string.Concat(Enumerable.Range(0, 40).Select(i => string.Create(CultureInfo.InvariantCulture, $"{i / 10.0 - 2},{(i % 2 == 0 ? "red" : "blue")}\n"))));
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
              score:
                kind: batch_score
                depends_on: [train]
                model: PACKAGE
                input: INPUT
                output: OUTPUT/{{ run.id }}
            """.Replace("PACKAGE", package, StringComparison.Ordinal).Replace("INPUT", _dir.File("score-in.csv"), StringComparison.Ordinal)
               .Replace("OUTPUT", _dir.File("scored"), StringComparison.Ordinal));
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
    public async Task Every_metric_the_dashboards_and_rules_read_is_exposed_by_real_kiln_serve_kiln_server_and_kiln_worker()
    {
        var package = await ShopModel.TrainAsync(_dir);
        var (serveProcess, serve, _) = await StartServeAsync(package, ServeMonitoring);
        var (serverProcess, server, _) = await StartServerAsync(package);

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
        var workerMetrics = await RunWorkerJobAsync(package);
        Assert.Contains("kiln_pipeline_task_attempts_total{outcome=\"succeeded\"} 2\n", serverMetrics);
        // The batch_score task's 40 rows, its one part and the job, counted by kiln server.
        Assert.Contains("kiln_batch_rows_total{outcome=\"scored\"} 40\n", serverMetrics);
        Assert.Contains("kiln_batch_parts_total{outcome=\"written\"} 1\n", serverMetrics);
        Assert.Contains("kiln_batch_jobs_total{outcome=\"succeeded\"} 1\n", serverMetrics);
        Assert.Contains("kiln_pipeline_runs_created_total{trigger=\"event\"} 1\n", serverMetrics);
        Assert.Contains("kiln_server_requests_total{area=\"pipelines\",route=\"/api/v1/pipelines/events/{eventName}\",method=\"POST\",status=\"202\"} 1\n", serverMetrics);
        Assert.Contains("kiln_server_request_duration_seconds_bucket{area=\"tracking\",route=\"/api/2.0/mlflow/experiments/search\",method=\"GET\",le=\"+Inf\"} 1\n", serverMetrics);
        foreach (var m in new[] { serveMetrics, serverMetrics, workerMetrics })
        {
            var check = await Proc.RunAsync(ObservabilityFiles.Tool("promtool"), ["check", "metrics"], stdin: m, timeout: TimeSpan.FromSeconds(30));
            Assert.True(check.ExitCode == 0, check.ToString());
        }

        var exposedByServe = Exposed(serveMetrics);
        var exposedByServer = Exposed(serverMetrics);
        var exposedByWorker = Exposed(workerMetrics);
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
                // Batch rows and parts are counted by kiln server (batch_score tasks) and kiln worker (partitions) alike.
                var found = name.StartsWith("kiln_serve_", StringComparison.Ordinal) ? exposedByServe.Contains(name)
                    : name.StartsWith("kiln_worker_", StringComparison.Ordinal) ? exposedByWorker.Contains(name)
                    : name.StartsWith("kiln_batch_", StringComparison.Ordinal) ? exposedByServer.Contains(name) && exposedByWorker.Contains(name)
                    : name.StartsWith("kiln_server_", StringComparison.Ordinal) || name.StartsWith("kiln_pipeline_", StringComparison.Ordinal) ? exposedByServer.Contains(name)
                    : name.StartsWith("process_", StringComparison.Ordinal) || name.StartsWith("dotnet_", StringComparison.Ordinal)
                        ? exposedByServe.Contains(name) && exposedByServer.Contains(name) && exposedByWorker.Contains(name)
                    : exposedByServe.Contains(name) || exposedByServer.Contains(name);
                if (!found) missing.Add($"{name} ({where})");
            }
        }
        Assert.True(missing.Count == 0, "read by dashboards or rules but exposed by no kiln process:\n" + string.Join("\n", missing.Distinct()));
        Assert.True(checkedNames.Count >= 30, $"only {checkedNames.Count} metric names checked");
        Assert.Contains("kiln_monitor_reference_prediction_std", checkedNames);
        Assert.Contains("kiln_pipeline_task_attempt_duration_seconds_bucket", checkedNames);
        Assert.Contains("kiln_batch_rows_total", checkedNames);
        foreach (var worker in new[] { "kiln_worker_jobs_total", "kiln_worker_job_duration_seconds_bucket", "kiln_worker_busy", "kiln_worker_concurrency", "kiln_worker_scorer_loads_total" })
            Assert.Contains(worker, checkedNames);
    }

    /// <summary>Starts one of the real tools (prometheus, prometheus-alertmanager), keeping its output for failure messages.</summary>
    private Process StartTool(string tool, StringBuilder output, params string[] args)
    {
        var psi = new ProcessStartInfo(ObservabilityFiles.Tool(tool)) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = _dir.Path };
        foreach (var a in args) psi.ArgumentList.Add(a);
        var p = Process.Start(psi) ?? throw new InvalidOperationException($"cannot start {tool}");
        _processes.Add(p);
        p.OutputDataReceived += (_, e) => { lock (output) output.AppendLine(e.Data); };
        p.ErrorDataReceived += (_, e) => { lock (output) output.AppendLine(e.Data); };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        return p;
    }

    [Fact]
    public async Task A_real_prometheus_and_alertmanager_with_the_shipped_files_turn_drifted_traffic_into_one_retraining_run()
    {
        var package = await ShopModel.TrainAsync(_dir);
        var (serveProcess, _, serveUrl) = await StartServeAsync(package, ServeMonitoring);
        var (serverProcess, server, serverUrl) = await StartServerAsync(package);

        // The shipped files with this test's addresses and shorter times: scrapes and evaluations every second,
        // the drift alert after 5 s instead of 10 min, notifications re-sent every 2 s (kiln server must start one run anyway).
        var amPort = TestEnvironment.FreePort();
        var promPort = TestEnvironment.FreePort();
        var shipped = ObservabilityFiles.Prometheus;
        Directory.CreateDirectory(_dir.File("prom/rules"));
        File.Copy(Path.Combine(shipped, "rules", "thresholds.rules.yml"), _dir.File("prom/rules/thresholds.rules.yml"));
        var rules = await File.ReadAllTextAsync(Path.Combine(shipped, "rules", "kiln.rules.yml"));
        var drift = rules.IndexOf("- alert: KilnDatasetDrift", StringComparison.Ordinal);
        Assert.True(drift > 0);
        var forAt = rules.IndexOf("for: 10m", drift, StringComparison.Ordinal);
        await File.WriteAllTextAsync(_dir.File("prom/rules/kiln.rules.yml"), rules[..forAt] + "for: 5s" + rules[(forAt + "for: 10m".Length)..]);
        var config = (await File.ReadAllTextAsync(Path.Combine(shipped, "prometheus.yml")))
            .Replace("scrape_interval: 15s", "scrape_interval: 1s", StringComparison.Ordinal)
            .Replace("evaluation_interval: 15s", "evaluation_interval: 1s", StringComparison.Ordinal)
            .Replace("127.0.0.1:9093", $"127.0.0.1:{Port(amPort)}", StringComparison.Ordinal)
            .Replace("127.0.0.1:8080", serveUrl[7..], StringComparison.Ordinal)
            .Replace("127.0.0.1:5000", serverUrl[7..], StringComparison.Ordinal);
        Assert.Contains(serveUrl[7..], config);
        await File.WriteAllTextAsync(_dir.File("prom/prometheus.yml"), config);
        var amConfig = (await File.ReadAllTextAsync(Path.Combine(ObservabilityFiles.Root, "alertmanager", "alertmanager.yml")))
            .Replace("http://127.0.0.1:5000", serverUrl, StringComparison.Ordinal)
            .Replace("group_wait: 30s", "group_wait: 1s", StringComparison.Ordinal)
            .Replace("group_wait: 10s", "group_wait: 1s", StringComparison.Ordinal)
            .Replace("group_interval: 5m", "group_interval: 1s", StringComparison.Ordinal)
            .Replace("repeat_interval: 4h", "repeat_interval: 2s", StringComparison.Ordinal);
        Assert.Contains(serverUrl + "/api/v1/pipelines/alertmanager", amConfig);
        await File.WriteAllTextAsync(_dir.File("alertmanager.yml"), amConfig);

        var amOut = new StringBuilder();
        var alertmanager = StartTool("prometheus-alertmanager", amOut, $"--config.file={_dir.File("alertmanager.yml")}", $"--storage.path={_dir.File("am-data")}",
            $"--web.listen-address=127.0.0.1:{Port(amPort)}", "--cluster.listen-address=");
        var promOut = new StringBuilder();
        var prometheus = StartTool("prometheus", promOut, $"--config.file={_dir.File("prom/prometheus.yml")}", $"--storage.tsdb.path={_dir.File("prom-data")}",
            $"--web.listen-address=127.0.0.1:{Port(promPort)}");
        using var prom = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{Port(promPort)}"), Timeout = TimeSpan.FromSeconds(10) };
        try
        {
            // Prometheus scrapes both with the shipped jobs.
            var targets = await ProcessPolling.PollAsync(() => prom.GetStringAsync("/api/v1/targets"),
                s => Regex.Matches(s, "\"health\":\"up\"").Count == 2, prometheus, "both kiln targets up in Prometheus", 120);
            Assert.Contains("\"job\":\"kiln-serve\"", targets);
            Assert.Contains("\"job\":\"kiln-server\"", targets);

            // The drift alert fires in Prometheus, with the pipeline_event label.
            var alerts = await ProcessPolling.PollAsync(() => prom.GetStringAsync("/api/v1/alerts"),
                s => s.Contains("\"alertname\":\"KilnDatasetDrift\"", StringComparison.Ordinal) && s.Contains("\"state\":\"firing\"", StringComparison.Ordinal),
                prometheus, "KilnDatasetDrift firing in Prometheus", 120);
            Assert.Contains("\"pipeline_event\":\"drift_alert\"", alerts);

            // Alertmanager delivers it to kiln server: the retraining pipeline runs, with the alert's model label.
            var runs = await ProcessPolling.PollAsync(() => server.GetStringAsync("/api/v1/pipelines/runs?pipeline=retrain"),
                s => JsonDocument.Parse(s).RootElement.GetProperty("runs").GetArrayLength() > 0, alertmanager, "the retrain run started by Alertmanager", 120);
            var run = JsonDocument.Parse(runs).RootElement.GetProperty("runs")[0];
            Assert.Equal("event:drift_alert", run.GetProperty("trigger").GetString());
            Assert.Equal("shop", run.GetProperty("params").GetProperty("model").GetString());

            // Alertmanager keeps re-sending the firing group (every 2 s here): still exactly one run.
            var notified = await ProcessPolling.PollAsync(() => server.GetStringAsync("/metrics"),
                m => Regex.Match(m, "kiln_server_requests_total\\{area=\"pipelines\",route=\"/api/v1/pipelines/alertmanager\",method=\"POST\",status=\"202\"\\} (\\d+)") is { Success: true } x
                    && int.Parse(x.Groups[1].Value, CultureInfo.InvariantCulture) >= 3,
                serverProcess, "three notifications from Alertmanager", 60);
            var list = await KilnCli.RunAsync(["pipeline", "list", "--db", serverUrl, "--json"], _dir.Path);
            Assert.True(list.ExitCode == 0, list.ToString());
            var listed = JsonDocument.Parse(list.StdOut).RootElement;
            var all = (listed.ValueKind == JsonValueKind.Array ? listed : listed.GetProperty("runs")).EnumerateArray().ToList();
            Assert.Single(all, r => r.GetProperty("pipeline").GetString() == "retrain");
            Assert.False(serveProcess.HasExited);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            string Tail(StringBuilder sb) { lock (sb) return string.Join("\n", sb.ToString().Split('\n').TakeLast(30)); }
            throw new Xunit.Sdk.XunitException($"{e.Message}\n--- prometheus:\n{Tail(promOut)}\n--- alertmanager:\n{Tail(amOut)}");
        }
    }
}
