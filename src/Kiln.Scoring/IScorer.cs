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

/// <summary>Opens the right scorer for a package's runtime.</summary>
public static class Scorers
{
    /// <summary>Loads (and verifies) a package and returns its scorer.</summary>
    public static IScorer Open(string packageDirectory) => Open(ModelPackage.Load(packageDirectory));

    public static IScorer Open(ModelPackage package) => package.Manifest.Runtime switch
    {
        ModelRuntime.Mlnet => new MlNet.MlnetScorer(package),
        ModelRuntime.Onnx => new Onnx.OnnxScorer(package),
        _ => throw new Kiln.Core.KilnException($"{package.Directory}: unknown runtime {package.Manifest.Runtime}"),
    };

    /// <summary>Scores a whole table, in parallel over chunks.</summary>
    public static Prediction[] ScoreAll(this IScorer scorer, DataTable input, int? degreeOfParallelism = null)
    {
        var results = new Prediction[input.RowCount];
        const int Chunk = 4096;
        var chunks = (input.RowCount + Chunk - 1) / Chunk;
        Parallel.For(0, chunks, new ParallelOptions { MaxDegreeOfParallelism = degreeOfParallelism ?? Environment.ProcessorCount }, c =>
        {
            var start = c * Chunk;
            var count = Math.Min(Chunk, input.RowCount - start);
            scorer.Score(input, start, results.AsSpan(start, count));
        });
        return results;
    }
}
