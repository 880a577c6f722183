using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Kiln.Monitoring.Tests.Alerts;
using Kiln.Testing;

namespace Kiln.Monitoring.Tests.Continuous;

// The real `kiln server --monitor`, killed and started again: the firing alert is not announced a second time, and once
// the drift is gone the restarted process sends the resolved notification (with the original start) that a monitor
// which forgot its alerts would never send.
public sealed class AlertRestartCliTests : IDisposable
{
    private readonly TempDir _dir = new("kiln-alert-restart");

    public void Dispose() => _dir.Dispose();

    private static string? LastSuccess(string metrics) =>
        metrics.Split('\n').FirstOrDefault(l => l.StartsWith("kiln_monitor_last_success_timestamp_seconds{", StringComparison.Ordinal));

    private (Process Process, HttpClient Http) Start(string monitoring)
    {
        var port = TestEnvironment.FreePort();
        var process = KilnCli.Start(["server", "--db", _dir.File("db"), "--port", port.ToString(CultureInfo.InvariantCulture), "--monitor", monitoring]);
        return (process, new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(10) });
    }

    private static void Stop(Process process)
    {
        if (!process.HasExited) process.Kill(entireProcessTree: true); // a crash, not a graceful stop
        process.WaitForExit();
    }

    [Fact]
    public async Task Kiln_server_monitor_restarted_keeps_its_firing_alert_and_later_sends_the_resolved_webhook()
    {
        LogFixtures.Package(_dir.File("pkg"), LogFixtures.Data(3000, 0, 1));
        await LogFixtures.WriteLogAsync(_dir.File("logs"), "shop", "1", LogFixtures.Data(300, 1.5, 2), DateTimeOffset.UtcNow.AddMinutes(-10), TimeSpan.FromSeconds(1));
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
                no_data: ok
                webhook: {receiver.Url}
            """);
        var firingGauge = "kiln_monitor_alert{alert=\"shop_drift\",model=\"shop\",severity=\"warning\",state=\"firing\"} 1";
        var state = _dir.File("logs/_monitor/alerts.json");

        // 1. Drift: the alert fires once, and its state is on disk.
        var (process, http) = Start(monitoring);
        try
        {
            await receiver.WaitForAsync(1, TimeSpan.FromSeconds(90));
            Assert.Equal("firing", receiver.Requests.Single().Body.GetProperty("status").GetString());
            Assert.Equal("firing", JsonDocument.Parse(await File.ReadAllTextAsync(state)).RootElement.GetProperty("alerts")[0].GetProperty("state").GetString());
        }
        finally
        {
            Stop(process);
            http.Dispose();
        }
        var started = receiver.Requests.Single().Body.GetProperty("started_at").GetString();

        // 2. Restarted with the drift still there: firing on /metrics, and after two more evaluations still one webhook.
        (process, http) = Start(monitoring);
        try
        {
            var metrics = await ProcessPolling.PollAsync(() => http.GetStringAsync("/metrics"), m => m.Contains(firingGauge, StringComparison.Ordinal), process, "the restored alert on /metrics");
            var seen = LastSuccess(metrics);
            for (var i = 0; i < 2; i++)
            {
                var before = seen;
                metrics = await ProcessPolling.PollAsync(() => http.GetStringAsync("/metrics"), m => LastSuccess(m) is { } s && s != before, process, "another evaluation");
                seen = LastSuccess(metrics);
            }
            Assert.Contains(firingGauge, metrics);
            Assert.Single(receiver.Requests);
        }
        finally
        {
            Stop(process);
            http.Dispose();
        }

        // 3. The drifted traffic is gone (no data counts as clear) and the monitor restarts: the resolved webhook comes.
        Directory.Delete(_dir.File("logs/model=shop"), recursive: true);
        (process, http) = Start(monitoring);
        try
        {
            await receiver.WaitForAsync(2, TimeSpan.FromSeconds(90));
            var resolved = receiver.Requests.Last().Body;
            Assert.Equal("resolved", resolved.GetProperty("status").GetString());
            Assert.Equal(started, resolved.GetProperty("started_at").GetString());
            Assert.Equal(2, receiver.Requests.Count);
        }
        finally
        {
            Stop(process);
            http.Dispose();
        }
    }

    [Fact]
    public async Task Kiln_serve_monitor_killed_after_firing_sends_the_resolved_webhook_after_its_restart()
    {
        await ShopModel.TrainAsync(_dir); // a real model: x ~ N(0, 1), three colors
        var rng = new Random(2);
        await using var receiver = await WebhookReceiver.StartAsync((200, TimeSpan.Zero));
        var monitoring = _dir.File("monitoring.yaml");
        await File.WriteAllTextAsync(monitoring, $"""
            interval: 1s
            targets:
              - model: pkg
            rules:
              - name: shop_drift
                metric: kiln_monitor_dataset_drift
                threshold: 0.5
                no_data: ok
                webhook: {receiver.Url}
            """);
        Process Serve(int port) => KilnCli.Start(["serve", "--model", _dir.File("pkg"), "--port", port.ToString(CultureInfo.InvariantCulture), "--grpc-port", "-1",
            "--log-dir", _dir.File("logs"), "--monitor", monitoring, "--log-roll", "1s", "--poll-interval", "0"]);

        var port = TestEnvironment.FreePort();
        var process = Serve(port);
        try
        {
            using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(10) };
            await ProcessPolling.PollAsync(async () => ((int)(await http.GetAsync("/ready")).StatusCode).ToString(CultureInfo.InvariantCulture), s => s == "200", process, "readiness");
            var rows = string.Join(",", Enumerable.Range(0, 300).Select(_ =>
                string.Create(CultureInfo.InvariantCulture, $$"""{"x": {{2.5 + rng.NextDouble() * 2 - 1:F4}}, "color": "red"}""")));
            using var response = await http.PostAsync("/predict", new StringContent("[" + rows + "]", System.Text.Encoding.UTF8, "application/json"));
            Assert.Equal(200, (int)response.StatusCode);
            await receiver.WaitForAsync(1, TimeSpan.FromSeconds(90));
            Assert.Equal("firing", receiver.Requests.Single().Body.GetProperty("status").GetString());
        }
        finally
        {
            Stop(process);
        }
        // kiln serve keeps the state beside its --log-dir.
        Assert.Contains("\"firing\"", await File.ReadAllTextAsync(_dir.File("logs/_monitor/alerts.json")));

        // The traffic that drifted is gone: the restarted process resolves the alert it remembers.
        Directory.Delete(_dir.File("logs/model=shop"), recursive: true);
        port = TestEnvironment.FreePort();
        process = Serve(port);
        try
        {
            await receiver.WaitForAsync(2, TimeSpan.FromSeconds(90));
            var resolved = receiver.Requests.Last().Body;
            Assert.Equal("resolved", resolved.GetProperty("status").GetString());
            Assert.Equal(receiver.Requests.First().Body.GetProperty("started_at").GetString(), resolved.GetProperty("started_at").GetString());
            Assert.Equal(2, receiver.Requests.Count);
        }
        finally
        {
            Stop(process);
        }
    }
}
