using Kiln.Core.Packaging;
using Kiln.Scoring;
using Kiln.Serving.Models;
using Kiln.Scoring.Validation;

namespace Kiln.Serving.Protocols.OpenInference;

/// <summary>
/// Tensors as the Open Inference Protocol sees a Kiln model, shared by REST and gRPC: one input
/// tensor per signature input, shape [N] or [N, 1] (numbers FP32/FP64/INT*/UINT*, categories BYTES);
/// outputs named as the signature names them (as /predict does): the prediction (BYTES [N] for classification,
/// FP64 [N] for regression; "prediction" in packages Kiln writes) and for classification the probability (FP64 [N]),
/// plus "probabilities" (FP64 [N, C]) for multiclass.
/// </summary>
public static class V2Tensors
{
    /// <summary>The name of the prediction output when the signature lists none.</summary>
    public const string Prediction = "prediction";
    public const string Probability = "probability";
    public const string Probabilities = "probabilities";

    // The protocol leaves output names to the model (KServe and Triton use the model's own), so
    // they come from the signature: the first output is the prediction, the second the probability.
    private static string PredictionName(ServedModel m) => m.Signature.Outputs is [var first, ..] ? first.Name : Prediction;

    private static string ProbabilityName(ServedModel m) => m.Signature.Outputs is [_, var second, ..] ? second.Name : Probability;

    public static string Platform(ServedModel m) => m.Package.Manifest.Runtime == ModelRuntime.Onnx ? "onnxruntime_onnx" : "mlnet";

    /// <summary>
    /// The tensors a request sends: the model's inputs; for a model that reads features (<paramref name="binding"/>),
    /// its join keys (typed as their entities declare, BYTES when undeclared) and the inputs the store does not fill.
    /// </summary>
    public static IEnumerable<(string Name, string Datatype, long[] Shape)> Inputs(ServedModel m, Features.FeatureBinding? binding = null)
    {
        if (binding is not null)
        {
            for (var k = 0; k < binding.JoinKeys.Count; k++) yield return (binding.JoinKeys[k], Datatype(binding.JoinKeyTypes[k]), [-1]);
        }
        foreach (var f in m.Schema.Fields)
        {
            if (binding is not null && (binding.FromStore[f.Index] || binding.JoinKeys.Contains(f.Name))) continue;
            yield return (f.Name, f.IsNumeric ? "FP64" : "BYTES", [-1]);
        }
    }

    private static string Datatype(Kiln.Features.Definitions.FeatureType? type) => type switch
    {
        Kiln.Features.Definitions.FeatureType.Int32 => "INT32",
        Kiln.Features.Definitions.FeatureType.Int64 => "INT64",
        Kiln.Features.Definitions.FeatureType.Float32 => "FP32",
        Kiln.Features.Definitions.FeatureType.Float64 => "FP64",
        Kiln.Features.Definitions.FeatureType.Bool => "BOOL",
        _ => "BYTES",
    };

    public static IEnumerable<(string Name, string Datatype, long[] Shape)> Outputs(ServedModel m)
    {
        if (m.Signature.Task == ModelTask.Regression)
        {
            yield return (PredictionName(m), "FP64", [-1]);
            yield break;
        }
        yield return (PredictionName(m), "BYTES", [-1]);
        yield return (ProbabilityName(m), "FP64", [-1]);
        if (m.Signature.Task == ModelTask.Multiclass) yield return (Probabilities, "FP64", [-1, m.ClassLabels.Count]);
    }

    /// <summary>Which outputs to send: all when none are requested; an error for an unknown name.</summary>
    public static RequestError? SelectOutputs(ServedModel m, IReadOnlyList<string> requested, out List<(string Name, string Datatype, long[] Shape)> selected)
    {
        var all = Outputs(m).ToList();
        if (requested.Count == 0) { selected = all; return null; }
        selected = [];
        foreach (var name in requested)
        {
            var i = all.FindIndex(o => o.Name == name);
            if (i < 0) return new RequestError(400, $"unknown output '{name}' (the model's outputs are {string.Join(", ", all.Select(o => o.Name))})", name);
            selected.Add(all[i]);
        }
        return null;
    }

    /// <summary>Checks an input tensor's name, datatype and shape against the signature; returns its field and row count.</summary>
    public static RequestError? Check(InputBatch batch, string name, string datatype, IReadOnlyList<long> shape, int valueCount, out int field, out int rows)
    {
        rows = 0;
        field = batch.Schema.IndexOf(name);
        if (field < 0) return new RequestError(400, $"{name}: unknown input (the model's inputs are {string.Join(", ", batch.Schema.Fields.Select(f => f.Name))})", name);
        var f = batch.Schema.Fields[field];
        var numericType = datatype is "FP16" or "FP32" or "FP64" or "INT8" or "INT16" or "INT32" or "INT64" or "UINT8" or "UINT16" or "UINT32" or "UINT64" or "BOOL";
        if (f.IsNumeric && !numericType)
            return new RequestError(400, $"{name}: datatype {datatype} does not fit a numeric input (send FP32, FP64 or an integer type)", name);
        if (!f.IsNumeric && datatype != "BYTES" && !numericType)
            return new RequestError(400, $"{name}: datatype {datatype} does not fit a categorical input (send BYTES)", name);
        if (shape.Count is < 1 or > 2 || shape[0] < 0 || (shape.Count == 2 && shape[1] != 1))
            return new RequestError(400, $"{name}: shape [{string.Join(", ", shape)}] is wrong; each input is one column: [N] or [N, 1]", name);
        if (shape[0] != valueCount)
            return new RequestError(400, $"{name}: shape [{string.Join(", ", shape)}] holds {shape[0]} values but {valueCount} were sent", name);
        rows = (int)shape[0];
        return null;
    }

    /// <summary>Checks that every tensor has the same row count and no input is missing (nullable inputs may be left out).</summary>
    public static RequestError? CheckRows(InputBatch batch, IReadOnlyList<(int Field, int Rows)> inputs, out int rows)
    {
        rows = -1;
        var seen = new bool[batch.Schema.Fields.Count];
        foreach (var (field, n) in inputs)
        {
            var name = batch.Schema.Fields[field].Name;
            if (seen[field]) return new RequestError(400, $"{name}: input appears twice", name);
            seen[field] = true;
            if (rows >= 0 && n != rows) return new RequestError(400, $"{name}: shape has {n} rows where other inputs have {rows}", name);
            rows = n;
        }
        for (var i = 0; i < seen.Length; i++)
        {
            var f = batch.Schema.Fields[i];
            if (!seen[i] && !f.Nullable) return new RequestError(400, $"{f.Name}: required input is missing", f.Name);
        }
        if (rows <= 0) return new RequestError(400, "the request has no rows", "inputs");
        return null;
    }

    /// <summary>Flattens predictions into one output's values.</summary>
    public static void Fill(ServedModel m, string output, ReadOnlySpan<Prediction> predictions, List<double> numbers, List<string> labels)
    {
        var regression = m.Signature.Task == ModelTask.Regression;
        var isPrediction = output == PredictionName(m);
        var isProbability = !regression && output == ProbabilityName(m);
        foreach (var p in predictions)
        {
            if (isPrediction && regression) numbers.Add(p.Value);
            else if (isPrediction) labels.Add(p.Label ?? "");
            else if (isProbability) numbers.Add(p.Value);
            else if (output == Probabilities)
            {
                for (var c = 0; c < m.ClassLabels.Count; c++) numbers.Add(p.Probabilities is { } probs && c < probs.Length ? probs[c] : 0);
            }
        }
    }
}
