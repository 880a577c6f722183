namespace Kiln.Scoring.Trees;

/// <summary>
/// One regression tree as ML.NET stores it: internal nodes 0..N-1 with a split feature, a raw threshold and two
/// children (a child &lt; 0 is the leaf ~child), leaf values, and optionally categorical splits and a per-node value
/// that replaces a missing (NaN) feature. <see cref="Output"/> follows ML.NET's own traversal step for step and is
/// the reference every faster evaluator is checked against.
/// </summary>
public sealed class RegressionTreeSpec
{
    public RegressionTreeSpec(int[] splitFeatures, float[] thresholds, int[] lteChild, int[] gtChild, double[] leafValues,
        int[]?[]? categoricalFeatures = null, float[]? defaultForMissing = null)
    {
        var nodes = splitFeatures.Length;
        if (thresholds.Length != nodes || lteChild.Length != nodes || gtChild.Length != nodes)
            throw new ArgumentException("split features, thresholds and children must have one entry per internal node");
        if (leafValues.Length != nodes + 1 && !(nodes == 0 && leafValues.Length <= 1))
            throw new ArgumentException($"a tree with {nodes} internal nodes has {nodes + 1} leaves, not {leafValues.Length}");
        if (categoricalFeatures is not null && categoricalFeatures.Length != nodes)
            throw new ArgumentException("categorical features must have one entry per internal node");
        if (defaultForMissing is not null && defaultForMissing.Length != nodes)
            throw new ArgumentException("missing-value defaults must have one entry per internal node");
        foreach (var child in lteChild.Concat(gtChild))
        {
            if (child >= nodes || ~child >= leafValues.Length)
                throw new ArgumentException($"child {child} is outside the tree");
        }
        for (var n = 0; n < nodes; n++)
        {
            if (categoricalFeatures?[n] is { } slots ? slots.Any(f => f < 0) : splitFeatures[n] < 0)
                throw new ArgumentException($"node {n} splits on a negative feature index");
        }
        if (nodes > 0 && lteChild[0] != 0)
        {
            // Every internal node reached once from the root: no cycles, nothing shared (the evaluators rely on it).
            var seen = new bool[nodes];
            var stack = new Stack<int>([0]);
            while (stack.TryPop(out var n))
            {
                if (seen[n]) throw new ArgumentException($"node {n} is reached twice: not a tree");
                seen[n] = true;
                if (lteChild[n] >= 0) stack.Push(lteChild[n]);
                if (gtChild[n] >= 0) stack.Push(gtChild[n]);
            }
        }
        SplitFeatures = splitFeatures;
        Thresholds = thresholds;
        LteChild = lteChild;
        GtChild = gtChild;
        LeafValues = leafValues;
        CategoricalFeatures = categoricalFeatures is not null && categoricalFeatures.Any(c => c is not null) ? categoricalFeatures : null;
        // ML.NET drops an all-zero default array at load (it would change nothing but NaN's direction).
        DefaultForMissing = defaultForMissing is not null && defaultForMissing.Any(d => d != 0f) ? defaultForMissing : null;
    }

    public int[] SplitFeatures { get; }

    public float[] Thresholds { get; }

    public int[] LteChild { get; }

    public int[] GtChild { get; }

    public double[] LeafValues { get; }

    /// <summary>Per internal node, the one-hot slots of a categorical split (go right when any is &gt; 0), or null for a numeric split.</summary>
    public int[]?[]? CategoricalFeatures { get; }

    /// <summary>Per internal node, the value a NaN feature is read as (LightGBM's missing handling); null when NaN is read as NaN.</summary>
    public float[]? DefaultForMissing { get; }

    public int NodeCount => SplitFeatures.Length;

    /// <summary>A tree without splits, or whose root's left child is node 0: ML.NET outputs 0 for it.</summary>
    public bool IsEmpty => NodeCount == 0 || LteChild[0] == 0;

    public bool HasCategoricalSplits => CategoricalFeatures is not null;

    /// <summary>The largest feature index any split reads, or -1.</summary>
    public int MaxFeature()
    {
        var max = -1;
        for (var n = 0; n < NodeCount; n++)
        {
            if (CategoricalFeatures?[n] is { } slots)
            {
                foreach (var s in slots) max = Math.Max(max, s);
            }
            else max = Math.Max(max, SplitFeatures[n]);
        }
        return max;
    }

    /// <summary>
    /// The tree's output for one dense feature vector, as ML.NET's InternalRegressionTree.GetOutput computes it:
    /// a tree without internal nodes (or whose root's left child is 0) outputs 0; a numeric node goes left when x &lt;= threshold (so NaN goes right);
    /// a categorical node goes right when any of its slots is &gt; 0 (so NaN does not count); a NaN is first replaced
    /// by the node's missing-value default when the tree has them.
    /// </summary>
    public double Output(ReadOnlySpan<float> x)
    {
        if (IsEmpty) return 0;
        var node = 0;
        while (node >= 0)
        {
            if (CategoricalFeatures?[node] is { } slots)
            {
                var next = LteChild[node];
                foreach (var s in slots)
                {
                    if (Read(x, s, node) > 0f)
                    {
                        next = GtChild[node];
                        break;
                    }
                }
                node = next;
            }
            else node = Read(x, SplitFeatures[node], node) <= Thresholds[node] ? LteChild[node] : GtChild[node];
        }
        return LeafValues[~node];
    }

    private float Read(ReadOnlySpan<float> x, int feature, int node)
    {
        var v = x[feature];
        return DefaultForMissing is not null && float.IsNaN(v) ? DefaultForMissing[node] : v;
    }
}
