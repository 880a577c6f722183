using FsCheck.Xunit;
using Kiln.Scoring.Trees;

namespace Kiln.Scoring.Tests;

/// <summary>
/// Kiln's packed forest against the reference walk (RegressionTreeSpec.Output, ML.NET's InternalRegressionTree
/// traversal transcribed step for step) on random ensembles: trees grown leaf by leaf the way ML.NET numbers them,
/// some splits categorical, some trees with missing-value defaults, and rows drawn from the thresholds themselves,
/// their float neighbours, ±0, ±∞ and NaN. The sums must be equal to the bit.
/// </summary>
public sealed class PackedForestPropertyTests
{
    [Property(MaxTest = 300)]
    public bool Packed_sums_equal_the_reference_walk_bit_for_bit(int seed)
    {
        var rng = new Random(seed);
        return SumsEqualReference(rng, rng.Next(1, 7), compact: true);
    }

    /// <summary>256 features or more (with the always-0 slot, more than a byte indexes): the walk reads the 12-byte nodes.</summary>
    [Property(MaxTest = 60)]
    public bool Packed_sums_of_a_wide_forest_equal_the_reference_walk_bit_for_bit(int seed)
    {
        var rng = new Random(seed);
        return SumsEqualReference(rng, rng.Next(256, 300), compact: false);
    }

    [Fact]
    public void The_compact_layout_is_used_up_to_255_features()
    {
        var pool = new[] { 0.5f };
        var rng = new Random(7);
        Assert.True(PackedForest.Build(new TreeEnsembleSpec([RandomTree(rng, 255, pool)], 255)).IsCompact);
        Assert.False(PackedForest.Build(new TreeEnsembleSpec([RandomTree(rng, 256, pool)], 256)).IsCompact);
    }

    private static bool SumsEqualReference(Random rng, int features, bool compact)
    {
        var pool = ThresholdPool(rng);
        var trees = new List<RegressionTreeSpec>();
        // Past eight trees too: a row left over from the 8-row lockstep walks eight trees in lockstep.
        for (var t = rng.Next(1, 20); t > 0; t--) trees.Add(RandomTree(rng, features, pool));
        var ensemble = new TreeEnsembleSpec(trees, features);
        var forest = PackedForest.Build(ensemble);
        if (forest.IsCompact != compact) return false;

        // Row values: every threshold and its neighbours, plus the values where comparisons are easy to get wrong.
        var values = new List<float> { 0f, -0f, 1f, float.NaN, float.PositiveInfinity, float.NegativeInfinity, float.Epsilon, -float.Epsilon };
        foreach (var v in pool) values.AddRange([v, MathF.BitIncrement(v), MathF.BitDecrement(v)]);
        // Blocks of eight rows walked until none moves, and rows left over; from FixedWalkRows rows on, blocks of sixteen and
        // of eight walked for each tree's longest path.
        var rows = rng.Next(2) == 0 ? rng.Next(1, 60) : rng.Next(PackedForest.FixedWalkRows, PackedForest.FixedWalkRows + 40);
        var block = new RowBlock(features, rows);
        for (var r = 0; r < rows; r++)
        {
            var row = block.Row(r);
            for (var f = 0; f < features; f++) row[f] = values[rng.Next(values.Count)];
        }
        var sums = new double[rows];
        forest.Sum(block.Data, rows, sums);
        for (var r = 0; r < rows; r++)
        {
            var expected = ensemble.ReferenceSum(block.Row(r));
            if (BitConverter.DoubleToInt64Bits(expected) != BitConverter.DoubleToInt64Bits(sums[r])) return false;
        }
        return true;
    }

    [Fact]
    public void A_NaN_takes_ML_NETs_direction_at_numeric_and_categorical_splits_and_defaults()
    {
        // Hand-built, expected leaves read off ML.NET's GetLeafCore: numeric "x <= t" is false for NaN (right);
        // categorical "x > 0" is false for NaN (left); a missing-value default replaces NaN before either test.
        var numeric = new RegressionTreeSpec([0], [0.5f], [~0], [~1], [10, 20]);
        var categorical = new RegressionTreeSpec([0], [0.5f], [~0], [~1], [100, 200], categoricalFeatures: [[0, 1]]);
        var withDefault = new RegressionTreeSpec([0], [0.5f], [~0], [~1], [1000, 2000], defaultForMissing: [0.25f]);
        var forest = PackedForest.Build(new TreeEnsembleSpec([numeric, categorical, withDefault], 2));
        Assert.False(forest.ExactForNaN);

        var block = new RowBlock(2, 3);
        float[][] rows = [[float.NaN, 0f], [float.NaN, 2f], [0.75f, 0f]];
        for (var r = 0; r < 3; r++) rows[r].CopyTo(block.Row(r));
        var sums = new double[3];
        forest.Sum(block.Data, 3, sums);
        Assert.Equal(20 + 100 + 1000, sums[0]);   // NaN: numeric right, categorical left (slot 1 is 0), default 0.25 <= 0.5 left
        Assert.Equal(20 + 200 + 1000, sums[1]);   // slot 1 = 2 > 0: categorical right
        Assert.Equal(20 + 200 + 2000, sums[2]);   // 0.75: right, right (slot 0 > 0), right
    }

    /// <summary>
    /// A chain (each split's left child a leaf, its right child the next split) reaches its last leaves only after as many
    /// steps as it is long: the lockstep walk counts them per tree when packing, up to 4,096; a longer tree is walked
    /// until no row moves. Rows reach every leaf, in blocks of sixteen, of eight and left over, below and above FixedWalkRows.
    /// </summary>
    [Theory]
    [InlineData(1, 45)]
    [InlineData(40, 45)]
    [InlineData(1, PackedForest.FixedWalkRows + 29)]
    [InlineData(40, PackedForest.FixedWalkRows + 29)]
    [InlineData(5000, PackedForest.FixedWalkRows + 29)]
    public void A_chain_deeper_than_its_neighbours_sums_equal_the_reference_walk(int length, int rows)
    {
        var rng = new Random(length);
        var pool = ThresholdPool(rng);
        var chain = new RegressionTreeSpec(
            [.. Enumerable.Repeat(0, length)],
            [.. Enumerable.Range(0, length).Select(n => (float)n)],
            [.. Enumerable.Range(0, length).Select(n => ~n)],
            [.. Enumerable.Range(0, length).Select(n => n + 1 < length ? n + 1 : ~length)],
            [.. Enumerable.Range(0, length + 1).Select(l => 1.0 + l / 1024.0)]);
        var ensemble = new TreeEnsembleSpec([RandomTree(rng, 2, pool), chain, RandomTree(rng, 2, pool)], 2);
        var forest = PackedForest.Build(ensemble);
        Assert.Equal(length <= 4096 ? length : -1, forest.StepsOf(1));

        var block = new RowBlock(2, rows);
        for (var r = 0; r < rows; r++)
        {
            // x = k - 0.5 goes right at splits 0 to k - 1 and left at split k: leaf k; the last rows reach the chain's end, one as NaN (right at every split).
            var k = r < rows - 3 ? rng.Next(length + 1) : length;
            block.Row(r)[0] = r == rows - 1 ? float.NaN : k - 0.5f;
            block.Row(r)[1] = pool[rng.Next(pool.Length)];
        }
        var sums = new double[rows];
        forest.Sum(block.Data, rows, sums);
        for (var r = 0; r < rows; r++) Assert.Equal(BitConverter.DoubleToInt64Bits(ensemble.ReferenceSum(block.Row(r))), BitConverter.DoubleToInt64Bits(sums[r]));
        Assert.Equal(1.0 + length / 1024.0, chain.Output(block.Row(rows - 1)));
    }

    [Fact]
    public void A_tree_that_is_not_a_tree_is_refused()
    {
        var e = Assert.Throws<ArgumentException>(() => new RegressionTreeSpec([0, 0], [1f, 2f], [1, ~0], [1, ~1], [1, 2, 3]));
        Assert.Contains("reached twice", e.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => new TreeEnsembleSpec([new RegressionTreeSpec([3], [1f], [~0], [~1], [1, 2])], 2));
    }

    private static float[] ThresholdPool(Random rng)
    {
        var pool = new List<float> { 0f, -0f, 0.5f, -1.25f, float.Epsilon, float.MaxValue, -float.MaxValue, float.PositiveInfinity, 1e-30f, 16777216f };
        for (var i = 0; i < 6; i++) pool.Add((float)(rng.NextDouble() * 200 - 100));
        return [.. pool];
    }

    /// <summary>Grown as ML.NET grows one: split a random leaf; the new internal node is numbered leaves−1, its children ~leaf and ~leaves.</summary>
    private static RegressionTreeSpec RandomTree(Random rng, int features, float[] pool)
    {
        var leaves = rng.Next(1, 24);
        var nodes = leaves - 1;
        var split = new int[nodes];
        var threshold = new float[nodes];
        var lte = new int[nodes];
        var gt = new int[nodes];
        var categorical = new int[nodes][];
        var anyCategorical = false;
        var leafValues = new double[Math.Max(leaves, 1)];
        for (var n = 0; n < nodes; n++)
        {
            var leaf = rng.Next(n + 1); // one of the n+1 leaves so far
            var parent = Array.FindIndex(lte, 0, n, c => c == ~leaf);
            if (parent >= 0) lte[parent] = n;
            else if ((parent = Array.FindIndex(gt, 0, n, c => c == ~leaf)) >= 0) gt[parent] = n;
            split[n] = rng.Next(features);
            threshold[n] = pool[rng.Next(pool.Length)];
            lte[n] = ~leaf;
            gt[n] = ~(n + 1);
            if (rng.Next(5) == 0)
            {
                categorical[n] = [.. Enumerable.Range(0, features).Where(_ => rng.Next(2) == 0)];
                anyCategorical = true;
            }
        }
        for (var l = 0; l < leafValues.Length; l++) leafValues[l] = rng.Next(4) == 0 ? -0.0 : rng.NextDouble() * 2 - 1;
        var defaults = rng.Next(4) == 0 ? Enumerable.Range(0, nodes).Select(_ => pool[rng.Next(pool.Length)]).ToArray() : null;
        return new RegressionTreeSpec(split, threshold, lte, gt, leafValues, anyCategorical ? categorical : null, defaults);
    }
}
