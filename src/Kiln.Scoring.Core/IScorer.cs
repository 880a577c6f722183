using Kiln.Core.Data;
using Kiln.Core.Packaging;

namespace Kiln.Scoring;

/// <summary>
/// One prediction: the predicted class label (classification), the value (the positive class's
/// probability for binary, the winning class's probability for multiclass, the prediction for
/// regression) and, for multiclass, every class's probability in <see cref="ModelSignature.ClassLabels"/> order.
/// </summary>
public readonly record struct Prediction(string? Label, double Value, float[]? Probabilities = null);

/// <summary>Scores rows with a loaded package. Thread-safe: any number of threads may score at once.</summary>
public interface IScorer : IDisposable
{
    ModelPackage Package { get; }

    /// <summary>
    /// Scores rows [start, start + results.Length) of a table whose columns are named as the
    /// signature's inputs (numbers as <see cref="NumericColumn"/>, NaN = missing; categories as <see cref="TextColumn"/>).
    /// </summary>
    void Score(DataTable input, int start, Span<Prediction> results);
}
