using Kiln.Core;
using Kiln.Monitoring.Alerts;
using Kiln.Monitoring.Continuous;
using Kiln.Monitoring.Drift;
using Kiln.Testing;

namespace Kiln.Monitoring.Tests.Continuous;

// monitoring.yaml: a full file reads as written; every mistake names the file, the line and the key.
public sealed class MonitorConfigTests : IDisposable
{
    private readonly TempDir _dir = new("kiln-monitor-config");

    public void Dispose() => _dir.Dispose();

    private string Package() => LogFixtures.Package(_dir.File("pkg"), LogFixtures.Data(200, 0, 1), name: "shop");

    [Fact]
    public void A_full_file_reads_as_written_with_paths_relative_to_it()
    {
        Package();
        var file = _dir.File("monitoring.yaml");
        File.WriteAllText(file, """
            interval: 30s
            external_url: http://serve.internal:8080
            pipelines_url: http://kiln-server:5000
            webhook:
              timeout: 5s
              attempts: 3
              initial_backoff: 250ms
              max_backoff: 30s
              queue: 50
            feedback:
              compact_after: 10
            state_dir: state
            targets:
              - model: pkg
                log_dir: logs
                window: 2h
                min_rows: 100
                drift:
                  drift_share: 0.3
                  test: psi
                  threshold: 0.2
                  columns:
                    x: ks:0.01
                    color: { test: jensenshannon, threshold: 0.15 }
                  ignore: [id]
              - model: models:/fraud@production
                log_dir: /var/log/kiln
            rules:
              - name: shop_drift
                metric: kiln_monitor_dataset_drift
                labels: { model: shop }
                condition: above_or_equal
                threshold: 1
                for: 10m
                clear_for: 30m
                severity: critical
                no_data: ok
                webhook: [http://hooks.internal/a, http://hooks.internal/b]
                pipeline_event: drift_alert
                summary: the shop's inputs drifted
              - name: fraud_rows
                metric: kiln_monitor_window_rows
                condition: below
                threshold: 10
            """);
        var c = MonitorConfigLoader.LoadFile(file);
        Assert.Equal(TimeSpan.FromSeconds(30), c.Interval);
        Assert.Equal("http://serve.internal:8080/metrics", c.Link);
        Assert.Equal(new Uri("http://kiln-server:5000/"), c.PipelinesUrl);
        Assert.Equal(new HttpDeliveryOptions { AttemptTimeout = TimeSpan.FromSeconds(5), MaxAttempts = 3, InitialBackoff = TimeSpan.FromMilliseconds(250), MaxBackoff = TimeSpan.FromSeconds(30), QueueCapacity = 50 }, c.Delivery);

        Assert.Equal(10, c.FeedbackCompactAfter);
        Assert.Equal(64, MonitorConfigLoader.Load("targets: []\n", "m.yaml").FeedbackCompactAfter);
        Assert.Equal(_dir.File("state/alerts.json"), c.AlertStateFile);
        // Default: beside kiln serve's --log-dir, else the first target's log_dir; nothing to go by: memory only.
        Assert.Equal(Path.Combine("/var/log/kiln", "_monitor", "alerts.json"),
            MonitorConfigLoader.Load("targets: []\n", "m.yaml", new MonitorDefaults { LogDirectory = "/var/log/kiln" }).AlertStateFile);
        Assert.Equal("/srv/logs/_monitor", MonitorConfigLoader.Load("targets:\n  - model: models:/a@prod\n    log_dir: /srv/logs\n", "m.yaml").StateDirectory);
        Assert.Null(MonitorConfigLoader.Load("targets: []\n", "m.yaml").StateDirectory);

        var shop = c.Targets[0];
        Assert.Equal("shop", shop.Name); // the package's name
        Assert.Equal("shop", shop.LogModel);
        Assert.Equal(_dir.File("pkg"), shop.Model);
        Assert.Equal(_dir.File("logs"), shop.LogDirectory);
        Assert.Equal(TimeSpan.FromHours(2), shop.Window);
        Assert.Equal(100, shop.MinRows);
        Assert.Equal(0.3, shop.Drift.DriftShare);
        Assert.Equal(StatTest.Psi, shop.Drift.Test);
        Assert.Equal(0.2, shop.Drift.Threshold);
        Assert.Equal(StatTest.Ks, shop.Drift.Columns["x"].Test);
        Assert.Equal(0.01, shop.Drift.Columns["x"].Threshold);
        Assert.Equal(StatTest.JensenShannon, shop.Drift.Columns["color"].Test);
        Assert.Contains("id", shop.Drift.Ignore);
        Assert.Equal("fraud", c.Targets[1].Name); // from models:/NAME@ALIAS
        Assert.Equal(TimeSpan.FromHours(1), c.Targets[1].Window);

        var rule = c.Rules[0];
        Assert.Equal(("shop_drift", "kiln_monitor_dataset_drift", AlertCondition.AboveOrEqual, 1.0), (rule.Name, rule.Metric, rule.Condition, rule.Threshold));
        Assert.Equal("shop", rule.Labels["model"]);
        Assert.Equal((TimeSpan.FromMinutes(10), TimeSpan.FromMinutes(30)), (rule.For, rule.ClearFor));
        Assert.Equal(("critical", NoDataPolicy.Ok, "drift_alert"), (rule.Severity, rule.NoData, rule.PipelineEvent));
        Assert.Equal([new Uri("http://hooks.internal/a"), new Uri("http://hooks.internal/b")], rule.Webhooks);
        Assert.Equal(("warning", NoDataPolicy.Keep, TimeSpan.Zero), (c.Rules[1].Severity, c.Rules[1].NoData, c.Rules[1].For));
        Assert.True(c.RaisesPipelineEvents);
    }

    [Fact]
    public void A_window_of_a_week_is_accepted_as_on_the_window_option()
    {
        // monitoring.yaml once refused 1w although `kiln monitor --window 1w` took it; both use Kiln.Core.Duration now.
        var c = MonitorConfigLoader.Load("targets:\n  - model: models:/a@prod\n    log_dir: x\n    window: 1w\n", "monitoring.yaml");
        Assert.Equal(TimeSpan.FromDays(7), c.Targets[0].Window);
        Assert.Equal(TimeSpan.FromDays(7), Kiln.Monitoring.Windows.LogWindow.ParseLength("1w"));
    }

    [Theory]
    [InlineData("interval: 1m\nrules:\n  - name: a\n    metric: m\n    threshold: 1\n    for: 5x\n", "monitoring.yaml:6:10: rules[0].for: '5x' is not a duration")]
    [InlineData("rules:\n  - name: a\n    metric: m\n    treshold: 1\n", "monitoring.yaml:4:5: rules[0]: unknown key 'treshold' (did you mean 'threshold'?;")]
    [InlineData("rules:\n  - name: a\n    metric: m\n", "monitoring.yaml:2:5: rules[0].threshold is required")]
    [InlineData("rules:\n  - name: a\n    metric: m\n    threshold: high\n", "monitoring.yaml:4:16: rules[0].threshold: 'high' is not a number")]
    [InlineData("rules:\n  - name: a\n    metric: m\n    threshold: 1\n    condition: over\n", "monitoring.yaml:5:16: rules[0].condition: 'over' is not a condition")]
    [InlineData("rules:\n  - name: a\n    metric: m\n    threshold: 1\n    webhook: ftp://x\n", "monitoring.yaml:5:14: rules[0].webhook: 'ftp://x' is not an http(s) URL")]
    [InlineData("rules:\n  - name: a\n    metric: kiln-drift\n    threshold: 1\n", "monitoring.yaml:3:13: rules[0].metric: 'kiln-drift' is not a metric name")]
    [InlineData("rules:\n  - name: a\n    metric: m\n    threshold: 1\n    no_data: maybe\n", "monitoring.yaml:5:14: rules[0].no_data: 'maybe' is not a no-data policy")]
    [InlineData("interval: 0s\n", "monitoring.yaml:1:11: interval: '0s' is not a positive duration")]
    [InlineData("intervall: 1m\n", "monitoring.yaml:1:1: unknown key 'intervall' (did you mean 'interval'?; expected one of: interval,")]
    [InlineData("targets:\n  - log_dir: x\n", "monitoring.yaml:2:5: targets[0].model is required")]
    [InlineData("targets:\n  - model: models:/a@prod\n", "monitoring.yaml:2:5: targets[0].log_dir is required")]
    [InlineData("targets:\n  - model: nowhere\n    log_dir: x\n", "monitoring.yaml:2:12: targets[0].model: ")]
    [InlineData("targets:\n  - model: models:/a@prod\n    log_dir: x\n    drift:\n      test: magic\n", "monitoring.yaml:5:13: targets[0].drift.test: unknown test 'magic'")]
    [InlineData("targets:\n  - model: models:/a@prod\n    log_dir: x\n    window: -1h\n", "monitoring.yaml:4:13: targets[0].window: '-1h' is not a positive duration")]
    [InlineData("webhook:\n  attempts: 0\n", "monitoring.yaml:2:13: webhook.attempts: 0 is out of range")]
    [InlineData("feedback:\n  compact_after: -1\n", "monitoring.yaml:2:18: feedback.compact_after: -1 is out of range")]
    [InlineData("feedback:\n  compact: 3\n", "monitoring.yaml:2:3: feedback: unknown key 'compact' (expected one of:")]
    [InlineData("rules: [a: [b\n", "monitoring.yaml:2:1: invalid YAML: ")]
    [InlineData("- a\n", "monitoring.yaml:1:1: monitoring configuration is a YAML mapping with 'targets' and 'rules'")]
    [InlineData("rules:\n  - {name: a, metric: m, threshold: 1}\n  - {name: a, metric: n, threshold: 2}\n", "monitoring.yaml:3:12: rules[1].name: 'a' is already the name of an earlier entry")]
    public void Mistakes_name_the_file_line_and_key(string yaml, string expected)
    {
        var e = Assert.Throws<KilnException>(() => MonitorConfigLoader.Load(yaml, "monitoring.yaml"));
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void A_pipeline_event_in_a_process_without_pipelines_is_refused_at_the_rule_that_raises_it()
    {
        const string yaml = "rules:\n  - {name: quiet, metric: m, threshold: 1}\n  - name: drifted\n    metric: m\n    threshold: 1\n    pipeline_event: drift\n";
        var e = Assert.Throws<KilnException>(() => MonitorConfigLoader.Load(yaml, "monitoring.yaml", new MonitorDefaults { PipelinesInProcess = false }));
        Assert.StartsWith("monitoring.yaml:6:21: rule 'drifted' raises pipeline event 'drift', but this process runs no pipelines", e.Message, StringComparison.Ordinal);
        // With pipelines_url, or pipelines in the same process, the rule is accepted.
        Assert.NotNull(MonitorConfigLoader.Load(yaml + "pipelines_url: http://127.0.0.1:5000\n", "monitoring.yaml", new MonitorDefaults { PipelinesInProcess = false }));
        Assert.NotNull(MonitorConfigLoader.Load(yaml, "monitoring.yaml", new MonitorDefaults { PipelinesInProcess = true }));
    }
}
