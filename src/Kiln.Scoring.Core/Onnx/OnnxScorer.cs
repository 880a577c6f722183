using Kiln.Core;
using Kiln.Core.Data;
using Kiln.Core.Packaging;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Kiln.Scoring.Onnx;

/// <summary>Scores an ONNX package through ONNX Runtime (<see cref="OnnxModel"/>); thread-safe.</summary>
public sealed class OnnxScorer(ModelPackage package) : IScorer
{
    private readonly OnnxModel _model = new(package.ModelPath, package.Signature);

    public ModelPackage Package { get; } = package;

    public void Score(DataTable input, int start, Span<Prediction> results) => _model.Score(input, start, results);

    public void Dispose() => _model.Dispose();
}

/// <summary>
/// An ONNX graph and the signature it is fed by, scored through ONNX Runtime: one session per model, shared by every thread.
/// Inputs are float, double, int64, int32, bool or string tensors, fed packed ([N, k] holding k signature inputs in
/// order) or one [N] / [N, 1] tensor per input named as the graph names it (<see cref="OnnxGraph.Layout"/>).
/// The answer is read from a float/double tensor or from skl2onnx's ZipMap (a sequence of maps, one per row).
/// </summary>
public sealed class OnnxModel : IDisposable
{
    private readonly string _path;
    private readonly ModelSignature _signature;
    private readonly InferenceSession _session;
    private readonly OnnxFeed[] _feeds;
    private readonly OnnxOutput _output;
    private readonly string[] _classLabels;
    private int[]? _zipMapOrder;

    /// <summary>Loads the graph; a KilnException names the model file when ONNX Runtime refuses it or the signature cannot feed it.</summary>
    /// <param name="intraOpThreads">ONNX Runtime's intra-op threads; 0 leaves its default (one per core). 1 runs every node sequentially, which fixes the order of a TreeEnsemble's sums.</param>
    public OnnxModel(string modelPath, ModelSignature signature, int intraOpThreads = 0)
    {
        _path = modelPath;
        _signature = signature;
        try
        {
            using var options = OnnxGraph.QuietSessionOptions();
            if (intraOpThreads > 0)
            {
                options.IntraOpNumThreads = intraOpThreads;
                options.InterOpNumThreads = 1;
                options.ExecutionMode = ExecutionMode.ORT_SEQUENTIAL;
            }
            _session = new InferenceSession(modelPath, options);
        }
        catch (OnnxRuntimeException e)
        {
            throw new KilnException($"{modelPath}: ONNX Runtime cannot load the model ({e.Message})", e);
        }
        try
        {
            _feeds = OnnxGraph.Layout(_session, signature.Inputs, modelPath);
            _output = OnnxGraph.ChooseOutput(_session, signature.Task)
                ?? throw new KilnException($"{modelPath}: no float tensor or ZipMap output fits a {signature.Task.ToString().ToLowerInvariant()} model");
        }
        catch
        {
            _session.Dispose();
            throw;
        }
        _classLabels = [.. signature.ClassLabels ?? []];
    }

    public ModelSignature Signature => _signature;

    /// <summary>The graph inputs and the signature columns that fill them.</summary>
    public IReadOnlyList<OnnxFeed> Feeds => _feeds;

    /// <summary>The graph output the answers are read from.</summary>
    public OnnxOutput Output => _output;

    /// <summary>
    /// Predictions from the chosen output's values computed elsewhere (Kiln's tree evaluator): <paramref name="z"/> holds
    /// <paramref name="width"/> floats a row, as the output tensor would, or as the ZipMap's maps would with keys
    /// <paramref name="zipMapKeys"/> in that order. The same rules as reading ONNX Runtime's output.
    /// </summary>
    public void Predict(ReadOnlySpan<float> z, int width, string[]? zipMapKeys, Span<Prediction> results)
    {
        if (zipMapKeys is not null)
        {
            var order = ZipMapOrder(zipMapKeys); // the graph's key order, which is not ONNX Runtime's sorted one: not cached
            if (order.Length != width) throw new KilnException($"{_path}: the ZipMap has {order.Length} classes, the scores {width}");
            var probabilities = new float[width];
            for (var i = 0; i < results.Length; i++)
            {
                for (var c = 0; c < width; c++) probabilities[order[c]] = z[i * width + c];
                results[i] = _signature.Task == ModelTask.Binary ? Binary(probabilities[1]) : Multiclass([.. probabilities]);
            }
            return;
        }
        var cells = new double[width];
        for (var i = 0; i < results.Length; i++)
        {
            for (var c = 0; c < width; c++) cells[c] = z[i * width + c];
            results[i] = _signature.Task switch
            {
                ModelTask.Regression => new Prediction(null, cells[0]),
                ModelTask.Binary => Binary(cells[width == 2 ? 1 : 0]),
                _ => Multiclass(ToFloats(cells)),
            };
        }
    }

    public void Score(DataTable input, int start, Span<Prediction> results)
    {
        var n = results.Length;
        if (n == 0) return;
        var values = new List<OrtValue>(_feeds.Length);
        var names = new List<string>(_feeds.Length);
        try
        {
            OnnxGraph.Feed(_feeds, _signature.Inputs, input, start, n, names, values);
            using var options = new RunOptions();
            using var outputs = _session.Run(options, names, values, [_output.Name]);
            var output = outputs[0];
            if (_output.IsZipMap) ReadZipMap(output, results);
            else ReadTensor(output, results);
        }
        finally
        {
            foreach (var v in values) v.Dispose();
        }
    }

    private void ReadTensor(OrtValue output, Span<Prediction> results)
    {
        var shape = output.GetTensorTypeAndShape().Shape;
        var width = shape.Length >= 2 ? (int)shape[^1] : 1;
        var cells = new double[results.Length * width];
        if (_output.ElementType == TensorElementType.Double) output.GetTensorDataAsSpan<double>()[..cells.Length].CopyTo(cells);
        else
        {
            var floats = output.GetTensorDataAsSpan<float>();
            for (var i = 0; i < cells.Length; i++) cells[i] = floats[i];
        }
        for (var i = 0; i < results.Length; i++)
        {
            var row = cells.AsSpan(i * width, width);
            results[i] = _signature.Task switch
            {
                ModelTask.Regression => new Prediction(null, row[0]),
                ModelTask.Binary => Binary(row[width == 2 ? 1 : 0]),
                _ => Multiclass(ToFloats(row)),
            };
        }
    }

    private static float[] ToFloats(ReadOnlySpan<double> row)
    {
        var floats = new float[row.Length];
        for (var c = 0; c < floats.Length; c++) floats[c] = (float)row[c];
        return floats;
    }

    private void ReadZipMap(OrtValue output, Span<Prediction> results)
    {
        var order = _zipMapOrder ??= ZipMapOrder(OnnxGraph.ZipMapKeys(output));
        var classes = order.Length;
        var probabilities = new float[results.Length * classes];
        OnnxGraph.ReadZipMap(output, order, probabilities);
        for (var i = 0; i < results.Length; i++)
        {
            var row = probabilities.AsSpan(i * classes, classes);
            results[i] = _signature.Task == ModelTask.Binary ? Binary(row[1]) : Multiclass(row.ToArray());
        }
    }

    /// <summary>Where each ZipMap key goes among the signature's class labels (the same set, in whatever order).</summary>
    private int[] ZipMapOrder(string[] keys)
    {
        if (keys.Length != _classLabels.Length || (_signature.Task == ModelTask.Binary && keys.Length != 2))
            throw new KilnException($"{_path}: the ZipMap output names classes {string.Join(", ", keys)}; the signature has {string.Join(", ", _classLabels)}");
        var order = new int[keys.Length];
        for (var k = 0; k < keys.Length; k++)
        {
            order[k] = Array.IndexOf(_classLabels, keys[k]);
            if (order[k] < 0) throw new KilnException($"{_path}: the ZipMap output names class '{keys[k]}', which the signature's class labels ({string.Join(", ", _classLabels)}) lack");
        }
        return order;
    }

    private Prediction Binary(double p) =>
        new(_classLabels.Length == 2 ? _classLabels[p >= 0.5 ? 1 : 0] : (p >= 0.5 ? "1" : "0"), p);

    private Prediction Multiclass(float[] row)
    {
        var best = 0;
        for (var c = 1; c < row.Length; c++) if (row[c] > row[best]) best = c;
        var label = best < _classLabels.Length ? _classLabels[best] : best.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return new Prediction(label, row[best], row);
    }

    public void Dispose() => _session.Dispose();
}
