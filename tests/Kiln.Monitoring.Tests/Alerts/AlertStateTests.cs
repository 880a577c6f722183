using System.Diagnostics.Metrics;
using System.Text.Json;
using Kiln.Monitoring.Alerts;
using Kiln.Monitoring.Continuous;
using Kiln.Testing;
using Microsoft.Extensions.Logging;

namespace Kiln.Monitoring.Tests.Alerts;

// Alert state survives a restart: a firing alert stays firing (no second firing notification, its resolved one comes
// when the condition clears), a pending one keeps its start, and an unreadable state file is a warning and a fresh start.
// A restart is a new MonitorService on the same config (and state file), on the manual clock of the AlertEngine tests.
public sealed class AlertStateTests : IDisposable
{
    private static readonly DateTimeOffset T0 = new(2026, 11, 26, 8, 0, 0, TimeSpan.Zero);
    private readonly TempDir _dir = new("kiln-alert-state");

    public void Dispose() => _dir.Dispose();

    /// <summary>Answers the next scripted value per tick, as the window evaluator would.</summary>
    private sealed class Values : IMonitorEvaluator
    {
        public double? Next { get; set; }

        public string Name => "values";

        public Task<IReadOnlyList<Measurement>> EvaluateAsync(MonitorTarget target, DateTimeOffset windowStart, DateTimeOffset windowEnd, CancellationToken cancellationToken) =>
            Task.FromResult<IReadOnlyList<Measurement>>(Next is { } v ? [Measurement.Of("kiln_monitor_dataset_drift", v, "drift", ("model", target.Name))] : []);
    }

    private sealed class Sink : IAlertSink
    {
        public List<AlertTransition> Seen { get; } = [];

        public ValueTask NotifyAsync(AlertTransition transition, CancellationToken cancellationToken)
        {
            Seen.Add(transition);
            return ValueTask.CompletedTask;
        }
    }

    /// <summary>Keeps the log lines, to check the warnings a user would read.</summary>
    private sealed class ListLogger<T> : ILogger<T>
    {
        public List<(LogLevel Level, string Message)> Lines { get; } = [];

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            Lines.Add((logLevel, formatter(state, exception)));
    }

    private MonitorConfig Config(TimeSpan forTime, TimeSpan clearFor) => new()
    {
        Targets = [new MonitorTarget { Name = "shop", Model = "unused", LogModel = "shop", LogDirectory = _dir.File("logs") }],
        Rules = [new AlertRule { Name = "drift", Metric = "kiln_monitor_dataset_drift", Threshold = 0.5, For = forTime, ClearFor = clearFor }],
        StateDirectory = _dir.File("state"),
        FeedbackCompactAfter = 0,
    };

    private static List<string> Steps(IEnumerable<AlertTransition> transitions) => [.. transitions.Select(t => $"{t.From.Name()}->{t.To.Name()}")];

    private sealed class Run : IDisposable
    {
        private readonly Meter _meter = new("test-alert-state");

        public Run(MonitorConfig config, ManualClock clock)
        {
            Service = new MonitorService(config, [Evaluator], new GaugePublisher(_meter), [Sink], Logger, clock);
        }

        public Values Evaluator { get; } = new();

        public Sink Sink { get; } = new();

        public ListLogger<MonitorService> Logger { get; } = new();

        public MonitorService Service { get; }

        public async Task<List<string>> TickAsync(double? value)
        {
            Evaluator.Next = value;
            return Steps((await Service.EvaluateOnceAsync(default)).Transitions);
        }

        public void Dispose()
        {
            Service.Dispose();
            _meter.Dispose();
        }
    }

    [Fact]
    public async Task A_firing_alert_stays_firing_across_a_restart_and_its_resolved_notification_carries_the_first_start()
    {
        var clock = new ManualClock(T0);
        var config = Config(TimeSpan.FromMinutes(2), TimeSpan.Zero);
        using (var first = new Run(config, clock))
        {
            Assert.Equal(["inactive->pending"], await first.TickAsync(1));
            clock.Advance(TimeSpan.FromMinutes(2));
            Assert.Equal(["pending->firing"], await first.TickAsync(1));
        }
        var saved = JsonDocument.Parse(await File.ReadAllTextAsync(config.AlertStateFile!)).RootElement;
        Assert.Equal(_dir.File("state/alerts.json"), config.AlertStateFile);
        var alert = saved.GetProperty("alerts").EnumerateArray().Single();
        Assert.Equal(("drift", "firing", "shop"), (alert.GetProperty("rule").GetString(), alert.GetProperty("state").GetString(), alert.GetProperty("labels").GetProperty("model").GetString()));

        // The restarted monitor: the alert is firing before the first tick, and a tick that still sees drift says nothing.
        clock.Advance(TimeSpan.FromMinutes(5));
        using var second = new Run(config, clock);
        var restored = second.Service.Alerts.Active().Single();
        Assert.Equal((AlertState.Firing, T0.AddMinutes(2)), (restored.State, restored.FiringSince));
        Assert.Contains(second.Logger.Lines, l => l.Message.Contains("restored 1 alert(s)", StringComparison.Ordinal));
        Assert.Empty(await second.TickAsync(1));
        Assert.Empty(second.Sink.Seen); // no second firing notification

        // The drift clears: the resolved notification is sent, with the alert's original start.
        clock.Advance(TimeSpan.FromMinutes(1));
        Assert.Equal(["firing->resolving", "resolving->resolved"], await second.TickAsync(0));
        var resolved = second.Sink.Seen.Last();
        Assert.True(WebhookSink.IsNotified(resolved));
        Assert.Equal(T0.AddMinutes(2), resolved.StartedAt);
        Assert.Equal(clock.Now, resolved.ResolvedAt);
        Assert.Empty(JsonDocument.Parse(await File.ReadAllTextAsync(config.AlertStateFile!)).RootElement.GetProperty("alerts").EnumerateArray());
    }

    [Fact]
    public async Task A_pending_alert_keeps_its_start_across_a_restart_and_fires_when_for_has_passed_since_then()
    {
        var clock = new ManualClock(T0);
        var config = Config(TimeSpan.FromMinutes(10), TimeSpan.FromMinutes(5));
        using (var first = new Run(config, clock))
        {
            Assert.Equal(["inactive->pending"], await first.TickAsync(1));
            clock.Advance(TimeSpan.FromMinutes(4));
            Assert.Empty(await first.TickAsync(1));
        }
        clock.Advance(TimeSpan.FromMinutes(2)); // down for 2 minutes
        using var second = new Run(config, clock);
        Assert.Equal((AlertState.Pending, T0), (second.Service.Alerts.Active().Single().State, second.Service.Alerts.Active().Single().PendingSince));
        Assert.Empty(await second.TickAsync(1));                 // 6 minutes since the streak began
        clock.Advance(TimeSpan.FromMinutes(4));
        var fired = await second.TickAsync(1);                    // 10 minutes: fires (a fresh start would wait until 8:16)
        Assert.Equal(["pending->firing"], fired);
        Assert.Equal(T0.AddMinutes(10), second.Sink.Seen.Single().StartedAt);

        // Resolving survives a restart too: clear_for counts from the first clear tick.
        clock.Advance(TimeSpan.FromMinutes(1));
        Assert.Equal(["firing->resolving"], await second.TickAsync(0));
        clock.Advance(TimeSpan.FromMinutes(3));
        using var third = new Run(config, clock);
        Assert.Equal(AlertState.Resolving, third.Service.Alerts.Active().Single().State);
        Assert.Empty(await third.TickAsync(0));                  // 3 minutes clear
        clock.Advance(TimeSpan.FromMinutes(2));
        Assert.Equal(["resolving->resolved"], await third.TickAsync(0));
        Assert.Equal(T0.AddMinutes(10), third.Sink.Seen.Single().StartedAt);
    }

    [Theory]
    [InlineData("{not json")]
    [InlineData("""{"version": 99, "alerts": []}""")]
    [InlineData("""{"version": 1}""")]
    [InlineData("")]
    public async Task An_unreadable_state_file_is_a_warning_and_a_fresh_start_never_a_crash(string content)
    {
        var clock = new ManualClock(T0);
        var config = Config(TimeSpan.Zero, TimeSpan.Zero);
        Directory.CreateDirectory(config.StateDirectory!);
        await File.WriteAllTextAsync(config.AlertStateFile!, content);
        using var run = new Run(config, clock);
        var warning = Assert.Single(run.Logger.Lines, l => l.Level == LogLevel.Warning);
        Assert.Contains(config.AlertStateFile!, warning.Message);
        Assert.Contains("starting with no alert pending or firing", warning.Message);
        Assert.Empty(run.Service.Alerts.Active());
        Assert.Equal(["inactive->pending", "pending->firing"], await run.TickAsync(1));
        // The next transition replaces the bad file with a good one.
        Assert.Equal("firing", JsonDocument.Parse(await File.ReadAllTextAsync(config.AlertStateFile!)).RootElement.GetProperty("alerts")[0].GetProperty("state").GetString());
    }

    [Fact]
    public async Task Remembered_alerts_of_removed_rules_or_unmatched_labels_are_skipped_with_a_warning()
    {
        var clock = new ManualClock(T0);
        var config = Config(TimeSpan.Zero, TimeSpan.Zero);
        new AlertStateStore(config.AlertStateFile!).Save(
        [
            new AlertSnapshot { Rule = "gone", Labels = new Dictionary<string, string> { ["model"] = "shop" }, State = "firing", FiringSince = T0 },
            new AlertSnapshot { Rule = "drift", Labels = new Dictionary<string, string> { ["model"] = "shop" }, State = "firing" }, // no start
            new AlertSnapshot { Rule = "drift", Labels = new Dictionary<string, string> { ["model"] = "other" }, State = "pending", PendingSince = T0 },
        ], T0);
        var rules = config.Rules[0] with { Labels = new Dictionary<string, string> { ["model"] = "other" } };
        using var run = new Run(config with { Rules = [rules] }, clock);
        Assert.Equal(2, run.Logger.Lines.Count(l => l.Level == LogLevel.Warning));
        Assert.Contains(run.Logger.Lines, l => l.Message.Contains("alert gone: no such rule any more", StringComparison.Ordinal));
        var kept = run.Service.Alerts.Active().Single();
        Assert.Equal(("other", AlertState.Pending), (kept.Labels["model"], kept.State));
    }
}
