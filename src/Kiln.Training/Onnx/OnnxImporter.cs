using Kiln.Core;
using Kiln.Core.Data;
using Kiln.Core.Packaging;
using Kiln.Core.Profiling;
using Kiln.Scoring;
using Kiln.Scoring.Onnx;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Kiln.Training.Onnx;

/// <summary>What to wrap and how: the ONNX file, the package name, and optional hints.</summary>
public sealed record OnnxImportOptions(string ModelPath, string Name)
{
    /// <summary>The task; inferred from the first float output's width when null (1: regression, 2: binary, more: multiclass).</summary>
    public ModelTask? Task { get; init; }

    /// <summary>Reference data (CSV/Parquet) for the profile and the inputs' domain.</summary>
    public string? Reference { get; init; }

    /// <summary>Names of the columns packed into a single [N, k] graph input, in order.</summary>
    public IReadOnlyList<string>? Features { get; init; }

    /// <summary>Class labels in output order, for classifiers.</summary>
    public IReadOnlyList<string>? Classes { get; init; }

    /// <summary>A label column of the reference data to leave out of the features.</summary>
    public string? Label { get; init; }
}

/// <summary>Wraps an existing ONNX model (from PyTorch, scikit-learn, …) as a Kiln package.</summary>
public static class OnnxImporter
{
    public static async Task<string> ImportAsync(OnnxImportOptions options, string outputDirectory, CancellationToken ct = default)
    {
        if (!File.Exists(options.ModelPath)) throw new KilnException($"{options.ModelPath}: no such file");
        ModelTask task;
        List<string> featureNames;
        using (var session = Open(options.ModelPath))
        {
            task = options.Task ?? InferTask(session, options.ModelPath);
            featureNames = await FeatureNamesAsync(session, options, ct).ConfigureAwait(false);
        }

        DataTable? reference = null;
        if (options.Reference is not null)
        {
            var files = DataSources.Resolve(options.Reference);
            reference = await TableReader.ReadAllAsync(files, [.. featureNames.Select(f => new ColumnRequest(f, ColumnType.Numeric))], null, ct).ConfigureAwait(false);
            if (reference.RowCount == 0) throw new KilnException($"{options.Reference}: the reference data has no rows");
        }

        var classes = options.Classes?.ToList();
        if (task == ModelTask.Binary && classes is null) classes = ["0", "1"];
        if (classes is not null && task == ModelTask.Regression) throw new KilnException("--classes: a regression model has no classes");
        var signature = new ModelSignature
        {
            Task = task,
            Inputs = [.. featureNames.Select(f => Input(f, reference))],
            Outputs = task == ModelTask.Regression
                ? [new OutputField { Name = "prediction", Type = "numeric", Description = "the predicted value" }]
                : [new OutputField { Name = "prediction", Type = "categorical", Description = "the predicted class label" },
                   new OutputField { Name = "probability", Type = "numeric", Description = task == ModelTask.Binary ? "probability of the positive class" : "probability of the predicted class" }],
            ClassLabels = classes,
        };

        using var writer = new PackageWriter(outputDirectory);
        const string ModelFile = "model.onnx";
        File.Copy(options.ModelPath, writer.PathOf(ModelFile));
        var createdAt = DateTimeOffset.UtcNow;
        var metadata = new PackageMetadata
        {
            Name = options.Name,
            Task = task,
            CreatedAt = createdAt,
            Dataset = options.Reference is null || reference is null ? null : new DatasetInfo
            {
                Uri = options.Reference,
                Rows = reference.RowCount,
                Sha256 = Hashing.Sha256OfFiles([.. DataSources.Resolve(options.Reference).Select(f => (Path.GetFileName(f), ModelPackage.Sha256OfFile(f)))]),
            },
            Runtime = Trainer.RuntimeInfoNow(),
            GitCommit = Trainer.GitCommit(Path.GetDirectoryName(Path.GetFullPath(options.ModelPath))!),
        };
        PackageProfile? profile = null;
        if (reference is not null)
        {
            // Score the reference through the same runtime serving uses, to profile the outputs.
            var manifest = new PackageManifest { FormatVersion = PackageManifest.CurrentFormatVersion, Name = options.Name, Task = task, Runtime = ModelRuntime.Onnx, ModelFile = ModelFile, CreatedAt = createdAt, Files = [] };
            using var scorer = new OnnxScorer(ModelPackage.FromParts(writer.StagingDirectory, manifest, signature, metadata));
            var predictions = scorer.ScoreAll(reference);
            var outputs = new DataTable(reference.RowCount);
            if (task != ModelTask.Regression) outputs.Add(new TextColumn("prediction", [.. predictions.Select(p => p.Label)]));
            outputs.Add(new NumericColumn(task == ModelTask.Regression ? "prediction" : "probability", [.. predictions.Select(p => p.Value)]));
            profile = new PackageProfile { Inputs = DatasetProfile.Build(reference), Outputs = DatasetProfile.Build(outputs) };
            writer.WriteJson(ModelPackage.ProfileFile, profile, indented: false);
        }
        writer.WriteJson(ModelPackage.SignatureFile, signature);
        writer.WriteJson(ModelPackage.MetadataFile, metadata);
        WriteExample(writer.PathOf(ModelPackage.InputExampleFile), featureNames, reference);
        return writer.Commit(options.Name, task, ModelRuntime.Onnx, ModelFile, createdAt);
    }

    private static InferenceSession Open(string path)
    {
        try { return new InferenceSession(path); }
        catch (OnnxRuntimeException e) { throw new KilnException($"{path}: not a valid ONNX model ({e.Message})", e); }
    }

    private static ModelTask InferTask(InferenceSession session, string path)
    {
        foreach (var (_, meta) in session.OutputMetadata)
        {
            if (!meta.IsTensor || meta.ElementDataType != TensorElementType.Float) continue;
            var width = meta.Dimensions.Length >= 2 ? meta.Dimensions[^1] : 1;
            return width switch { 1 => ModelTask.Regression, 2 => ModelTask.Binary, > 2 => ModelTask.Multiclass, _ => throw new KilnException($"{path}: cannot tell the task from an output of unknown width; pass --task") };
        }
        throw new KilnException($"{path}: the graph has no float tensor output; pass --task, or export the model with tensor outputs (for scikit-learn: zipmap disabled)");
    }

    private static async Task<List<string>> FeatureNamesAsync(InferenceSession session, OnnxImportOptions options, CancellationToken ct)
    {
        var inputs = session.InputMetadata;
        foreach (var (name, meta) in inputs)
        {
            if (meta.ElementDataType != TensorElementType.Float)
                throw new KilnException($"{options.ModelPath}: graph input '{name}' is {meta.ElementDataType}; Kiln feeds float tensors");
        }
        if (inputs.Count == 1 && inputs.First().Value.Dimensions is { Length: 2 } dims && dims[1] != 1)
        {
            var (name, _) = inputs.First();
            var width = dims[1];
            if (options.Features is { } given)
            {
                if (width > 0 && given.Count != width) throw new KilnException($"--features names {given.Count} columns but graph input '{name}' takes {width}");
                return [.. given];
            }
            if (options.Reference is not null)
            {
                var columns = (await TableReader.ReadColumnNamesAsync(DataSources.Resolve(options.Reference)[0], ct).ConfigureAwait(false))
                    .Where(c => c != options.Label).ToList();
                if (width > 0 && columns.Count != width)
                    throw new KilnException($"{options.Reference}: has {columns.Count} columns besides the label but graph input '{name}' takes {width}; pass --features and --label");
                return columns;
            }
            if (width <= 0) throw new KilnException($"graph input '{name}' has an unknown width; pass --features");
            return [.. Enumerable.Range(0, (int)width).Select(i => $"x{i}")];
        }
        return [.. inputs.Keys];
    }

    private static InputField Input(string name, DataTable? reference)
    {
        if (reference?.Find(name) is not NumericColumn column) return new InputField { Name = name, Type = ColumnKind.Numeric, TensorType = "float32" };
        return InputField.Numeric(name, column.Values.AsSpan(0, reference.RowCount), "float32");
    }

    private static void WriteExample(string path, List<string> features, DataTable? reference)
    {
        using var stream = File.Create(path);
        using var json = new System.Text.Json.Utf8JsonWriter(stream, new System.Text.Json.JsonWriterOptions { Indented = true });
        json.WriteStartArray();
        var rows = reference is null ? 1 : Math.Min(3, reference.RowCount);
        for (var r = 0; r < rows; r++)
        {
            json.WriteStartObject();
            foreach (var f in features) json.WriteNumber(f, reference is null ? 0 : reference.Numeric(f).Values[r]);
            json.WriteEndObject();
        }
        json.WriteEndArray();
    }
}
