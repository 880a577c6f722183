using System.Diagnostics.Metrics;
using Kiln.Monitoring.Alerts;
using Kiln.Monitoring.Continuous;
using Kiln.Serving.Metrics;
using Kiln.Testing;

namespace Kiln.Monitoring.Tests.Continuous;

// Measurements become gauges on the meter that kiln serve's /metrics exports (the real PrometheusExporter), and the
// text passes promtool.
public sealed class GaugePublisherTests
{
    [Fact]
    public async Task Measurements_and_alerts_are_exported_as_valid_prometheus_gauges_and_stale_series_disappear()
    {
        using var meter = new Meter("Kiln.Serving");
        using var exporter = new PrometheusExporter(meter);
        var gauges = new GaugePublisher(meter);
        gauges.Publish(
        [
            Measurement.Of("kiln_monitor_dataset_drift", 1, "1 when the dataset drifts.", ("model", "fraud")),
            Measurement.Of("kiln_monitor_drift_score", 0.42, "Drift score.", ("model", "fraud"), ("feature", "amount"), ("test", "psi")),
            Measurement.Of("kiln_monitor_drift_score", 0.01, "Drift score.", ("model", "fraud"), ("feature", "merchant \"x\"\nname"), ("test", "jensenshannon")),
            Measurement.Of("kiln.monitor-odd name", 3, null, ("0bad-label", "v"), ("__reserved", "w")),
            Measurement.Of("kiln_monitor_feature_missing_rate", double.NaN, null, ("model", "fraud"), ("feature", "hour")),
        ]);
        var engine = new AlertEngine([new AlertRule { Name = "drift", Metric = "kiln_monitor_drift_score", Threshold = 0.1 }]);
        engine.Observe([Measurement.Of("kiln_monitor_drift_score", 0.42, null, ("model", "fraud"), ("feature", "amount"), ("test", "psi"))]);
        gauges.PublishAlerts(engine.Active());
        gauges.EvaluationErrors.Add(1, new("model", "fraud"), new("evaluator", "drift"));

        var text = exporter.Render();
        Assert.Contains("# TYPE kiln_monitor_dataset_drift gauge", text);
        Assert.Contains("kiln_monitor_dataset_drift{model=\"fraud\"} 1\n", text);
        Assert.Contains("kiln_monitor_drift_score{feature=\"amount\",model=\"fraud\",test=\"psi\"} 0.42\n", text);
        Assert.Contains("feature=\"merchant \\\"x\\\"\\nname\"", text); // escaped label value
        Assert.Contains("kiln_monitor_odd_name{_0bad_label=\"v\",label__reserved=\"w\"} 3\n", text); // made valid
        Assert.DoesNotContain("kiln_monitor_feature_missing_rate{", text); // NaN: no sample
        Assert.Contains("kiln_monitor_alert{alert=\"drift\",feature=\"amount\",model=\"fraud\",severity=\"warning\",state=\"firing\",test=\"psi\"} 1\n", text);
        Assert.Contains("kiln_monitor_evaluation_errors_total{model=\"fraud\",evaluator=\"drift\"} 1\n", text);

        var check = await Proc.RunAsync("promtool", ["check", "metrics"], stdin: text, timeout: TimeSpan.FromSeconds(30));
        Assert.True(check.ExitCode == 0, check + "\n" + text);

        // The next evaluation measured less: the old series are gone, not frozen at their last value.
        gauges.Publish([Measurement.Of("kiln_monitor_window_rows", 0, "Rows.", ("model", "fraud"))]);
        gauges.PublishAlerts([]);
        text = exporter.Render();
        Assert.Contains("kiln_monitor_window_rows{model=\"fraud\"} 0\n", text);
        Assert.DoesNotContain("kiln_monitor_dataset_drift{", text);
        Assert.DoesNotContain("kiln_monitor_alert{", text);
        check = await Proc.RunAsync("promtool", ["check", "metrics"], stdin: text, timeout: TimeSpan.FromSeconds(30));
        Assert.True(check.ExitCode == 0, check + "\n" + text);
    }
}
