using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Kiln.Scoring.Trees;

/// <summary>
/// A tree ensemble laid out for speed and evaluated tree by tree over blocks of rows (docs/serving.md#tree-ensembles).
/// Every tree is one breadth-first run of 12-byte nodes (threshold, feature, first child) whose two children sit side
/// by side, so a step is <c>next = child + (x[feature] &lt;= threshold ? 0 : 1)</c>: no branch to mispredict. A leaf
/// points at itself and reads a slot that is always 0 against +∞, so it stays put. In a call of <see cref="FixedWalkRows"/>
/// rows or more (a batch job's blocks), sixteen rows (then eight) walk one tree in lockstep for as many steps as the
/// tree's longest path has, counted when the forest is packed: every walk then ends at its leaf, no step asks whether
/// any walk still moves, and the loop runs the same count for every block of rows in that tree, so its end is predicted
/// (docs/benchmarks.md#tree-ensemble-evaluator: 0.87x the CPU of the checked walk). In smaller calls (requests) eight
/// rows walk one tree in lockstep until none moves. A row left over (a single-object request's only row) walks eight
/// trees in lockstep until none moves instead.
/// When the rows have at most 256 floats and the forest fewer than 2^24 nodes (every forest Kiln has trained so far), the
/// walk reads 8-byte nodes instead: the threshold, and the first child and the feature packed in one int
/// (<c>child &lt;&lt; 8 | feature</c>), which saves one load of the three a step made (docs/benchmarks.md#batch).
/// A categorical split becomes a chain of "slot &lt;= 0" nodes. The per-row sums add the trees' double leaf values in the ensemble's order, which is ML.NET's, so they are equal to its bit for bit.
/// Rows are <see cref="Stride"/> floats apart: the features, then the always-0 slot (<see cref="RowBlock"/> keeps it).
/// </summary>
public sealed class PackedForest
{
    /// <summary>One packed node: go to <c>Child</c> when <c>x[Feature] &lt;= Threshold</c>, else to <c>Child + 1</c>.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal readonly struct Node(float threshold, int feature, int child)
    {
        public readonly float Threshold = threshold;
        public readonly int Feature = feature;
        public readonly int Child = child;
    }

    /// <summary>A compact node: go to <c>Link &gt;&gt; 8</c> when <c>x[Link &amp; 255] &lt;= Threshold</c>, else to the node after it.</summary>
    [StructLayout(LayoutKind.Sequential)]
    private readonly struct CompactNode(float threshold, int link)
    {
        public readonly float Threshold = threshold;
        public readonly int Link = link;
    }

    /// <summary>How a walk reads a node: one implementation per node layout, so that the JIT compiles the walk once for each.</summary>
    private interface INodes<TNode>
        where TNode : struct
    {
        static abstract int Step(ref TNode nodes, ref float row, int n);
    }

    private struct WideNodes : INodes<Node>
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static int Step(ref Node nodes, ref float row, int n)
        {
            ref var node = ref Unsafe.Add(ref nodes, n);
            return node.Child + (Unsafe.Add(ref row, node.Feature) <= node.Threshold ? 0 : 1);
        }
    }

    private struct CompactNodes : INodes<CompactNode>
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static int Step(ref CompactNode nodes, ref float row, int n)
        {
            ref var node = ref Unsafe.Add(ref nodes, n);
            var link = node.Link;
            return (link >>> 8) + (Unsafe.Add(ref row, (byte)link) <= node.Threshold ? 0 : 1);
        }
    }

    private readonly Node[] _nodes;
    private readonly CompactNode[]? _compact;
    private readonly double[] _values;
    private readonly int[] _roots;
    private readonly int[] _steps;
    private readonly TreeEnsembleSpec? _spec;
    private readonly int[]? _leafIds;

    private PackedForest(TreeEnsembleSpec spec, Node[] nodes, double[] values, int[] roots, int featureCount, bool exactForNaN)
    {
        _spec = spec;
        _nodes = nodes;
        _values = values;
        _roots = roots;
        _compact = Compact(nodes, featureCount);
        FeatureCount = featureCount;
        ExactForNaN = exactForNaN;
        _steps = Steps(nodes, roots, featureCount);
    }

    /// <summary>
    /// Nodes packed by another reader (ONNX's TreeEnsemble, <see cref="OnnxTreeEnsemble"/>): a leaf is a node that
    /// points at itself, and <paramref name="leafIds"/> holds the caller's number for each leaf slot (-1 elsewhere).
    /// Such a forest answers <see cref="Leaves"/>; its leaf values are the caller's, so it has no <see cref="Sum"/>.
    /// </summary>
    internal PackedForest(Node[] nodes, int[] leafIds, int[] roots, int featureCount)
    {
        if (leafIds.Length != nodes.Length) throw new ArgumentException("one leaf id per node", nameof(leafIds));
        _nodes = nodes;
        _values = new double[nodes.Length];
        _leafIds = leafIds;
        _roots = roots;
        _compact = Compact(nodes, featureCount);
        FeatureCount = featureCount;
        ExactForNaN = false;
        _steps = Steps(nodes, roots, featureCount);
    }

    /// <summary>The nodes as <see cref="CompactNode"/>s, when every feature index fits in a byte and every child in 24 bits; else null.</summary>
    private static CompactNode[]? Compact(Node[] nodes, int featureCount)
    {
        if (featureCount + 1 > 256 || nodes.Length >= 1 << 24) return null;
        var compact = new CompactNode[nodes.Length];
        for (var i = 0; i < nodes.Length; i++)
        {
            var n = nodes[i];
            if ((uint)n.Feature > (uint)featureCount || (uint)n.Child >= (uint)nodes.Length) return null;
            compact[i] = new CompactNode(n.Threshold, n.Child << 8 | n.Feature);
        }
        return compact;
    }

    /// <summary>
    /// Per tree, the most steps a walk from its root can take before it stays put (the longest root-to-leaf path, a jump
    /// counted as a step), or -1 when the nodes do not form a tree or DAG this can be counted on.
    /// </summary>
    private static int[] Steps(Node[] nodes, int[] roots, int featureCount)
    {
        var memo = new int[nodes.Length];
        Array.Fill(memo, -2); // -2: not counted yet; -3: being counted (a cycle if met again)
        var steps = new int[roots.Length];
        for (var t = 0; t < roots.Length; t++) steps[t] = Count(roots[t], 0);
        return steps;

        int Count(int n, int depth)
        {
            if ((uint)n >= (uint)nodes.Length || depth > 4096) return -1;
            if (memo[n] >= -1) return memo[n];
            if (memo[n] == -3) return -1;
            memo[n] = -3;
            var node = nodes[n];
            int result;
            if (node.Child == n && node.Feature == featureCount && node.Threshold == float.PositiveInfinity) result = 0;
            else if (node.Feature == featureCount && node.Threshold == float.PositiveInfinity)
            {
                var next = Count(node.Child, depth + 1);
                result = next < 0 ? -1 : next + 1;
            }
            else
            {
                var left = Count(node.Child, depth + 1);
                var right = left < 0 ? -1 : Count(node.Child + 1, depth + 1);
                result = right < 0 ? -1 : Math.Max(left, right) + 1;
            }
            return memo[n] = result;
        }
    }

    /// <summary>
    /// The fewest rows a call must have for the walk of fixed length; fewer (a request's rows) walk until none moves. The
    /// fixed count pays when a block's rows are spread over the trees (a batch job's blocks of 256 to 4,096 rows: 0.87x the CPU), and
    /// costs when they lie close together and so take paths much shorter than the longest (bench/serving's 100-row
    /// request: 1.15x); docs/benchmarks.md#tree-ensemble-evaluator.
    /// </summary>
    internal const int FixedWalkRows = 256;

    /// <summary>The steps the lockstep walk takes in tree <paramref name="tree"/> (its longest path), or -1: it walks until no row moves.</summary>
    internal int StepsOf(int tree) => _steps[tree];

    /// <summary>Whether the walk reads 8-byte nodes (see the class summary); false: the 12-byte ones.</summary>
    internal bool IsCompact => _compact is not null;

    public int FeatureCount { get; }

    /// <summary>Floats from one row to the next: the features and the always-0 slot leaves and jumps read.</summary>
    public int Stride => FeatureCount + 1;

    public int TreeCount => _roots.Length;

    /// <summary>
    /// False when a tree has categorical splits or missing-value defaults: then a NaN would not take ML.NET's path
    /// through the packed nodes, and <see cref="Sum"/> sums rows holding one with <see cref="TreeEnsembleSpec.ReferenceSum"/>.
    /// </summary>
    public bool ExactForNaN { get; }

    public static PackedForest Build(TreeEnsembleSpec ensemble)
    {
        var nodes = new List<Node>();
        var values = new List<double>();
        var roots = new int[ensemble.Trees.Count];
        var zero = ensemble.FeatureCount;
        var exactForNaN = true;
        int Alloc(int count)
        {
            var start = nodes.Count;
            for (var i = 0; i < count; i++)
            {
                nodes.Add(default);
                values.Add(0.0);
            }
            return start;
        }
        Node Jump(int target) => new(float.PositiveInfinity, zero, target);

        var queue = new Queue<(int Original, int Slot)>();
        for (var t = 0; t < roots.Length; t++)
        {
            var tree = ensemble.Trees[t];
            exactForNaN &= !tree.HasCategoricalSplits && tree.DefaultForMissing is null;
            var root = roots[t] = Alloc(1);
            if (tree.IsEmpty)
            {
                nodes[root] = Jump(root); // ML.NET: a tree without splits outputs 0
                continue;
            }
            queue.Enqueue((0, root));
            while (queue.TryDequeue(out var item))
            {
                var (original, slot) = item;
                if (original < 0)
                {
                    nodes[slot] = Jump(slot);
                    values[slot] = tree.LeafValues[~original];
                }
                else if (tree.CategoricalFeatures?[original] is { } slots)
                {
                    // Right as soon as one slot is > 0, else left: "slot <= 0" nodes in a chain, each one's right child
                    // a jump to the right subtree (placed once), the last one's left child the left subtree.
                    var right = Alloc(1);
                    queue.Enqueue((tree.GtChild[original], right));
                    var current = slot;
                    foreach (var s in slots)
                    {
                        var pair = Alloc(2);
                        nodes[current] = new Node(0f, s, pair);
                        nodes[pair + 1] = Jump(right);
                        current = pair;
                    }
                    queue.Enqueue((tree.LteChild[original], current));
                }
                else
                {
                    var pair = Alloc(2);
                    nodes[slot] = new Node(tree.Thresholds[original], tree.SplitFeatures[original], pair);
                    queue.Enqueue((tree.LteChild[original], pair));
                    queue.Enqueue((tree.GtChild[original], pair + 1));
                }
            }
        }
        return new PackedForest(ensemble, [.. nodes], [.. values], roots, ensemble.FeatureCount, exactForNaN);
    }

    /// <summary>
    /// Sets sums[i] to the ensemble's raw output for row i of <paramref name="rows"/> (<paramref name="count"/> rows,
    /// <see cref="Stride"/> floats each, the last of each 0).
    /// </summary>
    public void Sum(ReadOnlySpan<float> rows, int count, Span<double> sums)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        if (rows.Length < count * Stride) throw new ArgumentException($"{count} rows need {count * Stride} floats; the block has {rows.Length}", nameof(rows));
        if (sums.Length < count) throw new ArgumentException($"{count} rows need {count} sums", nameof(sums));
        if (_spec is null) throw new InvalidOperationException("this forest was packed for its leaves only (PackedForest.Leaves)");
        sums[..count].Clear();
        if (_compact is not null) SumCore<CompactNode, CompactNodes>(ref MemoryMarshal.GetArrayDataReference(_compact), rows, count, sums);
        else SumCore<Node, WideNodes>(ref MemoryMarshal.GetArrayDataReference(_nodes), rows, count, sums);
        if (!ExactForNaN)
        {
            for (var r = 0; r < count; r++)
            {
                var row = rows.Slice(r * Stride, FeatureCount);
                if (HasNaN(row)) sums[r] = _spec.ReferenceSum(row);
            }
        }
    }

    private void SumCore<TNode, TLayout>(ref TNode nodes, ReadOnlySpan<float> rows, int count, Span<double> sums)
        where TNode : struct
        where TLayout : struct, INodes<TNode>
    {
        ref var values = ref MemoryMarshal.GetArrayDataReference(_values);
        ref var x = ref MemoryMarshal.GetReference(rows);
        ref var s = ref MemoryMarshal.GetReference(sums);
        var stride = Stride;
        var ends = new EightNodes();
        var lockstep = count - count % 8;
        for (var t = 0; t < _roots.Length; t++)
        {
            var root = _roots[t];
            var steps = count >= FixedWalkRows ? _steps[t] : -1;
            var r = 0;
            if (steps >= 0)
            {
                var sixteen = new SixteenNodes();
                for (; r + 16 <= lockstep; r += 16)
                {
                    WalkSixteen<TNode, TLayout>(ref nodes, ref Unsafe.Add(ref x, r * stride), stride, root, steps, ref sixteen);
                    for (var k = 0; k < 16; k++) Unsafe.Add(ref s, r + k) += Unsafe.Add(ref values, sixteen[k]);
                }
            }
            for (; r < lockstep; r += 8)
            {
                Walk8<TNode, TLayout>(ref nodes, ref Unsafe.Add(ref x, r * stride), stride, root, steps, ref ends);
                for (var k = 0; k < 8; k++) Unsafe.Add(ref s, r + k) += Unsafe.Add(ref values, ends[k]);
            }
        }
        // The rows left over (all of a single-object request): one row walks eight trees in lockstep, which hides the
        // loads' latency as eight rows do; the leaf values are still added in tree order, so the sums are the same bits.
        ref var roots = ref MemoryMarshal.GetArrayDataReference(_roots);
        var trees = _roots.Length;
        for (var r = lockstep; r < count; r++)
        {
            ref var row = ref Unsafe.Add(ref x, r * stride);
            ref var sum = ref Unsafe.Add(ref s, r);
            var t = 0;
            for (; t + 8 <= trees; t += 8)
            {
                WalkEight<TNode, TLayout>(ref nodes, ref row, 0, ref Unsafe.Add(ref roots, t), 1, ref ends);
                for (var k = 0; k < 8; k++) sum += Unsafe.Add(ref values, ends[k]);
            }
            for (; t < trees; t++) sum += Unsafe.Add(ref values, Walk<TNode, TLayout>(ref nodes, ref row, Unsafe.Add(ref roots, t)));
        }
    }

    /// <summary>
    /// Sets leaves[i] to the caller's leaf id (<see cref="PackedForest(Node[], int[], int[], int)"/>) that row i reaches
    /// in tree <paramref name="tree"/>; the same lockstep walk as <see cref="Sum"/>, NaN going where <c>NaN &lt;= t</c> sends it (right).
    /// </summary>
    public void Leaves(ReadOnlySpan<float> rows, int count, int tree, Span<int> leaves)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        if (rows.Length < count * Stride) throw new ArgumentException($"{count} rows need {count * Stride} floats; the block has {rows.Length}", nameof(rows));
        if (leaves.Length < count) throw new ArgumentException($"{count} rows need {count} leaves", nameof(leaves));
        var ids = _leafIds ?? throw new InvalidOperationException("this forest has no leaf ids (built from ML.NET's trees; use Sum)");
        if (_compact is not null) LeavesCore<CompactNode, CompactNodes>(ref MemoryMarshal.GetArrayDataReference(_compact), ids, rows, count, tree, leaves);
        else LeavesCore<Node, WideNodes>(ref MemoryMarshal.GetArrayDataReference(_nodes), ids, rows, count, tree, leaves);
    }

    private void LeavesCore<TNode, TLayout>(ref TNode nodes, int[] ids, ReadOnlySpan<float> rows, int count, int tree, Span<int> leaves)
        where TNode : struct
        where TLayout : struct, INodes<TNode>
    {
        ref var leafIds = ref MemoryMarshal.GetArrayDataReference(ids);
        ref var x = ref MemoryMarshal.GetReference(rows);
        ref var l = ref MemoryMarshal.GetReference(leaves);
        var stride = Stride;
        var root = _roots[tree];
        var steps = count >= FixedWalkRows ? _steps[tree] : -1;
        var ends = new EightNodes();
        var r = 0;
        if (steps >= 0)
        {
            var sixteen = new SixteenNodes();
            for (; r + 16 <= count; r += 16)
            {
                WalkSixteen<TNode, TLayout>(ref nodes, ref Unsafe.Add(ref x, r * stride), stride, root, steps, ref sixteen);
                for (var k = 0; k < 16; k++) Unsafe.Add(ref l, r + k) = Unsafe.Add(ref leafIds, sixteen[k]);
            }
        }
        for (; r + 8 <= count; r += 8)
        {
            Walk8<TNode, TLayout>(ref nodes, ref Unsafe.Add(ref x, r * stride), stride, root, steps, ref ends);
            for (var k = 0; k < 8; k++) Unsafe.Add(ref l, r + k) = Unsafe.Add(ref leafIds, ends[k]);
        }
        for (; r < count; r++)
            Unsafe.Add(ref l, r) = Unsafe.Add(ref leafIds, Walk<TNode, TLayout>(ref nodes, ref Unsafe.Add(ref x, r * stride), root));
    }

    /// <summary>The nodes where eight rows' walks ended.</summary>
    [InlineArray(8)]
    private struct EightNodes
    {
        private int _first;
    }

    /// <summary>
    /// Eight walks in lockstep until none moves: walk i takes the row at <paramref name="x0"/> + i·<paramref name="rowStride"/>
    /// floats down the tree whose root is <paramref name="root0"/>[i·<paramref name="rootStride"/>]. Eight rows down one
    /// tree (rootStride 0) or one row down eight trees (rowStride 0); <paramref name="ends"/> gets the node each stopped at.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void WalkEight<TNode, TLayout>(ref TNode nodes, ref float x0, int rowStride, ref int root0, int rootStride, ref EightNodes ends)
        where TNode : struct
        where TLayout : struct, INodes<TNode>
    {
        ref var x1 = ref Unsafe.Add(ref x0, rowStride);
        ref var x2 = ref Unsafe.Add(ref x1, rowStride);
        ref var x3 = ref Unsafe.Add(ref x2, rowStride);
        ref var x4 = ref Unsafe.Add(ref x3, rowStride);
        ref var x5 = ref Unsafe.Add(ref x4, rowStride);
        ref var x6 = ref Unsafe.Add(ref x5, rowStride);
        ref var x7 = ref Unsafe.Add(ref x6, rowStride);
        int n0 = root0, n1 = Unsafe.Add(ref root0, rootStride), n2 = Unsafe.Add(ref root0, 2 * rootStride), n3 = Unsafe.Add(ref root0, 3 * rootStride);
        int n4 = Unsafe.Add(ref root0, 4 * rootStride), n5 = Unsafe.Add(ref root0, 5 * rootStride), n6 = Unsafe.Add(ref root0, 6 * rootStride), n7 = Unsafe.Add(ref root0, 7 * rootStride);
        while (true)
        {
            var m0 = TLayout.Step(ref nodes, ref x0, n0);
            var m1 = TLayout.Step(ref nodes, ref x1, n1);
            var m2 = TLayout.Step(ref nodes, ref x2, n2);
            var m3 = TLayout.Step(ref nodes, ref x3, n3);
            var m4 = TLayout.Step(ref nodes, ref x4, n4);
            var m5 = TLayout.Step(ref nodes, ref x5, n5);
            var m6 = TLayout.Step(ref nodes, ref x6, n6);
            var m7 = TLayout.Step(ref nodes, ref x7, n7);
            if (((m0 ^ n0) | (m1 ^ n1) | (m2 ^ n2) | (m3 ^ n3) | (m4 ^ n4) | (m5 ^ n5) | (m6 ^ n6) | (m7 ^ n7)) == 0) break;
            n0 = m0; n1 = m1; n2 = m2; n3 = m3; n4 = m4; n5 = m5; n6 = m6; n7 = m7;
        }
        ends[0] = n0; ends[1] = n1; ends[2] = n2; ends[3] = n3; ends[4] = n4; ends[5] = n5; ends[6] = n6; ends[7] = n7;
    }

    /// <summary>The nodes where sixteen rows' walks ended.</summary>
    [InlineArray(16)]
    private struct SixteenNodes
    {
        private int _first;
    }

    /// <summary>
    /// Eight rows down the tree at <paramref name="root"/>: <paramref name="steps"/> steps without checks
    /// (<see cref="WalkEightFixed"/>), or, for a tree whose steps were not counted (-1), until none moves.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Walk8<TNode, TLayout>(ref TNode nodes, ref float x0, int rowStride, int root, int steps, ref EightNodes ends)
        where TNode : struct
        where TLayout : struct, INodes<TNode>
    {
        if (steps >= 0) WalkEightFixed<TNode, TLayout>(ref nodes, ref x0, rowStride, root, steps, ref ends);
        else WalkEight<TNode, TLayout>(ref nodes, ref x0, rowStride, ref root, 0, ref ends);
    }

    /// <summary>
    /// Eight rows (<paramref name="rowStride"/> floats apart from <paramref name="x0"/>) down the tree at
    /// <paramref name="root"/>, <paramref name="steps"/> steps each without asking whether any still moves: the tree's
    /// longest path, so every walk ends at its leaf (where it stays put), and the loop runs the same count for every block.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void WalkEightFixed<TNode, TLayout>(ref TNode nodes, ref float x0, int rowStride, int root, int steps, ref EightNodes ends)
        where TNode : struct
        where TLayout : struct, INodes<TNode>
    {
        ref var x1 = ref Unsafe.Add(ref x0, rowStride);
        ref var x2 = ref Unsafe.Add(ref x1, rowStride);
        ref var x3 = ref Unsafe.Add(ref x2, rowStride);
        ref var x4 = ref Unsafe.Add(ref x3, rowStride);
        ref var x5 = ref Unsafe.Add(ref x4, rowStride);
        ref var x6 = ref Unsafe.Add(ref x5, rowStride);
        ref var x7 = ref Unsafe.Add(ref x6, rowStride);
        int n0 = root, n1 = root, n2 = root, n3 = root, n4 = root, n5 = root, n6 = root, n7 = root;
        for (var i = steps; i > 0; i--)
        {
            n0 = TLayout.Step(ref nodes, ref x0, n0);
            n1 = TLayout.Step(ref nodes, ref x1, n1);
            n2 = TLayout.Step(ref nodes, ref x2, n2);
            n3 = TLayout.Step(ref nodes, ref x3, n3);
            n4 = TLayout.Step(ref nodes, ref x4, n4);
            n5 = TLayout.Step(ref nodes, ref x5, n5);
            n6 = TLayout.Step(ref nodes, ref x6, n6);
            n7 = TLayout.Step(ref nodes, ref x7, n7);
        }
        ends[0] = n0; ends[1] = n1; ends[2] = n2; ends[3] = n3; ends[4] = n4; ends[5] = n5; ends[6] = n6; ends[7] = n7;
    }

    /// <summary>As <see cref="WalkEightFixed"/>, sixteen rows: more independent walks to hide the loads' latency (the fixed count needs no check per step).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void WalkSixteen<TNode, TLayout>(ref TNode nodes, ref float x0, int rowStride, int root, int steps, ref SixteenNodes ends)
        where TNode : struct
        where TLayout : struct, INodes<TNode>
    {
        ref var x1 = ref Unsafe.Add(ref x0, rowStride);
        ref var x2 = ref Unsafe.Add(ref x1, rowStride);
        ref var x3 = ref Unsafe.Add(ref x2, rowStride);
        ref var x4 = ref Unsafe.Add(ref x3, rowStride);
        ref var x5 = ref Unsafe.Add(ref x4, rowStride);
        ref var x6 = ref Unsafe.Add(ref x5, rowStride);
        ref var x7 = ref Unsafe.Add(ref x6, rowStride);
        ref var x8 = ref Unsafe.Add(ref x7, rowStride);
        ref var x9 = ref Unsafe.Add(ref x8, rowStride);
        ref var x10 = ref Unsafe.Add(ref x9, rowStride);
        ref var x11 = ref Unsafe.Add(ref x10, rowStride);
        ref var x12 = ref Unsafe.Add(ref x11, rowStride);
        ref var x13 = ref Unsafe.Add(ref x12, rowStride);
        ref var x14 = ref Unsafe.Add(ref x13, rowStride);
        ref var x15 = ref Unsafe.Add(ref x14, rowStride);
        int n0 = root, n1 = root, n2 = root, n3 = root, n4 = root, n5 = root, n6 = root, n7 = root;
        int n8 = root, n9 = root, n10 = root, n11 = root, n12 = root, n13 = root, n14 = root, n15 = root;
        for (var i = steps; i > 0; i--)
        {
            n0 = TLayout.Step(ref nodes, ref x0, n0);
            n1 = TLayout.Step(ref nodes, ref x1, n1);
            n2 = TLayout.Step(ref nodes, ref x2, n2);
            n3 = TLayout.Step(ref nodes, ref x3, n3);
            n4 = TLayout.Step(ref nodes, ref x4, n4);
            n5 = TLayout.Step(ref nodes, ref x5, n5);
            n6 = TLayout.Step(ref nodes, ref x6, n6);
            n7 = TLayout.Step(ref nodes, ref x7, n7);
            n8 = TLayout.Step(ref nodes, ref x8, n8);
            n9 = TLayout.Step(ref nodes, ref x9, n9);
            n10 = TLayout.Step(ref nodes, ref x10, n10);
            n11 = TLayout.Step(ref nodes, ref x11, n11);
            n12 = TLayout.Step(ref nodes, ref x12, n12);
            n13 = TLayout.Step(ref nodes, ref x13, n13);
            n14 = TLayout.Step(ref nodes, ref x14, n14);
            n15 = TLayout.Step(ref nodes, ref x15, n15);
        }
        ends[0] = n0; ends[1] = n1; ends[2] = n2; ends[3] = n3; ends[4] = n4; ends[5] = n5; ends[6] = n6; ends[7] = n7;
        ends[8] = n8; ends[9] = n9; ends[10] = n10; ends[11] = n11; ends[12] = n12; ends[13] = n13; ends[14] = n14; ends[15] = n15;
    }

    /// <summary>Walks one row down the tree at <paramref name="root"/>; the node it stops at.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Walk<TNode, TLayout>(ref TNode nodes, ref float row, int root)
        where TNode : struct
        where TLayout : struct, INodes<TNode>
    {
        var n = root;
        int m;
        while ((m = TLayout.Step(ref nodes, ref row, n)) != n) n = m;
        return n;
    }

    private static bool HasNaN(ReadOnlySpan<float> row)
    {
        foreach (var v in row)
        {
            if (float.IsNaN(v)) return true;
        }
        return false;
    }
}
