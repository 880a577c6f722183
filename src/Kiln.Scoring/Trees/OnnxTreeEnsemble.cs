using System.Globalization;

namespace Kiln.Scoring.Trees;

/// <summary>The attributes of one ONNX <c>TreeEnsembleClassifier</c> or <c>TreeEnsembleRegressor</c> node (ai.onnx.ml), as read from the graph.</summary>
/// <param name="Classifier">True for TreeEnsembleClassifier (weights are class_*), false for TreeEnsembleRegressor (target_*).</param>
/// <param name="Targets">The number of classes (class labels) or n_targets.</param>
/// <param name="MissingTracksTrue">nodes_missing_value_tracks_true, or empty when the graph leaves it out.</param>
/// <param name="Aggregate">aggregate_function (SUM for a classifier).</param>
public sealed record OnnxTreeAttributes(
    bool Classifier,
    int Targets,
    long[] TreeIds,
    long[] NodeIds,
    long[] FeatureIds,
    string[] Modes,
    float[] Values,
    long[] TrueIds,
    long[] FalseIds,
    long[] MissingTracksTrue,
    long[] WeightTreeIds,
    long[] WeightNodeIds,
    long[] WeightTargets,
    float[] Weights,
    float[] BaseValues,
    string PostTransform,
    string Aggregate);

/// <summary>
/// ONNX's tree ensemble (TreeEnsembleClassifier / TreeEnsembleRegressor) evaluated with ONNX Runtime's semantics and
/// Kiln's packed layout (docs/serving.md#tree-ensembles). <see cref="Raw"/> walks one row exactly as ONNX Runtime's
/// TreeEnsembleCommon does (the six branch modes, a NaN going to the true branch where
/// nodes_missing_value_tracks_true says so, float sums in tree order); <see cref="RawBlock"/> gets the same sums from a
/// <see cref="PackedForest"/>, where every mode becomes one or two <c>x &lt;= t</c> nodes; <see cref="Finish"/> applies
/// base values, the average and the post transform the way ONNX Runtime's aggregators do.
/// </summary>
public sealed class OnnxTreeEnsemble
{
    private enum Mode { Leq, Lt, Gte, Gt, Eq, Neq, Leaf }

    private enum Post { None, Logistic, Softmax, SoftmaxZero }

    private sealed class Tree(int count)
    {
        public readonly Mode[] Modes = new Mode[count];
        public readonly int[] Features = new int[count];
        public readonly float[] Values = new float[count];
        public readonly int[] True = new int[count];
        public readonly int[] False = new int[count];
        public readonly bool[] MissingTrue = new bool[count];
        public readonly int[] LeafIds = new int[count];
        public int Root;
    }

    private readonly Tree[] _trees;
    private readonly int[] _weightStart; // per leaf id: its weights are [start, start + count)
    private readonly int[] _weightCount;
    private readonly int[] _weightTarget;
    private readonly float[] _weightValue;
    private readonly float[]? _uniqueWeight; // per leaf id, when every leaf has exactly one weight for target 0
    private readonly bool _classifier;
    private readonly bool _average;
    private readonly Post _post;
    private readonly float[] _base;
    private readonly bool[] _scored; // per target: every row gets a weight for it (else no row does)
    private readonly bool _binaryCase;
    private readonly bool _allPositive;

    private OnnxTreeEnsemble(Tree[] trees, int features, int targets, List<(int Target, float Value)>[] leafWeights, bool classifier,
        bool average, Post post, float[] baseValues, bool[] scored, bool binaryCase, bool allPositive)
    {
        _trees = trees;
        FeatureCount = features;
        Targets = targets;
        _classifier = classifier;
        _average = average;
        _post = post;
        _base = baseValues;
        _scored = scored;
        _binaryCase = binaryCase;
        _allPositive = allPositive;
        _weightStart = new int[leafWeights.Length];
        _weightCount = new int[leafWeights.Length];
        var all = leafWeights.SelectMany(w => w).ToArray();
        _weightTarget = [.. all.Select(w => w.Target)];
        _weightValue = [.. all.Select(w => w.Value)];
        for (int l = 0, at = 0; l < leafWeights.Length; l++)
        {
            _weightStart[l] = at;
            _weightCount[l] = leafWeights[l].Count;
            at += leafWeights[l].Count;
        }
        if (targets == 1 && leafWeights.All(w => w.Count == 1)) _uniqueWeight = [.. leafWeights.Select(w => w[0].Value)];
        Forest = Pack(out var exact);
        ExactForNaN = exact;
    }

    /// <summary>The width of the rows the trees read (the features; feature ids are below it).</summary>
    public int FeatureCount { get; }

    /// <summary>Classes or regression targets: the width of the raw sums.</summary>
    public int Targets { get; }

    /// <summary>The width of the node's score output (probabilities or Y): 2 for a binary classifier, else <see cref="Targets"/>.</summary>
    public int Width => Targets;

    public int TreeCount => _trees.Length;

    /// <summary>The packed nodes <see cref="RawBlock"/> walks.</summary>
    public PackedForest Forest { get; }

    /// <summary>False when some node would send a NaN elsewhere than ONNX Runtime does in the packed layout; then <see cref="RawBlock"/> sums rows holding a NaN with <see cref="Raw"/>.</summary>
    public bool ExactForNaN { get; }

    /// <summary>A short description for logs: trees, leaves, targets.</summary>
    public string Describe() => string.Create(CultureInfo.InvariantCulture,
        $"{(_classifier ? "TreeEnsembleClassifier" : "TreeEnsembleRegressor")}: {TreeCount} trees, {_weightStart.Length} leaves, {FeatureCount} features, {Targets} {(_classifier ? "classes" : "target")}, post_transform {_post.ToString().ToUpperInvariant()}");

    /// <summary>Per feature, the distinct values its splits compare against (for rows that take every branch).</summary>
    public float[][] SplitValues()
    {
        var sets = new HashSet<float>[FeatureCount];
        for (var f = 0; f < FeatureCount; f++) sets[f] = [];
        foreach (var tree in _trees)
        {
            for (var j = 0; j < tree.Modes.Length; j++)
            {
                if (tree.Modes[j] != Mode.Leaf) sets[tree.Features[j]].Add(tree.Values[j]);
            }
        }
        return [.. sets.Select(s => s.ToArray())];
    }

    /// <summary>Reads a node's attributes; null (and why) when they hold something Kiln does not evaluate exactly as ONNX Runtime does.</summary>
    public static OnnxTreeEnsemble? TryCreate(OnnxTreeAttributes a, int featureCount, out string reason)
    {
        var n = a.NodeIds.Length;
        if (a.TreeIds.Length != n || a.FeatureIds.Length != n || a.Modes.Length != n || a.Values.Length != n || a.TrueIds.Length != n || a.FalseIds.Length != n
            || (a.MissingTracksTrue.Length != 0 && a.MissingTracksTrue.Length != n))
            return Refuse("the nodes_* attributes differ in length", out reason);
        var w = a.Weights.Length;
        if (a.WeightTreeIds.Length != w || a.WeightNodeIds.Length != w || a.WeightTargets.Length != w)
            return Refuse("the weight attributes differ in length", out reason);
        if (n == 0 || w == 0) return Refuse("the ensemble has no nodes or no weights", out reason);
        if (a.Targets < 1 || (a.Classifier && a.Targets < 2)) return Refuse($"{a.Targets} targets or classes", out reason);
        if (!a.Classifier && a.Targets != 1) return Refuse($"a regressor with {a.Targets} targets (Kiln's regression models have one)", out reason);

        Post post;
        switch (a.PostTransform)
        {
            case "" or "NONE": post = Post.None; break;
            case "LOGISTIC" when a.Classifier: post = Post.Logistic; break;
            case "SOFTMAX" when a.Classifier: post = Post.Softmax; break;
            case "SOFTMAX_ZERO" when a.Classifier: post = Post.SoftmaxZero; break;
            default: return Refuse($"post_transform {a.PostTransform}{(a.Classifier ? "" : " on a regressor")}", out reason);
        }
        var average = a.Aggregate switch
        {
            "" or "SUM" => false,
            "AVERAGE" when !a.Classifier => true,
            _ => (bool?)null,
        };
        if (average is null) return Refuse($"aggregate_function {a.Aggregate}", out reason);

        // Trees in the order they appear, each one's nodes listed together (ONNX Runtime's order of the sums).
        var trees = new List<Tree>();
        var treeOf = new Dictionary<long, int>();
        var local = new Dictionary<(long Tree, long Node), (int Tree, int Index)>();
        var starts = new List<int>();
        for (var i = 0; i < n; i++)
        {
            if (i == 0 || a.TreeIds[i] != a.TreeIds[i - 1])
            {
                if (treeOf.ContainsKey(a.TreeIds[i])) return Refuse($"tree {a.TreeIds[i]}'s nodes are not listed together", out reason);
                treeOf[a.TreeIds[i]] = trees.Count;
                starts.Add(i);
                trees.Add(null!);
            }
        }
        starts.Add(n);
        var leafCount = 0;
        var leafKeys = new List<(long Tree, long Node)>();
        for (var t = 0; t < trees.Count; t++)
        {
            var tree = trees[t] = new Tree(starts[t + 1] - starts[t]);
            for (var i = starts[t]; i < starts[t + 1]; i++)
            {
                if (!local.TryAdd((a.TreeIds[i], a.NodeIds[i]), (t, i - starts[t])))
                    return Refuse($"tree {a.TreeIds[i]} lists node {a.NodeIds[i]} twice", out reason);
            }
            for (var i = starts[t]; i < starts[t + 1]; i++)
            {
                var j = i - starts[t];
                tree.Modes[j] = a.Modes[i] switch
                {
                    "BRANCH_LEQ" => Mode.Leq,
                    "BRANCH_LT" => Mode.Lt,
                    "BRANCH_GTE" => Mode.Gte,
                    "BRANCH_GT" => Mode.Gt,
                    "BRANCH_EQ" => Mode.Eq,
                    "BRANCH_NEQ" => Mode.Neq,
                    "LEAF" => Mode.Leaf,
                    _ => (Mode)(-1),
                };
                if ((int)tree.Modes[j] < 0) return Refuse($"node mode {a.Modes[i]}", out reason);
                tree.LeafIds[j] = -1;
                if (tree.Modes[j] == Mode.Leaf)
                {
                    tree.LeafIds[j] = leafCount++;
                    leafKeys.Add((a.TreeIds[i], a.NodeIds[i]));
                    continue;
                }
                if (a.FeatureIds[i] < 0 || a.FeatureIds[i] >= featureCount)
                    return Refuse($"tree {a.TreeIds[i]} node {a.NodeIds[i]} reads feature {a.FeatureIds[i]} of {featureCount}", out reason);
                tree.Features[j] = (int)a.FeatureIds[i];
                tree.Values[j] = a.Values[i];
                tree.MissingTrue[j] = a.MissingTracksTrue.Length > 0 && a.MissingTracksTrue[i] != 0;
                if (!local.TryGetValue((a.TreeIds[i], a.TrueIds[i]), out var tn) || !local.TryGetValue((a.TreeIds[i], a.FalseIds[i]), out var fn))
                    return Refuse($"tree {a.TreeIds[i]} node {a.NodeIds[i]} points at a node the tree lacks", out reason);
                tree.True[j] = tn.Index;
                tree.False[j] = fn.Index;
            }
            // The root is the tree's first node (ONNX Runtime's choice); nothing may point back at it, and no path may loop.
            tree.Root = 0;
            if (!IsAcyclicFromRoot(tree)) return Refuse($"tree {a.TreeIds[starts[t]]} has a cycle or a node pointing at its first node", out reason);
        }

        var leafWeights = new List<(int Target, float Value)>[leafCount];
        for (var l = 0; l < leafCount; l++) leafWeights[l] = [];
        var leafIndex = new Dictionary<(long, long), int>();
        for (var l = 0; l < leafCount; l++) leafIndex[leafKeys[l]] = l;
        var allPositive = true;
        var classes = new HashSet<long>();
        for (var i = 0; i < w; i++)
        {
            if (!leafIndex.TryGetValue((a.WeightTreeIds[i], a.WeightNodeIds[i]), out var leaf))
                return Refuse($"a weight names tree {a.WeightTreeIds[i]} node {a.WeightNodeIds[i]}, which is not a leaf", out reason);
            if (a.WeightTargets[i] < 0 || a.WeightTargets[i] >= a.Targets)
                return Refuse($"a weight names target {a.WeightTargets[i]} of {a.Targets}", out reason);
            leafWeights[leaf].Add(((int)a.WeightTargets[i], a.Weights[i]));
            allPositive &= a.Weights[i] >= 0;
            classes.Add(a.WeightTargets[i]);
        }
        if (!a.Classifier && leafWeights.Any(lw => lw.Count != 1))
            return Refuse("a regressor leaf without exactly one weight", out reason);

        // Whether a row has a score for a target depends on the leaves it reaches unless some tree gives it on every leaf
        // (or no leaf does): only then is ONNX Runtime's has_score the same for every row.
        var scored = new bool[a.Targets];
        var reachableLeaves = trees.Select(tree => ReachableLeaves(tree).Select(j => tree.LeafIds[j]).ToArray()).ToArray();
        for (var k = 0; k < a.Targets; k++)
        {
            var always = reachableLeaves.Any(ls => ls.All(l => leafWeights[l].Any(x => x.Target == k)));
            var never = leafWeights.All(lw => lw.All(x => x.Target != k));
            if (!always && !never) return Refuse($"target {k} is scored by some leaves and not others", out reason);
            scored[k] = always;
        }

        var baseValues = a.BaseValues;
        var binaryCase = a.Classifier && a.Targets == 2 && classes.Count == 1;
        var baseFits = !a.Classifier ? baseValues.Length <= 1 : a.Targets > 2 ? baseValues.Length == 0 || baseValues.Length == a.Targets : baseValues.Length <= 2;
        if (!baseFits)
            return Refuse($"{baseValues.Length} base_values for {a.Targets} targets", out reason);
        if (a.Classifier && a.Targets == 2 && baseValues.Length == 1 && !scored[1] && !binaryCase)
            return Refuse("a binary classifier whose second class has no score and no rule for it", out reason);

        reason = "";
        return new OnnxTreeEnsemble([.. trees], featureCount, a.Targets, leafWeights, a.Classifier, average.Value, post, baseValues, scored, binaryCase, allPositive);
    }

    private static OnnxTreeEnsemble? Refuse(string why, out string reason)
    {
        reason = why;
        return null;
    }

    private static bool IsAcyclicFromRoot(Tree tree)
    {
        // 0 unseen, 1 on the path, 2 done.
        var state = new byte[tree.Modes.Length];
        var stack = new Stack<(int Node, bool Exit)>();
        stack.Push((tree.Root, false));
        while (stack.TryPop(out var item))
        {
            var (node, exit) = item;
            if (exit)
            {
                state[node] = 2;
                continue;
            }
            if (state[node] == 1) return false;
            if (state[node] == 2) continue;
            state[node] = 1;
            stack.Push((node, true));
            if (tree.Modes[node] == Mode.Leaf) continue;
            foreach (var child in new[] { tree.True[node], tree.False[node] })
            {
                if (child == tree.Root || state[child] == 1) return false;
                if (state[child] == 0) stack.Push((child, false));
            }
        }
        return true;
    }

    private static List<int> ReachableLeaves(Tree tree)
    {
        var seen = new bool[tree.Modes.Length];
        var leaves = new List<int>();
        var stack = new Stack<int>([tree.Root]);
        while (stack.TryPop(out var n))
        {
            if (seen[n]) continue;
            seen[n] = true;
            if (tree.Modes[n] == Mode.Leaf) leaves.Add(n);
            else
            {
                stack.Push(tree.True[n]);
                stack.Push(tree.False[n]);
            }
        }
        return leaves;
    }

    /// <summary>
    /// The raw sums for one row as ONNX Runtime computes them: per tree from the first to the last, the leaf the row
    /// reaches (<c>x CMP value</c>, or the true branch for a NaN where the node tracks missing values as true), its
    /// weights added in float to their targets' sums, starting from 0.
    /// </summary>
    public void Raw(ReadOnlySpan<float> x, Span<float> raw)
    {
        raw[..Targets].Clear();
        foreach (var tree in _trees)
        {
            var leaf = tree.LeafIds[Walk(tree, x)];
            for (int i = _weightStart[leaf], end = i + _weightCount[leaf]; i < end; i++) raw[_weightTarget[i]] += _weightValue[i];
        }
    }

    private static int Walk(Tree tree, ReadOnlySpan<float> x)
    {
        var node = tree.Root;
        while (tree.Modes[node] != Mode.Leaf)
        {
            var v = x[tree.Features[node]];
            var t = tree.Values[node];
            var go = tree.Modes[node] switch
            {
                Mode.Leq => v <= t,
                Mode.Lt => v < t,
                Mode.Gte => v >= t,
                Mode.Gt => v > t,
                Mode.Eq => v == t,
                _ => v != t,
            };
            if (!go && tree.MissingTrue[node] && float.IsNaN(v)) go = true;
            node = go ? tree.True[node] : tree.False[node];
        }
        return node;
    }

    /// <summary>
    /// The raw sums of <paramref name="count"/> rows laid out as a <see cref="RowBlock"/> (<see cref="PackedForest.Stride"/>
    /// floats a row) into <paramref name="raw"/> (<see cref="Targets"/> a row), equal to <see cref="Raw"/> bit for bit.
    /// </summary>
    public void RawBlock(ReadOnlySpan<float> rows, int count, Span<float> raw, Span<int> leaves)
    {
        var targets = Targets;
        raw[..(count * targets)].Clear();
        for (var t = 0; t < _trees.Length; t++)
        {
            Forest.Leaves(rows, count, t, leaves);
            if (_uniqueWeight is { } unique)
            {
                for (var r = 0; r < count; r++) raw[r] += unique[leaves[r]];
            }
            else
            {
                for (var r = 0; r < count; r++)
                {
                    var leaf = leaves[r];
                    var sums = raw.Slice(r * targets, targets);
                    for (int i = _weightStart[leaf], end = i + _weightCount[leaf]; i < end; i++) sums[_weightTarget[i]] += _weightValue[i];
                }
            }
        }
        if (!ExactForNaN)
        {
            var stride = Forest.Stride;
            for (var r = 0; r < count; r++)
            {
                var row = rows.Slice(r * stride, FeatureCount);
                if (HasNaN(row)) Raw(row, raw.Slice(r * targets, targets));
            }
        }
    }

    private static bool HasNaN(ReadOnlySpan<float> row)
    {
        foreach (var v in row)
        {
            if (float.IsNaN(v)) return true;
        }
        return false;
    }

    /// <summary>
    /// The node's score output for one row's raw sums (<see cref="Width"/> floats): ONNX Runtime's aggregator finish
    /// (base values, the average over trees, the binary classifier's second column) and its post transform, in float.
    /// </summary>
    public void Finish(ReadOnlySpan<float> raw, Span<float> z)
    {
        if (!_classifier)
        {
            var s = raw[0];
            if (_average) s /= _trees.Length;
            s += _base.Length == 1 ? _base[0] : 0f;
            z[0] = s;
            return;
        }
        var k = Targets;
        if (k > 2)
        {
            for (var c = 0; c < k; c++) z[c] = c < _base.Length ? (_scored[c] ? raw[c] + _base[c] : _base[c]) : raw[c];
            Transform(z[..k]);
            return;
        }
        // Two classes: TreeAggregatorClassifier.FinalizeScores' binary branch, then write_scores.
        float p0 = raw[0], p1 = raw[1];
        var size = 2;
        var add = -1;
        var has1 = _scored[1];
        if (_base.Length == 2)
        {
            if (has1)
            {
                p1 = _base[1] + p0;
                p0 = -p1;
            }
            else
            {
                p1 += _base[1];
                p0 += _base[0];
            }
        }
        else if (_base.Length == 1)
        {
            p0 += _base[0];
            if (!has1) size = 1;
        }
        else
        {
            add = 3;
            if (!has1) size = 1;
        }
        if (_binaryCase)
        {
            var positive = size == 2 && has1 ? p1 : _scored[0] ? p0 : 0f;
            add = _allPositive ? (positive > 0.5f ? 0 : 1) : (positive > 0f ? 2 : 3);
        }
        if (size == 2)
        {
            // write_scores reads a class without a score as 0 (ScoreValue's float conversion), base value or not.
            z[0] = _scored[0] ? p0 : 0f;
            z[1] = has1 ? p1 : 0f;
            Transform(z[..2]);
        }
        else if (add is 0 or 1)
        {
            z[0] = 1f - p0;
            z[1] = p0;
        }
        else if (_post == Post.Logistic)
        {
            z[0] = Logistic(-p0);
            z[1] = Logistic(p0);
        }
        else
        {
            z[0] = -p0;
            z[1] = p0;
        }
    }

    private void Transform(Span<float> v)
    {
        switch (_post)
        {
            case Post.Logistic:
                for (var i = 0; i < v.Length; i++) v[i] = Logistic(v[i]);
                break;
            case Post.Softmax:
            {
                var max = -float.MaxValue;
                foreach (var x in v) if (x > max) max = x;
                var sum = 0f;
                for (var i = 0; i < v.Length; i++)
                {
                    v[i] = MathF.Exp(v[i] - max);
                    sum += v[i];
                }
                for (var i = 0; i < v.Length; i++) v[i] /= sum;
                break;
            }
            case Post.SoftmaxZero:
            {
                var max = -float.MaxValue;
                foreach (var x in v) if (x > max) max = x;
                var expNegMax = MathF.Exp(-max);
                var sum = 0f;
                for (var i = 0; i < v.Length; i++)
                {
                    if (v[i] > 0.0000001f || v[i] < -0.0000001f)
                    {
                        v[i] = MathF.Exp(v[i] - max);
                        sum += v[i];
                    }
                    else v[i] *= expNegMax;
                }
                for (var i = 0; i < v.Length; i++) v[i] /= sum;
                break;
            }
            default:
                break;
        }
    }

    /// <summary>ONNX Runtime's ComputeLogistic: 1 / (1 + e^-|x|) in float, mirrored for negative x.</summary>
    private static float Logistic(float x)
    {
        var v = 1f / (1f + MathF.Exp(-MathF.Abs(x)));
        return x < 0 ? 1f - v : v;
    }

    private PackedForest Pack(out bool exactForNaN)
    {
        var nodes = new List<PackedForest.Node>();
        var leafIds = new List<int>();
        var zero = FeatureCount;
        var roots = new int[_trees.Length];
        var exact = true;
        int Alloc(int count)
        {
            var start = nodes.Count;
            for (var i = 0; i < count; i++)
            {
                nodes.Add(default);
                leafIds.Add(-1);
            }
            return start;
        }
        PackedForest.Node Jump(int target) => new(float.PositiveInfinity, zero, target);

        for (var t = 0; t < _trees.Length; t++)
        {
            var tree = _trees[t];
            var placed = new int[tree.Modes.Length];
            Array.Fill(placed, -1);
            var queue = new Queue<int>();
            // Puts original node `node` at `slot` (a fresh slot), or a jump to where it already is.
            void Place(int node, int slot)
            {
                if (placed[node] >= 0) nodes[slot] = Jump(placed[node]);
                else
                {
                    placed[node] = slot;
                    queue.Enqueue(node);
                }
            }
            Place(tree.Root, roots[t] = Alloc(1));
            while (queue.TryDequeue(out var node))
            {
                var slot = placed[node];
                if (tree.Modes[node] == Mode.Leaf)
                {
                    nodes[slot] = Jump(slot);
                    leafIds[slot] = tree.LeafIds[node];
                    continue;
                }
                int yes = tree.True[node], no = tree.False[node], f = tree.Features[node];
                var v = tree.Values[node];
                var mode = tree.Modes[node];
                // For rows without NaN, every mode is one or two "x <= t" tests; nanTrue is where a NaN ends up here.
                bool nanTrue;
                if (float.IsNaN(v))
                {
                    // Every comparison with a NaN threshold is false, except "!=".
                    var always = mode == Mode.Neq ? yes : no;
                    nanTrue = mode == Mode.Neq;
                    var s = Alloc(1);
                    nodes[slot] = Jump(s);
                    Place(always, s);
                }
                else if (mode is Mode.Leq or Mode.Gt || (mode is Mode.Lt or Mode.Gte && float.IsNegativeInfinity(v)))
                {
                    // x <= v (LEQ true, GT false); x < -inf is never true and x >= -inf always is (for a number).
                    var (left, right) = mode switch
                    {
                        Mode.Leq => (yes, no),
                        Mode.Gt => (no, yes),
                        Mode.Lt => (no, no),
                        _ => (yes, yes),
                    };
                    nanTrue = right == yes;
                    if (left == right)
                    {
                        var s = Alloc(1);
                        nodes[slot] = Jump(s);
                        Place(left, s);
                        nanTrue = left == yes;
                    }
                    else
                    {
                        var pair = Alloc(2);
                        nodes[slot] = new PackedForest.Node(v, f, pair);
                        Place(left, pair);
                        Place(right, pair + 1);
                    }
                }
                else if (mode is Mode.Lt or Mode.Gte)
                {
                    // x < v is x <= the float just below v.
                    var pair = Alloc(2);
                    nodes[slot] = new PackedForest.Node(MathF.BitDecrement(v), f, pair);
                    Place(mode == Mode.Lt ? yes : no, pair);
                    Place(mode == Mode.Lt ? no : yes, pair + 1);
                    nanTrue = mode == Mode.Gte;
                }
                else
                {
                    // x == v is "x <= v and not x <= the float below v" (-0 and +0 both equal 0); != the other way round.
                    var (equal, unequal) = mode == Mode.Eq ? (yes, no) : (no, yes);
                    var first = Alloc(2);
                    if (float.IsNegativeInfinity(v))
                    {
                        nodes[slot] = new PackedForest.Node(v, f, first);
                        Place(equal, first);
                        Place(unequal, first + 1);
                    }
                    else
                    {
                        nodes[slot] = new PackedForest.Node(v, f, first);
                        var second = Alloc(2);
                        nodes[first] = new PackedForest.Node(MathF.BitDecrement(v), f, second);
                        Place(unequal, first + 1);
                        Place(unequal, second);
                        Place(equal, second + 1);
                    }
                    nanTrue = unequal == yes;
                }
                var ortNanTrue = mode == Mode.Neq || tree.MissingTrue[node];
                exact &= nanTrue == ortNanTrue || yes == no;
            }
        }
        exactForNaN = exact;
        return new PackedForest([.. nodes], [.. leafIds], roots, FeatureCount);
    }
}
