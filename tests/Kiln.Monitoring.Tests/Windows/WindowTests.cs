using Kiln.Core.Data;
using Kiln.Core.Packaging;
using Kiln.Monitoring.Feedback;
using Kiln.Monitoring.Windows;
using Kiln.Testing;

namespace Kiln.Monitoring.Tests.Windows;

public sealed class WindowTests : IDisposable
{
    private static readonly DateTime Day1 = new(2026, 11, 20, 23, 0, 0, DateTimeKind.Utc);
    private readonly TempDir _dir = new("kiln-window");

    public void Dispose() => _dir.Dispose();

    private string Log => _dir.File("log");

    [Fact]
    public async Task A_window_holds_exactly_the_rows_in_from_to_of_its_model_and_version_and_never_opens_other_dates()
    {
        // 180 rows a minute apart from 23:00 on day 1 to 01:59 on day 2, split by date as kiln serve would.
        var all = TestPackage.Rows(180, 0, 3, Day1, TimeSpan.FromMinutes(1));
        await SyntheticLog.WriteAsync(Log, "risk", "v1", all.Where(r => r.Timestamp.Day == 20).ToList(), rowGroupSize: 25);
        await SyntheticLog.WriteAsync(Log, "risk", "v1", all.Where(r => r.Timestamp.Day == 21).ToList(), rowGroupSize: 25);
        var v2 = TestPackage.Rows(30, 0, 4, Day1.AddHours(1), TimeSpan.FromMinutes(1), "v2-");
        await SyntheticLog.WriteAsync(Log, "risk", "v2", v2);
        await SyntheticLog.WriteAsync(Log, "other", "v1", TestPackage.Rows(10, 0, 5, Day1.AddHours(1), TimeSpan.FromMinutes(1)));
        var day2 = Path.Combine(Log, "model=risk", "version=v1", "date=2026-11-21");
        // A file being written (hidden) and a broken file on a date outside the window: neither may be read.
        await File.WriteAllTextAsync(Path.Combine(day2, ".part-x.parquet.inprogress"), "half a file");
        Directory.CreateDirectory(Path.Combine(Log, "model=risk", "version=v1", "date=2026-11-25"));
        await File.WriteAllTextAsync(Path.Combine(Log, "model=risk", "version=v1", "date=2026-11-25", "part-bad.parquet"), "not parquet");

        var from = Day1.AddMinutes(45);
        var to = Day1.AddMinutes(90);
        var window = await PredictionLogReader.ReadAllAsync(new LogWindow(Log, "risk", from, to, "v1"));
        var expected = all.Where(r => r.Timestamp >= from && r.Timestamp < to).ToList(); // naive filter: 45 rows, from included, to excluded
        Assert.Equal(45, expected.Count);
        Assert.Equal(expected.Select(r => r.RequestId).Order(), window.RequestIds.Order());
        Assert.Contains("r45", window.RequestIds);
        Assert.DoesNotContain("r90", window.RequestIds);
        // Inputs under their own names, values as logged.
        var x = window.Inputs.Numeric("x").Values;
        var color = window.Inputs.Text("color").Values;
        var byId = expected.ToDictionary(r => r.RequestId);
        for (var i = 0; i < window.Rows; i++)
        {
            Assert.Equal(byId[window.RequestIds[i]].X, x[i]);
            Assert.Equal(byId[window.RequestIds[i]].Color, color[i]);
            Assert.Equal(byId[window.RequestIds[i]].Value, window.Values[i]);
            Assert.Equal(byId[window.RequestIds[i]].Prediction, window.Predictions[i]);
        }
        Assert.Null(window.Inputs.Find("input_x"));

        // Every version: v2's rows in the range join in.
        var both = await PredictionLogReader.ReadAllAsync(new LogWindow(Log, "risk", from, to));
        Assert.Equal(45 + v2.Count(r => r.Timestamp >= from && r.Timestamp < to), both.Rows);

        // The broken file's date is in this window: now it is read, and the error names it.
        var e = await Assert.ThrowsAsync<Kiln.Core.KilnException>(() => PredictionLogReader.ReadAllAsync(new LogWindow(Log, "risk", from, new DateTime(2026, 11, 26, 0, 0, 0, DateTimeKind.Utc), "v1")));
        Assert.Contains("part-bad.parquet", e.Message);
    }

    [Fact]
    public async Task Small_windows_are_tested_on_every_row_and_large_ones_on_profiles_with_the_same_verdicts()
    {
        var package = ModelPackage.Load(TestPackage.Create(_dir.File("risk")));
        var start = new DateTime(2026, 11, 26, 6, 0, 0, DateTimeKind.Utc);
        await SyntheticLog.WriteAsync(Log, "risk", "1", TestPackage.Rows(3000, 1.0, 7, start, TimeSpan.FromSeconds(1)), rowGroupSize: 700);
        var exact = await WindowEvaluator.EvaluateAsync(package, Log, "risk", start, start.AddHours(1));
        var folded = await WindowEvaluator.EvaluateAsync(package, Log, "risk", start, start.AddHours(1), new WindowOptions { MaxExactRows = 500 });
        Assert.True(exact.Exact);
        Assert.False(folded.Exact);
        Assert.Contains(WindowWarnings.Summarized, folded.Warnings);
        Assert.Equal(3000, exact.Rows);
        Assert.Equal(3000, folded.Rows);
        Assert.Equal(3000, folded.Drift.CurrentRows);
        foreach (var report in new[] { exact, folded })
        {
            var x = report.Drift.Features.Single(f => f.Name == "x");
            Assert.True(x.Drifted, $"x shifted by one standard deviation must drift (exact={report.Exact})");
            Assert.False(report.Drift.Features.Single(f => f.Name == "color").Drifted);
            // Proxy: the predictions shift with x; means are exact on both paths.
            Assert.True(report.Proxy.PredictionMean > report.Proxy.ReferencePredictionMean + 0.1);
            Assert.True(report.Proxy.PredictionDrift!.Drifted);
            Assert.True(report.Proxy.ClassShares!["yes"] > report.Proxy.ReferenceClassShares!["yes"]);
        }
        Assert.Equal(exact.Proxy.PredictionMean!.Value, folded.Proxy.PredictionMean!.Value, 12);
        Assert.Equal(exact.Proxy.ClassShares!["yes"], folded.Proxy.ClassShares!["yes"], 12);
        // The profile's moments are exact, so the out-of-range counts agree too.
        Assert.Equal(exact.Drift.Features.Single(f => f.Name == "x").Quality.OutOfRangeCount, folded.Drift.Features.Single(f => f.Name == "x").Quality.OutOfRangeCount);
    }

    [Fact]
    public async Task The_evaluator_joins_feedback_by_request_and_row_and_flattens_to_gauges()
    {
        var package = ModelPackage.Load(TestPackage.Create(_dir.File("risk")));
        var start = new DateTime(2026, 11, 26, 6, 0, 0, DateTimeKind.Utc);
        var rows = TestPackage.Rows(400, 0, 8, start, TimeSpan.FromSeconds(5));
        // Two rows in one request: (r0, 0) and (r0, 1).
        rows[1] = rows[1] with { RequestId = "r0", Row = 1 };
        await SyntheticLog.WriteAsync(Log, "risk", "1", rows);
        var store = new FeedbackStore(Log);
        var rng = new Random(9);
        var labels = new Dictionary<(string, int), string>();
        var items = new List<FeedbackItem>();
        for (var i = 0; i < rows.Count; i += 2)
        {
            var label = rng.NextDouble() < 1 / (1 + Math.Exp(-rows[i].X!.Value)) ? "yes" : "no";
            items.Add(new FeedbackItem(rows[i].RequestId, rows[i].Row, label));
            labels[(rows[i].RequestId, rows[i].Row)] = label;
        }
        await store.AppendAsync(items, start.AddHours(2));
        // A later correction wins; a label for an unknown request is ignored.
        var corrected = labels[("r0", 0)] == "yes" ? "no" : "yes";
        await store.AppendAsync([new FeedbackItem("r0", 0, corrected), new FeedbackItem("r0", 1, "yes"), new FeedbackItem("nobody", 0, "yes")], start.AddHours(3));
        labels[("r0", 0)] = corrected;
        labels[("r0", 1)] = "yes";

        var report = await WindowEvaluator.EvaluateAsync(package, Log, "risk", start, start.AddHours(1));
        var m = report.Realized!;
        Assert.Equal(400, report.Rows);
        Assert.Equal(labels.Count, m.LabelledRows);
        Assert.Equal((double)labels.Count / 400, m.LabelCoverage!.Value, 12);
        var byKey = rows.ToDictionary(r => (r.RequestId, r.Row));
        var correct = labels.Count(kv => byKey[kv.Key].Prediction == kv.Value); // naive join
        Assert.Equal((double)correct / labels.Count, m.Accuracy!.Value, 12);
        Assert.NotNull(m.Auc);
        Assert.DoesNotContain(WindowWarnings.NoFeedback, report.Warnings);

        var gauges = report.ToGauges();
        double Gauge(string name, params (string, string)[] labelsWanted) => gauges.Single(g => g.Name == name &&
            labelsWanted.All(l => g.Labels.Any(x => x.Key == l.Item1 && x.Value == l.Item2))).Value;
        Assert.Equal(400, Gauge("kiln_monitor_window_rows", ("model", "risk")));
        Assert.Equal(labels.Count, Gauge("kiln_monitor_labelled_rows"));
        Assert.Equal(m.Accuracy!.Value, Gauge("kiln_monitor_realized_accuracy"));
        Assert.Equal(m.Auc!.Value, Gauge("kiln_monitor_realized_auc"));
        Assert.Equal(report.Drift.Features.Single(f => f.Name == "x").Score!.Value, Gauge("kiln_monitor_drift_score", ("feature", "x"), ("test", "wasserstein")));
        Assert.Equal(0, Gauge("kiln_monitor_dataset_drift"));
        Assert.Equal(report.Proxy.ClassShares!["yes"], Gauge("kiln_monitor_class_share", ("class", "yes")));
        Assert.Contains(gauges, g => g.ToString().StartsWith("kiln_monitor_prediction_mean{model=\"risk\"} ", StringComparison.Ordinal));

        // The JSON report round-trips.
        var back = WindowJson.Deserialize(WindowJson.Serialize(report))!;
        Assert.Equal(m.Accuracy, back.Realized!.Accuracy);
        Assert.Equal(report.Drift.Features.Count, back.Drift.Features.Count);
    }

    [Fact]
    public async Task Multiclass_log_loss_and_macro_f1_use_the_logged_class_probabilities_by_name_and_match_sklearn()
    {
        string[] classes = ["ant", "bee", "cat"];
        var package = ModelPackage.Load(TestPackage.Create(_dir.File("multi"), multiclass: classes));
        var start = new DateTime(2026, 11, 26, 6, 0, 0, DateTimeKind.Utc);
        var rng = new Random(11);
        var rows = new List<LogRow>();
        var truth = new List<string>();
        var probs = new List<double[]>();
        var predicted = new List<string>();
        var items = new List<FeedbackItem>();
        // The log's probability columns come in another order than the package's classes: they are matched by name.
        string[] logOrder = ["cat", "ant", "bee"];
        for (var i = 0; i < 300; i++)
        {
            var t = rng.Next(3);
            var raw = new double[3];
            for (var c = 0; c < 3; c++) raw[c] = rng.NextDouble() + (c == t ? 0.7 : 0);
            var p = raw.Select(v => v / raw.Sum()).ToArray(); // in the package's order
            var winner = Array.IndexOf(p, p.Max());
            rows.Add(new LogRow($"m{i}", 0, start.AddSeconds(i), rng.NextDouble(), "red", classes[winner], p[winner],
                [.. logOrder.Select(name => p[Array.IndexOf(classes, name)])]));
            if (i % 4 == 3) continue;
            truth.Add(classes[t]);
            probs.Add(p);
            predicted.Add(classes[winner]);
            items.Add(new FeedbackItem($"m{i}", 0, classes[t]));
        }
        await SyntheticLog.WriteAsync(Log, "risk", "1", rows, logOrder);
        await new FeedbackStore(Log).AppendAsync(items);

        var report = await WindowEvaluator.EvaluateAsync(package, Log, "risk", start, start.AddHours(1));
        var m = report.Realized!;
        Assert.Equal(items.Count, m.LabelledRows);
        var expected = await Statistics.ScipyOracle.RunAsync(new { truth, probs, predicted, classes }, """
            from sklearn import metrics as m
            print(json.dumps({'acc': m.accuracy_score(data['truth'], data['predicted']),
                              'f1': m.f1_score(data['truth'], data['predicted'], average='macro'),
                              'll': m.log_loss(data['truth'], data['probs'], labels=data['classes'])}))
            """);
        Statistics.ScipyOracle.Close(expected.GetProperty("acc").GetDouble(), m.Accuracy!.Value, 1e-12, "accuracy");
        Statistics.ScipyOracle.Close(expected.GetProperty("f1").GetDouble(), m.F1!.Value, 1e-12, "macro f1");
        Statistics.ScipyOracle.Close(expected.GetProperty("ll").GetDouble(), m.LogLoss!.Value, 1e-9, "log loss");
        Assert.Equal(3, report.Proxy.ClassShares!.Count);
    }

    [Fact]
    public async Task An_empty_window_and_a_window_without_feedback_give_named_warnings_not_errors()
    {
        var package = ModelPackage.Load(TestPackage.Create(_dir.File("risk")));
        Directory.CreateDirectory(Log);
        var start = new DateTime(2026, 11, 26, 6, 0, 0, DateTimeKind.Utc);
        var empty = await WindowEvaluator.EvaluateAsync(package, Log, "risk", start, start.AddHours(1));
        Assert.Equal(0, empty.Rows);
        Assert.Contains(WindowWarnings.EmptyWindow, empty.Warnings);
        Assert.Contains("empty_window", empty.Drift.Warnings);
        Assert.Null(empty.Proxy.PredictionMean);
        Assert.Equal(0, empty.ToGauges().Single(g => g.Name == "kiln_monitor_window_rows").Value);

        await SyntheticLog.WriteAsync(Log, "risk", "1", TestPackage.Rows(50, 0, 3, start, TimeSpan.FromSeconds(1)));
        var unlabelled = await WindowEvaluator.EvaluateAsync(package, Log, "risk", start, start.AddHours(1));
        Assert.Equal(50, unlabelled.Rows);
        Assert.Contains(WindowWarnings.NoFeedback, unlabelled.Warnings);
        Assert.Equal(0, unlabelled.Realized!.LabelledRows);
        Assert.Null(unlabelled.Realized.Accuracy);

        await Assert.ThrowsAsync<Kiln.Core.KilnException>(() => WindowEvaluator.EvaluateAsync(package, Log, "risk", start, start));
    }

    [Fact]
    public void Window_lengths_and_times_parse_or_fail_naming_the_option()
    {
        Assert.Equal(TimeSpan.FromHours(1), LogWindow.ParseLength("1h"));
        Assert.Equal(TimeSpan.FromMinutes(15), LogWindow.ParseLength("15m"));
        Assert.Equal(TimeSpan.FromDays(14), LogWindow.ParseLength("2w"));
        Assert.Contains("--window", Assert.Throws<Kiln.Core.KilnException>(() => LogWindow.ParseLength("soon")).Message);
        Assert.Equal(new DateTimeOffset(2026, 11, 26, 8, 0, 0, TimeSpan.Zero), LogWindow.ParseTime("2026-11-26T08:00:00", "--from"));
        Assert.Contains("--to", Assert.Throws<Kiln.Core.KilnException>(() => LogWindow.ParseTime("yesterday-ish", "--to")).Message);
    }

    [Fact]
    public void Hidden_folders_of_a_log_directory_are_not_data()
    {
        Directory.CreateDirectory(Path.Combine(Log, "model=m", "version=1", "date=2026-11-26"));
        Directory.CreateDirectory(Path.Combine(Log, FeedbackStore.DirectoryName, "date=2026-11-26"));
        File.WriteAllText(Path.Combine(Log, "model=m", "version=1", "date=2026-11-26", "part-1.parquet"), "");
        File.WriteAllText(Path.Combine(Log, FeedbackStore.DirectoryName, "date=2026-11-26", "feedback-1.parquet"), "");
        var files = DataSources.Resolve(Log);
        Assert.Single(files);
        Assert.EndsWith("part-1.parquet", files[0]);
    }
}
