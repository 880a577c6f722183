using System.Globalization;
using FsCheck.Xunit;
using Google.Protobuf;
using Kiln.Core.Data;
using Kiln.Core.Packaging;
using Kiln.Core.Profiling;
using Kiln.Scoring.Onnx;
using Kiln.Scoring.Onnx.Proto;
using Kiln.Scoring.Trees;
using Kiln.Testing;
using Kiln.Training.Onnx;
using Microsoft.ML.OnnxRuntime;

namespace Kiln.Scoring.Tests;

/// <summary>
/// ONNX TreeEnsemble graphs through Kiln's tree evaluator (docs/serving.md#tree-ensembles), against two oracles:
/// ONNX Runtime itself on the same graph (one intra-op thread, so its float sums run in tree order), which must agree
/// to the bit on every row; and scikit-learn, whose trees the graphs were written from (tests/Kiln.Testing/
/// sklearn_trees_to_onnx.py, python3-onnx's helper; skl2onnx is not installed), within float rounding.
/// </summary>
public sealed class OnnxTreeEvaluatorTests
{
    private static string Converter => Path.Combine(TestEnvironment.RepoRoot, "tests", "Kiln.Testing", "sklearn_trees_to_onnx.py");

    [Theory]
    [InlineData("rf-binary")]
    [InlineData("rf-multiclass")]
    [InlineData("rf-regression")]
    [InlineData("gb-binary")]
    [InlineData("gb-multiclass")]
    [InlineData("gb-regression")]
    public async Task Scikit_learn_ensembles_score_as_ONNX_Runtime_does_to_the_bit_and_as_scikit_learn_does(string kind)
    {
        using var dir = new TempDir("kiln-onnx-trees");
        var made = await Proc.RunAsync(Proc.Python, [Converter, kind, dir.Path, "5000", "40", "8"]);
        Assert.True(made.ExitCode == 0, made.ToString());
        var task = kind.EndsWith("binary", StringComparison.Ordinal) ? ModelTask.Binary : kind.EndsWith("multiclass", StringComparison.Ordinal) ? ModelTask.Multiclass : ModelTask.Regression;
        var classes = task switch { ModelTask.Binary => new[] { "0", "1" }, ModelTask.Multiclass => ["0", "1", "2", "3"], _ => null };
        var packageDir = await OnnxImporter.ImportAsync(new OnnxImportOptions(dir.File("model.onnx"), kind)
        {
            Task = task,
            Features = ["f0", "f1", "f2", "f3"],
            Classes = classes,
        }, dir.File("package"));
        var package = ModelPackage.Load(packageDir);
        using var scorer = (OnnxTreeScorer)Scorers.Open(package);
        Assert.True(scorer.TreeEvaluator == "kiln", scorer.TreeEvaluatorReason);

        // scikit-learn's own predict_proba / predict on 2,000 fresh rows (float rounding apart: ONNX holds float32
        // thresholds and leaf values and sums in float; scikit-learn works in float64).
        var features = new[] { "f0", "f1", "f2", "f3" };
        var answers = task == ModelTask.Regression ? ["y"] : classes!.Select(c => "p" + c).ToArray();
        var test = await TableReader.ReadAllAsync([dir.File("test.csv")], [.. features.Concat(answers).Select(c => new ColumnRequest(c, ColumnType.Numeric))]);
        var predictions = scorer.ScoreAll(test);
        for (var i = 0; i < test.RowCount; i++)
        {
            var p = predictions[i];
            switch (task)
            {
                case ModelTask.Regression:
                    var y = test.Numeric("y").Values[i];
                    Assert.True(Math.Abs(p.Value - y) <= 1e-5 * Math.Max(1, Math.Abs(y)), $"row {i}: kiln {p.Value} vs scikit-learn {y}");
                    break;
                case ModelTask.Binary:
                    Assert.True(Math.Abs(p.Value - test.Numeric("p1").Values[i]) <= 1e-5, $"row {i}: kiln {p.Value} vs scikit-learn {test.Numeric("p1").Values[i]}");
                    break;
                default:
                    for (var c = 0; c < 4; c++)
                        Assert.True(Math.Abs(p.Probabilities![c] - test.Numeric("p" + c).Values[i]) <= 1e-5, $"row {i} class {c}: kiln {p.Probabilities[c]} vs scikit-learn {test.Numeric("p" + c).Values[i]}");
                    break;
            }
        }

        // ONNX Runtime on 200,000 random rows: values on, above and below every split, integers, and 10% missing cells.
        var sample = RandomRows(scorer.Ensemble!, features, 200_000, new Random(kind.GetHashCode(StringComparison.Ordinal)));
        var kiln = scorer.ScoreAll(sample);
        var expected = new Prediction[sample.RowCount];
        using (var ort = new OnnxModel(package.ModelPath, package.Signature, intraOpThreads: 1)) ort.Score(sample, 0, expected);
        for (var i = 0; i < expected.Length; i++)
        {
            if (OnnxTreeScorer.Differs(expected[i], kiln[i]) is { } what) Assert.Fail($"row {i}: ONNX Runtime vs Kiln: {what}");
        }
        // KILN_TREE_EVALUATOR=mlnet sends the package back to ONNX Runtime.
        using var fallback = new OnnxTreeScorer(package, "mlnet");
        Assert.Equal("onnxruntime", fallback.TreeEvaluator);
        Assert.Null(fallback.Ensemble);
    }

    private static DataTable RandomRows(OnnxTreeEnsemble ensemble, string[] names, int rows, Random rng)
    {
        var splits = ensemble.SplitValues();
        var table = new DataTable(rows);
        for (var f = 0; f < names.Length; f++)
        {
            var pool = splits[f].SelectMany(v => new[] { v, MathF.BitIncrement(v), MathF.BitDecrement(v) }).ToArray();
            var values = new double[rows];
            for (var r = 0; r < rows; r++)
            {
                values[r] = rng.Next(10) switch
                {
                    0 => double.NaN,
                    1 or 2 or 3 when pool.Length > 0 => pool[rng.Next(pool.Length)],
                    4 => rng.Next(-2, 6),
                    _ => rng.NextDouble() * 6 - 3,
                };
            }
            table.Add(new NumericColumn(names[f], values));
        }
        return table;
    }

    [Fact]
    public void A_graph_without_trees_stays_with_ONNX_Runtime_and_a_regressor_graph_is_read()
    {
        using var dir = new TempDir("kiln-onnx-trees");
        var path = dir.File("one.onnx");
        var seed = 1;
        ModelProto model;
        while (Ensemble(Rng(seed), out var attributes, out _) is var m && (model = m) is not null && attributes.Classifier) seed++;
        File.WriteAllBytes(path, model.ToByteArray());
        var signature = new ModelSignature
        {
            Task = ModelTask.Regression,
            Inputs = [.. Enumerable.Range(0, 3).Select(i => new InputField { Name = $"x{i}", Type = ColumnKind.Numeric, TensorType = "float32" })],
            Outputs = [new OutputField { Name = "prediction", Type = "numeric" }],
        };
        using (var ort = new OnnxModel(path, signature))
        {
            var plan = OnnxTreeGraph.TryRead(path, ort, out var reason);
            Assert.True(plan is not null, reason);
            Assert.Equal([0, 1, 2], plan.Columns);
        }

        var churn = Path.Combine(TestEnvironment.RepoRoot, "examples", "onnx", "churn.onnx");
        var binary = new ModelSignature { Task = ModelTask.Binary, Inputs = signature.Inputs, Outputs = signature.Outputs, ClassLabels = ["stay", "churn"] };
        using var logistic = new OnnxModel(churn, binary);
        Assert.Null(OnnxTreeGraph.TryRead(churn, logistic, out var why));
        Assert.Contains("no TreeEnsembleClassifier or TreeEnsembleRegressor", why, StringComparison.Ordinal);
    }

    private static Random Rng(int seed) => new(seed);

    /// <summary>
    /// Random ensembles with all six branch modes (and thresholds of ±0, ±∞ and NaN among ordinary ones), random
    /// nodes_missing_value_tracks_true, node ids out of order, regressors (SUM or AVERAGE, a base value) and classifiers
    /// (2 to 4 classes, every post transform but PROBIT, base values, the binary case with class 0's weights only):
    /// ONNX Runtime's outputs on rows of thresholds, their float neighbours, ±0, ±∞ and NaN, against Kiln's packed
    /// evaluator and its reference walk, bit for bit.
    /// </summary>
    [Property(MaxTest = 150)]
    public void Random_ensembles_with_every_branch_mode_equal_ONNX_Runtime_bit_for_bit(int seed)
    {
        var rng = Rng(seed);
        var model = Ensemble(rng, out var attributes, out var rows);
        var ensemble = OnnxTreeEnsemble.TryCreate(attributes, 3, out var reason) ?? throw new InvalidOperationException(reason);
        using var options = new SessionOptions { IntraOpNumThreads = 1, InterOpNumThreads = 1, ExecutionMode = ExecutionMode.ORT_SEQUENTIAL, LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR };
        using var session = new InferenceSession(model.ToByteArray(), options);
        var count = rows.Length / 3;
        using var input = OrtValue.CreateTensorValueFromMemory(rows, [count, 3]);
        var outputName = attributes.Classifier ? "probabilities" : "Y";
        using var runOptions = new RunOptions();
        using var outputs = session.Run(runOptions, ["X"], [input], [outputName]);
        var ort = outputs[0].GetTensorDataAsSpan<float>().ToArray();

        var block = new RowBlock(3, count);
        for (var r = 0; r < count; r++) rows.AsSpan(r * 3, 3).CopyTo(block.Row(r));
        var raw = new float[count * ensemble.Targets];
        ensemble.RawBlock(block.Data, count, raw, new int[count]);
        var width = ensemble.Width;
        var z = new float[width];
        var reference = new float[ensemble.Targets];
        for (var r = 0; r < count; r++)
        {
            ensemble.Raw(block.Row(r), reference);
            for (var k = 0; k < ensemble.Targets; k++)
                Assert.True(BitConverter.SingleToInt32Bits(reference[k]) == BitConverter.SingleToInt32Bits(raw[r * ensemble.Targets + k]), $"row {r} target {k}: packed {raw[r * ensemble.Targets + k]:R} vs reference walk {reference[k]:R}");
            ensemble.Finish(raw.AsSpan(r * ensemble.Targets, ensemble.Targets), z);
            for (var k = 0; k < width; k++)
            {
                var o = ort[r * width + k];
                Assert.True(BitConverter.SingleToInt32Bits(o) == BitConverter.SingleToInt32Bits(z[k]) || (float.IsNaN(o) && float.IsNaN(z[k])),
                    string.Create(CultureInfo.InvariantCulture, $"seed {seed} row {r} ({string.Join(", ", rows.Skip(r * 3).Take(3))}) column {k}: ONNX Runtime {o:R} vs Kiln {z[k]:R} ({ensemble.Describe()}; base [{string.Join(", ", attributes.BaseValues)}], weight targets {{{string.Join(", ", attributes.WeightTargets.Distinct())}}}; ONNX Runtime's row [{string.Join(", ", ort.Skip(r * width).Take(width))}], Kiln's [{string.Join(", ", z.Take(width))}], raw [{string.Join(", ", raw.Skip(r * ensemble.Targets).Take(ensemble.Targets))}])"));
            }
        }
    }

    private static readonly float[] Pool = [-1.5f, -0.25f, 0f, -0f, 0.5f, 1f, 2.75f, 1e-8f, float.PositiveInfinity, float.NegativeInfinity, float.NaN];

    private static ModelProto Ensemble(Random rng, out OnnxTreeAttributes attributes, out float[] rows)
    {
        string[] modes = ["BRANCH_LEQ", "BRANCH_LT", "BRANCH_GTE", "BRANCH_GT", "BRANCH_EQ", "BRANCH_NEQ"];
        var classifier = rng.Next(2) == 0;
        var targets = classifier ? rng.Next(2, 5) : 1;
        var binaryCase = classifier && targets == 2 && rng.Next(2) == 0;
        var treeIds = new List<long>();
        var nodeIds = new List<long>();
        var featureIds = new List<long>();
        var nodeModes = new List<string>();
        var values = new List<float>();
        var trueIds = new List<long>();
        var falseIds = new List<long>();
        var missing = new List<long>();
        var wTree = new List<long>();
        var wNode = new List<long>();
        var wTarget = new List<long>();
        var weights = new List<float>();
        float Threshold() => rng.Next(12) == 0 ? Pool[rng.Next(Pool.Length)] : MathF.Round((float)(rng.NextDouble() * 6 - 3), 2);
        for (var t = rng.Next(1, 8); t > 0; t--)
        {
            var tree = treeIds.Count == 0 ? 0 : (int)treeIds[^1] + 1;
            // Grow a random tree as (mode, feature, value, true child, false child) records; node 0 is the root.
            var records = new List<(string Mode, int Feature, float Value, int Yes, int No, bool Missing)>();
            int Grow(int depth)
            {
                var me = records.Count;
                records.Add(default);
                if (depth >= 5 || rng.Next(4) == 0)
                {
                    records[me] = ("LEAF", 0, 0f, 0, 0, false);
                    return me;
                }
                var mode = modes[rng.Next(modes.Length)];
                var (feature, value, miss) = (rng.Next(3), Threshold(), rng.Next(2) == 0);
                var yes = Grow(depth + 1);
                var no = Grow(depth + 1);
                records[me] = (mode, feature, value, yes, no, miss);
                return me;
            }
            Grow(0);
            // Ids shuffled (ONNX names nodes by id, not position; ONNX Runtime wants 0..n-1); the root stays first in the list.
            var ids = Enumerable.Range(0, records.Count).Select(i => (long)i).OrderBy(_ => rng.Next()).ToArray();
            var order = new[] { 0 }.Concat(Enumerable.Range(1, records.Count - 1).OrderBy(_ => rng.Next())).ToArray();
            foreach (var i in order)
            {
                var (mode, feature, value, yes, no, miss) = records[i];
                treeIds.Add(tree);
                nodeIds.Add(ids[i]);
                featureIds.Add(feature);
                nodeModes.Add(mode);
                values.Add(value);
                trueIds.Add(mode == "LEAF" ? 0 : ids[yes]);
                falseIds.Add(mode == "LEAF" ? 0 : ids[no]);
                missing.Add(miss ? 1 : 0);
                if (mode != "LEAF") continue;
                for (var k = 0; k < (binaryCase ? 1 : targets); k++)
                {
                    wTree.Add(tree);
                    wNode.Add(ids[i]);
                    wTarget.Add(k);
                    weights.Add(MathF.Round((float)(rng.NextDouble() * 2 - (classifier && rng.Next(3) == 0 ? 0 : 1)), 3));
                }
            }
        }
        string[] posts = ["NONE", "LOGISTIC", "SOFTMAX", "SOFTMAX_ZERO"];
        var post = classifier ? posts[rng.Next(posts.Length)] : "NONE";
        var baseCount = classifier ? (targets == 2 ? rng.Next(3) : rng.Next(2) * targets) : rng.Next(2);
        var baseValues = Enumerable.Range(0, baseCount).Select(_ => MathF.Round((float)(rng.NextDouble() - 0.5), 3)).ToArray();
        var aggregate = !classifier && rng.Next(2) == 0 ? "AVERAGE" : "SUM";
        attributes = new OnnxTreeAttributes(classifier, targets, [.. treeIds], [.. nodeIds], [.. featureIds], [.. nodeModes], [.. values], [.. trueIds], [.. falseIds], [.. missing],
            [.. wTree], [.. wNode], [.. wTarget], [.. weights], baseValues, post, aggregate);

        var node = new NodeProto { OpType = classifier ? "TreeEnsembleClassifier" : "TreeEnsembleRegressor", Domain = "ai.onnx.ml" };
        node.Input.Add("X");
        if (classifier) node.Output.Add("label");
        node.Output.Add(classifier ? "probabilities" : "Y");
        var prefix = classifier ? "class_" : "target_";
        node.Attribute.Add(Ints("nodes_treeids", treeIds));
        node.Attribute.Add(Ints("nodes_nodeids", nodeIds));
        node.Attribute.Add(Ints("nodes_featureids", featureIds));
        node.Attribute.Add(Strings("nodes_modes", nodeModes));
        node.Attribute.Add(Floats("nodes_values", values));
        node.Attribute.Add(Ints("nodes_truenodeids", trueIds));
        node.Attribute.Add(Ints("nodes_falsenodeids", falseIds));
        node.Attribute.Add(Ints("nodes_missing_value_tracks_true", missing));
        node.Attribute.Add(Ints(prefix + "treeids", wTree));
        node.Attribute.Add(Ints(prefix + "nodeids", wNode));
        node.Attribute.Add(Ints(prefix + "ids", wTarget));
        node.Attribute.Add(Floats(prefix + "weights", weights));
        if (baseValues.Length > 0) node.Attribute.Add(Floats("base_values", baseValues));
        node.Attribute.Add(String("post_transform", post));
        if (classifier) node.Attribute.Add(Ints("classlabels_int64s", [.. Enumerable.Range(0, targets).Select(i => (long)i)]));
        else
        {
            node.Attribute.Add(new AttributeProto { Name = "n_targets", Type = 2, I = 1 });
            node.Attribute.Add(String("aggregate_function", aggregate));
        }
        var graph = new GraphProto { Name = "random" };
        graph.Node.Add(node);
        graph.Input.Add(Tensor("X", 1, 3));
        if (classifier) graph.Output.Add(Tensor("label", 7, -1));
        graph.Output.Add(Tensor(classifier ? "probabilities" : "Y", 1, classifier ? targets : 1));
        var model = new ModelProto { IrVersion = 8, Graph = graph };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = 15 });
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "ai.onnx.ml", Version = 3 });

        // Rows: thresholds and their float neighbours, and the values comparisons get wrong.
        var cells = values.Concat(Pool).SelectMany(v => new[] { v, MathF.BitIncrement(v), MathF.BitDecrement(v) }).ToArray();
        var count = rng.Next(1, 60);
        rows = new float[count * 3];
        for (var i = 0; i < rows.Length; i++) rows[i] = cells[rng.Next(cells.Length)];
        return model;
    }

    private static AttributeProto Ints(string name, IEnumerable<long> values)
    {
        var a = new AttributeProto { Name = name, Type = 7 };
        a.Ints.AddRange(values);
        return a;
    }

    private static AttributeProto Floats(string name, IEnumerable<float> values)
    {
        var a = new AttributeProto { Name = name, Type = 6 };
        a.Floats.AddRange(values);
        return a;
    }

    private static AttributeProto Strings(string name, IEnumerable<string> values)
    {
        var a = new AttributeProto { Name = name, Type = 8 };
        a.Strings.AddRange(values.Select(ByteString.CopyFromUtf8));
        return a;
    }

    private static AttributeProto String(string name, string value) => new() { Name = name, Type = 3, S = ByteString.CopyFromUtf8(value) };

    private static ValueInfoProto Tensor(string name, int elementType, int width)
    {
        var type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = elementType, Shape = new TensorShapeProto() } };
        type.TensorType.Shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimParam = "N" });
        if (width > 0) type.TensorType.Shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = width });
        return new ValueInfoProto { Name = name, Type = type };
    }
}
