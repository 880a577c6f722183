using Kiln.Core.Profiling;

namespace Kiln.Core.Packaging;

/// <summary>What a model predicts.</summary>
public enum ModelTask
{
    Binary,
    Multiclass,
    Regression,
}

/// <summary>How a package's model is executed.</summary>
public enum ModelRuntime
{
    /// <summary>An ML.NET model zip holding the whole pipeline (preprocessing and estimator).</summary>
    Mlnet,

    /// <summary>An ONNX graph run by ONNX Runtime.</summary>
    Onnx,
}

/// <summary>The contract between a model and its callers: inputs with their training domain, outputs, task.</summary>
public sealed class ModelSignature
{
    public required ModelTask Task { get; init; }

    public required List<InputField> Inputs { get; init; }

    public required List<OutputField> Outputs { get; init; }

    /// <summary>The label column in training data, when the model was trained by Kiln.</summary>
    public string? Label { get; init; }

    /// <summary>Class labels as they appear in the data: for binary, [negative, positive]; for multiclass, every class in score order.</summary>
    public List<string>? ClassLabels { get; init; }

    public InputField? FindInput(string name)
    {
        foreach (var f in Inputs) if (f.Name == name) return f;
        return null;
    }
}

/// <summary>One input column: its kind, whether it may be missing, and the domain seen in training.</summary>
public sealed class InputField
{
    public required string Name { get; init; }

    public required ColumnKind Type { get; init; }

    /// <summary>May the value be missing (null)? True when training data had missing values or the spec allows it.</summary>
    public bool Nullable { get; init; }

    /// <summary>Smallest and largest finite value seen in training (numeric inputs).</summary>
    public double? Min { get; init; }

    public double? Max { get; init; }

    /// <summary>Categories seen in training (categorical inputs), sorted.</summary>
    public List<string>? Categories { get; init; }

    /// <summary>For ONNX inputs: the tensor's element type and shape, as the graph declares them.</summary>
    public string? TensorType { get; init; }

    public List<long>? Shape { get; init; }

    /// <summary>A numeric input whose domain is the finite range of the given values; nullable when any is missing (NaN).</summary>
    public static InputField Numeric(string name, ReadOnlySpan<double> values, string? tensorType = null)
    {
        double min = double.PositiveInfinity, max = double.NegativeInfinity;
        var missing = false;
        foreach (var v in values)
        {
            if (double.IsNaN(v)) { missing = true; continue; }
            if (!double.IsFinite(v)) continue;
            if (v < min) min = v;
            if (v > max) max = v;
        }
        return new InputField
        {
            Name = name, Type = ColumnKind.Numeric, Nullable = missing, TensorType = tensorType,
            Min = double.IsFinite(min) ? min : null, Max = double.IsFinite(max) ? max : null,
        };
    }
}

/// <summary>One output of the model.</summary>
public sealed class OutputField
{
    public required string Name { get; init; }

    /// <summary>numeric, categorical (a label) or a tensor element type for ONNX outputs.</summary>
    public required string Type { get; init; }

    public string? Description { get; init; }

    public List<long>? Shape { get; init; }
}
