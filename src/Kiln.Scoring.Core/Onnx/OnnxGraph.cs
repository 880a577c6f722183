using System.Globalization;
using Kiln.Core;
using Kiln.Core.Data;
using Kiln.Core.Packaging;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Kiln.Scoring.Onnx;

/// <summary>The tensor element types Kiln feeds, by their signature names (<see cref="InputField.TensorType"/>).</summary>
public static class OnnxTensorTypes
{
    /// <summary>The signature's name of an element type, or null when Kiln cannot feed it.</summary>
    public static string? NameOf(TensorElementType type) => type switch
    {
        TensorElementType.Float => "float32",
        TensorElementType.Double => "float64",
        TensorElementType.Int64 => "int64",
        TensorElementType.Int32 => "int32",
        TensorElementType.Bool => "bool",
        TensorElementType.String => "string",
        _ => null,
    };

    /// <summary>What the one-line refusal of another element type lists.</summary>
    public const string Supported = "float, double, int64, int32, bool and string tensors";
}

/// <summary>One graph input and the signature inputs that fill it: one column ([N] or [N, 1]) or k packed columns ([N, k]).</summary>
public sealed record OnnxFeed(string Name, TensorElementType Type, int[] Columns, bool Rank1);

/// <summary>How a graph's probabilities or values come out: a float/double tensor, or skl2onnx's ZipMap (a sequence of maps).</summary>
public sealed record OnnxOutput(string Name, bool IsZipMap, TensorElementType ElementType, long Width);

/// <summary>
/// How signature inputs map onto a graph's inputs, and which output holds the answer. A graph input named as a
/// signature input and one column wide takes that input; every other graph input is packed ([N, k]) and takes the
/// next k signature inputs not named after a graph input, in signature order (the last one takes all that remain
/// when its width is not fixed).
/// </summary>
public static class OnnxGraph
{
    /// <summary>Session options that keep ONNX Runtime's warnings (shape merges and the like) off stderr; errors still surface as exceptions.</summary>
    public static SessionOptions QuietSessionOptions() => new() { LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR };

    /// <summary>The feeds for a signature's inputs; a KilnException names a graph input that cannot be filled.</summary>
    public static OnnxFeed[] Layout(InferenceSession session, IReadOnlyList<InputField> inputs, string path)
    {
        var graph = session.InputMetadata;
        var index = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < inputs.Count; i++) index[inputs[i].Name] = i;
        var named = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (name, meta) in graph)
            if (index.ContainsKey(name) && WidthOf(meta) is 1) named.Add(name);
        var rest = new Queue<int>();
        for (var i = 0; i < inputs.Count; i++) if (!named.Contains(inputs[i].Name)) rest.Enqueue(i);

        var feeds = new List<OnnxFeed>();
        var graphInputs = graph.ToList();
        for (var g = 0; g < graphInputs.Count; g++)
        {
            var (name, meta) = graphInputs[g];
            if (!meta.IsTensor || OnnxTensorTypes.NameOf(meta.ElementDataType) is null)
                throw new KilnException($"{path}: graph input '{name}' is {Describe(meta)}; Kiln feeds {OnnxTensorTypes.Supported}");
            if (meta.Dimensions.Length is 0 or > 2)
                throw new KilnException($"{path}: graph input '{name}' has shape [{string.Join(",", meta.Dimensions)}]; Kiln feeds [N], [N, 1] or [N, k] inputs");
            if (named.Contains(name))
            {
                feeds.Add(new OnnxFeed(name, meta.ElementDataType, [index[name]], meta.Dimensions.Length == 1));
                continue;
            }
            var width = WidthOf(meta);
            var lastPacked = graphInputs.Skip(g + 1).All(x => named.Contains(x.Key));
            var take = width > 0 ? width : lastPacked ? rest.Count : throw new KilnException($"{path}: graph input '{name}' has an unknown width and is not the last packed input");
            if (take == 0 || rest.Count < take)
                throw new KilnException($"{path}: graph input '{name}' takes {take} columns but the signature has {rest.Count} left for it");
            var columns = new int[take];
            for (var c = 0; c < take; c++) columns[c] = rest.Dequeue();
            feeds.Add(new OnnxFeed(name, meta.ElementDataType, columns, meta.Dimensions.Length == 1));
        }
        if (rest.Count > 0)
            throw new KilnException($"{path}: the graph has no input for '{inputs[rest.Peek()].Name}' (graph inputs: {string.Join(", ", graph.Keys)})");
        return [.. feeds];
    }

    /// <summary>An input's width: 1 for [N] and [N, 1], k for [N, k], -1 when the graph leaves it open.</summary>
    public static long WidthOf(NodeMetadata meta) => meta.Dimensions.Length switch
    {
        1 => 1,
        2 => meta.Dimensions[1] > 0 ? meta.Dimensions[1] : -1,
        _ => -1,
    };

    /// <summary>The output that answers for <paramref name="task"/>: a fitting float/double tensor first, else a ZipMap.</summary>
    public static OnnxOutput? ChooseOutput(InferenceSession session, ModelTask? task)
    {
        OnnxOutput? zipMap = null;
        foreach (var (name, meta) in session.OutputMetadata)
        {
            if (meta.IsTensor)
            {
                if (meta.ElementDataType is not (TensorElementType.Float or TensorElementType.Double)) continue;
                var last = meta.Dimensions.Length >= 2 ? meta.Dimensions[^1] : 1;
                var fits = task switch
                {
                    null => last >= 1,
                    ModelTask.Regression => last == 1,
                    ModelTask.Binary => last is 1 or 2,
                    _ => last > 2 || last < 0,
                };
                if (fits) return new OnnxOutput(name, false, meta.ElementDataType, last);
            }
            else if (zipMap is null && task != ModelTask.Regression && IsZipMap(meta, out var keyType))
            {
                zipMap = new OnnxOutput(name, true, keyType, -1);
            }
        }
        return zipMap;
    }

    private static bool IsZipMap(NodeMetadata meta, out TensorElementType keyType)
    {
        keyType = default;
        if (meta.OnnxValueType != OnnxValueType.ONNX_TYPE_SEQUENCE) return false;
        var element = meta.AsSequenceMetadata().ElementMeta;
        if (element.OnnxValueType != OnnxValueType.ONNX_TYPE_MAP) return false;
        var map = element.AsMapMetadata();
        keyType = map.KeyDataType;
        return keyType is TensorElementType.String or TensorElementType.Int64
            && map.ValueMetadata.IsTensor && map.ValueMetadata.ElementDataType == TensorElementType.Float;
    }

    private static string Describe(NodeMetadata meta) => meta.IsTensor
        ? $"a {meta.ElementDataType} tensor"
        : meta.OnnxValueType switch
        {
            OnnxValueType.ONNX_TYPE_SEQUENCE => "a sequence",
            OnnxValueType.ONNX_TYPE_MAP => "a map",
            _ => meta.OnnxValueType.ToString(),
        };

    /// <summary>Builds the graph's input values for rows [start, start + n) of <paramref name="input"/>.</summary>
    public static void Feed(OnnxFeed[] feeds, IReadOnlyList<InputField> inputs, DataTable input, int start, int n, List<string> names, List<OrtValue> values)
    {
        foreach (var feed in feeds)
        {
            var k = feed.Columns.Length;
            long[] shape = feed.Rank1 ? [n] : [n, k];
            OrtValue value;
            if (feed.Type == TensorElementType.String)
            {
                value = OrtValue.CreateTensorWithEmptyStrings(OrtAllocator.DefaultInstance, shape);
                for (var j = 0; j < k; j++)
                {
                    var name = inputs[feed.Columns[j]].Name;
                    switch (input.Find(name))
                    {
                        case TextColumn t:
                            for (var i = 0; i < n; i++) value.StringTensorSetElementAt((t.Values[start + i] ?? "").AsSpan(), i * k + j);
                            break;
                        case TimestampColumn s: // as the ISO 8601 text Kiln trains categorical inputs on
                            for (var i = 0; i < n; i++) value.StringTensorSetElementAt((s.Format(start + i) ?? "").AsSpan(), i * k + j);
                            break;
                        case NumericColumn c:
                            for (var i = 0; i < n; i++)
                            {
                                var v = c.Values[start + i];
                                value.StringTensorSetElementAt(double.IsNaN(v) ? "" : v.ToString("R", CultureInfo.InvariantCulture), i * k + j);
                            }
                            break;
                        default:
                            value.Dispose();
                            throw new KilnException($"input '{name}' is missing");
                    }
                }
            }
            else
            {
                value = feed.Type switch
                {
                    TensorElementType.Float => Fill<float>(feed, inputs, input, start, n, static v => (float)v),
                    TensorElementType.Double => Fill<double>(feed, inputs, input, start, n, static v => v),
                    TensorElementType.Int64 => Fill<long>(feed, inputs, input, start, n, static v => (long)v),
                    TensorElementType.Int32 => Fill<int>(feed, inputs, input, start, n, static v => (int)v),
                    TensorElementType.Bool => Fill<bool>(feed, inputs, input, start, n, static v => v != 0),
                    _ => throw new KilnException($"graph input '{feed.Name}': Kiln feeds {OnnxTensorTypes.Supported}"),
                };
            }
            names.Add(feed.Name);
            values.Add(value);
        }
    }

    private static OrtValue Fill<T>(OnnxFeed feed, IReadOnlyList<InputField> inputs, DataTable input, int start, int n, Func<double, T> convert)
        where T : unmanaged
    {
        var k = feed.Columns.Length;
        var data = new T[n * k];
        var exact = typeof(T) == typeof(float) || typeof(T) == typeof(double);
        for (var j = 0; j < k; j++)
        {
            var name = inputs[feed.Columns[j]].Name;
            var column = input.Find(name) switch
            {
                NumericColumn c => c.Values,
                null => throw new KilnException($"input '{name}' is missing"),
                _ => throw new KilnException($"input '{name}' must be numeric (graph input '{feed.Name}' takes {OnnxTensorTypes.NameOf(feed.Type)})"),
            };
            for (var i = 0; i < n; i++)
            {
                var v = column[start + i];
                // Validation refuses these before scoring; a table handed straight to the scorer gets one clear line.
                if (!exact && (double.IsNaN(v) || v != Math.Floor(v)))
                    throw new KilnException($"row {start + i}: input '{name}' is {(double.IsNaN(v) ? "missing" : v.ToString("R", CultureInfo.InvariantCulture))}; graph input '{feed.Name}' takes {OnnxTensorTypes.NameOf(feed.Type)}");
                data[i * k + j] = convert(v);
            }
        }
        long[] shape = feed.Rank1 ? [n] : [n, k];
        return OrtValue.CreateTensorValueFromMemory(data, shape);
    }

    /// <summary>The class labels of a ZipMap output, in the order ONNX Runtime returns its keys (read from its first map).</summary>
    public static string[] ZipMapKeys(OrtValue sequence)
    {
        using var map = sequence.GetValue(0, OrtAllocator.DefaultInstance);
        using var keys = map.GetValue(0, OrtAllocator.DefaultInstance);
        if (keys.GetTensorTypeAndShape().ElementDataType == TensorElementType.String) return keys.GetStringTensorAsArray();
        var ints = keys.GetTensorDataAsSpan<long>();
        var labels = new string[ints.Length];
        for (var i = 0; i < labels.Length; i++) labels[i] = ints[i].ToString(CultureInfo.InvariantCulture);
        return labels;
    }

    /// <summary>Copies a ZipMap's probabilities into rows of one column per class, key i going to column <paramref name="order"/>[i].</summary>
    public static void ReadZipMap(OrtValue sequence, int[] order, float[] probabilities)
    {
        var n = sequence.GetValueCount();
        var classes = order.Length;
        for (var i = 0; i < n; i++)
        {
            using var map = sequence.GetValue(i, OrtAllocator.DefaultInstance);
            using var values = map.GetValue(1, OrtAllocator.DefaultInstance);
            var span = values.GetTensorDataAsSpan<float>();
            if (span.Length != classes) throw new KilnException($"row {i}: the ZipMap output has {span.Length} classes, expected {classes}");
            for (var c = 0; c < classes; c++) probabilities[i * classes + order[c]] = span[c];
        }
    }
}
