using Kiln.Core.Packaging;
using Kiln.Core.Profiling;

namespace Kiln.Monitoring.Drift;

/// <summary>The kind of a column the model writes (a prediction log's probability, prediction or score).</summary>
public static class OutputColumns
{
    /// <summary>
    /// The output column's kind from the package's output profile, else its signature; null when the name is no
    /// output. Needed because such a column is absent from the input reference, and guessing "categorical" for it
    /// mislabels a probability.
    /// </summary>
    public static ColumnKind? KindOf(ModelPackage package, string name) => KindOf(package.Profile, package.Signature, name);

    /// <inheritdoc cref="KindOf(ModelPackage, string)"/>
    public static ColumnKind? KindOf(PackageProfile? profile, ModelSignature? signature, string name)
    {
        if (profile?.Outputs.Find(name) is { } column) return column.Kind;
        if (signature?.Outputs.Find(o => o.Name == name) is { } field)
        {
            // ONNX outputs carry a tensor element type (float, int64, ...); only a label or string is categorical.
            return field.Type is "categorical" or "string" ? ColumnKind.Categorical : ColumnKind.Numeric;
        }
        return null;
    }
}
