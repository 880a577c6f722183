using Kiln.Monitoring.Continuous;
using Kiln.Monitoring.Drift;
using Kiln.Testing;

namespace Kiln.Monitoring.Tests.Continuous;

// The README's quickstart points kiln serve at examples/monitoring/monitoring.yaml: it must load as shipped.
public sealed class ExampleMonitorConfigTests
{
    [Fact]
    public void Shipped_example_loads_for_the_quickstart_fraud_model()
    {
        var file = Path.Combine(TestEnvironment.RepoRoot, "examples", "monitoring", "monitoring.yaml");
        Assert.True(File.Exists(file), file);
        // As kiln serve loads it: the log directory comes from --log-dir.
        var logs = Path.Combine(TestEnvironment.RepoRoot, ".kiln", "prediction-log");
        var c = MonitorConfigLoader.LoadFile(file, new MonitorDefaults { LogDirectory = logs });

        var target = Assert.Single(c.Targets);
        Assert.Equal("models:/fraud@production", target.Model);
        Assert.Equal("fraud", target.Name);
        Assert.Equal(logs, target.LogDirectory);
        Assert.Equal(StatTest.Ks, target.Drift.Columns["amount"].Test);
        Assert.Equal(["fraud_dataset_drift", "fraud_feature_drift", "fraud_prediction_drift"], c.Rules.Select(r => r.Name));
        Assert.All(c.Rules, r => Assert.Equal("fraud", r.Labels["model"]));
        Assert.False(c.RaisesPipelineEvents);

        // The README's command names this file.
        var readme = File.ReadAllText(Path.Combine(TestEnvironment.RepoRoot, "README.md"));
        Assert.Contains("--monitor examples/monitoring/monitoring.yaml", readme, StringComparison.Ordinal);
    }
}
