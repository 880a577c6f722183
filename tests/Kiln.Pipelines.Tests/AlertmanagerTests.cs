using System.Collections.Concurrent;
using System.Net;
using System.Text;
using System.Text.Json;
using Kiln.Pipelines.Http;
using Kiln.Testing;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Kiln.Pipelines.Tests;

/// <summary>Alertmanager's webhook (payload version 4) into pipeline events, on Kestrel over a real loopback socket.</summary>
public sealed class AlertmanagerTests : IAsyncLifetime
{
    private readonly TempDir _dir = new("kiln-alertmanager");
    private readonly ConcurrentQueue<string> _logs = new();
    private WebApplication _app = null!;
    private HttpClient _http = null!;

    public async Task InitializeAsync()
    {
        var pipelines = Directory.CreateDirectory(_dir.File("pipelines")).FullName;
        File.WriteAllText(Path.Combine(pipelines, "retrain.yaml"), """
            name: retrain
            parameters:
              model: none
              reason: manual
              fingerprint: none
            triggers:
              - event: drift_alert
            tasks:
              train:
                kind: shell
                command: echo "retraining {{ params.model }} because {{ params.reason }} ({{ params.fingerprint }})"
            """);
        await StartAsync();
    }

    private async Task StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        builder.Logging.AddProvider(new ListLoggerProvider(_logs));
        builder.Services.AddKilnPipelines(o =>
        {
            o.Store = _dir.File("kiln.db");
            o.PipelinesDirectory = _dir.File("pipelines");
            o.RunScheduler = false;
        });
        _app = builder.Build();
        _app.MapKilnPipelineEndpoints();
        await _app.StartAsync();
        var address = _app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        _http = new HttpClient { BaseAddress = new Uri(address), Timeout = TimeSpan.FromSeconds(60) };
    }

    private async Task StopAsync()
    {
        _http.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    public async Task DisposeAsync()
    {
        await StopAsync();
        _dir.Dispose();
    }

    /// <summary>A notification as Alertmanager 0.25 sends it (fields from its webhook documentation).</summary>
    private static string Notification(string status, params (string Status, string Fingerprint, string StartsAt, Dictionary<string, string> Labels)[] alerts) =>
        JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["version"] = "4",
            ["groupKey"] = "{}:{alertname=\"KilnDatasetDrift\"}",
            ["truncatedAlerts"] = 0,
            ["status"] = status,
            ["receiver"] = "kiln-pipelines",
            ["groupLabels"] = new Dictionary<string, string> { ["alertname"] = "KilnDatasetDrift" },
            ["commonLabels"] = new Dictionary<string, string>(),
            ["commonAnnotations"] = new Dictionary<string, string>(),
            ["externalURL"] = "http://alertmanager:9093",
            ["alerts"] = alerts.Select(a => new Dictionary<string, object>
            {
                ["status"] = a.Status,
                ["labels"] = a.Labels,
                ["annotations"] = new Dictionary<string, string> { ["summary"] = "drift on churn", ["reason"] = "share 0.6" },
                ["startsAt"] = a.StartsAt,
                ["endsAt"] = "0001-01-01T00:00:00Z",
                ["generatorURL"] = "http://prometheus:9090/graph",
                ["fingerprint"] = a.Fingerprint,
            }).ToArray(),
        });

    private static Dictionary<string, string> Labels(string? ev, string model = "churn")
    {
        var l = new Dictionary<string, string> { ["alertname"] = "KilnDatasetDrift", ["model"] = model, ["severity"] = "warning" };
        if (ev is not null) l["pipeline_event"] = ev;
        return l;
    }

    private async Task<(HttpStatusCode Status, JsonElement Body, string Text)> PostAsync(string body)
    {
        using var r = await _http.PostAsync("/api/v1/pipelines/alertmanager", new StringContent(body, Encoding.UTF8, "application/json"));
        var text = await r.Content.ReadAsStringAsync();
        return (r.StatusCode, text.Length > 0 ? JsonDocument.Parse(text).RootElement.Clone() : default, text);
    }

    private async Task<JsonElement[]> RunsAsync()
    {
        var text = await _http.GetStringAsync("/api/v1/pipelines/runs?pipeline=retrain");
        return [.. JsonDocument.Parse(text).RootElement.GetProperty("runs").EnumerateArray().Select(e => e.Clone())];
    }

    [Fact]
    public async Task A_firing_alert_starts_the_pipeline_with_labels_and_annotations_and_a_redelivery_starts_nothing_even_after_a_restart()
    {
        var firing = Notification("firing", ("firing", "3f1c0a9e2b7d4c11", "2026-12-06T10:00:00.123Z", Labels("drift_alert")));
        var (status, body, text) = await PostAsync(firing);
        Assert.True(status == HttpStatusCode.Accepted, text);
        var run = Assert.Single(body.GetProperty("runs").EnumerateArray());
        Assert.Equal("event:drift_alert", run.GetProperty("trigger").GetString());
        // Labels and annotations reach the parameters they name, as an event's payload does.
        Assert.Equal("churn", run.GetProperty("params").GetProperty("model").GetString());
        Assert.Equal("share 0.6", run.GetProperty("params").GetProperty("reason").GetString());
        Assert.Equal("3f1c0a9e2b7d4c11", run.GetProperty("params").GetProperty("fingerprint").GetString());
        Assert.Equal("started", body.GetProperty("alerts")[0].GetProperty("outcome").GetString());

        // Alertmanager re-sends a group on every repeat_interval and after its own restarts.
        var again = await PostAsync(firing);
        Assert.Equal(HttpStatusCode.Accepted, again.Status);
        Assert.Equal(0, again.Body.GetProperty("runs").GetArrayLength());
        Assert.Equal("duplicate", again.Body.GetProperty("alerts")[0].GetProperty("outcome").GetString());

        await StopAsync();
        await StartAsync();
        var afterRestart = await PostAsync(firing);
        Assert.Equal(0, afterRestart.Body.GetProperty("runs").GetArrayLength());
        Assert.Single(await RunsAsync());

        // The same alert firing again later (a new start time) is a new incident.
        var later = await PostAsync(Notification("firing", ("firing", "3f1c0a9e2b7d4c11", "2026-12-06T12:00:00Z", Labels("drift_alert"))));
        Assert.Single(later.Body.GetProperty("runs").EnumerateArray());
        Assert.Equal(2, (await RunsAsync()).Length);
    }

    [Fact]
    public async Task Resolved_alerts_and_alerts_without_the_label_start_nothing()
    {
        var (status, body, text) = await PostAsync(Notification("resolved",
            ("resolved", "aaaa", "2026-12-06T10:00:00Z", Labels("drift_alert")),
            ("firing", "bbbb", "2026-12-06T10:00:00Z", Labels(null))));
        Assert.True(status == HttpStatusCode.Accepted, text);
        Assert.Equal(0, body.GetProperty("runs").GetArrayLength());
        Assert.Equal(["resolved", "no_event"], body.GetProperty("alerts").EnumerateArray().Select(a => a.GetProperty("outcome").GetString()));
        Assert.Empty(await RunsAsync());
    }

    [Fact]
    public async Task An_event_no_pipeline_listens_to_is_accepted_with_no_runs_and_logged_once()
    {
        for (var i = 0; i < 3; i++)
        {
            var (status, body, text) = await PostAsync(Notification("firing", ("firing", "cccc" + i, "2026-12-06T10:00:00Z", Labels("unheard_of"))));
            Assert.True(status == HttpStatusCode.Accepted, text);
            Assert.Equal(0, body.GetProperty("runs").GetArrayLength());
            Assert.Equal("no_pipeline", body.GetProperty("alerts")[0].GetProperty("outcome").GetString());
        }
        Assert.Single(_logs, l => l.Contains("unheard_of", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("", "the body is empty")]
    [InlineData("{not json", "not valid JSON")]
    [InlineData("[]", "must be a JSON object")]
    [InlineData("""{"version":"3","alerts":[]}""", "version: \"3\" is not supported")]
    [InlineData("""{"alerts":[]}""", "version: missing")]
    [InlineData("""{"version":"4"}""", "alerts: missing")]
    [InlineData("""{"version":"4","alerts":[{"status":"firing","labels":{"pipeline_event":"drift_alert"},"startsAt":"2026-12-06T10:00:00Z"}]}""", "alerts[0].fingerprint: missing")]
    [InlineData("""{"version":"4","alerts":[{"status":"firing","labels":{"pipeline_event":"drift_alert"},"fingerprint":"f","startsAt":"yesterday"}]}""", "alerts[0].startsAt: 'yesterday' is not a time")]
    [InlineData("""{"version":"4","alerts":[{"status":"pending","labels":{},"fingerprint":"f","startsAt":"2026-12-06T10:00:00Z"}]}""", "alerts[0].status: 'pending'")]
    [InlineData("""{"version":"4","alerts":[{"status":"firing","labels":{"n":1},"fingerprint":"f","startsAt":"2026-12-06T10:00:00Z"}]}""", "alerts[0].labels.n: not a string")]
    public async Task A_bad_notification_is_refused_with_one_line_and_starts_nothing(string body, string expected)
    {
        // A good alert first in the list: nothing of a notification starts when any part of it is wrong.
        if (body.Contains("\"alerts\":[{", StringComparison.Ordinal))
            body = body.Replace("\"alerts\":[{", "\"alerts\":[{\"status\":\"firing\",\"labels\":{\"pipeline_event\":\"drift_alert\"},\"fingerprint\":\"ok\",\"startsAt\":\"2026-12-06T10:00:00Z\"},{", StringComparison.Ordinal)
                       .Replace("alerts[0]", "alerts[1]", StringComparison.Ordinal);
        var (status, json, text) = await PostAsync(body);
        Assert.True(status == HttpStatusCode.BadRequest, text);
        var detail = json.GetProperty("detail").GetString()!;
        Assert.DoesNotContain('\n', detail);
        Assert.Contains(expected.Replace("alerts[0]", body.Contains("\"fingerprint\":\"ok\"", StringComparison.Ordinal) ? "alerts[1]" : "alerts[0]", StringComparison.Ordinal), detail, StringComparison.Ordinal);
        Assert.Empty(await RunsAsync());
    }

    [Fact]
    public async Task An_oversized_notification_is_refused()
    {
        var big = Notification("firing", ("firing", "dddd", "2026-12-06T10:00:00Z",
            new Dictionary<string, string> { ["pipeline_event"] = "drift_alert", ["blob"] = new string('x', AlertmanagerReceiver.MaxBodyBytes) }));
        var (status, json, text) = await PostAsync(big);
        Assert.True(status == HttpStatusCode.BadRequest, text);
        Assert.Contains("at most 1048576", json.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Empty(await RunsAsync());
    }

    private sealed class ListLoggerProvider(ConcurrentQueue<string> sink) : ILoggerProvider
    {
        public ILogger CreateLogger(string categoryName) => new ListLogger(sink);

        public void Dispose()
        {
        }

        private sealed class ListLogger(ConcurrentQueue<string> sink) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Warning;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            {
                if (IsEnabled(logLevel)) sink.Enqueue(formatter(state, exception));
            }
        }
    }
}
