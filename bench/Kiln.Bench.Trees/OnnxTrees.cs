using System.Diagnostics;
using System.Globalization;
using Kiln.Bench.Training;
using Kiln.Core.Data;
using Kiln.Core.Packaging;
using Kiln.Scoring;
using Kiln.Scoring.Onnx;
using Kiln.Scoring.Trees;
using Kiln.Training.Onnx;
using Microsoft.ML.OnnxRuntime;

/// <summary>
/// ONNX TreeEnsemble graphs imported with `kiln package onnx`: Kiln's tree evaluator against ONNX Runtime's TreeEnsemble
/// on the same graph, one thread each, alternating rounds (docs/benchmarks.md, "ONNX tree ensembles"):
///   kiln-trees   Kiln's packed forest on a float row block, then ONNX Runtime's finish (base values, post transform)
///   ort-trees    ONNX Runtime's session.Run on the same float matrix (IntraOpNumThreads = 1), output copied out
///   kiln-scorer  the package's scorer (OnnxTreeScorer, Kiln's evaluator): table columns in, predictions out
///   ort-scorer   what the scorer runs with KILN_TREE_EVALUATOR=mlnet (OnnxModel: ONNX Runtime, intra-op threads pinned to 1)
/// Models: the seed article's forest as a TreeEnsembleRegressor (forest.onnx, written by the model mode) and a
/// scikit-learn RandomForestClassifier (4 classes, 100 trees, depth 10) written by tests/Kiln.Testing/sklearn_trees_to_onnx.py.
/// </summary>
internal static class OnnxTrees
{
    public static async Task<int> RunAsync(string work, string repoRoot, int rows, int rounds)
    {
        var inv = CultureInfo.InvariantCulture;
        var forest = Path.Combine(work, "forest.onnx");
        if (!File.Exists(forest)) throw new InvalidOperationException($"{forest} is missing: run the model mode once first (bench/trees/run.sh does)");
        var sk = Path.Combine(work, "sk-rf");
        if (!File.Exists(Path.Combine(sk, "model.onnx")))
        {
            Console.WriteLine("training scikit-learn's RandomForestClassifier: 20,000 rows, 100 trees, max_depth 10, 4 classes");
            using var py = Process.Start("/usr/bin/python3", [Path.Combine(repoRoot, "tests", "Kiln.Testing", "sklearn_trees_to_onnx.py"), "rf-multiclass", sk, "20000", "100", "10"])!;
            await py.WaitForExitAsync();
            if (py.ExitCode != 0) throw new InvalidOperationException("sklearn_trees_to_onnx.py failed");
        }

        var seed = DataGen.SeedArticle(rows, 7);
        var seedTable = new DataTable(rows).Add(seed["feature_1"]).Add(seed["feature_2"]).Add(seed["feature_3"]);
        var rng = new Random(7);
        var skTable = new DataTable(rows);
        for (var f = 0; f < 4; f++)
        {
            var v = new double[rows];
            for (var i = 0; i < rows; i++) v[i] = f == 3 ? rng.Next(0, 5) : (float)NextNormal(rng);
            skTable.Add(new NumericColumn($"f{f}", v));
        }

        var models = new[]
        {
            (Name: "seed-forest", Path: forest, Table: seedTable, Task: ModelTask.Regression, Features: new[] { "feature_1", "feature_2", "feature_3" }, Classes: (string[]?)null, Output: "Y"),
            (Name: "sklearn-rf", Path: Path.Combine(sk, "model.onnx"), Table: skTable, Task: ModelTask.Multiclass, Features: new[] { "f0", "f1", "f2", "f3" }, Classes: (string[]?)["0", "1", "2", "3"], Output: "probabilities"),
        };
        foreach (var m in models)
        {
            var packageDir = Path.Combine(work, "onnx-" + m.Name);
            if (Directory.Exists(packageDir)) Directory.Delete(packageDir, true);
            await OnnxImporter.ImportAsync(new OnnxImportOptions(m.Path, m.Name) { Task = m.Task, Features = m.Features, Classes = m.Classes }, packageDir);
            var package = ModelPackage.Load(packageDir);
            using var kilnScorer = new OnnxTreeScorer(package, "kiln");
            // ONNX Runtime's side of the scorer (what KILN_TREE_EVALUATOR=mlnet runs), its intra-op threads pinned to 1.
            using var ortScorer = new OnnxModel(package.ModelPath, package.Signature, intraOpThreads: 1);
            var ensemble = kilnScorer.Ensemble ?? throw new InvalidOperationException(kilnScorer.TreeEvaluatorReason);
            Console.WriteLine($"{m.Name}: {ensemble.Describe()}; exact for NaN in the packed layout: {ensemble.ExactForNaN}");

            // The same feature rows three ways: Kiln's row block, ONNX Runtime's float matrix, the scorer's table.
            var k = m.Features.Length;
            var block = new RowBlock(k, rows);
            var matrix = new float[rows * k];
            for (var j = 0; j < k; j++)
            {
                var values = m.Table.Numeric(m.Features[j]).Values;
                for (var i = 0; i < rows; i++) block.Row(i)[j] = matrix[i * k + j] = (float)values[i];
            }
            using var options = new SessionOptions { IntraOpNumThreads = 1, InterOpNumThreads = 1, ExecutionMode = ExecutionMode.ORT_SEQUENTIAL };
            using var session = new InferenceSession(m.Path, options);
            using var input = OrtValue.CreateTensorValueFromMemory(matrix, [rows, k]);
            using var runOptions = new RunOptions();
            var width = ensemble.Width;
            var raw = new float[rows * ensemble.Targets];
            var leaves = new int[rows];
            var z = new float[rows * width];
            var zOrt = new float[rows * width];
            var results = new Prediction[rows];

            var peers = new (string Name, Action Run)[]
            {
                ("kiln-trees", () =>
                {
                    ensemble.RawBlock(block.Data, rows, raw, leaves);
                    for (var i = 0; i < rows; i++) ensemble.Finish(raw.AsSpan(i * ensemble.Targets, ensemble.Targets), z.AsSpan(i * width, width));
                }),
                ("ort-trees", () =>
                {
                    using var outputs = session.Run(runOptions, [session.InputMetadata.Keys.First()], [input], [m.Output]);
                    outputs[0].GetTensorDataAsSpan<float>().CopyTo(zOrt);
                }),
                ("kiln-scorer", () => kilnScorer.Score(m.Table, 0, results)),
                ("ort-scorer", () => ortScorer.Score(m.Table, 0, results)),
            };
            peers[0].Run();
            peers[1].Run();
            var differ = 0;
            for (var i = 0; i < z.Length; i++) if (BitConverter.SingleToInt32Bits(z[i]) != BitConverter.SingleToInt32Bits(zOrt[i])) differ++;
            Console.WriteLine(string.Create(inv, $"check: {z.Length - differ:N0} of {z.Length:N0} output cells equal to ONNX Runtime's (one thread) to the bit"));
            foreach (var p in peers) p.Run(); // warm up

            var rates = peers.ToDictionary(p => p.Name, _ => new List<double>());
            for (var round = 0; round < rounds; round++)
            {
                var order = round % 2 == 0 ? peers : [.. peers.Reverse()];
                foreach (var (name, run) in order)
                {
                    var clock = Stopwatch.StartNew();
                    run();
                    rates[name].Add(rows / clock.Elapsed.TotalSeconds);
                }
                Console.WriteLine(string.Create(inv, $"round {round + 1}: ") + string.Join("  ", peers.Select(p => string.Create(inv, $"{p.Name} {rates[p.Name][round]:N0}/s")))
                    + string.Create(inv, $"  trees ratio {rates["kiln-trees"][round] / rates["ort-trees"][round]:0.00}x  scorer ratio {rates["kiln-scorer"][round] / rates["ort-scorer"][round]:0.00}x"));
            }
            Console.WriteLine($"{m.Name}: median rows/s per thread");
            foreach (var p in peers) Console.WriteLine(string.Create(inv, $"  {p.Name,-12} {Median(rates[p.Name]),12:N0}"));
            Console.WriteLine(string.Create(inv, $"  kiln-trees / ort-trees    {Median(rates["kiln-trees"].Zip(rates["ort-trees"], (a, b) => a / b)):0.00}x (median of per-round ratios)"));
            Console.WriteLine(string.Create(inv, $"  kiln-scorer / ort-scorer  {Median(rates["kiln-scorer"].Zip(rates["ort-scorer"], (a, b) => a / b)):0.00}x"));
        }
        Console.WriteLine(string.Create(inv, $"machine: {Environment.ProcessorCount} cores, load {File.ReadAllText("/proc/loadavg").Split(' ')[0]}"));
        return 0;
    }

    private static double NextNormal(Random rng) => Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());

    private static double Median(IEnumerable<double> v)
    {
        var s = v.Order().ToArray();
        return s.Length % 2 == 1 ? s[s.Length / 2] : (s[s.Length / 2 - 1] + s[s.Length / 2]) / 2;
    }
}
