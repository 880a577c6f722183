using System.Globalization;
using System.Text;
using System.Text.Json;
using Kiln.Monitoring.Tests.Alerts;
using Kiln.Testing;

namespace Kiln.Monitoring.Tests.Continuous;

// The real kiln binary: `kiln serve --monitor` (drifted traffic → log → gauges, alert, webhook) and `kiln server
// --monitor --pipelines` (logs of replicas → gauges on its /metrics, alert → pipeline run in-process).
public sealed class MonitorCliTests : IDisposable
{
    private readonly TempDir _dir = new("kiln-monitor-cli");

    public void Dispose() => _dir.Dispose();

    private static string Port(int p) => p.ToString(CultureInfo.InvariantCulture);

    private Task<string> TrainAsync() => ShopModel.TrainAsync(_dir);

    [Fact]
    public async Task Kiln_serve_monitor_turns_drifted_traffic_into_gauges_a_firing_alert_and_a_webhook()
    {
        var package = await TrainAsync();
        await using var receiver = await WebhookReceiver.StartAsync((500, TimeSpan.Zero), (200, TimeSpan.Zero));
        var monitoring = _dir.File("monitoring.yaml");
        await File.WriteAllTextAsync(monitoring, $"""
            interval: 1s
            external_url: http://serve.example:8080
            webhook:
              initial_backoff: 50ms
            targets:
              - model: pkg
                window: 1h
            rules:
              - name: shop_drift
                metric: kiln_monitor_dataset_drift
                labels: {"{"} model: shop {"}"}
                threshold: 0.5
                for: 2s
                clear_for: 10m
                severity: critical
                webhook: {receiver.Url}
            """);
        var port = TestEnvironment.FreePort();
        using var process = KilnCli.Start(["serve", "--model", package, "--port", Port(port), "--grpc-port", "-1", "--log-dir", _dir.File("logs"),
            "--monitor", monitoring, "--log-roll", "1s", "--poll-interval", "0"]);
        try
        {
            using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(10) };
            await ProcessPolling.PollAsync(async () => ((int)(await http.GetAsync("/ready")).StatusCode).ToString(CultureInfo.InvariantCulture), s => s == "200", process, "readiness");

            // Drifted traffic: x centred on 2.5 instead of 0, one color only.
            var rng = new Random(2);
            var rows = string.Join(",", Enumerable.Range(0, 300).Select(_ =>
                string.Create(CultureInfo.InvariantCulture, $$"""{"x": {{2.5 + rng.NextDouble() * 2 - 1:F4}}, "color": "red"}""")));
            using var response = await http.PostAsync("/predict", new StringContent("[" + rows + "]", Encoding.UTF8, "application/json"));
            Assert.Equal(200, (int)response.StatusCode);

            var metrics = await ProcessPolling.PollAsync(() => http.GetStringAsync("/metrics"),
                m => m.Contains("kiln_monitor_alert{alert=\"shop_drift\",model=\"shop\",severity=\"critical\",state=\"firing\"} 1", StringComparison.Ordinal),
                process, "the alert firing on /metrics");
            Assert.Contains("kiln_monitor_window_rows{model=\"shop\"} 300\n", metrics);
            Assert.Contains("kiln_monitor_dataset_drift{model=\"shop\"} 1\n", metrics);
            Assert.Contains("kiln_monitor_feature_drifted{feature=\"x\",model=\"shop\"} 1\n", metrics);
            Assert.Contains("kiln_serve_requests_total{", metrics); // serving's own metrics are still there
            var check = await Proc.RunAsync("promtool", ["check", "metrics"], stdin: metrics, timeout: TimeSpan.FromSeconds(30));
            Assert.True(check.ExitCode == 0, check + "\n" + metrics);

            await receiver.WaitForAsync(2); // the first answer was 500: retried
            var body = receiver.Requests.Last().Body;
            Assert.Equal("shop_drift", body.GetProperty("alert").GetString());
            Assert.Equal("firing", body.GetProperty("status").GetString());
            Assert.Equal("shop", body.GetProperty("model").GetString());
            Assert.Equal(1, body.GetProperty("value").GetDouble());
            Assert.Equal("http://serve.example:8080/metrics", body.GetProperty("link").GetString());
        }
        finally
        {
            if (!process.HasExited) process.Kill(entireProcessTree: true);
        }
    }

    [Fact]
    public async Task Kiln_server_monitor_exports_gauges_on_its_metrics_and_an_alert_starts_the_pipeline_it_names()
    {
        var package = LogFixtures.Package(_dir.File("pkg"), LogFixtures.Data(3000, 0, 1));
        // Two replicas' logs of the last minutes, drifted.
        var now = DateTimeOffset.UtcNow;
        await LogFixtures.WriteLogAsync(_dir.File("logs"), "shop", "1", LogFixtures.Data(300, 1.5, 2), now.AddMinutes(-10), TimeSpan.FromSeconds(1));
        await LogFixtures.WriteLogAsync(_dir.File("logs"), "shop", "1", LogFixtures.Data(300, 1.5, 3), now.AddMinutes(-9), TimeSpan.FromSeconds(1));
        Directory.CreateDirectory(_dir.File("pipelines"));
        await File.WriteAllTextAsync(_dir.File("pipelines/retrain.yaml"), """
            name: retrain
            parameters:
              model: none
              feature: none
              current: none
            triggers:
              - event: drift_alert
            tasks:
              note:
                kind: shell
                command: echo "retraining {{ params.model }}"
            """);
        await using var receiver = await WebhookReceiver.StartAsync((200, TimeSpan.Zero));
        var monitoring = _dir.File("monitoring.yaml");
        await File.WriteAllTextAsync(monitoring, $"""
            interval: 1s
            targets:
              - model: pkg
                log_dir: logs
            rules:
              - name: shop_drift
                metric: kiln_monitor_dataset_drift
                threshold: 0.5
                pipeline_event: drift_alert
                webhook: {receiver.Url}
            """);
        var port = TestEnvironment.FreePort();
        using var process = KilnCli.Start(["server", "--db", _dir.File("db"), "--port", Port(port), "--monitor", monitoring, "--pipelines", _dir.File("pipelines")]);
        try
        {
            using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(10) };
            var runs = await ProcessPolling.PollAsync(() => http.GetStringAsync("/api/v1/pipelines/runs?pipeline=retrain"),
                s => JsonDocument.Parse(s).RootElement.GetProperty("runs").GetArrayLength() > 0, process, "a pipeline run started by the alert");
            var run = JsonDocument.Parse(runs).RootElement.GetProperty("runs")[0];
            Assert.Equal("event:drift_alert", run.GetProperty("trigger").GetString());
            Assert.Equal("shop", run.GetProperty("params").GetProperty("model").GetString()); // the alert's labels became parameters
            // and the target's prediction log (what a drift_check or retraining task reads) came as `current`.
            Assert.Equal(Path.GetFullPath(_dir.File("logs")), Path.GetFullPath(run.GetProperty("params").GetProperty("current").GetString()!));

            var metrics = await http.GetStringAsync("/metrics");
            Assert.Contains("kiln_monitor_window_rows{model=\"shop\"} 600\n", metrics);
            Assert.Contains("kiln_monitor_dataset_drift{model=\"shop\"} 1\n", metrics);
            Assert.Contains("process_resident_memory_bytes ", metrics);
            var check = await Proc.RunAsync("promtool", ["check", "metrics"], stdin: metrics, timeout: TimeSpan.FromSeconds(30));
            Assert.True(check.ExitCode == 0, check + "\n" + metrics);
            await receiver.WaitForAsync(1);
            Assert.Equal("firing", receiver.Requests.Single().Body.GetProperty("status").GetString());
        }
        finally
        {
            if (!process.HasExited) process.Kill(entireProcessTree: true);
        }
    }

    [Fact]
    public async Task Kiln_serve_refuses_a_pipeline_event_it_cannot_deliver_and_names_the_rule()
    {
        var package = LogFixtures.Package(_dir.File("pkg"), LogFixtures.Data(100, 0, 1));
        var monitoring = _dir.File("monitoring.yaml");
        await File.WriteAllTextAsync(monitoring, """
            targets:
              - model: pkg
            rules:
              - name: shop_drift
                metric: kiln_monitor_dataset_drift
                threshold: 0.5
                pipeline_event: drift_alert
            """);
        var r = await KilnCli.RunAsync(["serve", "--model", package, "--port", "0", "--grpc-port", "-1", "--log-dir", _dir.File("logs"), "--monitor", monitoring]);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("rule 'shop_drift' raises pipeline event 'drift_alert'", r.StdErr);
        Assert.Contains("pipelines_url", r.StdErr);

        await File.WriteAllTextAsync(monitoring, "targets:\n  - model: pkg\n    window: soon\n");
        r = await KilnCli.RunAsync(["serve", "--model", package, "--port", "0", "--grpc-port", "-1", "--log-dir", _dir.File("logs"), "--monitor", monitoring]);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("monitoring.yaml:3:13: targets[0].window: 'soon' is not a positive duration", r.StdErr);
    }
}
