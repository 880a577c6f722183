using System.Diagnostics;
using System.Globalization;
using Kiln.Bench.Training;
using Kiln.Core.Data;
using Kiln.Core.Packaging;
using Kiln.Scoring;
using Kiln.Scoring.MlNet;
using Kiln.Training;

/// <summary>
/// Multiclass tree ensembles, model and transforms (Kiln's scorer): the seed article's three features with a
/// three-class label, each of Kiln's multiclass tree trainers (all one-versus-all models once saved), Kiln's evaluator
/// against KILN_TREE_EVALUATOR=mlnet, one thread each, alternating rounds.
/// </summary>
internal static class Multiclass
{
    public static async Task<int> RunAsync(string work, int rows, int rounds)
    {
        var inv = CultureInfo.InvariantCulture;
        Directory.CreateDirectory(work);
        var csv = Path.Combine(work, "seed3.csv");
        if (!File.Exists(csv))
        {
            // Three classes: the seed article's positives, and its negatives split by feature_2 at 0.5.
            var seed = DataGen.SeedArticle(20_000, 42);
            var target = ((TextColumn)seed["target"]).Values;
            var f2 = ((NumericColumn)seed["feature_2"]).Values;
            var label = new string?[seed.RowCount];
            for (var i = 0; i < label.Length; i++) label[i] = target[i] == "1" ? "positive" : f2[i] < 0.5 ? "low" : "high";
            var table = new DataTable(seed.RowCount).Add(seed["feature_1"]).Add(seed["feature_2"]).Add(seed["feature_3"]).Add(new TextColumn("cls", label));
            DataGen.WriteCsv(table, csv);
        }
        var data = DataGen.SeedArticle(rows, 7);
        var input = new DataTable(rows).Add(data["feature_1"]).Add(data["feature_2"]).Add(data["feature_3"]);
        var results = new Prediction[rows];
        var expected = new Prediction[rows];
        Console.WriteLine(string.Create(inv, $"multiclass: 20,000 training rows, 3 classes, 100 trees of 64 leaves per class; {rows:N0} rows scored per run"));
        foreach (var kind in new[] { "fast_forest", "fast_tree", "lightgbm" })
        {
            var packageDir = Path.Combine(work, $"multiclass-{kind}");
            if (!File.Exists(Path.Combine(packageDir, "kiln.json")))
            {
                var spec = Path.Combine(work, $"multiclass-{kind}.yaml");
                await File.WriteAllTextAsync(spec, $"""
                    name: seed-multiclass
                    task: multiclass
                    data: seed3.csv
                    label: cls
                    features:
                      feature_1: numeric
                      feature_2: numeric
                      feature_3: numeric
                    trainer:
                      kind: {kind}
                      trees: 100
                      leaves: 64
                    holdout: 0.2
                    seed: 42
                    """);
                await Trainer.TrainAsync(TrainingSpec.Load(spec), packageDir);
            }
            var package = ModelPackage.Load(packageDir);
            using var kiln = new MlnetScorer(package, "kiln");
            using var mlnet = new MlnetScorer(package, "mlnet");
            if (kiln.TreeEvaluator != "kiln") throw new InvalidOperationException(kiln.TreeEvaluatorReason);

            // Same answers, to the bit, before any timing.
            kiln.Score(input, 0, results);
            mlnet.Score(input, 0, expected);
            for (var i = 0; i < rows; i++)
            {
                if (results[i].Label != expected[i].Label || !results[i].Probabilities!.SequenceEqual(expected[i].Probabilities!))
                    throw new InvalidOperationException($"{kind}: row {i} differs from ML.NET");
            }
            var rates = new Dictionary<string, List<double>> { ["kiln"] = [], ["mlnet"] = [] };
            for (var round = 0; round < rounds; round++)
            {
                string[] order = round % 2 == 0 ? ["kiln", "mlnet"] : ["mlnet", "kiln"];
                foreach (var peer in order)
                {
                    var scorer = peer == "kiln" ? kiln : mlnet;
                    var clock = Stopwatch.StartNew();
                    scorer.Score(input, 0, results);
                    rates[peer].Add(rows / clock.Elapsed.TotalSeconds);
                }
            }
            var ratios = rates["kiln"].Zip(rates["mlnet"], (a, b) => a / b).Order().ToArray();
            Console.WriteLine(string.Create(inv, $"{kind,-12} {kiln.TreeEvaluatorReason}: kiln {Median(rates["kiln"]):N0}/s, mlnet {Median(rates["mlnet"]):N0}/s, median ratio {ratios[ratios.Length / 2]:0.00}x"));
        }
        Console.WriteLine(string.Create(inv, $"machine: {Environment.ProcessorCount} cores, load {File.ReadAllText("/proc/loadavg").Split(' ')[0]}"));
        return 0;
    }

    private static double Median(List<double> v)
    {
        var s = v.Order().ToArray();
        return s[s.Length / 2];
    }
}
