using Kiln.Core;
using Kiln.Core.Data;
using Kiln.Core.Packaging;
using Kiln.Core.Profiling;
using Kiln.Scoring;
using Kiln.Scoring.Onnx;
using Microsoft.ML.OnnxRuntime;

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
        List<InputField> inputs;
        List<string>? classes;
        DataTable? reference = null;
        ModelSignature? embedded;
        using (var session = Open(options.ModelPath))
        {
            // A model exported by Kiln carries its package's signature: the task, the classes and the inputs' domains.
            embedded = EmbeddedSignature(session, options.ModelPath);
            if (embedded is not null) options = options with { Task = options.Task ?? embedded.Task, Classes = options.Classes ?? embedded.ClassLabels };
            var columns = await ColumnsAsync(session, options, ct).ConfigureAwait(false);
            if (options.Reference is not null)
            {
                var files = DataSources.Resolve(options.Reference);
                reference = (await TableReader.ReadAllAsync(files, [.. columns.Select(c => new ColumnRequest(c.Name, c.TensorType == "string" ? ColumnType.Text : ColumnType.Numeric))], null, ct).ConfigureAwait(false))
                    .TimestampsAsText();
                if (reference.RowCount == 0) throw new KilnException($"{options.Reference}: the reference data has no rows");
                CheckReference(reference, columns, options.Reference);
            }
            inputs = [.. columns.Select(c => Input(c, reference))];
            if (embedded is not null && reference is null)
                inputs = [.. inputs.Select(i => embedded.FindInput(i.Name) is { } e && e.Type == i.Type
                    ? new InputField { Name = i.Name, Type = e.Type, Nullable = e.Nullable, Min = e.Min, Max = e.Max, Categories = e.Categories, TensorType = i.TensorType }
                    : i)];
            (task, classes) = TaskAndClasses(session, inputs, reference, options);
        }
        if (task == ModelTask.Binary && classes is null) classes = ["0", "1"];
        if (classes is not null && task == ModelTask.Regression) throw new KilnException("--classes: a regression model has no classes");
        var signature = new ModelSignature
        {
            Task = task,
            Inputs = inputs,
            Outputs = task == ModelTask.Regression
                ? [new OutputField { Name = "prediction", Type = "numeric", Description = "the predicted value" }]
                : [new OutputField { Name = "prediction", Type = "categorical", Description = "the predicted class label" },
                   new OutputField { Name = "probability", Type = "numeric", Description = task == ModelTask.Binary ? "probability of the positive class" : "probability of the predicted class" }],
            ClassLabels = classes,
            Label = embedded?.Label,
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
        WriteExample(writer.PathOf(ModelPackage.InputExampleFile), inputs, reference);
        return writer.Commit(options.Name, task, ModelRuntime.Onnx, ModelFile, createdAt);
    }

    private static ModelSignature? EmbeddedSignature(InferenceSession session, string path)
    {
        if (!session.ModelMetadata.CustomMetadataMap.TryGetValue(OnnxExporter.SignatureKey, out var json)) return null;
        try
        {
            return System.Text.Json.JsonSerializer.Deserialize<ModelSignature>(json, KilnJson.Wire);
        }
        catch (System.Text.Json.JsonException e)
        {
            throw new KilnException($"{path}: the model's '{OnnxExporter.SignatureKey}' metadata is not a signature ({e.Message})", e);
        }
    }

    private static InferenceSession Open(string path)
    {
        using var sessionOptions = OnnxGraph.QuietSessionOptions();
        try { return new InferenceSession(path, sessionOptions); }
        catch (OnnxRuntimeException e) { throw new KilnException($"{path}: not a valid ONNX model ({e.Message})", e); }
    }

    /// <summary>One signature input as the graph takes it: its name and the element type of the graph input that holds it.</summary>
    private sealed record GraphColumn(string Name, string TensorType);

    /// <summary>
    /// The signature's inputs, in order: a graph input one column wide ([N] or [N, 1]) is one input of its name; a
    /// packed one ([N, k]) is k inputs named by --features, else by the reference data's other columns, else x0…
    /// </summary>
    private static async Task<List<GraphColumn>> ColumnsAsync(InferenceSession session, OnnxImportOptions options, CancellationToken ct)
    {
        var graph = session.InputMetadata.ToList();
        foreach (var (name, meta) in graph)
        {
            if (!meta.IsTensor || OnnxTensorTypes.NameOf(meta.ElementDataType) is null)
                throw new KilnException($"{options.ModelPath}: graph input '{name}' is {(meta.IsTensor ? meta.ElementDataType.ToString() : meta.OnnxValueType.ToString())}; Kiln feeds {OnnxTensorTypes.Supported}");
        }
        var packed = graph.Where(g => OnnxGraph.WidthOf(g.Value) != 1).ToList();
        var named = graph.Where(g => OnnxGraph.WidthOf(g.Value) == 1).Select(g => g.Key).ToHashSet(StringComparer.Ordinal);
        Queue<string>? names = null;
        if (packed.Count > 0)
        {
            var fixedWidth = packed.Where(p => OnnxGraph.WidthOf(p.Value) > 0).Sum(p => OnnxGraph.WidthOf(p.Value));
            var open = packed.Any(p => OnnxGraph.WidthOf(p.Value) < 0);
            var description = string.Join(" and ", packed.Select(p => $"'{p.Key}' [N, {(OnnxGraph.WidthOf(p.Value) is var w && w > 0 ? w : "?")}]"));
            if (options.Features is { } given)
            {
                if (open ? given.Count <= fixedWidth : given.Count != fixedWidth)
                    throw new KilnException($"--features names {given.Count} columns but graph input {description} take{(packed.Count == 1 ? "s" : "")} {(open ? $"more than {fixedWidth}" : fixedWidth)}");
                names = new Queue<string>(given);
            }
            else if (options.Reference is not null)
            {
                var columns = (await TableReader.ReadColumnNamesAsync(DataSources.Resolve(options.Reference)[0], ct).ConfigureAwait(false))
                    .Where(c => c != options.Label && !named.Contains(c)).ToList();
                if (open ? columns.Count <= fixedWidth : columns.Count != fixedWidth)
                    throw new KilnException($"{options.Reference}: has {columns.Count} columns besides the label and the named inputs but graph input {description} take{(packed.Count == 1 ? "s" : "")} {(open ? $"more than {fixedWidth}" : fixedWidth)}; pass --features and --label");
                names = new Queue<string>(columns);
            }
            else if (open)
            {
                throw new KilnException($"graph input {description} has an unknown width; pass --features");
            }
            else
            {
                names = new Queue<string>(Enumerable.Range(0, (int)fixedWidth).Select(i => $"x{i}"));
            }
        }

        var result = new List<GraphColumn>();
        foreach (var (name, meta) in graph)
        {
            var type = OnnxTensorTypes.NameOf(meta.ElementDataType)!;
            var width = OnnxGraph.WidthOf(meta);
            if (width == 1)
            {
                result.Add(new GraphColumn(name, type));
                continue;
            }
            var take = width > 0 ? (int)width : names!.Count - (int)packed.SkipWhile(p => p.Key != name).Skip(1).Sum(p => OnnxGraph.WidthOf(p.Value));
            for (var i = 0; i < take; i++) result.Add(new GraphColumn(names!.Dequeue(), type));
        }
        var duplicate = result.GroupBy(c => c.Name, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null) throw new KilnException($"input '{duplicate.Key}' is named twice (a graph input and a packed column); rename it in --features");
        return result;
    }

    /// <summary>Integer and boolean tensors cannot hold a missing value, nor a fraction: the reference must not have one.</summary>
    private static void CheckReference(DataTable reference, List<GraphColumn> columns, string path)
    {
        foreach (var c in columns)
        {
            if (c.TensorType is not ("int64" or "int32" or "bool")) continue;
            var values = reference.Numeric(c.Name).Values;
            for (var r = 0; r < reference.RowCount; r++)
            {
                var v = values[r];
                if (double.IsNaN(v)) throw new KilnException($"{path}: row {r + 1}, column '{c.Name}': missing, but the graph takes it as {c.TensorType}, which cannot hold a missing value");
                if (v != Math.Floor(v) || (c.TensorType == "bool" && v is not (0 or 1)))
                    throw new KilnException($"{path}: row {r + 1}, column '{c.Name}': {v.ToString("R", System.Globalization.CultureInfo.InvariantCulture)} is not {(c.TensorType == "bool" ? "0 or 1" : "an integer")}, but the graph takes it as {c.TensorType}");
            }
        }
    }

    /// <summary>
    /// The task and class labels: --task, else the width of the first float/double tensor output (1: regression,
    /// 2: binary, more: multiclass), else a ZipMap output's classes (its keys, read by scoring one row).
    /// </summary>
    private static (ModelTask Task, List<string>? Classes) TaskAndClasses(InferenceSession session, List<InputField> inputs, DataTable? reference, OnnxImportOptions options)
    {
        var output = OnnxGraph.ChooseOutput(session, options.Task)
            ?? throw new KilnException(options.Task is { } t
                ? $"{options.ModelPath}: no float tensor or ZipMap output fits a {t.ToString().ToLowerInvariant()} model"
                : $"{options.ModelPath}: the graph has no float/double tensor output and no ZipMap (sequence of maps); pass --task, or export the model with a probability tensor");
        var classes = options.Classes?.ToList();
        if (!output.IsZipMap)
        {
            var task = options.Task ?? output.Width switch
            {
                1 => ModelTask.Regression,
                2 => ModelTask.Binary,
                > 2 => ModelTask.Multiclass,
                _ => throw new KilnException($"{options.ModelPath}: cannot tell the task from output '{output.Name}' of unknown width; pass --task"),
            };
            return (task, classes);
        }

        var keys = ProbeZipMap(session, inputs, reference, output.Name, options.ModelPath);
        var zipTask = keys.Length == 2 ? ModelTask.Binary : ModelTask.Multiclass;
        if (options.Task is { } given && given != zipTask)
            throw new KilnException($"--task {given.ToString().ToLowerInvariant()}: the model's ZipMap output '{output.Name}' has {keys.Length} classes ({string.Join(", ", keys)})");
        if (classes is null) return (zipTask, [.. keys]);
        if (classes.Count != keys.Length || classes.Except(keys, StringComparer.Ordinal).Any())
            throw new KilnException($"--classes {string.Join(",", classes)}: the model's ZipMap output '{output.Name}' names its classes {string.Join(", ", keys)}");
        return (zipTask, classes);
    }

    /// <summary>Scores one row (the reference's first, else zeros and empty strings) to read a ZipMap's keys.</summary>
    private static string[] ProbeZipMap(InferenceSession session, List<InputField> inputs, DataTable? reference, string output, string path)
    {
        var row = reference;
        if (row is null)
        {
            row = new DataTable(1);
            foreach (var i in inputs)
            {
                if (i.Type == ColumnKind.Numeric) row.Add(new NumericColumn(i.Name, [0]));
                else row.Add(new TextColumn(i.Name, [""]));
            }
        }
        var feeds = OnnxGraph.Layout(session, inputs, path);
        var names = new List<string>();
        var values = new List<OrtValue>();
        try
        {
            OnnxGraph.Feed(feeds, inputs, row, 0, 1, names, values);
            using var options = new RunOptions();
            using var outputs = session.Run(options, names, values, [output]);
            return OnnxGraph.ZipMapKeys(outputs[0]);
        }
        catch (OnnxRuntimeException e)
        {
            throw new KilnException($"{path}: scoring one row to read the ZipMap's classes failed ({e.Message}); pass --reference", e);
        }
        finally
        {
            foreach (var v in values) v.Dispose();
        }
    }

    private static InputField Input(GraphColumn c, DataTable? reference)
    {
        var whole = c.TensorType is "int64" or "int32" or "bool";
        switch (reference?.Find(c.Name))
        {
            case NumericColumn column:
                var numeric = InputField.Numeric(c.Name, column.Values.AsSpan(0, reference.RowCount), c.TensorType);
                return whole ? new InputField { Name = c.Name, Type = ColumnKind.Numeric, TensorType = c.TensorType, Min = numeric.Min, Max = numeric.Max } : numeric;
            case TextColumn text:
                var categories = new SortedSet<string>(StringComparer.Ordinal);
                var missing = false;
                foreach (var v in text.Values.AsSpan(0, reference.RowCount))
                {
                    if (v is null) missing = true; else categories.Add(v);
                }
                return new InputField { Name = c.Name, Type = ColumnKind.Categorical, Nullable = missing, Categories = [.. categories], TensorType = c.TensorType };
            default:
                return new InputField { Name = c.Name, Type = c.TensorType == "string" ? ColumnKind.Categorical : ColumnKind.Numeric, TensorType = c.TensorType };
        }
    }

    private static void WriteExample(string path, List<InputField> inputs, DataTable? reference)
    {
        using var stream = File.Create(path);
        using var json = new System.Text.Json.Utf8JsonWriter(stream, new System.Text.Json.JsonWriterOptions { Indented = true });
        json.WriteStartArray();
        var rows = reference is null ? 1 : Math.Min(3, reference.RowCount);
        for (var r = 0; r < rows; r++)
        {
            json.WriteStartObject();
            foreach (var input in inputs)
            {
                switch (reference?.Find(input.Name))
                {
                    case NumericColumn n when double.IsNaN(n.Values[r]): json.WriteNull(input.Name); break;
                    case NumericColumn n: json.WriteNumber(input.Name, n.Values[r]); break;
                    case TextColumn t when t.Values[r] is null: json.WriteNull(input.Name); break;
                    case TextColumn t: json.WriteString(input.Name, t.Values[r]); break;
                    default:
                        if (input.Type == ColumnKind.Numeric) json.WriteNumber(input.Name, 0);
                        else json.WriteString(input.Name, input.Categories is { Count: > 0 } c ? c[0] : "");
                        break;
                }
            }
            json.WriteEndObject();
        }
        json.WriteEndArray();
    }
}
