namespace Kiln.Scoring.Trees;

/// <summary>
/// The trees of one ensemble over a dense feature vector of <see cref="FeatureCount"/> floats, in ML.NET's order.
/// <see cref="ReferenceSum"/> is ML.NET's InternalTreeEnsemble.GetOutput: 0.0 plus each tree's output in turn, in double.
/// </summary>
public sealed class TreeEnsembleSpec
{
    public TreeEnsembleSpec(IReadOnlyList<RegressionTreeSpec> trees, int featureCount)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(featureCount);
        foreach (var t in trees)
        {
            if (t.MaxFeature() >= featureCount)
                throw new ArgumentException($"a tree splits on feature {t.MaxFeature()}, but the vector has {featureCount}");
        }
        Trees = trees;
        FeatureCount = featureCount;
    }

    public IReadOnlyList<RegressionTreeSpec> Trees { get; }

    public int FeatureCount { get; }

    public double ReferenceSum(ReadOnlySpan<float> x)
    {
        var output = 0.0;
        foreach (var t in Trees) output += t.Output(x);
        return output;
    }
}
