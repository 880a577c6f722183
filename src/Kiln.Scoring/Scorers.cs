using Kiln.Core.Data;
using Kiln.Core.Packaging;

namespace Kiln.Scoring;

/// <summary>Opens the right scorer for a package's runtime.</summary>
public static class Scorers
{
    /// <summary>Loads (and verifies) a package and returns its scorer.</summary>
    public static IScorer Open(string packageDirectory) => Open(ModelPackage.Load(packageDirectory));

    public static IScorer Open(ModelPackage package) => package.Manifest.Runtime switch
    {
        ModelRuntime.Mlnet => new MlNet.MlnetScorer(package),
        ModelRuntime.Onnx => new Onnx.OnnxTreeScorer(package),
        _ => throw new Kiln.Core.KilnException($"{package.Directory}: unknown runtime {package.Manifest.Runtime}"),
    };

    /// <summary>Which evaluator scores a package's model, and why: "kiln (…)", "mlnet (…)" or "onnxruntime (…)".</summary>
    public static string DescribeEvaluator(IScorer scorer) => scorer switch
    {
        MlNet.MlnetScorer m => $"{(m.TreeEvaluator == "kiln" ? "Kiln's tree evaluator" : "ML.NET")} ({m.TreeEvaluatorReason})",
        Onnx.OnnxTreeScorer o => $"{(o.TreeEvaluator == "kiln" ? "Kiln's tree evaluator" : "ONNX Runtime")} ({o.TreeEvaluatorReason})",
        _ => scorer.GetType().Name,
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
