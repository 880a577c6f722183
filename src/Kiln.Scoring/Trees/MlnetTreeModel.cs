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
/// LightGBM, and multiclass one-versus-all ensembles (<see cref="Classes"/>: one binary ensemble per class, as Kiln's
/// multiclass fast_forest and fast_tree and ML.NET's LightGBM multiclass trainer hold them) with ML.NET's formula over
/// the classes (<see cref="Formula"/>); anything else (other calibrators, a bias or tree weights) is left to ML.NET whole.
/// </summary>
public sealed class MlnetTreeModel
{
    private MlnetTreeModel(ITransformer prefix, string featuresColumn, TreeEnsembleSpec ensemble, ModelTask task,
        bool average, float threshold, PlattCalibrator? platt, ITransformer tail,
        IReadOnlyList<MlnetTreeModel>? classes = null, MulticlassFormula formula = MulticlassFormula.Raw)
    {
        Classes = classes ?? [];
        Formula = formula;
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

    /// <summary>Multiclass: each class's ensemble and calibration, in the score vector's order (empty otherwise).</summary>
    public IReadOnlyList<MlnetTreeModel> Classes { get; }

    /// <summary>Multiclass: how the classes' outputs become the score vector.</summary>
    public MulticlassFormula Formula { get; }

    /// <summary>Every ensemble of the model: the one, or each class's.</summary>
    public IEnumerable<TreeEnsembleSpec> Ensembles => Classes.Count > 0 ? Classes.Select(c => c.Ensemble) : [Ensemble];

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

    /// <summary>
    /// ML.NET's score vector of a one-versus-all model from each class's tree sum (<paramref name="sums"/>, in class
    /// order), in place into <paramref name="scores"/>: the classes' raw scores; or their Platt probabilities clamped at
    /// 0 and divided by their double sum (OneVersusAllModelParameters' ProbabilityNormalization); or a softmax in float.
    /// </summary>
    public void ClassScores(ReadOnlySpan<double> sums, Span<float> scores)
    {
        var n = Classes.Count;
        switch (Formula)
        {
            case MulticlassFormula.Raw:
                for (var c = 0; c < n; c++) scores[c] = Classes[c].Score(sums[c]);
                break;
            case MulticlassFormula.Normalize:
            {
                var sum = 0.0;
                for (var c = 0; c < n; c++)
                {
                    var p = Classes[c].Probability(Classes[c].Score(sums[c]));
                    scores[c] = p;
                    if (float.IsNaN(p)) continue;
                    if (p >= 0) sum += p;
                    else scores[c] = 0;
                }
                if (sum > 0)
                {
                    for (var c = 0; c < n; c++) scores[c] = (float)(scores[c] / sum);
                }
                break;
            }
            default:
            {
                var sum = 0f;
                for (var c = 0; c < n; c++)
                {
                    scores[c] = (float)Math.Exp(Classes[c].Score(sums[c]));
                    sum += scores[c];
                }
                for (var c = 0; c < n; c++) scores[c] = scores[c] / sum;
                break;
            }
        }
    }

    /// <summary>ML.NET's predicted class: the first index of the largest score.</summary>
    public static int ArgMax(ReadOnlySpan<float> scores)
    {
        var best = 0;
        for (var c = 1; c < scores.Length; c++) if (scores[c] > scores[best]) best = c;
        return best;
    }

    /// <summary>Splits a loaded pipeline for Kiln's tree evaluator, or says in <paramref name="reason"/> why it stays ML.NET's.</summary>
    public static MlnetTreeModel? TryCreate(ITransformer model, DataViewSchema inputSchema, ModelTask task, out string reason)
    {
        var steps = new List<ITransformer>();
        Flatten(model, steps);
        if (task == ModelTask.Multiclass) return TryCreateMulticlass(steps, inputSchema, out reason);
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
        if (!TryReadEnsemble(ref parameters, ref platt, out var trees, out reason)) return null;

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
        var ensemble = TryBuildEnsemble(trees, vector.Size, out reason);
        if (ensemble is null) return null;
        var tail = new TransformerChain<ITransformer>([.. steps.Skip(tailStart)]);
        reason = "";
        return new MlnetTreeModel(prefix, featuresColumn, ensemble, task, parameters is FastForestRegressionModelParameters, threshold, platt, tail);
    }

    /// <summary>One line on the model: its trees (each class's, for multiclass) and features.</summary>
    public string Describe() => Classes.Count > 0
        ? $"{Classes.Count} classes × {Ensemble.Trees.Count} trees over {Ensemble.FeatureCount} features ({Formula.ToString().ToLowerInvariant()})"
        : $"{Ensemble.Trees.Count} trees over {Ensemble.FeatureCount} features";

    /// <summary>
    /// Reads a tree ensemble predictor, unwrapping a calibrated one (its Platt calibrator into <paramref name="platt"/>,
    /// which must then be empty); false, with the reason, for anything else, a bias or tree weights.
    /// </summary>
    private static bool TryReadEnsemble(ref object parameters, ref PlattCalibrator? platt, out IReadOnlyList<RegressionTreeBase> trees, out string reason)
    {
        trees = [];
        var calibrated = parameters.GetType();
        while (calibrated is not null && !(calibrated.IsGenericType && calibrated.GetGenericTypeDefinition() == typeof(CalibratedModelParametersBase<,>)))
            calibrated = calibrated.BaseType;
        const BindingFlags Declared = BindingFlags.Public | BindingFlags.Instance | BindingFlags.DeclaredOnly;
        if (calibrated?.GetProperty("SubModel", Declared) is { } sub && calibrated.GetProperty("Calibrator", Declared) is { } cal)
        {
            if (platt is not null || cal.GetValue(parameters) is not PlattCalibrator inner)
            {
                reason = $"calibrator {cal.GetValue(parameters)?.GetType().Name} is scored by ML.NET";
                return false;
            }
            platt = inner;
            parameters = sub.GetValue(parameters)!;
        }
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
                return false;
        }
        if (bias != 0 || weights.Any(w => w != 1))
        {
            reason = "an ensemble with a bias or tree weights is scored by ML.NET";
            return false;
        }
        reason = "";
        return true;
    }

    private static TreeEnsembleSpec? TryBuildEnsemble(IReadOnlyList<RegressionTreeBase> trees, int featureCount, out string reason)
    {
        var specs = new List<RegressionTreeSpec>(trees.Count);
        foreach (var tree in trees)
        {
            if (!TryConvert(tree, out var spec, out reason)) return null;
            specs.Add(spec!);
        }
        try
        {
            reason = "";
            return new TreeEnsembleSpec(specs, featureCount);
        }
        catch (ArgumentException e)
        {
            reason = e.Message;
            return null;
        }
    }

    private static readonly FieldInfo? OvaImplementation = typeof(Microsoft.ML.Trainers.OneVersusAllModelParameters).GetField("_impl", BindingFlags.Instance | BindingFlags.NonPublic);

    /// <summary>
    /// A one-versus-all predictor (Kiln's multiclass fast_forest and fast_tree; ML.NET's LightGBM multiclass model is one
    /// too) whose every class is a tree ensemble: the classes are read from its implementation (ML.NET keeps them
    /// private), and its kind (raw, probability normalization, softmax) picks the formula. Everything after the
    /// predictor (the key-to-label mapping) stays in the tail ML.NET runs for the load check.
    /// </summary>
    private static MlnetTreeModel? TryCreateMulticlass(List<ITransformer> steps, DataViewSchema inputSchema, out string reason)
    {
        var at = steps.FindLastIndex(t => t is ISingleFeaturePredictionTransformer<object> { Model: Microsoft.ML.Trainers.OneVersusAllModelParameters });
        if (at < 0)
        {
            reason = "the multiclass predictor is not one-versus-all";
            return null;
        }
        var predictor = (ISingleFeaturePredictionTransformer<object>)steps[at];
        var implementation = OvaImplementation?.GetValue(predictor.Model);
        var formula = implementation?.GetType().Name switch
        {
            "ImplRaw" => MulticlassFormula.Raw,
            "ImplDist" => MulticlassFormula.Normalize,
            "ImplSoftmax" => MulticlassFormula.Softmax,
            _ => (MulticlassFormula?)null,
        };
        if (formula is null || implementation!.GetType().GetProperty("Predictors")?.GetValue(implementation) is not System.Collections.IEnumerable predictors)
        {
            reason = "this ML.NET version hides the one-versus-all classes";
            return null;
        }
        var prefix = new TransformerChain<ITransformer>([.. steps.Take(at)]);
        var featuresColumn = predictor.FeatureColumnName;
        if (prefix.GetOutputSchema(inputSchema).GetColumnOrNull(featuresColumn) is not { Type: VectorDataViewType { ItemType: NumberDataViewType n, Size: > 0 } vector } || n.RawType != typeof(float))
        {
            reason = $"the trees' input '{featuresColumn}' is not a float vector of known size";
            return null;
        }
        var tail = new TransformerChain<ITransformer>([.. steps.Skip(at)]);
        var classes = new List<MlnetTreeModel>();
        foreach (var p in predictors)
        {
            var parameters = p;
            PlattCalibrator? platt = null;
            if (!TryReadEnsemble(ref parameters, ref platt, out var trees, out reason)) return null;
            if (formula == MulticlassFormula.Normalize && platt is null)
            {
                reason = "a class without a Platt calibrator is scored by ML.NET";
                return null;
            }
            var ensemble = TryBuildEnsemble(trees, vector.Size, out reason);
            if (ensemble is null) return null;
            classes.Add(new MlnetTreeModel(prefix, featuresColumn, ensemble, ModelTask.Binary, parameters is FastForestRegressionModelParameters, 0f, platt, tail));
        }
        if (classes.Count < 2)
        {
            reason = "a one-versus-all model with fewer than two classes";
            return null;
        }
        reason = "";
        return new MlnetTreeModel(prefix, featuresColumn, classes[0].Ensemble, ModelTask.Multiclass, false, 0f, null, tail, classes, formula.Value);
    }

    /// <summary>
    /// Runs ML.NET's own predictor and calibrator (<see cref="Tail"/>) and this model side by side on feature vectors
    /// made to sit on, just above and just below the trees' thresholds (and 0, 1, NaN), and returns the first
    /// disagreement in score, label or probability, bit for bit; null when they agree. Run at load, it turns a model
    /// shape this class misreads into a fallback to ML.NET instead of wrong answers.
    /// </summary>
    public string? Verify(MLContext ml, int vectors = 64, int seed = 1, IReadOnlyList<string>? classLabels = null)
    {
        var n = Ensemble.FeatureCount;
        var candidates = new List<float>[n];
        for (var f = 0; f < n; f++) candidates[f] = [0f, 1f, float.NaN];
        foreach (var tree in Ensembles.SelectMany(e => e.Trees))
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
        if (Task == ModelTask.Multiclass) return VerifyClasses(scored, rows, classLabels);
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

    private string? VerifyClasses(IDataView scored, List<VectorRow> rows, IReadOnlyList<string>? classLabels)
    {
        var expected = scored.GetColumn<VBuffer<float>>("Score").Select(v => v.DenseValues().ToArray()).ToArray();
        var labels = scored.Schema.GetColumnOrNull("PredictedLabel") is { Type: TextDataViewType }
            ? scored.GetColumn<ReadOnlyMemory<char>>("PredictedLabel").Select(l => l.ToString()).ToArray() : null;
        var k = Classes.Count;
        if (classLabels is null || classLabels.Count != k) return $"the signature names {classLabels?.Count ?? 0} classes, the model has {k}";
        var block = new RowBlock(Ensemble.FeatureCount, rows.Count);
        for (var i = 0; i < rows.Count; i++) rows[i].Features.CopyTo(block.Row(i));
        var sums = new double[k][];
        for (var c = 0; c < k; c++)
        {
            sums[c] = new double[rows.Count];
            Classes[c].Forest.Sum(block.Data, rows.Count, sums[c]);
        }
        var rowSums = new double[k];
        var scores = new float[k];
        for (var i = 0; i < rows.Count; i++)
        {
            if (expected[i].Length != k) return $"{expected[i].Length} scores where the model has {k} classes";
            for (var c = 0; c < k; c++) rowSums[c] = sums[c][i];
            ClassScores(rowSums, scores);
            for (var c = 0; c < k; c++)
            {
                if (BitConverter.SingleToInt32Bits(scores[c]) != BitConverter.SingleToInt32Bits(expected[i][c]))
                    return $"class {c}'s score {scores[c]:R} where ML.NET gives {expected[i][c]:R}";
            }
            if (labels is not null && classLabels[ArgMax(scores)] != labels[i])
                return $"label {classLabels[ArgMax(scores)]} where ML.NET gives {labels[i]}";
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

/// <summary>How ML.NET's one-versus-all model turns its classes' outputs into the score vector.</summary>
public enum MulticlassFormula
{
    /// <summary>Each class's raw score.</summary>
    Raw,

    /// <summary>Each class's calibrated probability, clamped at 0, over their sum.</summary>
    Normalize,

    /// <summary>A softmax of the raw scores (LightGBM's multiclass objective).</summary>
    Softmax,
}
