using System.Collections.Concurrent;
using Google.Protobuf;
using Kiln.Core;
using Kiln.Core.Data;
using Kiln.Core.Packaging;
using Kiln.Scoring.MlNet;
using Kiln.Scoring.Onnx.Proto;
using Kiln.Scoring.Trees;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Kiln.Scoring.Onnx;

/// <summary>
/// Scores an ONNX package. When the graph is a tree ensemble Kiln can run exactly (<see cref="OnnxTreeGraph"/>: one packed
/// float input, optionally cast from double, into a TreeEnsembleClassifier or TreeEnsembleRegressor, optionally through
/// ZipMap), the trees run in Kiln's evaluator (<see cref="OnnxTreeEnsemble"/>); anything else, a model whose load check
/// disagrees, or <c>KILN_TREE_EVALUATOR=mlnet</c>, is scored by ONNX Runtime as before (docs/serving.md#tree-ensembles).
/// </summary>
public sealed class OnnxTreeScorer : IScorer
{
    private const int Block = 4096;
    private readonly OnnxModel _ort;
    private readonly OnnxTreeGraph.Plan? _plan;
    private readonly ConcurrentBag<Buffers> _buffers = [];

    /// <param name="treeEvaluator"><c>kiln</c> or <c>mlnet</c> (ONNX Runtime); null reads <c>KILN_TREE_EVALUATOR</c>.</param>
    public OnnxTreeScorer(ModelPackage package, string? treeEvaluator = null)
    {
        Package = package;
        _ort = new OnnxModel(package.ModelPath, package.Signature);
        if (MlnetScorer.ChooseTreeEvaluator(treeEvaluator) == "mlnet")
        {
            TreeEvaluator = "onnxruntime";
            TreeEvaluatorReason = $"{MlnetScorer.TreeEvaluatorVariable}=mlnet";
            return;
        }
        var plan = OnnxTreeGraph.TryRead(package.ModelPath, _ort, out var reason);
        if (plan is null)
        {
            TreeEvaluator = "onnxruntime";
            TreeEvaluatorReason = reason;
            return;
        }
        _plan = plan;
        var mismatch = Verify();
        if (mismatch is not null)
        {
            _plan = null;
            TreeEvaluator = "onnxruntime";
            TreeEvaluatorReason = $"Kiln's evaluator disagrees with ONNX Runtime on this model ({mismatch})";
            return;
        }
        TreeEvaluator = "kiln";
        TreeEvaluatorReason = plan.Describe();
    }

    public ModelPackage Package { get; }

    /// <summary>Who evaluates the graph: <c>kiln</c> (Kiln's tree evaluator) or <c>onnxruntime</c>.</summary>
    public string TreeEvaluator { get; }

    /// <summary>Why <see cref="TreeEvaluator"/> is what it is, in a few words.</summary>
    public string TreeEvaluatorReason { get; }

    /// <summary>The trees Kiln evaluates, or null when ONNX Runtime scores the graph.</summary>
    public OnnxTreeEnsemble? Ensemble => _plan?.Ensemble;

    public void Score(DataTable input, int start, Span<Prediction> results)
    {
        if (_plan is null)
        {
            _ort.Score(input, start, results);
            return;
        }
        if (!_buffers.TryTake(out var buffers)) buffers = new Buffers(_plan.Ensemble);
        try
        {
            ScoreTrees(_plan, buffers, input, start, results);
        }
        finally
        {
            _buffers.Add(buffers);
        }
    }

    private void ScoreTrees(OnnxTreeGraph.Plan plan, Buffers b, DataTable input, int start, Span<Prediction> results)
    {
        var ensemble = plan.Ensemble;
        var inputs = Package.Signature.Inputs;
        var columns = new double[plan.Columns.Length][];
        for (var j = 0; j < columns.Length; j++)
        {
            var name = inputs[plan.Columns[j]].Name;
            columns[j] = input.Find(name) switch
            {
                NumericColumn c => c.Values,
                null => throw new KilnException($"input '{name}' is missing"),
                _ => throw new KilnException($"input '{name}' must be numeric (graph input '{_ort.Feeds[0].Name}' takes {OnnxTensorTypes.NameOf(_ort.Feeds[0].Type)})"),
            };
        }
        var width = ensemble.Width;
        var targets = ensemble.Targets;
        for (var offset = 0; offset < results.Length; offset += Block)
        {
            var count = Math.Min(Block, results.Length - offset);
            for (var i = 0; i < count; i++)
            {
                // As ONNX Runtime is fed: the double cast to float (directly, or by the graph's Cast from double).
                var row = b.Rows.Row(i);
                for (var j = 0; j < columns.Length; j++) row[j] = (float)columns[j][start + offset + i];
            }
            ensemble.RawBlock(b.Rows.Data, count, b.Raw, b.Leaves);
            for (var i = 0; i < count; i++) ensemble.Finish(b.Raw.AsSpan(i * targets, targets), b.Z.AsSpan(i * width, width));
            _ort.Predict(b.Z.AsSpan(0, count * width), width, plan.ZipMapKeys, results.Slice(offset, count));
        }
    }

    /// <summary>
    /// The load check: ONNX Runtime (one thread, so its sums run in tree order) and Kiln on rows placed on, just above and
    /// just below the splits' values (and 0, NaN, ±∞); null when every label, value and probability is equal to the bit.
    /// </summary>
    private string? Verify()
    {
        var plan = _plan!;
        var splits = plan.Ensemble.SplitValues();
        var rng = new Random(0);
        const int Rows = 256;
        var table = new DataTable(Rows);
        var inputs = Package.Signature.Inputs;
        for (var j = 0; j < plan.Columns.Length; j++)
        {
            var values = new double[Rows];
            var pool = splits[j].SelectMany(v => new[] { v, MathF.BitIncrement(v), MathF.BitDecrement(v) }).Concat([0f, 1f, -1f, float.NaN, float.PositiveInfinity, float.NegativeInfinity]).ToArray();
            for (var r = 0; r < Rows; r++) values[r] = pool[rng.Next(pool.Length)];
            table.Add(new NumericColumn(inputs[plan.Columns[j]].Name, values));
        }
        var expected = new Prediction[Rows];
        var actual = new Prediction[Rows];
        using (var oneThread = new OnnxModel(Package.ModelPath, Package.Signature, intraOpThreads: 1)) oneThread.Score(table, 0, expected);
        Score(table, 0, actual);
        for (var r = 0; r < Rows; r++)
        {
            if (Differs(expected[r], actual[r]) is { } what) return $"row {r}: {what}";
        }
        return null;
    }

    /// <summary>What differs between two predictions, bit for bit, or null.</summary>
    public static string? Differs(Prediction expected, Prediction actual)
    {
        if (expected.Label != actual.Label) return $"label {expected.Label} vs {actual.Label}";
        if (BitConverter.DoubleToInt64Bits(expected.Value) != BitConverter.DoubleToInt64Bits(actual.Value)) return $"value {expected.Value:R} vs {actual.Value:R}";
        var (e, a) = (expected.Probabilities ?? [], actual.Probabilities ?? []);
        if (e.Length != a.Length) return $"{e.Length} vs {a.Length} probabilities";
        for (var c = 0; c < e.Length; c++)
        {
            if (BitConverter.SingleToInt32Bits(e[c]) != BitConverter.SingleToInt32Bits(a[c])) return $"class {c} probability {e[c]:R} vs {a[c]:R}";
        }
        return null;
    }

    public void Dispose() => _ort.Dispose();

    /// <summary>One thread's block of rows, sums, leaves and outputs.</summary>
    private sealed class Buffers(OnnxTreeEnsemble ensemble)
    {
        public readonly RowBlock Rows = new(ensemble.FeatureCount, Block);
        public readonly float[] Raw = new float[Block * ensemble.Targets];
        public readonly int[] Leaves = new int[Block];
        public readonly float[] Z = new float[Block * ensemble.Width];
    }
}

/// <summary>
/// Recognizes an ONNX graph Kiln's tree evaluator runs exactly: the answer output is a TreeEnsembleClassifier's
/// probabilities (directly, through Identity or through ZipMap) or a TreeEnsembleRegressor's Y, and the trees read the
/// graph's one input, a packed float tensor (or a double one through a Cast to float). The graph is read with
/// Google.Protobuf from the part of ONNX's schema Kiln needs (Onnx/onnx_model.proto).
/// </summary>
public static class OnnxTreeGraph
{
    private const string MlDomain = "ai.onnx.ml";

    /// <summary>The trees, the signature inputs that fill their feature vector in order, and the ZipMap's keys (null without ZipMap).</summary>
    public sealed record Plan(OnnxTreeEnsemble Ensemble, int[] Columns, string[]? ZipMapKeys, bool CastFromDouble)
    {
        public string Describe() => $"{Ensemble.Describe()}{(CastFromDouble ? ", input cast from double" : "")}{(ZipMapKeys is null ? "" : ", ZipMap")}";
    }

    /// <summary>The plan for a graph ONNX Runtime has loaded as <paramref name="ort"/>; null and why when Kiln leaves it to ONNX Runtime.</summary>
    public static Plan? TryRead(string path, OnnxModel ort, out string reason)
    {
        ModelProto model;
        try
        {
            using var stream = File.OpenRead(path);
            model = ModelProto.Parser.ParseFrom(stream);
        }
        catch (InvalidProtocolBufferException e)
        {
            reason = $"the graph could not be read ({e.Message})";
            return null;
        }
        var graph = model.Graph;
        if (graph is null) return Refuse("the model has no graph", out reason);
        var producers = new Dictionary<string, NodeProto>(StringComparer.Ordinal);
        foreach (var node in graph.Node)
        {
            foreach (var output in node.Output) producers[output] = node;
        }
        NodeProto? Producer(ref string name)
        {
            while (producers.TryGetValue(name, out var node))
            {
                if (node.OpType == "Identity" && node.Domain is "" or "ai.onnx" && node.Input.Count == 1) name = node.Input[0];
                else return node;
            }
            return null;
        }
        if (!graph.Node.Any(n => n.Domain == MlDomain && n.OpType is "TreeEnsembleClassifier" or "TreeEnsembleRegressor"))
            return Refuse("the graph has no TreeEnsembleClassifier or TreeEnsembleRegressor node", out reason);

        var name = ort.Output.Name;
        var producer = Producer(ref name);
        string[]? keys = null;
        if (producer is { OpType: "ZipMap", Domain: MlDomain })
        {
            keys = Strings(producer, "classlabels_strings") is { Length: > 0 } s ? s : [.. Ints(producer, "classlabels_int64s").Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture))];
            name = producer.Input[0];
            producer = Producer(ref name);
        }
        if (producer is null) return Refuse($"the output '{ort.Output.Name}' is not computed by a node", out reason);
        var classifier = producer is { OpType: "TreeEnsembleClassifier", Domain: MlDomain } && producer.Output.Count > 1 && producer.Output[1] == name;
        var regressor = producer is { OpType: "TreeEnsembleRegressor", Domain: MlDomain } && producer.Output[0] == name;
        if (!classifier && !regressor)
            return Refuse($"the output '{ort.Output.Name}' comes from a {producer.OpType} node, which Kiln's evaluator does not run", out reason);
        var trees = producer;

        if (ort.Feeds.Count != 1) return Refuse($"the graph has {ort.Feeds.Count} inputs; Kiln's evaluator takes one packed float input", out reason);
        var feed = ort.Feeds[0];
        var source = trees.Input[0];
        var before = Producer(ref source);
        var cast = false;
        if (before is { OpType: "Cast", Domain: "" or "ai.onnx" } && Int(before, "to") == 1 /* FLOAT */)
        {
            cast = true;
            source = before.Input[0];
            before = Producer(ref source);
        }
        if (before is not null) return Refuse($"the trees read the output of a {before.OpType} node, which Kiln's evaluator does not run", out reason);
        if (source != feed.Name) return Refuse($"the trees read '{source}', not the graph input '{feed.Name}'", out reason);
        if (feed.Rank1) return Refuse($"graph input '{feed.Name}' is one-dimensional", out reason);
        if (feed.Type != TensorElementType.Float && !(cast && feed.Type == TensorElementType.Double))
            return Refuse($"the trees read {OnnxTensorTypes.NameOf(feed.Type)} values (ONNX Runtime compares them without a cast to float)", out reason);

        foreach (var attribute in trees.Attribute)
        {
            if (attribute.Name.EndsWith("_as_tensor", StringComparison.Ordinal))
                return Refuse($"attribute {attribute.Name} (double thresholds or weights)", out reason);
        }
        var prefix = classifier ? "class_" : "target_";
        var targets = classifier
            ? Math.Max(Ints(trees, "classlabels_int64s").Length, Strings(trees, "classlabels_strings").Length)
            : (int)(Int(trees, "n_targets") ?? 1);
        var attributes = new OnnxTreeAttributes(
            classifier,
            targets,
            Ints(trees, "nodes_treeids"),
            Ints(trees, "nodes_nodeids"),
            Ints(trees, "nodes_featureids"),
            Strings(trees, "nodes_modes"),
            Floats(trees, "nodes_values"),
            Ints(trees, "nodes_truenodeids"),
            Ints(trees, "nodes_falsenodeids"),
            Ints(trees, "nodes_missing_value_tracks_true"),
            Ints(trees, prefix + "treeids"),
            Ints(trees, prefix + "nodeids"),
            Ints(trees, prefix + "ids"),
            Floats(trees, prefix + "weights"),
            Floats(trees, "base_values"),
            String(trees, "post_transform") ?? "NONE",
            String(trees, "aggregate_function") ?? "SUM");
        var ensemble = OnnxTreeEnsemble.TryCreate(attributes, feed.Columns.Length, out reason);
        if (ensemble is null) return null;
        if (keys is not null && keys.Length != ensemble.Width)
            return Refuse($"the ZipMap names {keys.Length} classes for {ensemble.Width} scores", out reason);
        if (ort.Output.IsZipMap != (keys is not null) || (!ort.Output.IsZipMap && ort.Output.Width > 0 && ort.Output.Width != ensemble.Width))
            return Refuse($"the output '{ort.Output.Name}' does not have the trees' {ensemble.Width} columns", out reason);
        return new Plan(ensemble, feed.Columns, keys, cast);
    }

    private static Plan? Refuse(string why, out string reason)
    {
        reason = why;
        return null;
    }

    private static AttributeProto? Find(NodeProto node, string name) => node.Attribute.FirstOrDefault(a => a.Name == name);

    private static long[] Ints(NodeProto node, string name) => Find(node, name) is { } a ? [.. a.Ints] : [];

    private static float[] Floats(NodeProto node, string name) => Find(node, name) is { } a ? [.. a.Floats] : [];

    private static string[] Strings(NodeProto node, string name) => Find(node, name) is { } a ? [.. a.Strings.Select(s => s.ToStringUtf8())] : [];

    private static long? Int(NodeProto node, string name) => Find(node, name) is { HasI: true } a ? a.I : null;

    private static string? String(NodeProto node, string name) => Find(node, name) is { HasS: true } a ? a.S.ToStringUtf8() : null;
}
