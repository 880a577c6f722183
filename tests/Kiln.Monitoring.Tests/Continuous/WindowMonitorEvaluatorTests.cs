using Kiln.Monitoring.Continuous;
using Kiln.Monitoring.Drift;
using Kiln.Testing;

namespace Kiln.Monitoring.Tests.Continuous;

// The continuous monitor's evaluator reads the window's rows from prediction-log Parquet files and compares them with
// the package's reference profile. Oracle: the rows filtered naively by timestamp, compared with DriftCalculator (itself checked
// against scipy in the Drift tests).
public sealed class WindowMonitorEvaluatorTests : IDisposable
{
    private readonly TempDir _dir = new("kiln-monitor-drift");

    public void Dispose() => _dir.Dispose();

    private static readonly DateTimeOffset End = new(2026, 11, 26, 0, 30, 0, TimeSpan.Zero);

    [Fact]
    public async Task Only_rows_inside_the_window_across_dates_and_versions_are_measured()
    {
        var package = LogFixtures.Package(_dir.File("pkg"), LogFixtures.Data(3000, 0, 1));
        var logs = _dir.File("logs");
        var step = TimeSpan.FromSeconds(4); // 700 rows: 23:32:00 to 00:18:36
        // Before the window (3 h earlier, undrifted), in the window (drifted: x shifted by 1, a new color) across the
        // midnight partition and two versions, and after the window's end.
        var before = LogFixtures.Data(400, 0, 2);
        var inside = LogFixtures.Data(700, 1.0, 3, thirdColor: "purple");
        var after = LogFixtures.Data(100, 0, 4);
        await LogFixtures.WriteLogAsync(logs, "shop", "1", before, End.AddHours(-3), step);
        var firstInside = End.AddMinutes(-58);                            // 23:32 on the 25th
        await LogFixtures.WriteLogAsync(logs, "shop", "1", LogFixtures.Slice(inside, 0, 420), firstInside, step); // to 23:59:56
        await LogFixtures.WriteLogAsync(logs, "shop", "2", LogFixtures.Slice(inside, 420, 700), firstInside + step * 420, step); // from 00:00 on the 26th
        await LogFixtures.WriteLogAsync(logs, "shop", "2", after, End, step); // starts exactly at the end: excluded ([start, end))
        await LogFixtures.WriteLogAsync(logs, "other", "1", LogFixtures.Data(500, 5, 9), firstInside, step); // another model

        var target = new MonitorTarget { Name = "shop", Model = package, LogModel = "shop", LogDirectory = logs, Window = TimeSpan.FromHours(1) };
        var m = await new WindowMonitorEvaluator().EvaluateAsync(target, End - target.Window, End, default);
        double Get(string name, string? feature = null) => m.Single(x => x.Name == name && (feature is null || x.Labels["feature"] == feature)).Value;

        Assert.Equal(700, Get("kiln_monitor_window_rows"));
        var oracle = DriftCalculator.Compare(Kiln.Core.Packaging.ModelPackage.Load(package).Profile!.Inputs, inside);
        Assert.Equal(oracle.DatasetDrift ? 1 : 0, Get("kiln_monitor_dataset_drift"));
        Assert.Equal(1, Get("kiln_monitor_dataset_drift"));
        Assert.Equal(oracle.DriftedShare, Get("kiln_monitor_drift_share"));
        foreach (var f in oracle.Features)
        {
            Assert.Equal(f.Score!.Value, Get("kiln_monitor_drift_score", f.Name), 12);
            Assert.Equal(f.Threshold!.Value, Get("kiln_monitor_drift_threshold", f.Name), 12);
            Assert.Equal(f.Drifted == true ? 1 : 0, Get("kiln_monitor_feature_drifted", f.Name));
            Assert.Equal(f.Test, m.Single(x => x.Name == "kiln_monitor_drift_score" && x.Labels["feature"] == f.Name).Labels["test"]);
        }
        Assert.True(Get("kiln_monitor_feature_unseen_share", "color") > 0.25); // purple is a third of the window
        Assert.All(m, x => Assert.Equal("shop", x.Labels["model"]));
    }

    [Fact]
    public async Task An_empty_or_too_small_window_publishes_only_its_row_count()
    {
        var package = LogFixtures.Package(_dir.File("pkg"), LogFixtures.Data(3000, 0, 1));
        var logs = _dir.File("logs");
        await LogFixtures.WriteLogAsync(logs, "shop", "1", LogFixtures.Data(50, 1.0, 2), End.AddMinutes(-10), TimeSpan.FromSeconds(1));
        var target = new MonitorTarget { Name = "shop", Model = package, LogModel = "shop", LogDirectory = logs, MinRows = 100 };

        var small = await new WindowMonitorEvaluator().EvaluateAsync(target, End.AddHours(-1), End, default);
        Assert.Equal(["kiln_monitor_window_rows"], small.Select(x => x.Name));
        Assert.Equal(50, small[0].Value);

        var empty = await new WindowMonitorEvaluator().EvaluateAsync(target with { MinRows = 1, LogModel = "nobody" }, End.AddHours(-1), End, default);
        Assert.Equal(0, empty.Single().Value);
    }
}
