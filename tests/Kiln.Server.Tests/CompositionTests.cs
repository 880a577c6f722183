using Kiln.Core;
using Kiln.Pipelines.Definition;
using Kiln.Server.Composition;
using Kiln.Testing;

namespace Kiln.Server.Tests;

/// <summary>kiln server and kiln pipeline are composed in one place, from options checked before the server listens.</summary>
public sealed class CompositionTests
{
    [Fact]
    public void Every_areas_task_kinds_are_in_the_one_registry()
    {
        var kinds = KilnTaskKinds.Create();
        string[] expected = ["shell", "noop", "train", "evaluate", "gate", "register", "set_alias", "batch_score", "materialize", "drift_check"];
        foreach (var name in expected) Assert.True(kinds.TryGet(name, out _), $"kind {name} is missing from {string.Join(", ", kinds.Names)}");
    }

    [Fact]
    public void A_pipeline_using_every_areas_kinds_loads_with_their_settings_checked()
    {
        using var dir = new TempDir("kiln-composition");
        var file = dir.File("loop.yaml");
        File.WriteAllText(file, """
            name: loop
            tasks:
              train:
                kind: train
                spec: spec.yaml
              score:
                kind: batch_score
                model: models:/fraud@production
                input: in.csv
                output: out/
                depends_on: [train]
              check:
                kind: drift_check
                model: models:/fraud@production
                current: in.csv
                on_drift: explode
            """);
        var e = Assert.ThrowsAny<KilnException>(() => PipelineLoader.LoadFile(file, KilnTaskKinds.Create()));
        // The drift_check kind, which lives in Kiln.Monitoring, checked its own setting at load time.
        Assert.Contains("on_drift", e.Message, StringComparison.Ordinal);
        Assert.Contains("explode", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_missing_pipelines_directory_is_refused_before_the_server_starts()
    {
        using var dir = new TempDir("kiln-composition");
        var options = new KilnServerOptions { Db = dir.Path, Port = 0, PipelinesDirectory = dir.File("nope") };
        var e = Assert.Throws<KilnException>(() => KilnServer.BuildApp(options));
        Assert.Contains("--pipelines", e.Message, StringComparison.Ordinal);
        Assert.Contains("nope", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_monitor_raising_pipeline_events_needs_pipelines_in_the_server()
    {
        using var dir = new TempDir("kiln-composition");
        var monitor = dir.File("monitoring.yaml");
        File.WriteAllText(monitor, """
            targets:
              - model: models:/fraud@production
                log_dir: logs
            rules:
              - name: drifted
                metric: kiln_monitor_dataset_drift
                condition: above_or_equal
                threshold: 1
                pipeline_event: drift
            """);
        var options = new KilnServerOptions { Db = dir.Path, Port = 0, MonitorFile = monitor };
        var e = Assert.Throws<KilnException>(() => KilnServer.BuildApp(options));
        Assert.Contains("rule 'drifted' raises pipeline event 'drift'", e.Message, StringComparison.Ordinal);
    }
}
