using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Kiln.Core;
using Kiln.Core.Data;
using Kiln.Core.Packaging;
using Kiln.Core.Profiling;
using Kiln.Scoring.MlNet;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Trainers;
using Microsoft.ML.Trainers.FastTree;
using Microsoft.ML.Trainers.LightGbm;
using Microsoft.ML.Transforms;

namespace Kiln.Training;

/// <summary>What the trainer is doing, for progress displays.</summary>
public interface ITrainingProgress
{
    /// <summary>A new stage started (loading, profiling, training, evaluating, writing).</summary>
    void Stage(string description);

    /// <summary>Rows read so far while loading.</summary>
    void RowsRead(long rows);
}

/// <summary>The outcome of a training run.</summary>
public sealed record TrainingResult(string PackageDirectory, ModelTask Task, IReadOnlyDictionary<string, double> Metrics,
    long TrainRows, long HoldoutRows, TimeSpan Elapsed);

/// <summary>
/// Trains an ML.NET pipeline (preprocessing and estimator, saved whole) from a spec and writes a
/// model package with signature, reference profile, metadata and checksums, atomically.
/// </summary>
public static class Trainer
{
    private const string LabelColumn = "Label";
    private const string FeaturesColumn = "Features";

    /// <param name="holdoutPredictionsPath">When given, the holdout rows' labels and predictions are written there as CSV
    /// (label, prediction and, for classifiers, probability), so that metrics can be checked elsewhere.</param>
    public static async Task<TrainingResult> TrainAsync(TrainingSpec spec, string outputDirectory, ITrainingProgress? progress = null,
        CancellationToken ct = default, string? holdoutPredictionsPath = null)
    {
        var clock = Stopwatch.StartNew();
        if (spec.FeaturesFrom is null) return await TrainCoreAsync(spec, outputDirectory, progress, holdoutPredictionsPath, null, clock, ct).ConfigureAwait(false);
        // A feature service and an entity table: build the training set point-in-time first, then train on it as on a file.
        using var set = await FeatureTrainingSet.BuildAsync(spec, progress, ct).ConfigureAwait(false);
        return await TrainCoreAsync(spec with { Data = set.Path }, outputDirectory, progress, holdoutPredictionsPath, set, clock, ct).ConfigureAwait(false);
    }

    private static async Task<TrainingResult> TrainCoreAsync(TrainingSpec spec, string outputDirectory, ITrainingProgress? progress,
        string? holdoutPredictionsPath, FeatureTrainingSet? fromFeatures, Stopwatch clock, CancellationToken ct)
    {
        var files = DataSources.Resolve(spec.Data, spec.BaseDirectory);
        progress?.Stage($"Loading {files.Count} file(s)");
        var requests = new List<ColumnRequest>();
        foreach (var f in spec.Features) requests.Add(new ColumnRequest(f.Name, f.Kind == ColumnKind.Numeric ? ColumnType.Numeric : ColumnType.Text));
        requests.Add(new ColumnRequest(spec.Label, spec.Task == ModelTask.Regression ? ColumnType.Numeric : ColumnType.Text));
        var rowsProgress = progress is null ? null : new Progress<long>(progress.RowsRead);
        // A Parquet timestamp used as a categorical feature (or label) is the ISO 8601 text it was before tables held timestamps.
        var table = (await TableReader.ReadAllAsync(files, requests, rowsProgress, ct).ConfigureAwait(false)).TimestampsAsText();
        if (table.RowCount == 0) throw new KilnException($"{spec.Data}: the data has no rows");
        if (table.RowCount < 2) throw new KilnException($"{spec.Data}: the data has one row; training needs at least two");

        var datasetFiles = new List<DatasetFile>();
        foreach (var file in files)
        {
            ct.ThrowIfCancellationRequested();
            datasetFiles.Add(new DatasetFile { Path = file, Sha256 = ModelPackage.Sha256OfFile(file), Size = new FileInfo(file).Length });
        }

        var labels = LabelInfo.From(spec, table);
        var features = new DataTable(table.RowCount);
        foreach (var f in spec.Features) features.Add(table[f.Name]);

        // Split: a seeded permutation, so the same data and seed give the same split.
        var order = Enumerable.Range(0, table.RowCount).ToArray();
        new Random(spec.Seed).Shuffle(order);
        var holdoutRows = (int)Math.Clamp(Math.Round(table.RowCount * spec.Holdout), 1, table.RowCount - 1);
        var holdoutIndex = order.AsSpan(0, holdoutRows).ToArray();
        var trainIndex = order.AsSpan(holdoutRows).ToArray();
        Array.Sort(holdoutIndex);
        Array.Sort(trainIndex);
        var train = features.Take(trainIndex);
        var holdout = features.Take(holdoutIndex);

        progress?.Stage($"Profiling {train.RowCount:N0} training rows");
        var inputProfile = DatasetProfile.Build(train, seed: (ulong)spec.Seed);

        var ml = new MLContext(seed: spec.Seed);
        var trainView = labels.View(train, trainIndex);
        var holdoutView = labels.View(holdout, holdoutIndex);
        var pipeline = BuildPipeline(ml, spec, labels);

        progress?.Stage($"Training {spec.Trainer.Kind} on {train.RowCount:N0} rows");
        ct.ThrowIfCancellationRequested();
        ITransformer model;
        try
        {
            model = spec.Task == ModelTask.Binary && spec.Trainer.Kind == "fast_forest"
                ? FitCalibratedForest(ml, pipeline, train, trainIndex, labels, spec, progress, ct)
                : pipeline.Fit(trainView);
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or FormatException)
        {
            throw new KilnException($"{spec.Source}: trainer '{spec.Trainer.Kind}' failed on this data ({e.Message.ReplaceLineEndings(" ")})", e);
        }

        progress?.Stage($"Evaluating on {holdout.RowCount:N0} holdout rows");
        var scored = model.Transform(holdoutView);
        var metrics = Evaluate(ml, spec.Task, scored);
        var outputs = OutputTable(spec.Task, scored, labels);
        var outputProfile = DatasetProfile.Build(outputs, seed: (ulong)spec.Seed + 1);
        if (holdoutPredictionsPath is not null) WriteHoldoutPredictions(holdoutPredictionsPath, labels.Describe(holdoutIndex), outputs);

        progress?.Stage("Writing the package");
        using var writer = new PackageWriter(outputDirectory);
        const string ModelFile = "model.zip";
        ml.Model.Save(model, trainView.Schema, writer.PathOf(ModelFile));
        var createdAt = DateTimeOffset.UtcNow;
        writer.WriteJson(ModelPackage.SignatureFile, Signature(spec, table, labels));
        // The profile is large (samples of every column): written compact; `kiln package show` summarizes it.
        writer.WriteJson(ModelPackage.ProfileFile, new PackageProfile { Inputs = inputProfile, Outputs = outputProfile }, indented: false);
        writer.WriteJson(ModelPackage.MetadataFile, new PackageMetadata
        {
            Name = spec.Name,
            Task = spec.Task,
            CreatedAt = createdAt,
            Dataset = fromFeatures?.Dataset ?? new DatasetInfo
            {
                Uri = spec.Data,
                Sha256 = Hashing.Sha256OfFiles([.. datasetFiles.Select(f => (Path.GetFileName(f.Path), f.Sha256))]),
                Rows = table.RowCount,
                Files = datasetFiles,
            },
            Split = new SplitInfo { Holdout = spec.Holdout, Seed = spec.Seed, TrainRows = train.RowCount, HoldoutRows = holdout.RowCount },
            Trainer = new Kiln.Core.Packaging.TrainerInfo { Kind = spec.Trainer.Kind, Parameters = TrainerParameters(spec.Trainer, spec.Task) },
            Metrics = new SortedDictionary<string, double>(metrics, StringComparer.Ordinal),
            Runtime = RuntimeInfoNow(),
            GitCommit = GitCommit(spec.BaseDirectory),
            Spec = spec.Text,
            FeatureStore = fromFeatures?.Info,
        });
        WriteInputExample(writer.PathOf(ModelPackage.InputExampleFile), holdout, Math.Min(3, holdout.RowCount));
        ct.ThrowIfCancellationRequested();
        var path = writer.Commit(spec.Name, spec.Task, ModelRuntime.Mlnet, ModelFile, createdAt);
        return new TrainingResult(path, spec.Task, metrics, train.RowCount, holdout.RowCount, clock.Elapsed);
    }

    private static IEstimator<ITransformer> BuildPipeline(MLContext ml, TrainingSpec spec, LabelInfo labels)
    {
        IEstimator<ITransformer>? chain = null;
        void Append(IEstimator<ITransformer> e) => chain = chain is null ? e : chain.Append(e);

        var numeric = spec.Features.Where(f => f.Kind == ColumnKind.Numeric).Select(f => f.Name).ToArray();
        var parts = new List<string>();
        if (numeric.Length > 0)
        {
            // Missing numbers become the training mean: the same replacement is saved and applied when serving.
            Append(ml.Transforms.ReplaceMissingValues([.. numeric.Select(n => new InputOutputColumnPair(n, n))], MissingValueReplacingEstimator.ReplacementMode.Mean));
            parts.AddRange(numeric);
        }
        foreach (var f in spec.Features.Where(f => f.Kind == ColumnKind.Categorical))
        {
            var encoded = $"{f.Name}__encoded";
            Append(f.Encoding == CategoricalEncoding.Hash
                ? ml.Transforms.Categorical.OneHotHashEncoding(encoded, f.Name, numberOfBits: 12)
                : ml.Transforms.Categorical.OneHotEncoding(encoded, f.Name));
            parts.Add(encoded);
        }
        Append(ml.Transforms.Concatenate(FeaturesColumn, [.. parts]));
        if (spec.Trainer.Kind == "linear") Append(ml.Transforms.NormalizeMeanVariance(FeaturesColumn));
        if (spec.Task == ModelTask.Multiclass)
            Append(ml.Transforms.Conversion.MapValueToKey(LabelColumn, LabelColumn, keyOrdinality: Microsoft.ML.Transforms.ValueToKeyMappingEstimator.KeyOrdinality.ByValue));
        Append(Estimator(ml, spec)); // a binary fast_forest's calibrator is fitted apart: FitCalibratedForest
        if (spec.Task == ModelTask.Multiclass) Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel"));
        return chain!;
    }

    /// <summary>
    /// A random forest's score is a vote share, not a probability; Platt scaling maps it to one (FastTree and LightGBM
    /// calibrate by themselves). Fitted on the training rows' own scores, rows the trees were grown on and whose scores
    /// sit near 0 and 1, the map comes out too steep and the probabilities overconfident. So it is fitted on
    /// out-of-fold scores: K forests, each grown without one fold of the training rows (folds stratified by class),
    /// score that fold; the calibrator fitted on those scores is appended to the forest grown on every training row,
    /// as scikit-learn's CalibratedClassifierCV(method="sigmoid", ensemble=False) does. K = trainer.calibration_folds
    /// (3: measured as good as 5 for a third less time), fewer when a class has fewer rows; below 2 (or 0 asked), on
    /// the training rows' own scores.
    /// </summary>
    private static ITransformer FitCalibratedForest(MLContext ml, IEstimator<ITransformer> forest, DataTable train, int[] trainIndex,
        LabelInfo labels, TrainingSpec spec, ITrainingProgress? progress, CancellationToken ct)
    {
        var platt = ml.BinaryClassification.Calibrators.Platt(LabelColumn);
        var positive = labels.Positive(trainIndex);
        var positives = positive.Count(p => p);
        var folds = Math.Min(spec.Trainer.CalibrationFolds, Math.Min(positives, trainIndex.Length - positives));
        if (folds < 2) return forest.Append(platt).Fit(labels.View(train, trainIndex));

        // Fold of each training row (a position in train): a seeded shuffle, then dealt out class by class.
        var order = Enumerable.Range(0, trainIndex.Length).ToArray();
        new Random(spec.Seed + 1).Shuffle(order);
        var fold = new int[order.Length];
        int dealtPositive = 0, dealtNegative = 0;
        foreach (var p in order) fold[p] = positive[p] ? dealtPositive++ % folds : dealtNegative++ % folds;

        var scores = new List<ScoredLabel>(trainIndex.Length);
        for (var f = 0; f < folds; f++)
        {
            ct.ThrowIfCancellationRequested();
            progress?.Stage($"Calibrating: forest {f + 1} of {folds} scores the rows it was not grown on");
            int[] Rows(bool inFold) => [.. Enumerable.Range(0, fold.Length).Where(p => (fold[p] == f) == inFold)];
            IDataView View(int[] positions) => labels.View(train.Take(positions), [.. positions.Select(p => trainIndex[p])]);
            var held = Rows(inFold: true);
            var scored = forest.Fit(View(Rows(inFold: false))).Transform(View(held));
            var s = scored.GetColumn<float>("Score").ToArray();
            for (var i = 0; i < held.Length; i++) scores.Add(new ScoredLabel { Score = s[i], Label = positive[held[i]] });
        }
        var calibrator = platt.Fit(ml.Data.LoadFromEnumerable(scores));
        ct.ThrowIfCancellationRequested();
        progress?.Stage($"Training {spec.Trainer.Kind} on all {trainIndex.Length:N0} training rows");
        return new TransformerChain<ITransformer>(forest.Fit(labels.View(train, trainIndex)), calibrator);
    }

    /// <summary>An out-of-fold score and its row's label, for fitting the calibrator.</summary>
    private sealed class ScoredLabel
    {
        public float Score { get; set; }

        public bool Label { get; set; }
    }

    private static IEstimator<ITransformer> Estimator(MLContext ml, TrainingSpec spec)
    {
        var t = spec.Trainer;
        var seed = spec.Seed;
        FastForestBinaryTrainer.Options ForestBinary() => new() { NumberOfTrees = t.Trees, NumberOfLeaves = t.Leaves, MinimumExampleCountPerLeaf = t.MinSamplesLeaf, Seed = seed, FeatureFraction = 1.0, LabelColumnName = LabelColumn, FeatureColumnName = FeaturesColumn };
        FastTreeBinaryTrainer.Options TreeBinary() => new() { NumberOfTrees = t.Trees, NumberOfLeaves = t.Leaves, MinimumExampleCountPerLeaf = t.MinSamplesLeaf, LearningRate = t.LearningRate, Seed = seed, LabelColumnName = LabelColumn, FeatureColumnName = FeaturesColumn };
        LightGbmBinaryTrainer.Options GbmBinary() => new() { NumberOfIterations = t.Trees, NumberOfLeaves = t.Leaves, MinimumExampleCountPerLeaf = t.MinSamplesLeaf, LearningRate = t.LearningRate, Seed = seed, NumberOfThreads = 1, Silent = true, LabelColumnName = LabelColumn, FeatureColumnName = FeaturesColumn };
        return (spec.Task, t.Kind) switch
        {
            (ModelTask.Binary, "fast_forest") => ml.BinaryClassification.Trainers.FastForest(ForestBinary()),
            (ModelTask.Binary, "fast_tree") => ml.BinaryClassification.Trainers.FastTree(TreeBinary()),
            (ModelTask.Binary, "lightgbm") => ml.BinaryClassification.Trainers.LightGbm(GbmBinary()),
            (ModelTask.Binary, _) => ml.BinaryClassification.Trainers.SdcaLogisticRegression(new SdcaLogisticRegressionBinaryTrainer.Options { MaximumNumberOfIterations = t.Iterations, NumberOfThreads = 1, LabelColumnName = LabelColumn, FeatureColumnName = FeaturesColumn }),
            (ModelTask.Multiclass, "fast_forest") => ml.MulticlassClassification.Trainers.OneVersusAll(ml.BinaryClassification.Trainers.FastForest(ForestBinary()), LabelColumn),
            (ModelTask.Multiclass, "fast_tree") => ml.MulticlassClassification.Trainers.OneVersusAll(ml.BinaryClassification.Trainers.FastTree(TreeBinary()), LabelColumn),
            (ModelTask.Multiclass, "lightgbm") => ml.MulticlassClassification.Trainers.LightGbm(new LightGbmMulticlassTrainer.Options { NumberOfIterations = t.Trees, NumberOfLeaves = t.Leaves, MinimumExampleCountPerLeaf = t.MinSamplesLeaf, LearningRate = t.LearningRate, Seed = seed, NumberOfThreads = 1, Silent = true, LabelColumnName = LabelColumn, FeatureColumnName = FeaturesColumn }),
            (ModelTask.Multiclass, _) => ml.MulticlassClassification.Trainers.SdcaMaximumEntropy(new SdcaMaximumEntropyMulticlassTrainer.Options { MaximumNumberOfIterations = t.Iterations, NumberOfThreads = 1, LabelColumnName = LabelColumn, FeatureColumnName = FeaturesColumn }),
            (ModelTask.Regression, "fast_forest") => ml.Regression.Trainers.FastForest(new FastForestRegressionTrainer.Options { NumberOfTrees = t.Trees, NumberOfLeaves = t.Leaves, MinimumExampleCountPerLeaf = t.MinSamplesLeaf, Seed = seed, FeatureFraction = 1.0, LabelColumnName = LabelColumn, FeatureColumnName = FeaturesColumn }),
            (ModelTask.Regression, "fast_tree") => ml.Regression.Trainers.FastTree(new FastTreeRegressionTrainer.Options { NumberOfTrees = t.Trees, NumberOfLeaves = t.Leaves, MinimumExampleCountPerLeaf = t.MinSamplesLeaf, LearningRate = t.LearningRate, Seed = seed, LabelColumnName = LabelColumn, FeatureColumnName = FeaturesColumn }),
            (ModelTask.Regression, "lightgbm") => ml.Regression.Trainers.LightGbm(new LightGbmRegressionTrainer.Options { NumberOfIterations = t.Trees, NumberOfLeaves = t.Leaves, MinimumExampleCountPerLeaf = t.MinSamplesLeaf, LearningRate = t.LearningRate, Seed = seed, NumberOfThreads = 1, Silent = true, LabelColumnName = LabelColumn, FeatureColumnName = FeaturesColumn }),
            (ModelTask.Regression, _) => ml.Regression.Trainers.Sdca(new SdcaRegressionTrainer.Options { MaximumNumberOfIterations = t.Iterations, ConvergenceTolerance = 1e-5f, L2Regularization = 1e-2f, NumberOfThreads = 1, LabelColumnName = LabelColumn, FeatureColumnName = FeaturesColumn }),
            _ => throw new KilnException($"trainer '{t.Kind}' does not support task {spec.Task}"),
        };
    }

    private static Dictionary<string, double> Evaluate(MLContext ml, ModelTask task, IDataView scored)
    {
        switch (task)
        {
            case ModelTask.Binary:
                if (scored.Schema.GetColumnOrNull("Probability") is not null)
                {
                    var m = ml.BinaryClassification.Evaluate(scored, LabelColumn);
                    return new()
                    {
                        ["accuracy"] = m.Accuracy, ["auc"] = m.AreaUnderRocCurve, ["f1"] = m.F1Score,
                        // ML.NET reports binary log-loss in bits; Kiln reports it in nats, as scikit-learn and most tools do.
                        ["log_loss"] = m.LogLoss * Math.Log(2), ["precision"] = m.PositivePrecision, ["recall"] = m.PositiveRecall,
                    };
                }
                else
                {
                    var m = ml.BinaryClassification.EvaluateNonCalibrated(scored, LabelColumn);
                    return new()
                    {
                        ["accuracy"] = m.Accuracy, ["auc"] = m.AreaUnderRocCurve, ["f1"] = m.F1Score,
                        ["precision"] = m.PositivePrecision, ["recall"] = m.PositiveRecall,
                    };
                }
            case ModelTask.Multiclass:
            {
                var m = ml.MulticlassClassification.Evaluate(scored, LabelColumn);
                return new() { ["micro_accuracy"] = m.MicroAccuracy, ["macro_accuracy"] = m.MacroAccuracy, ["log_loss"] = m.LogLoss };
            }
            default:
            {
                var m = ml.Regression.Evaluate(scored, LabelColumn);
                return new() { ["rmse"] = m.RootMeanSquaredError, ["mae"] = m.MeanAbsoluteError, ["r2"] = m.RSquared };
            }
        }
    }

    /// <summary>The holdout predictions as a table, named as serving names them (prediction, probability).</summary>
    private static DataTable OutputTable(ModelTask task, IDataView scored, LabelInfo labels)
    {
        var n = (int)(scored.GetRowCount() ?? 0);
        var table = new DataTable(n);
        switch (task)
        {
            case ModelTask.Binary:
            {
                var predicted = scored.GetColumn<bool>("PredictedLabel").Select(b => labels.Classes[b ? 1 : 0]).ToArray<string?>();
                var p = scored.Schema.GetColumnOrNull("Probability") is not null
                    ? scored.GetColumn<float>("Probability").Select(v => (double)v).ToArray()
                    : [.. scored.GetColumn<float>("Score").Select(v => 1.0 / (1.0 + Math.Exp(-v)))];
                table.RowCount = predicted.Length;
                table.Add(new TextColumn("prediction", predicted)).Add(new NumericColumn("probability", p));
                break;
            }
            case ModelTask.Multiclass:
            {
                var predicted = scored.GetColumn<ReadOnlyMemory<char>>("PredictedLabel").Select(m => (string?)m.ToString()).ToArray();
                var confidence = scored.GetColumn<VBuffer<float>>("Score").Select(v => (double)v.DenseValues().Max()).ToArray();
                table.RowCount = predicted.Length;
                table.Add(new TextColumn("prediction", predicted)).Add(new NumericColumn("probability", confidence));
                break;
            }
            default:
            {
                var values = scored.GetColumn<float>("Score").Select(v => (double)v).ToArray();
                table.RowCount = values.Length;
                table.Add(new NumericColumn("prediction", values));
                break;
            }
        }
        return table;
    }

    private static ModelSignature Signature(TrainingSpec spec, DataTable all, LabelInfo labels)
    {
        var inputs = new List<InputField>();
        foreach (var f in spec.Features)
        {
            if (f.Kind == ColumnKind.Numeric)
            {
                inputs.Add(InputField.Numeric(f.Name, all.Numeric(f.Name).Values.AsSpan(0, all.RowCount)));
            }
            else
            {
                var categories = new SortedSet<string>(StringComparer.Ordinal);
                var missing = false;
                foreach (var v in all.Text(f.Name).Values.AsSpan(0, all.RowCount))
                {
                    if (v is null) missing = true; else categories.Add(v);
                }
                inputs.Add(new InputField { Name = f.Name, Type = ColumnKind.Categorical, Nullable = missing, Categories = [.. categories] });
            }
        }
        var outputs = spec.Task switch
        {
            ModelTask.Binary => new List<OutputField>
            {
                new() { Name = "prediction", Type = "categorical", Description = "the predicted class label" },
                new() { Name = "probability", Type = "numeric", Description = $"probability of the positive class '{labels.Classes[1]}'" },
            },
            ModelTask.Multiclass => [
                new() { Name = "prediction", Type = "categorical", Description = "the predicted class label" },
                new() { Name = "probability", Type = "numeric", Description = "probability of the predicted class" },
            ],
            _ => [new() { Name = "prediction", Type = "numeric", Description = "the predicted value" }],
        };
        return new ModelSignature { Task = spec.Task, Inputs = inputs, Outputs = outputs, Label = spec.Label, ClassLabels = labels.Classes.Length > 0 ? [.. labels.Classes] : null };
    }

    private static void WriteInputExample(string path, DataTable holdout, int rows)
    {
        using var stream = File.Create(path);
        using var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
        json.WriteStartArray();
        for (var r = 0; r < rows; r++)
        {
            json.WriteStartObject();
            foreach (var c in holdout.Columns)
            {
                switch (c)
                {
                    case NumericColumn n when double.IsNaN(n.Values[r]): json.WriteNull(c.Name); break;
                    case NumericColumn n: json.WriteNumber(c.Name, n.Values[r]); break;
                    case TextColumn t: json.WriteString(c.Name, t.Values[r]); break;
                }
            }
            json.WriteEndObject();
        }
        json.WriteEndArray();
    }

    private static void WriteHoldoutPredictions(string path, string[] labels, DataTable outputs)
    {
        using var w = new StreamWriter(path);
        w.WriteLine("label," + string.Join(',', outputs.Columns.Select(c => c.Name)));
        for (var r = 0; r < outputs.RowCount; r++)
        {
            w.Write(labels[r]);
            foreach (var c in outputs.Columns)
            {
                w.Write(',');
                w.Write(c switch
                {
                    NumericColumn n => n.Values[r].ToString("R", CultureInfo.InvariantCulture),
                    TextColumn t => t.Values[r],
                    _ => "",
                });
            }
            w.WriteLine();
        }
    }

    private static SortedDictionary<string, string> TrainerParameters(TrainerSpec t, ModelTask task)
    {
        var p = new SortedDictionary<string, string>(StringComparer.Ordinal);
        if (t.Kind == "linear") p["iterations"] = t.Iterations.ToString(CultureInfo.InvariantCulture);
        else
        {
            p["trees"] = t.Trees.ToString(CultureInfo.InvariantCulture);
            p["leaves"] = t.Leaves.ToString(CultureInfo.InvariantCulture);
            p["min_samples_leaf"] = t.MinSamplesLeaf.ToString(CultureInfo.InvariantCulture);
            if (t.Kind != "fast_forest") p["learning_rate"] = t.LearningRate.ToString(CultureInfo.InvariantCulture);
            else if (task == ModelTask.Binary) p["calibration_folds"] = t.CalibrationFolds.ToString(CultureInfo.InvariantCulture);
        }
        return p;
    }

    /// <summary>The versions that matter to load and reproduce a model.</summary>
    public static RuntimeInfo RuntimeInfoNow() => new()
    {
        Kiln = typeof(Trainer).Assembly.GetName().Version?.ToString() ?? "0",
        Dotnet = Environment.Version.ToString(),
        Os = System.Runtime.InteropServices.RuntimeInformation.OSDescription,
        Packages = new SortedDictionary<string, string>(StringComparer.Ordinal)
        {
            ["Microsoft.ML"] = typeof(MLContext).Assembly.GetName().Version?.ToString() ?? "?",
            ["Microsoft.ML.OnnxRuntime"] = typeof(Microsoft.ML.OnnxRuntime.InferenceSession).Assembly.GetName().Version?.ToString() ?? "?",
        },
    };

    /// <summary>The commit checked out in the directory's git work tree, or null.</summary>
    public static string? GitCommit(string directory)
    {
        try
        {
            var psi = new ProcessStartInfo("git", ["-C", directory, "rev-parse", "HEAD"]) { RedirectStandardOutput = true, RedirectStandardError = true };
            using var p = Process.Start(psi);
            if (p is null) return null;
            var output = p.StandardOutput.ReadToEnd().Trim();
            p.WaitForExit(5000);
            return p.ExitCode == 0 && output.Length == 40 ? output : null;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return null;
        }
    }

    /// <summary>The label column turned into what the trainer needs, and the class labels as written in the data.</summary>
    private sealed class LabelInfo
    {
        private bool[]? _binary;
        private string[]? _text;
        private double[]? _numeric;

        public string[] Classes { get; private init; } = [];

        public static LabelInfo From(TrainingSpec spec, DataTable table)
        {
            var n = table.RowCount;
            if (spec.Task == ModelTask.Regression)
            {
                var values = table.Numeric(spec.Label).Values;
                for (var i = 0; i < n; i++)
                    if (!double.IsFinite(values[i])) throw new KilnException($"{spec.Data}: data row {i + 1}: label '{spec.Label}' is missing or not finite");
                return new LabelInfo { _numeric = values };
            }
            var text = table.Text(spec.Label).Values;
            var classes = new SortedSet<string>(StringComparer.Ordinal);
            for (var i = 0; i < n; i++)
            {
                if (text[i] is null) throw new KilnException($"{spec.Data}: data row {i + 1}: label '{spec.Label}' is missing");
                classes.Add(text[i]!);
            }
            if (classes.Count < 2)
                throw new KilnException($"{spec.Data}: label '{spec.Label}' has a single class '{classes.FirstOrDefault()}'; a {spec.Task.ToString().ToLowerInvariant()} model needs at least two");
            if (spec.Task == ModelTask.Multiclass) return new LabelInfo { _text = [.. text.Take(n).Select(s => s!)], Classes = [.. classes] };
            if (classes.Count > 2)
                throw new KilnException($"{spec.Data}: label '{spec.Label}' has {classes.Count} classes ({string.Join(", ", classes.Take(5))}{(classes.Count > 5 ? ", ..." : "")}); a binary task needs exactly two (use task: multiclass)");
            var positive = spec.Positive ?? DefaultPositive(classes);
            if (!classes.Contains(positive))
                throw new KilnException($"{spec.Source}: 'positive' is '{positive}', which is not a value of label '{spec.Label}' ({string.Join(", ", classes)})");
            var negative = classes.First(c => c != positive);
            var binary = new bool[n];
            for (var i = 0; i < n; i++) binary[i] = text[i] == positive;
            return new LabelInfo { _binary = binary, Classes = [negative, positive] };
        }

        private static string DefaultPositive(SortedSet<string> classes)
        {
            foreach (var p in new[] { "1", "true", "True", "TRUE", "yes", "Yes", "YES" })
                if (classes.Contains(p)) return p;
            return classes.Max!;
        }

        /// <summary>Binary tasks: whether each of the given rows is of the positive class.</summary>
        public bool[] Positive(int[] rows) => [.. rows.Select(i => _binary![i])];

        /// <summary>The labels of the given rows as written in the data.</summary>
        public string[] Describe(int[] rows) => _binary is { } b ? [.. rows.Select(i => Classes[b[i] ? 1 : 0])]
            : _text is { } t ? [.. rows.Select(i => t[i])]
            : [.. rows.Select(i => _numeric![i].ToString("R", CultureInfo.InvariantCulture))];

        /// <summary>A data view of the features with the label column for the given original row indices.</summary>
        public TableDataView View(DataTable features, int[] rows)
        {
            if (_binary is { } b) return TableDataView.Create(features, (LabelColumn, BooleanDataViewType.Instance, new Func<long, bool>(i => b[rows[i]])));
            if (_text is { } t) return TableDataView.Create(features, (LabelColumn, TextDataViewType.Instance, new Func<long, ReadOnlyMemory<char>>(i => t[rows[i]].AsMemory())));
            var v = _numeric!;
            return TableDataView.Create(features, (LabelColumn, NumberDataViewType.Single, new Func<long, float>(i => (float)v[rows[i]])));
        }
    }
}
