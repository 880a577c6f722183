using System.Reflection;
using Kiln.Core.Packaging;
using Microsoft.ML;
using Microsoft.ML.Calibrators;
using Microsoft.ML.Data;
using Microsoft.ML.Trainers.FastTree;

namespace Kiln.Scoring.Trees;

/// <summary>
/// A saved ML.NET pipeline whose predictor is a tree ensemble, split where Kiln takes over: the transforms up to the
/// trees' feature vector stay ML.NET's (<see cref="Prefix"/>), the trees are evaluated by <see cref="Forest"/>, and the
/// score, label and probability are ML.NET's formulas with its parameters (the forest's average for a FastForest
/// regressor, the binary threshold, the Platt calibrator). Covers binary and regression FastForest, FastTree and
/// LightGBM; anything else (multiclass, other calibrators, a bias or tree weights) is left to ML.NET whole.
/// </summary>
public sealed class MlnetTreeModel
{
    private MlnetTreeModel(ITransformer prefix, string featuresColumn, TreeEnsembleSpec ensemble, ModelTask task,
        bool average, float threshold, PlattCalibrator? platt, ITransformer tail)
    {
        Prefix = prefix;
        FeaturesColumn = featuresColumn;
        Ensemble = ensemble;
        Forest = PackedForest.Build(ensemble);
        Task = task;
        Average = average;
        Threshold = threshold;
        if (platt is not null)
        {
            Slope = platt.Slope;
            Offset = platt.Offset;
            Calibrated = true;
        }
        Tail = tail;
    }

    /// <summary>The pipeline's transforms before the predictor; its output has <see cref="FeaturesColumn"/>.</summary>
    public ITransformer Prefix { get; }

    /// <summary>The predictor and calibrator ML.NET would run after <see cref="Prefix"/> (for the load-time check).</summary>
    internal ITransformer Tail { get; }

    public string FeaturesColumn { get; }

    public TreeEnsembleSpec Ensemble { get; }

    public PackedForest Forest { get; }

    public ModelTask Task { get; }

    /// <summary>FastForest regression divides the trees' sum by their number (in float, as ML.NET does).</summary>
    public bool Average { get; }

    public float Threshold { get; }

    public bool Calibrated { get; }

    public double Slope { get; }

    public double Offset { get; }

    /// <summary>ML.NET's Score: the double sum cast to float (then divided by the tree count for a FastForest regressor).</summary>
    public float Score(double sum) => Average ? (float)sum / Ensemble.Trees.Count : (float)sum;

    /// <summary>ML.NET's PredictedLabel of a binary model: score &gt; threshold (false for NaN).</summary>
    public bool Label(float score) => score > Threshold;

    /// <summary>ML.NET's PlattCalibrator: 1 / (1 + exp(slope·score + offset)) in double, cast to float; NaN stays NaN.</summary>
    public float Probability(float score)
    {
        if (!Calibrated) return 1f / (1f + MathF.Exp(-score)); // what MlnetScorer does for an uncalibrated binary score
        if (float.IsNaN(score)) return score;
        return (float)(1.0 / (1.0 + Math.Exp(Slope * score + Offset)));
    }

    /// <summary>Splits a loaded pipeline for Kiln's tree evaluator, or says in <paramref name="reason"/> why it stays ML.NET's.</summary>
    public static MlnetTreeModel? TryCreate(ITransformer model, DataViewSchema inputSchema, ModelTask task, out string reason)
    {
        if (task is not (ModelTask.Binary or ModelTask.Regression))
        {
            reason = $"{task} models are scored by ML.NET";
            return null;
        }
        var steps = new List<ITransformer>();
        Flatten(model, steps);
        PlattCalibrator? platt = null;
        var tailStart = steps.Count - 1;
        if (steps.Count > 0 && steps[^1] is ISingleFeaturePredictionTransformer<ICalibrator> calibratorStep)
        {
            if (calibratorStep.Model is not PlattCalibrator p)
            {
                reason = $"calibrator {calibratorStep.Model.GetType().Name} is scored by ML.NET";
                return null;
            }
            platt = p;
            tailStart--;
        }
        if (tailStart < 0 || steps[tailStart] is not ISingleFeaturePredictionTransformer<object> predictor)
        {
            reason = "the pipeline does not end in a predictor";
            return null;
        }
        var parameters = predictor.Model;
        var calibrated = parameters.GetType();
        while (calibrated is not null && !(calibrated.IsGenericType && calibrated.GetGenericTypeDefinition() == typeof(CalibratedModelParametersBase<,>)))
            calibrated = calibrated.BaseType;
        const BindingFlags Declared = BindingFlags.Public | BindingFlags.Instance | BindingFlags.DeclaredOnly;
        if (calibrated?.GetProperty("SubModel", Declared) is { } sub && calibrated.GetProperty("Calibrator", Declared) is { } cal)
        {
            if (platt is not null || cal.GetValue(parameters) is not PlattCalibrator inner)
            {
                reason = $"calibrator {cal.GetValue(parameters)?.GetType().Name} is scored by ML.NET";
                return null;
            }
            platt = inner;
            parameters = sub.GetValue(parameters)!;
        }
        IReadOnlyList<RegressionTreeBase> trees;
        double bias;
        IReadOnlyList<double> weights;
        switch (parameters)
        {
            case TreeEnsembleModelParametersBasedOnRegressionTree r:
                trees = r.TrainedTreeEnsemble.Trees;
                bias = r.TrainedTreeEnsemble.Bias;
                weights = r.TrainedTreeEnsemble.TreeWeights;
                break;
            case TreeEnsembleModelParametersBasedOnQuantileRegressionTree q:
                trees = q.TrainedTreeEnsemble.Trees;
                bias = q.TrainedTreeEnsemble.Bias;
                weights = q.TrainedTreeEnsemble.TreeWeights;
                break;
            default:
                reason = $"predictor {parameters.GetType().Name} is not a tree ensemble";
                return null;
        }
        if (bias != 0 || weights.Any(w => w != 1))
        {
            reason = "an ensemble with a bias or tree weights is scored by ML.NET";
            return null;
        }

        var threshold = 0f;
        if (task == ModelTask.Binary)
        {
            if (predictor is not ISingleFeaturePredictionTransformer<object> || !predictor.GetType().IsGenericType
                || predictor.GetType().GetGenericTypeDefinition() != typeof(BinaryPredictionTransformer<>))
            {
                reason = "a binary package's predictor is not a binary classifier";
                return null;
            }
            var flags = BindingFlags.Instance | BindingFlags.NonPublic | BindingFlags.Public;
            var thresholdField = predictor.GetType().GetField("Threshold", flags);
            var columnField = predictor.GetType().GetField("ThresholdColumn", flags);
            if (thresholdField?.GetValue(predictor) is not float t || columnField?.GetValue(predictor) is not string column || column != "Score")
            {
                reason = "the binary threshold is not on the score";
                return null;
            }
            threshold = t;
        }
        else if (!predictor.GetType().IsGenericType || predictor.GetType().GetGenericTypeDefinition() != typeof(RegressionPredictionTransformer<>))
        {
            reason = "a regression package's predictor is not a regressor";
            return null;
        }

        var prefix = new TransformerChain<ITransformer>([.. steps.Take(tailStart)]);
        var prefixSchema = prefix.GetOutputSchema(inputSchema);
        var featuresColumn = predictor.FeatureColumnName;
        if (prefixSchema.GetColumnOrNull(featuresColumn) is not { Type: VectorDataViewType { ItemType: NumberDataViewType n, Size: > 0 } vector } || n.RawType != typeof(float))
        {
            reason = $"the trees' input '{featuresColumn}' is not a float vector of known size";
            return null;
        }
        var specs = new List<RegressionTreeSpec>(trees.Count);
        foreach (var tree in trees)
        {
            if (!TryConvert(tree, out var spec, out reason)) return null;
            specs.Add(spec!);
        }
        TreeEnsembleSpec ensemble;
        try
        {
            ensemble = new TreeEnsembleSpec(specs, vector.Size);
        }
        catch (ArgumentException e)
        {
            reason = e.Message;
            return null;
        }
        var tail = new TransformerChain<ITransformer>([.. steps.Skip(tailStart)]);
        reason = "";
        return new MlnetTreeModel(prefix, featuresColumn, ensemble, task, parameters is FastForestRegressionModelParameters, threshold, platt, tail);
    }

    /// <summary>
    /// Runs ML.NET's own predictor and calibrator (<see cref="Tail"/>) and this model side by side on feature vectors
    /// made to sit on, just above and just below the trees' thresholds (and 0, 1, NaN), and returns the first
    /// disagreement in score, label or probability, bit for bit; null when they agree. Run at load, it turns a model
    /// shape this class misreads into a fallback to ML.NET instead of wrong answers.
    /// </summary>
    public string? Verify(MLContext ml, int vectors = 64, int seed = 1)
    {
        var n = Ensemble.FeatureCount;
        var candidates = new List<float>[n];
        for (var f = 0; f < n; f++) candidates[f] = [0f, 1f, float.NaN];
        foreach (var tree in Ensemble.Trees)
        {
            for (var node = 0; node < tree.NodeCount; node++)
            {
                if (tree.CategoricalFeatures?[node] is not null) continue;
                var t = tree.Thresholds[node];
                var list = candidates[tree.SplitFeatures[node]];
                if (list.Count < 64) list.AddRange([t, MathF.BitIncrement(t), MathF.BitDecrement(t)]);
            }
        }
        var rng = new Random(seed);
        var rows = new List<VectorRow>(vectors);
        for (var i = 0; i < vectors; i++)
        {
            var x = new float[n];
            for (var f = 0; f < n; f++) x[f] = candidates[f][rng.Next(candidates[f].Count)];
            rows.Add(new VectorRow { Features = x });
        }
        var definition = SchemaDefinition.Create(typeof(VectorRow));
        definition[0].ColumnName = FeaturesColumn;
        definition[0].ColumnType = new VectorDataViewType(NumberDataViewType.Single, n);
        var scored = Tail.Transform(ml.Data.LoadFromEnumerable(rows, definition));
        var scores = scored.GetColumn<float>("Score").ToArray();
        var labels = Task == ModelTask.Binary ? scored.GetColumn<bool>("PredictedLabel").ToArray() : null;
        var probabilities = Task == ModelTask.Binary && scored.Schema.GetColumnOrNull("Probability") is not null
            ? scored.GetColumn<float>("Probability").ToArray() : null;
        var sums = new double[vectors];
        var block = new RowBlock(n, vectors);
        for (var i = 0; i < vectors; i++) rows[i].Features.CopyTo(block.Row(i));
        Forest.Sum(block.Data, vectors, sums);
        for (var i = 0; i < vectors; i++)
        {
            var score = Score(sums[i]);
            if (BitConverter.SingleToInt32Bits(score) != BitConverter.SingleToInt32Bits(scores[i]))
                return $"score {score:R} where ML.NET gives {scores[i]:R}";
            if (labels is not null && Label(score) != labels[i]) return $"label {Label(score)} where ML.NET gives {labels[i]}";
            if (probabilities is not null && BitConverter.SingleToInt32Bits(Probability(score)) != BitConverter.SingleToInt32Bits(probabilities[i]))
                return $"probability {Probability(score):R} where ML.NET gives {probabilities[i]:R}";
        }
        return null;
    }

    /// <summary>A feature vector as ML.NET's LoadFromEnumerable reads it (the column is renamed and sized by a schema definition).</summary>
    private sealed class VectorRow
    {
        public float[] Features { get; set; } = [];
    }

    private static void Flatten(ITransformer t, List<ITransformer> into)
    {
        if (t is IEnumerable<ITransformer> chain)
        {
            foreach (var c in chain) Flatten(c, into);
        }
        else into.Add(t);
    }

    private static readonly FieldInfo? InternalTree = typeof(RegressionTreeBase).GetField("_tree", BindingFlags.Instance | BindingFlags.NonPublic);

    private static bool TryConvert(RegressionTreeBase tree, out RegressionTreeSpec? spec, out string reason)
    {
        spec = null;
        // ML.NET reads a NaN feature as the node's DefaultValueForMissing when a tree has them (LightGBM can); the
        // public API does not show them, so they are read from the internal tree, and a tree whose field cannot be
        // found is left to ML.NET rather than guessed.
        var internalTree = InternalTree?.GetValue(tree);
        var defaultsField = internalTree?.GetType().GetField("DefaultValueForMissing", BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic);
        if (defaultsField is null)
        {
            reason = "this ML.NET version hides the trees' missing-value defaults";
            return false;
        }
        var n = tree.NumberOfNodes;
        int[]?[]? categorical = null;
        for (var i = 0; i < n; i++)
        {
            if (!tree.CategoricalSplitFlags[i]) continue;
            categorical ??= new int[n][];
            categorical[i] = [.. tree.GetCategoricalSplitFeaturesAt(i)];
        }
        try
        {
            spec = new RegressionTreeSpec([.. tree.NumericalSplitFeatureIndexes], [.. tree.NumericalSplitThresholds], [.. tree.LeftChild],
                [.. tree.RightChild], [.. tree.LeafValues], categorical, defaultsField.GetValue(internalTree) as float[]);
        }
        catch (ArgumentException e)
        {
            reason = e.Message;
            return false;
        }
        reason = "";
        return true;
    }
}
