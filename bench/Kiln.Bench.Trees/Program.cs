using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Kiln.Bench.Training;
using Kiln.Core.Data;
using Kiln.Core.Packaging;
using Kiln.Scoring;
using Kiln.Scoring.MlNet;
using Kiln.Scoring.Trees;
using Kiln.Training;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

// Model-only scoring of the seed article's forest (100 trees, up to 1024 leaves, 20k training rows, three features),
// one thread each, peers in alternating rounds (bench/trees/run.sh drives it):
//   mlnet-transform  ML.NET's own ITransformer.Transform over an in-memory IDataView, reading Probability
//   mlnet-scorer     Kiln's scorer with KILN_TREE_EVALUATOR=mlnet (the whole chain in ML.NET, row by row)
//   kiln-scorer      Kiln's scorer with its tree evaluator (ML.NET's transforms to the feature vector, then Kiln's forest)
//   kiln-trees       Kiln's packed forest alone on the feature rows, then the score and Platt formulas
//   kiln-trees-1row  the same, one row per call (as a single-object request scores): eight trees walk the row in lockstep
//   reference-walk   the same trees walked row by row, branching, on ML.NET's node arrays (the plain layout)
//   ort-trees        ONNX Runtime's TreeEnsembleRegressor on the same trees (bench/trees/forest_to_onnx.py), 1 intra-op thread
// Usage: Kiln.Bench.Trees WORK_DIR [ROWS=200000] [ROUNDS=5]
//        Kiln.Bench.Trees multiclass WORK_DIR [ROWS] [ROUNDS]   (Multiclass.cs)
//        Kiln.Bench.Trees onnx WORK_DIR REPO_ROOT [ROWS] [ROUNDS]   (OnnxTrees.cs: ONNX TreeEnsemble graphs, Kiln vs ONNX Runtime)
var inv = CultureInfo.InvariantCulture;
if (args.Length > 0 && args[0] == "multiclass")
    return await Multiclass.RunAsync(Path.GetFullPath(args.Length > 1 ? args[1] : "/tmp/kiln-bench-trees"), args.Length > 2 ? int.Parse(args[2], inv) : 50_000, args.Length > 3 ? int.Parse(args[3], inv) : 5);
if (args.Length > 0 && args[0] == "onnx")
    return await OnnxTrees.RunAsync(Path.GetFullPath(args[1]), Path.GetFullPath(args[2]), args.Length > 3 ? int.Parse(args[3], inv) : 200_000, args.Length > 4 ? int.Parse(args[4], inv) : 5);
var work = Path.GetFullPath(args.Length > 0 ? args[0] : "/tmp/kiln-bench-trees");
var rows = args.Length > 1 ? int.Parse(args[1], inv) : 200_000;
var rounds = args.Length > 2 ? int.Parse(args[2], inv) : 5;
Directory.CreateDirectory(work);
var packageDir = Path.Combine(work, "package");
if (!File.Exists(Path.Combine(packageDir, "kiln.json")))
{
    Console.WriteLine("training the seed article's forest: 20,000 rows, fast_forest, 100 trees, 1024 leaves, min_samples_leaf 1");
    DataGen.WriteCsv(DataGen.SeedArticle(20_000, 42), Path.Combine(work, "seed.csv"));
    await File.WriteAllTextAsync(Path.Combine(work, "seed.yaml"), """
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
          trees: 100
          leaves: 1024
          min_samples_leaf: 1
        holdout: 0.2
        seed: 42
        """);
    await Trainer.TrainAsync(TrainingSpec.Load(Path.Combine(work, "seed.yaml")), packageDir);
}
var package = ModelPackage.Load(packageDir);
var ml = new MLContext(seed: 0);
var model = ml.Model.Load(package.ModelPath, out var inputSchema);
var trees = MlnetTreeModel.TryCreate(model, inputSchema, package.Signature.Task, out var reason) ?? throw new InvalidOperationException(reason);
var depths = trees.Ensemble.Trees.Select(Depth).ToArray();
Console.WriteLine(string.Create(inv, $"forest: {trees.Ensemble.Trees.Count} trees, {trees.Ensemble.Trees.Sum(t => t.NodeCount + 1)} leaves, depth mean {depths.Average():0.0} max {depths.Max()}"));

// The evaluation rows: the seed article's generator with another seed, as a Kiln table, an ML.NET view and a float matrix.
var data = DataGen.SeedArticle(rows, 7);
var table = new DataTable(rows).Add(data["feature_1"]).Add(data["feature_2"]).Add(data["feature_3"]);
var f1 = ((NumericColumn)data["feature_1"]).Values;
var f2 = ((NumericColumn)data["feature_2"]).Values;
var f3 = ((NumericColumn)data["feature_3"]).Values;
var view = ml.Data.LoadFromEnumerable(Enumerable.Range(0, rows).Select(i => new SeedRow { feature_1 = (float)f1[i], feature_2 = (float)f2[i], feature_3 = (float)f3[i] }).ToList());
var block = new RowBlock(3, rows);
var matrix = new float[rows * 3];
for (var i = 0; i < rows; i++)
{
    var r = block.Row(i);
    r[0] = matrix[3 * i] = (float)f1[i];
    r[1] = matrix[3 * i + 1] = (float)f2[i];
    r[2] = matrix[3 * i + 2] = (float)f3[i];
}

// ONNX Runtime's graph of the same trees.
var json = Path.Combine(work, "forest.json");
var onnxPath = Path.Combine(work, "forest.onnx");
await File.WriteAllTextAsync(json, JsonSerializer.Serialize(new
{
    features = trees.Ensemble.FeatureCount,
    trees = trees.Ensemble.Trees.Select(t => new { feature = t.SplitFeatures, threshold = t.Thresholds, left = t.LteChild, right = t.GtChild, leaves = t.LeafValues }),
}));
var script = Path.Combine(AppContext.BaseDirectory, "forest_to_onnx.py");
using (var py = Process.Start("/usr/bin/python3", [args.Length > 3 ? args[3] : script, json, onnxPath])!)
{
    await py.WaitForExitAsync();
    if (py.ExitCode != 0) throw new InvalidOperationException("forest_to_onnx.py failed");
}
using var options = new SessionOptions { IntraOpNumThreads = 1, InterOpNumThreads = 1, ExecutionMode = ExecutionMode.ORT_SEQUENTIAL };
using var session = new InferenceSession(onnxPath, options);
var input = new DenseTensor<float>(matrix, [rows, 3]);

using var kilnScorer = new MlnetScorer(package, "kiln");
using var mlnetScorer = new MlnetScorer(package, "mlnet");
if (kilnScorer.TreeEvaluator != "kiln") throw new InvalidOperationException(kilnScorer.TreeEvaluatorReason);
var results = new Prediction[rows];
var sums = new double[rows];
var probabilities = new float[rows];

var peers = new (string Name, Action Run)[]
{
    ("mlnet-transform", () =>
    {
        var i = 0;
        foreach (var p in model.Transform(view).GetColumn<float>("Probability")) probabilities[i++] = p;
    }),
    ("mlnet-scorer", () => mlnetScorer.Score(table, 0, results)),
    ("kiln-scorer", () => kilnScorer.Score(table, 0, results)),
    ("kiln-trees", () =>
    {
        trees.Forest.Sum(block.Data, rows, sums);
        for (var i = 0; i < rows; i++) probabilities[i] = trees.Probability(trees.Score(sums[i]));
    }),
    ("kiln-trees-1row", () =>
    {
        var stride = trees.Forest.Stride;
        for (var i = 0; i < rows; i++)
        {
            trees.Forest.Sum(block.Data.Slice(i * stride, stride), 1, sums.AsSpan(i, 1));
            probabilities[i] = trees.Probability(trees.Score(sums[i]));
        }
    }),
    ("reference-walk", () =>
    {
        // The plain layout for comparison: ML.NET's arrays, one row at a time through every tree, branching.
        for (var i = 0; i < rows; i++) probabilities[i] = trees.Probability(trees.Score(trees.Ensemble.ReferenceSum(block.Row(i))));
    }),
    ("ort-trees", () =>
    {
        using var output = session.Run([NamedOnnxValue.CreateFromTensor("X", input)]);
        var y = output[0].AsTensor<float>();
        for (var i = 0; i < rows; i++) probabilities[i] = trees.Probability(y[i, 0]);
    }),
};

// Same trees: ONNX Runtime's float sums against Kiln's double sums.
peers[3].Run();
var kilnSums = (double[])sums.Clone();
using (var check = session.Run([NamedOnnxValue.CreateFromTensor("X", input)]))
{
    var y = check[0].AsTensor<float>();
    var worst = 0.0;
    for (var i = 0; i < rows; i++) worst = Math.Max(worst, Math.Abs(y[i, 0] - kilnSums[i]));
    Console.WriteLine(string.Create(inv, $"check: ONNX Runtime's sums within {worst:G3} of Kiln's (float vs double accumulation)"));
}
foreach (var p in peers) p.Run(); // warm up: JIT, engines, caches

var rates = peers.ToDictionary(p => p.Name, _ => new List<double>());
for (var round = 0; round < rounds; round++)
{
    // Alternate the order each round so no peer always runs first or last.
    var order = round % 2 == 0 ? peers : [.. peers.Reverse()];
    foreach (var (name, run) in order)
    {
        var clock = Stopwatch.StartNew();
        run();
        rates[name].Add(rows / clock.Elapsed.TotalSeconds);
    }
    Console.WriteLine(string.Create(inv, $"round {round + 1}: ") + string.Join("  ", peers.Select(p => string.Create(inv, $"{p.Name} {rates[p.Name][round]:N0}/s"))));
}

double Median(IEnumerable<double> v)
{
    var s = v.Order().ToArray();
    return s.Length % 2 == 1 ? s[s.Length / 2] : (s[s.Length / 2 - 1] + s[s.Length / 2]) / 2;
}
double RatioMedian(string a, string b) => Median(rates[a].Zip(rates[b], (x, y) => x / y));
Console.WriteLine("median rows/s per thread:");
foreach (var p in peers) Console.WriteLine(string.Create(inv, $"  {p.Name,-16} {Median(rates[p.Name]),12:N0}"));
Console.WriteLine("median of per-round ratios:");
Console.WriteLine(string.Create(inv, $"  kiln-scorer / mlnet-transform  {RatioMedian("kiln-scorer", "mlnet-transform"):0.00}x"));
Console.WriteLine(string.Create(inv, $"  kiln-scorer / mlnet-scorer     {RatioMedian("kiln-scorer", "mlnet-scorer"):0.00}x"));
Console.WriteLine(string.Create(inv, $"  kiln-trees  / mlnet-transform  {RatioMedian("kiln-trees", "mlnet-transform"):0.00}x"));
Console.WriteLine(string.Create(inv, $"  kiln-trees  / ort-trees        {RatioMedian("kiln-trees", "ort-trees"):0.00}x"));
Console.WriteLine(string.Create(inv, $"  kiln-trees  / reference-walk   {RatioMedian("kiln-trees", "reference-walk"):0.00}x"));
Console.WriteLine(string.Create(inv, $"  kiln-trees-1row / reference-walk {RatioMedian("kiln-trees-1row", "reference-walk"):0.00}x"));
Console.WriteLine(string.Create(inv, $"machine: {Environment.ProcessorCount} cores, load {File.ReadAllText("/proc/loadavg").Split(' ')[0]}"));
return 0;

static int Depth(RegressionTreeSpec t)
{
    if (t.IsEmpty) return 0;
    int Walk(int node) => node < 0 ? 0 : 1 + Math.Max(Walk(t.LteChild[node]), Walk(t.GtChild[node]));
    return Walk(0);
}

/// <summary>One input row as ML.NET's LoadFromEnumerable reads it; names are the signature's.</summary>
internal sealed class SeedRow
{
#pragma warning disable IDE1006, CA1707 // the model's column names
    public float feature_1 { get; set; }

    public float feature_2 { get; set; }

    public float feature_3 { get; set; }
#pragma warning restore IDE1006, CA1707
}
