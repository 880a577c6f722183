using System.Diagnostics.Metrics;
using Kiln.Monitoring.Alerts;
using Kiln.Monitoring.Continuous;
using Kiln.Monitoring.Tests.Alerts;
using Kiln.Serving.Metrics;
using Microsoft.Extensions.Logging.Abstractions;

namespace Kiln.Monitoring.Tests.Continuous;

// MonitorService's evaluation step on a manual clock: evaluators' measurements become gauges and alert transitions,
// and a failing evaluator is counted and leaves its target without data instead of stopping the loop.
public sealed class MonitorServiceTests
{
    /// <summary>An evaluator (the seam the monitoring data branch plugs into) whose next answers the test scripts.</summary>
    private sealed class ScriptedEvaluator : IMonitorEvaluator
    {
        public Queue<double?> Values { get; } = new(); // null: throw

        public List<(DateTimeOffset Start, DateTimeOffset End)> Windows { get; } = [];

        public string Name => "scripted";

        public Task<IReadOnlyList<Measurement>> EvaluateAsync(MonitorTarget target, DateTimeOffset windowStart, DateTimeOffset windowEnd, CancellationToken cancellationToken)
        {
            Windows.Add((windowStart, windowEnd));
            var v = Values.Dequeue() ?? throw new IOException("log directory unreadable");
            return Task.FromResult<IReadOnlyList<Measurement>>([Measurement.Of("kiln_monitor_dataset_drift", v, "drift", ("model", target.Name))]);
        }
    }

    private sealed class RecordingSink : IAlertSink
    {
        public List<AlertTransition> Seen { get; } = [];

        public ValueTask NotifyAsync(AlertTransition transition, CancellationToken cancellationToken)
        {
            Seen.Add(transition);
            return ValueTask.CompletedTask;
        }
    }

    [Fact]
    public async Task Each_tick_evaluates_the_sliding_window_publishes_gauges_feeds_rules_and_survives_a_failing_evaluator()
    {
        var clock = new ManualClock(new DateTimeOffset(2026, 11, 26, 8, 0, 0, TimeSpan.Zero));
        var config = new MonitorConfig
        {
            Interval = TimeSpan.FromMinutes(1),
            Targets = [new MonitorTarget { Name = "shop", Model = "unused", LogModel = "shop", LogDirectory = "unused", Window = TimeSpan.FromMinutes(30) }],
            Rules = [new AlertRule { Name = "drift", Metric = "kiln_monitor_dataset_drift", Threshold = 0.5, For = TimeSpan.FromMinutes(2), ClearFor = TimeSpan.FromMinutes(1) }],
        };
        using var meter = new Meter("test");
        using var exporter = new PrometheusExporter(meter);
        var evaluator = new ScriptedEvaluator();
        var sink = new RecordingSink();
        using var service = new MonitorService(config, [evaluator], new GaugePublisher(meter), [sink], NullLogger<MonitorService>.Instance, clock);

        foreach (var v in new double?[] { 1, null, 1, 1, 0, 0 }) evaluator.Values.Enqueue(v);
        var ticks = new List<MonitorTick>();
        for (var i = 0; i < 6; i++)
        {
            ticks.Add(await service.EvaluateOnceAsync(default));
            if (i == 0) Assert.Contains("kiln_monitor_dataset_drift{model=\"shop\"} 1\n", exporter.Render());
            if (i == 1)
            {
                var text = exporter.Render();
                Assert.DoesNotContain("kiln_monitor_dataset_drift{", text); // the failed tick has no data
                Assert.Contains("kiln_monitor_evaluation_errors_total{model=\"shop\",evaluator=\"scripted\"} 1\n", text);
                Assert.Contains("kiln_monitor_alert{alert=\"drift\",model=\"shop\",severity=\"warning\",state=\"pending\"} 1\n", text);
            }
            clock.Advance(TimeSpan.FromMinutes(1));
        }
        Assert.Equal((clock.Now.AddMinutes(-6) - TimeSpan.FromMinutes(30), clock.Now.AddMinutes(-6)), evaluator.Windows[0]);
        Assert.Contains(ticks[0].Measurements, m => m.Name == "kiln_monitor_last_success_timestamp_seconds");
        Assert.DoesNotContain(ticks[1].Measurements, m => m.Name == "kiln_monitor_last_success_timestamp_seconds");
        // pending at 8:00, the failed tick at 8:01 keeps it (no_data: keep), fires at 8:02, clear at 8:04, resolved at 8:05.
        Assert.Equal(["inactive->pending@0", "pending->firing@2", "firing->resolving@4", "resolving->resolved@5"],
            sink.Seen.Select(t => $"{t.From.Name()}->{t.To.Name()}@{(t.At - ticks[0].At).TotalMinutes}"));
    }
}
