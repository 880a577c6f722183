using Kiln.Core;
using Kiln.Core.Data;
using Kiln.Core.Packaging;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Kiln.Scoring.Onnx;

/// <summary>
/// Scores an ONNX package through ONNX Runtime: one session per model, shared by every thread.
/// Inputs are fed either packed (one float tensor [N, k] holding the signature's k inputs in order)
/// or one tensor [N] / [N, 1] per input, named as the graph names them.
/// </summary>
public sealed class OnnxScorer : IScorer
{
    private readonly InferenceSession _session;
    private readonly string? _packedInput;
    private readonly string[] _inputNames;
    private readonly string _outputName;
    private readonly string[] _classLabels;

    public OnnxScorer(ModelPackage package)
    {
        Package = package;
        try
        {
            _session = new InferenceSession(package.ModelPath);
        }
        catch (OnnxRuntimeException e)
        {
            throw new KilnException($"{package.ModelPath}: ONNX Runtime cannot load the model ({e.Message})", e);
        }
        var inputs = package.Signature.Inputs;
        var graphInputs = _session.InputMetadata;
        var packed = graphInputs.Count == 1 && inputs.Count > 0 && (inputs.Count > 1 || !graphInputs.ContainsKey(inputs[0].Name));
        if (packed)
        {
            var (name, meta) = graphInputs.First();
            if (meta.Dimensions.Length != 2 || (meta.Dimensions[1] > 0 && meta.Dimensions[1] != inputs.Count))
                throw new KilnException($"{package.ModelPath}: graph input '{name}' has shape [{string.Join(",", meta.Dimensions)}], expected [N, {inputs.Count}]");
            _packedInput = name;
        }
        else
        {
            foreach (var input in inputs)
                if (!graphInputs.ContainsKey(input.Name)) throw new KilnException($"{package.ModelPath}: the graph has no input '{input.Name}'");
        }
        _inputNames = [.. inputs.Select(i => i.Name)];
        _outputName = ChooseOutput(package.Signature.Task);
        _classLabels = [.. package.Signature.ClassLabels ?? []];
    }

    public ModelPackage Package { get; }

    private string ChooseOutput(ModelTask task)
    {
        foreach (var (name, meta) in _session.OutputMetadata)
        {
            if (meta.ElementDataType != TensorElementType.Float || !meta.IsTensor) continue;
            var last = meta.Dimensions.Length >= 2 ? meta.Dimensions[^1] : 1;
            if (task == ModelTask.Regression && last == 1) return name;
            if (task == ModelTask.Binary && (last == 2 || last == 1)) return name;
            if (task == ModelTask.Multiclass && (last > 2 || last < 0)) return name;
        }
        throw new KilnException($"{Package.ModelPath}: no float tensor output fits a {task.ToString().ToLowerInvariant()} model");
    }

    public void Score(DataTable input, int start, Span<Prediction> results)
    {
        var n = results.Length;
        var values = new List<OrtValue>();
        var names = new List<string>();
        try
        {
            if (_packedInput is not null)
            {
                var k = _inputNames.Length;
                var data = new float[n * k];
                for (var j = 0; j < k; j++)
                {
                    var column = Numeric(input, _inputNames[j]);
                    for (var i = 0; i < n; i++) data[i * k + j] = (float)column[start + i];
                }
                values.Add(OrtValue.CreateTensorValueFromMemory(data, [n, k]));
                names.Add(_packedInput);
            }
            else
            {
                foreach (var name in _inputNames)
                {
                    var meta = _session.InputMetadata[name];
                    var column = Numeric(input, name);
                    var data = new float[n];
                    for (var i = 0; i < n; i++) data[i] = (float)column[start + i];
                    long[] shape = meta.Dimensions.Length == 2 ? [n, 1] : [n];
                    values.Add(OrtValue.CreateTensorValueFromMemory(data, shape));
                    names.Add(name);
                }
            }
            using var options = new RunOptions();
            using var outputs = _session.Run(options, names, values, [_outputName]);
            var output = outputs[0];
            var shapeOut = output.GetTensorTypeAndShape().Shape;
            var width = shapeOut.Length >= 2 ? (int)shapeOut[^1] : 1;
            var span = output.GetTensorDataAsSpan<float>();
            for (var i = 0; i < n; i++)
            {
                var row = span.Slice(i * width, width);
                results[i] = Package.Signature.Task switch
                {
                    ModelTask.Regression => new Prediction(null, row[0]),
                    ModelTask.Binary => Binary(width == 2 ? row[1] : row[0]),
                    _ => Multiclass(row),
                };
            }
        }
        finally
        {
            foreach (var v in values) v.Dispose();
        }
    }

    private Prediction Binary(float p) =>
        new(_classLabels.Length == 2 ? _classLabels[p >= 0.5f ? 1 : 0] : (p >= 0.5f ? "1" : "0"), p);

    private Prediction Multiclass(ReadOnlySpan<float> row)
    {
        var best = 0;
        for (var c = 1; c < row.Length; c++) if (row[c] > row[best]) best = c;
        var label = best < _classLabels.Length ? _classLabels[best] : best.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return new Prediction(label, row[best], row.ToArray());
    }

    private static double[] Numeric(DataTable table, string name) => table.Find(name) switch
    {
        NumericColumn n => n.Values,
        null => throw new KilnException($"input '{name}' is missing"),
        _ => throw new KilnException($"input '{name}' must be numeric for an ONNX model"),
    };

    public void Dispose() => _session.Dispose();
}
