using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using Kiln.Core.Data;
using Kiln.Scoring;
using Kiln.Training;
using static Kiln.Bench.Training.Bench;

namespace Kiln.Bench.Training;

/// <summary>
/// The seed article's model: Kiln's fast_forest against scikit-learn's
/// make_pipeline(StandardScaler(), RandomForestClassifier(n_estimators=100, max_depth=10, random_state=42))
/// on the same rows and the same 80/20 split, both measured in this run.
/// </summary>
internal static class SeedArticle
{
    public static async Task<JsonObject> RunAsync(Options o, List<(string Name, string Kiln, string Peer, string Goal)> table)
    {
        var dir = Path.GetFullPath(Path.Combine(o.Work, "seed-article"));
        Directory.CreateDirectory(dir);
        var n = o.TrainRows;
        Log($"seed article: generating {n:N0} rows (seed {o.Seed})");
        var data = DataGen.SeedArticle(n, o.Seed);
        var allCsv = Path.Combine(dir, "seed.csv");
        DataGen.WriteCsv(data, allCsv);

        // The split Trainer.TrainAsync makes for holdout 0.2 and this seed: row indices permuted by
        // new Random(seed).Shuffle, the first round(n * holdout) held out. The same rows go to
        // test.csv for scikit-learn; Kiln's own holdout accuracy is then checked against Kiln's
        // scorer on test.csv below, so a drift between the two splits cannot go unnoticed.
        const double Holdout = 0.2;
        var order = Enumerable.Range(0, n).ToArray();
        new Random(o.Seed).Shuffle(order);
        var holdoutRows = (int)Math.Clamp(Math.Round(n * Holdout), 1, n - 1);
        var testIndex = order[..holdoutRows];
        var trainIndex = order[holdoutRows..];
        Array.Sort(testIndex);
        Array.Sort(trainIndex);
        var trainCsv = Path.Combine(dir, "train.csv");
        var testCsv = Path.Combine(dir, "test.csv");
        DataGen.WriteCsv(data, trainCsv, trainIndex);
        DataGen.WriteCsv(data, testCsv, testIndex);

        var specText = string.Create(CultureInfo.InvariantCulture, $"""
            name: seed-article
            task: binary
            data: seed.csv
            label: target
            positive: "1"
            features:
              feature_1: numeric
              feature_2: numeric
              feature_3: numeric
            trainer:
              kind: fast_forest
              trees: {o.Trees}
              leaves: {o.Leaves}
              min_samples_leaf: {o.MinSamplesLeaf}
            holdout: {Holdout}
            seed: {o.Seed}

            """);
        var specPath = Path.Combine(dir, "seed-article.yaml");
        await File.WriteAllTextAsync(specPath, specText);
        var spec = TrainingSpec.Load(specPath);

        Log($"kiln: fast_forest, {o.Trees} trees, {o.Leaves} leaves, min_samples_leaf {o.MinSamplesLeaf}: a 10-tree warm-up, then {o.TrainRuns} timed runs");
        var packageDir = Path.Combine(dir, "package");
        var warmupSpec = TrainingSpec.Parse(specText.Replace($"trees: {o.Trees}", "trees: 10", StringComparison.Ordinal), specPath, dir);
        await Trainer.TrainAsync(warmupSpec, Path.Combine(dir, "package-warmup"));
        var totalSeconds = new List<double>();
        var totalCpu = new List<double>();
        var fitSeconds = new List<double>();
        TrainingResult? result = null;
        for (var i = 0; i < o.TrainRuns; i++)
        {
            var clock = new StageClock();
            var timing = Timing.Start();
            var r = await Trainer.TrainAsync(spec, packageDir, clock);
            var (wall, used) = timing.Stop();
            totalSeconds.Add(wall);
            totalCpu.Add(used);
            fitSeconds.Add(clock.SecondsBetween("Training", "Evaluating")); // the forest's calibration folds included
            if (result is not null && r.Metrics["accuracy"] != result.Metrics["accuracy"])
                throw new InvalidOperationException("Kiln's accuracy changed between runs with the same seed");
            result = r;
            Log($"  run {i + 1}: fit {fitSeconds[^1]:F3} s, whole train command {wall:F3} s (cpu {used:F3} s), holdout accuracy {r.Metrics["accuracy"]:F4}");
        }

        // Score test.csv through Kiln.Scoring: the accuracy on exactly scikit-learn's test rows.
        var test = await TableReader.ReadAllAsync([testCsv],
            [new("feature_1", ColumnType.Numeric), new("feature_2", ColumnType.Numeric), new("feature_3", ColumnType.Numeric), new("target", ColumnType.Text)]);
        var inputs = new DataTable(test.RowCount).Add(test["feature_1"]).Add(test["feature_2"]).Add(test["feature_3"]);
        var labels = test.Text("target").Values;
        using var scorer = Scorers.Open(result!.PackageDirectory);
        var predictions = scorer.ScoreAll(inputs);
        var correct = 0;
        for (var i = 0; i < predictions.Length; i++) if (predictions[i].Label == labels[i]) correct++;
        var kilnAccuracy = (double)correct / predictions.Length;
        var packageAccuracy = result.Metrics["accuracy"];
        var sameRows = result.HoldoutRows == test.RowCount && Math.Abs(kilnAccuracy - packageAccuracy) < 1e-9;
        Log($"kiln: accuracy on test.csv through Kiln.Scoring {kilnAccuracy:F4} (package's holdout metric {packageAccuracy:F4}; same rows: {sameRows})");

        Log($"scikit-learn: {o.TrainRuns} timed fits on train.csv, scored on test.csv");
        var sk = await Python.RunJsonAsync(o, "sklearn_rf.py", trainCsv, testCsv, o.TrainRuns.ToString(CultureInfo.InvariantCulture));
        var skFit = sk["fit_seconds"]!.AsArray().Select(v => v!.GetValue<double>()).ToList();
        var skFitCpu = sk["fit_cpu_seconds"]!.AsArray().Select(v => v!.GetValue<double>()).ToList();
        var skAccuracy = sk["accuracy"]!.GetValue<double>();
        var gapPoints = (kilnAccuracy - skAccuracy) * 100;
        var meets = gapPoints >= -1.0;

        var kilnFit = Median(fitSeconds);
        var kilnTotal = Median(totalSeconds);
        var skFitMedian = Median(skFit);
        table.Add(($"Seed article: fit time ({trainIndex.Length:N0} rows)", $"{kilnFit:F2} s", $"{skFitMedian:F2} s (cpu {Median(skFitCpu):F2} s, 1 thread)", "-"));
        table.Add(("Seed article: whole Trainer.TrainAsync (load, profile, fit, eval, package)", $"{kilnTotal:F2} s (cpu {Median(totalCpu):F2} s)", "-", "-"));
        table.Add(($"Seed article: holdout accuracy ({test.RowCount:N0} rows)", $"{kilnAccuracy:P2}", $"{skAccuracy:P2}",
            $"within 1 point of sklearn: {gapPoints:+0.00;-0.00} points " + (meets ? "(met)" : "(MISSED)")));
        table.Add(("Seed article: holdout AUC", $"{result.Metrics["auc"]:F4}", $"{sk["auc"]!.GetValue<double>():F4}", "-"));
        table.Add(("Seed article: holdout log-loss (nats)", $"{result.Metrics["log_loss"]:F4}", $"{sk["log_loss"]!.GetValue<double>():F4}", "-"));

        return new JsonObject
        {
            ["rows"] = n,
            ["train_rows"] = trainIndex.Length,
            ["test_rows"] = test.RowCount,
            ["positive_rate"] = (double)data.Text("target").Values.Count(v => v == "1") / n,
            ["split"] = "Kiln's holdout split (Random(seed).Shuffle of row indices, first 20% held out), written to train.csv/test.csv for scikit-learn",
            ["kiln"] = new JsonObject
            {
                ["spec"] = specText,
                ["trainer"] = "fast_forest",
                ["trees"] = o.Trees,
                ["leaves"] = o.Leaves,
                ["min_samples_leaf"] = o.MinSamplesLeaf,
                ["fit_runs_seconds"] = ToJson(fitSeconds),
                ["fit_median_seconds"] = kilnFit,
                ["train_command_runs_seconds"] = ToJson(totalSeconds),
                ["train_command_median_seconds"] = kilnTotal,
                ["train_command_runs_cpu_seconds"] = ToJson(totalCpu),
                ["train_command_median_cpu_seconds"] = Median(totalCpu),
                ["accuracy"] = kilnAccuracy,
                ["package_holdout_accuracy"] = packageAccuracy,
                ["holdout_is_test_csv"] = sameRows,
                ["auc"] = result.Metrics["auc"],
                ["log_loss"] = result.Metrics["log_loss"],
            },
            ["sklearn"] = new JsonObject
            {
                ["version"] = sk["sklearn"]!.GetValue<string>(),
                ["model"] = "make_pipeline(StandardScaler(), RandomForestClassifier(n_estimators=100, max_depth=10, random_state=42))",
                ["fit_runs_seconds"] = ToJson(skFit),
                ["fit_median_seconds"] = skFitMedian,
                ["fit_runs_cpu_seconds"] = ToJson(skFitCpu),
                ["fit_median_cpu_seconds"] = Median(skFitCpu),
                ["accuracy"] = skAccuracy,
                ["auc"] = sk["auc"]!.GetValue<double>(),
                ["log_loss"] = sk["log_loss"]!.GetValue<double>(),
                ["leaves_mean"] = sk["leaves_mean"]!.GetValue<double>(),
                ["leaves_max"] = sk["leaves_max"]!.GetValue<int>(),
                ["depth_max"] = sk["depth_max"]!.GetValue<int>(),
            },
            ["accuracy_gap_points"] = gapPoints,
            ["goal"] = "Kiln's accuracy within 1 point of scikit-learn's (a gap of -1 point or better)",
            ["meets_goal"] = meets,
        };
    }

    /// <summary>Times the trainer's stages from its progress callbacks.</summary>
    private sealed class StageClock : ITrainingProgress
    {
        private readonly Stopwatch _clock = Stopwatch.StartNew();
        private readonly List<(string Stage, double Start)> _stages = [];

        public void Stage(string description) => _stages.Add((description, _clock.Elapsed.TotalSeconds));

        public void RowsRead(long rows)
        {
        }

        /// <summary>Seconds from the first stage starting with <paramref name="from"/> to the first after it starting with <paramref name="to"/>.</summary>
        public double SecondsBetween(string from, string to)
        {
            var i = _stages.FindIndex(s => s.Stage.StartsWith(from, StringComparison.Ordinal));
            var j = i < 0 ? -1 : _stages.FindIndex(i + 1, s => s.Stage.StartsWith(to, StringComparison.Ordinal));
            if (j < 0) throw new InvalidOperationException($"the trainer reported no '{from}' stage followed by a '{to}' stage");
            return _stages[j].Start - _stages[i].Start;
        }
    }
}
