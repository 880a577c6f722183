using System.Globalization;
using System.Text.Json;
using Kiln.Core;
using Kiln.Core.Data;
using Kiln.Core.Packaging;
using Kiln.Scoring;
using Kiln.Scoring.MlNet;
using Kiln.Scoring.Onnx;
using Kiln.Scoring.Validation;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Kiln.Training.Onnx;

/// <summary>What to export and how to check it.</summary>
public sealed record OnnxExportOptions(string Package, string Output)
{
    /// <summary>Rows (CSV/Parquet) to compare on besides the input example; default: the package's holdout rows, when its data is still where it was.</summary>
    public string? Sample { get; init; }

    /// <summary>At most this many sample rows are compared.</summary>
    public int MaxSampleRows { get; init; } = 2000;

    /// <summary>The largest difference allowed between ML.NET's and ONNX Runtime's probability (or value).</summary>
    public double Tolerance { get; init; } = 1e-5;
}

/// <summary>What an export compared: rows and the largest difference seen.</summary>
public sealed record OnnxExportResult(string Path, int ExampleRows, int SampleRows, string SampleSource, double MaxDifference);

/// <summary>
/// Exports an ML.NET package's whole pipeline to ONNX through Microsoft.ML.OnnxConverter, then scores the input
/// example and a holdout sample through both runtimes and keeps the file only when every probability agrees.
/// The graph's inputs are the signature's (float32 numbers, string categories), and the signature itself rides in
/// the model's metadata (<see cref="SignatureKey"/>) so that <c>kiln package onnx</c> restores it.
/// </summary>
public static class OnnxExporter
{
    /// <summary>The ONNX metadata_props key holding the package's signature as JSON.</summary>
    public const string SignatureKey = "kiln.signature";

    public static async Task<OnnxExportResult> ExportAsync(OnnxExportOptions options, CancellationToken ct = default)
    {
        var package = ModelPackage.Load(options.Package);
        if (package.Manifest.Runtime != ModelRuntime.Mlnet)
            throw new KilnException($"{options.Package}: the package's model is already ONNX ({package.Manifest.ModelFile}); export takes ML.NET packages");
        var signature = package.Signature;
        var exported = ExportedSignature(signature);

        var example = ReadExample(package, signature);
        var (sample, source) = await SampleAsync(package, options, ct).ConfigureAwait(false);

        var ml = new MLContext(seed: 0);
        ml.ComponentCatalog.RegisterAssembly(typeof(Microsoft.ML.Trainers.FastTree.FastTreeBinaryTrainer).Assembly);
        ml.ComponentCatalog.RegisterAssembly(typeof(Microsoft.ML.Trainers.LightGbm.LightGbmBinaryTrainer).Assembly);
        ITransformer model;
        using (var stream = File.OpenRead(package.ModelPath))
        {
            model = ml.Model.Load(stream, out var inputSchema);
            model = WithoutLabelMapping(model, inputSchema);
        }

        var output = Path.GetFullPath(options.Output);
        var directory = Path.GetDirectoryName(output)!;
        if (!Directory.Exists(directory)) throw new KilnException($"{options.Output}: the directory {directory} does not exist");
        if (Directory.Exists(output)) throw new KilnException($"{options.Output}: is a directory; name the .onnx file to write");
        var staging = Path.Combine(directory, $".{Path.GetFileName(output)}.staging-{Guid.NewGuid():N}");
        try
        {
            var columns = OutputColumns(signature.Task);
            Convert(ml, model, example, columns, exported, staging);
            ct.ThrowIfCancellationRequested();

            // Both runtimes on the same rows: every probability (value, for regression) within the tolerance.
            var worst = 0.0;
            foreach (var (rows, what) in new[] { (example, "the input example"), (sample, source) })
            {
                if (rows is null || rows.RowCount == 0) continue;
                var (difference, row) = Compare(package, exported, staging, rows, signature.Task == ModelTask.Regression);
                worst = Math.Max(worst, difference);
                if (difference > options.Tolerance)
                {
                    var culprit = Culprit(ml, model, rows, exported, directory, options.Tolerance);
                    throw new KilnException(
                        $"{options.Package}: the ONNX export does not score like the package: on {what}, row {row + 1}, the {(signature.Task == ModelTask.Regression ? "prediction (relative to its size)" : "probability")} differs by {difference.ToString("G3", CultureInfo.InvariantCulture)} (more than {options.Tolerance.ToString("G3", CultureInfo.InvariantCulture)}); {culprit}; no file written");
                }
            }
            File.Move(staging, output, overwrite: true);
            return new OnnxExportResult(output, example.RowCount, sample?.RowCount ?? 0, source, worst);
        }
        finally
        {
            if (File.Exists(staging)) File.Delete(staging);
        }
    }

    /// <summary>
    /// A multiclass pipeline maps the label to a key (for training) and the predicted key back to a label: both need the
    /// label column, which a request does not carry, and neither changes the scores. The graph is exported without them;
    /// the class order stays the trained one (the signature's class_labels).
    /// </summary>
    private static ITransformer WithoutLabelMapping(ITransformer model, DataViewSchema inputSchema)
    {
        var all = new List<ITransformer>();
        void Flatten(ITransformer t)
        {
            if (t is IEnumerable<ITransformer> chain) foreach (var inner in chain) Flatten(inner);
            else all.Add(t);
        }
        Flatten(model);
        var kept = new List<ITransformer>();
        var schema = inputSchema;
        foreach (var t in all)
        {
            var next = t.GetOutputSchema(schema);
            var mapsLabel = t is Microsoft.ML.Transforms.ValueToKeyMappingTransformer
                && schema.GetColumnOrNull("Label") is { } before && before.Type is not KeyDataViewType
                && next.GetColumnOrNull("Label") is { Type: KeyDataViewType };
            var mapsPrediction = t is Microsoft.ML.Transforms.KeyToValueMappingTransformer
                && schema.GetColumnOrNull("PredictedLabel") is { Type: KeyDataViewType };
            if (!mapsLabel && !mapsPrediction) kept.Add(t);
            schema = next;
        }
        return kept.Count == all.Count ? model : new TransformerChain<ITransformer>([.. kept]);
    }

    /// <summary>The columns the graph outputs: what the scorer reads for the task.</summary>
    private static string[] OutputColumns(ModelTask task) => task switch
    {
        ModelTask.Binary => ["Probability"],
        ModelTask.Multiclass => ["Score"],
        _ => ["Score"],
    };

    /// <summary>The signature as the ONNX graph takes it: the same inputs, with their tensor types (float32 or string).</summary>
    public static ModelSignature ExportedSignature(ModelSignature signature) => new()
    {
        Task = signature.Task,
        Label = signature.Label,
        ClassLabels = signature.ClassLabels,
        Outputs = signature.Outputs,
        Inputs = [.. signature.Inputs.Select(i => new InputField
        {
            Name = i.Name, Type = i.Type, Nullable = i.Nullable, Min = i.Min, Max = i.Max, Categories = i.Categories,
            TensorType = i.Type == Kiln.Core.Profiling.ColumnKind.Numeric ? "float32" : "string",
        })],
    };

    private static void Convert(MLContext ml, ITransformer model, DataTable rows, string[] columns, ModelSignature exported, string path)
    {
        var view = TableDataView.Create(rows);
        using var stream = File.Create(path);
        try
        {
            ml.Model.ConvertToOnnx(model, view, stream, columns);
        }
        catch (Exception e) when (e is NotSupportedException or InvalidOperationException or ArgumentException or NotImplementedException)
        {
            throw new KilnException($"the pipeline does not export to ONNX: {e.Message.ReplaceLineEndings(" ")}", e);
        }
        // The signature rides along as a metadata_props entry (ModelProto field 14: StringStringEntryProto key = 1,
        // value = 2). A protobuf parser merges a field appended to a message, so writing it after the converter's
        // bytes adds the entry without re-encoding the model.
        using var output = new Google.Protobuf.CodedOutputStream(stream, leaveOpen: true);
        var key = Google.Protobuf.ByteString.CopyFromUtf8(SignatureKey);
        var value = Google.Protobuf.ByteString.CopyFromUtf8(JsonSerializer.Serialize(exported, KilnJson.Wire));
        var entryLength = 1 + Google.Protobuf.CodedOutputStream.ComputeBytesSize(key) + 1 + Google.Protobuf.CodedOutputStream.ComputeBytesSize(value);
        output.WriteTag(14, Google.Protobuf.WireFormat.WireType.LengthDelimited);
        output.WriteLength(entryLength);
        output.WriteTag(1, Google.Protobuf.WireFormat.WireType.LengthDelimited);
        output.WriteBytes(key);
        output.WriteTag(2, Google.Protobuf.WireFormat.WireType.LengthDelimited);
        output.WriteBytes(value);
        output.Flush();
    }

    /// <summary>The largest difference between the package's and the ONNX graph's answers on <paramref name="rows"/>, and its row.</summary>
    private static (double Difference, int Row) Compare(ModelPackage package, ModelSignature exported, string onnxPath, DataTable rows, bool relative)
    {
        using var mlnet = Scorers.Open(package);
        var expected = mlnet.ScoreAll(rows, 1);
        var manifest = new PackageManifest
        {
            FormatVersion = PackageManifest.CurrentFormatVersion, Name = package.Manifest.Name, Task = package.Manifest.Task,
            Runtime = ModelRuntime.Onnx, ModelFile = Path.GetFileName(onnxPath), CreatedAt = package.Manifest.CreatedAt, Files = [],
        };
        using var onnx = new OnnxScorer(ModelPackage.FromParts(Path.GetDirectoryName(onnxPath)!, manifest, exported, package.Metadata));
        var actual = onnx.ScoreAll(rows, 1);
        var worst = 0.0;
        var at = 0;
        for (var i = 0; i < expected.Length; i++)
        {
            // A regression value is compared relative to its size (above 1): both runtimes add the trees in float32.
            var d = Difference(expected[i], actual[i]) / (relative ? Math.Max(1, Math.Abs(expected[i].Value)) : 1);
            if (d > worst || double.IsNaN(d)) { worst = double.IsNaN(d) ? double.PositiveInfinity : d; at = i; }
        }
        return (worst, at);
    }

    private static double Difference(Prediction a, Prediction b)
    {
        var d = Math.Abs(a.Value - b.Value);
        if (a.Probabilities is { } p && b.Probabilities is { } q)
        {
            if (p.Length != q.Length) return double.PositiveInfinity;
            for (var c = 0; c < p.Length; c++) d = Math.Max(d, Math.Abs(p[c] - q[c]));
        }
        return d;
    }

    /// <summary>
    /// Names the first column of the pipeline whose ONNX values differ from ML.NET's (each intermediate column is
    /// exported on its own and compared), so the message points at the transform that does not export faithfully.
    /// </summary>
    private static string Culprit(MLContext ml, ITransformer model, DataTable rows, ModelSignature exported, string directory, double tolerance)
    {
        var view = TableDataView.Create(rows);
        var transformed = model.Transform(view);
        var inputs = new HashSet<string>(exported.Inputs.Select(i => i.Name), StringComparer.Ordinal);
        foreach (var column in transformed.Schema)
        {
            if (column.IsHidden || inputs.Contains(column.Name)) continue;
            if ((column.Type is VectorDataViewType vector ? vector.ItemType : column.Type) != NumberDataViewType.Single) continue;
            var mlValues = Floats(transformed, column);
            var path = Path.Combine(directory, $".kiln-onnx-probe-{Guid.NewGuid():N}.onnx");
            try
            {
                Convert(ml, model, rows, [column.Name], exported, path);
                var onnxValues = RunColumn(path, rows, exported);
                if (onnxValues.Length != mlValues.Length) return $"column '{column.Name}' comes out of ONNX with {onnxValues.Length} values instead of {mlValues.Length}";
                for (var i = 0; i < mlValues.Length; i++)
                {
                    var d = Math.Abs(mlValues[i] - onnxValues[i]);
                    if (d > tolerance || (float.IsNaN(mlValues[i]) != float.IsNaN(onnxValues[i])))
                        return $"the first column that differs is '{column.Name}', made by the {Transform(column.Name)}";
                }
            }
            catch (KilnException e)
            {
                return $"column '{column.Name}' does not export ({e.Message})";
            }
            finally
            {
                if (File.Exists(path)) File.Delete(path);
            }
        }
        return "every intermediate column agrees, so the difference is in the final scoring";
    }

    private static string Transform(string column) => column switch
    {
        "Features" => "concatenation or normalization",
        "Score" => "trainer",
        "Probability" => "calibrator",
        _ when column.EndsWith("__encoded", StringComparison.Ordinal) => "one-hot encoding",
        _ => "transform",
    };

    private static float[] Floats(IDataView view, DataViewSchema.Column column)
    {
        var values = new List<float>();
        using var cursor = view.GetRowCursor([column]);
        if (column.Type is VectorDataViewType)
        {
            var getter = cursor.GetGetter<VBuffer<float>>(column);
            var buffer = default(VBuffer<float>);
            while (cursor.MoveNext())
            {
                getter(ref buffer);
                foreach (var v in buffer.DenseValues()) values.Add(v);
            }
        }
        else
        {
            var getter = cursor.GetGetter<float>(column);
            var v = 0f;
            while (cursor.MoveNext())
            {
                getter(ref v);
                values.Add(v);
            }
        }
        return [.. values];
    }

    private static float[] RunColumn(string path, DataTable rows, ModelSignature exported)
    {
        using var sessionOptions = OnnxGraph.QuietSessionOptions();
        using var session = new Microsoft.ML.OnnxRuntime.InferenceSession(path, sessionOptions);
        var feeds = OnnxGraph.Layout(session, exported.Inputs, path);
        var names = new List<string>();
        var values = new List<Microsoft.ML.OnnxRuntime.OrtValue>();
        try
        {
            OnnxGraph.Feed(feeds, exported.Inputs, rows, 0, rows.RowCount, names, values);
            using var options = new Microsoft.ML.OnnxRuntime.RunOptions();
            using var outputs = session.Run(options, names, values, [session.OutputMetadata.Keys.First()]);
            return outputs[0].GetTensorDataAsSpan<float>().ToArray();
        }
        finally
        {
            foreach (var v in values) v.Dispose();
        }
    }

    private static DataTable ReadExample(ModelPackage package, ModelSignature signature)
    {
        var path = Path.Combine(package.Directory, ModelPackage.InputExampleFile);
        var rows = JsonSerializer.Deserialize<List<Dictionary<string, JsonElement>>>(File.ReadAllText(path))
            ?? throw new KilnException($"{path}: the input example is empty");
        return JsonRowsDecoder.ToTable(rows, signature);
    }

    /// <summary>
    /// The rows to compare on: --sample, else the package's own holdout rows when its training data is still where it
    /// was with the same SHA-256 (the split is the trainer's: a permutation seeded with the split's seed), else none.
    /// </summary>
    private static async Task<(DataTable? Rows, string Source)> SampleAsync(ModelPackage package, OnnxExportOptions options, CancellationToken ct)
    {
        var requests = package.Signature.Inputs.Select(i => new ColumnRequest(i.Name, i.Type == Kiln.Core.Profiling.ColumnKind.Numeric ? ColumnType.Numeric : ColumnType.Text)).ToList();
        if (options.Sample is { } sample)
        {
            var table = (await TableReader.ReadAllAsync(DataSources.Resolve(sample), requests, null, ct).ConfigureAwait(false)).TimestampsAsText();
            if (table.RowCount == 0) throw new KilnException($"{sample}: the sample has no rows");
            return (First(table, options.MaxSampleRows), $"{sample} ({Math.Min(table.RowCount, options.MaxSampleRows)} rows)");
        }
        var dataset = package.Metadata.Dataset;
        var split = package.Metadata.Split;
        if (dataset is null || split is null || dataset.Files.Count == 0) return (null, "no holdout sample (the package names no data)");
        foreach (var f in dataset.Files)
        {
            if (!File.Exists(f.Path) || new FileInfo(f.Path).Length != f.Size || ModelPackage.Sha256OfFile(f.Path) != f.Sha256)
                return (null, $"no holdout sample ({f.Path} is gone or changed; pass --sample)");
        }
        var all = (await TableReader.ReadAllAsync([.. dataset.Files.Select(f => f.Path)], requests, null, ct).ConfigureAwait(false)).TimestampsAsText();
        var order = Enumerable.Range(0, all.RowCount).ToArray();
        new Random(split.Seed).Shuffle(order);
        var holdout = order.AsSpan(0, (int)Math.Min(split.HoldoutRows, all.RowCount)).ToArray();
        Array.Sort(holdout);
        var rows = holdout.Take(options.MaxSampleRows).ToArray();
        return (all.Take(rows), $"the holdout rows ({rows.Length} of {holdout.Length})");
    }

    private static DataTable First(DataTable table, int rows) =>
        table.RowCount <= rows ? table : table.Take([.. Enumerable.Range(0, rows)]);
}
