using Kiln.Monitoring.Statistics;

namespace Kiln.Monitoring.Tests.Statistics;

public sealed class EdgeCaseTests
{
    [Fact]
    public void Empty_inputs_give_nan_not_an_exception()
    {
        // scipy raises ValueError('Data passed to ks_2samp must not be empty'); Kiln returns NaN so a report can warn.
        var ks = KolmogorovSmirnov.Test([], [1.0, 2.0]);
        Assert.True(double.IsNaN(ks.Statistic) && double.IsNaN(ks.PValue));
        Assert.True(double.IsNaN(ChiSquare.Test([0, 0], [1, 2]).PValue));
        Assert.True(double.IsNaN(ZTest.TwoProportions(0, 0, 1, 2).PValue));
        Assert.True(double.IsNaN(Distances.Psi([0, 0], [1, 2])));
        Assert.True(double.IsNaN(Distances.JensenShannon([1, 2], [0, 0])));
        Assert.True(double.IsNaN(Distances.Hellinger([0, 0], [0, 0])));
        Assert.True(double.IsNaN(Distances.WassersteinSorted([], [1.0])));
        Assert.Empty(Binning.QuantileEdges([]));
    }

    [Fact]
    public void Nan_and_infinities_are_left_out_and_counted()
    {
        double[] clean = [0.5, 1.5, 2.5, 3.5, 4.5, 5.5];
        double[] dirty = [0.5, double.NaN, 1.5, double.PositiveInfinity, 2.5, 3.5, double.NegativeInfinity, 4.5, double.NaN, 5.5];
        double[] other = [1, 2, 3, 4, 5, 6, 7, 8];
        Assert.Equal(KolmogorovSmirnov.Test(clean, other), KolmogorovSmirnov.Test(dirty, other));
        var sorted = FiniteSample.SortedCopy(dirty, out var missing, out var infinite);
        Assert.Equal(clean, sorted);
        Assert.Equal(2, missing);
        Assert.Equal(2, infinite);
        var edges = Binning.QuantileEdges(clean, 3);
        var counts = new double[edges.Length + 1];
        Binning.Count(edges, [double.NaN, -10, 0.5, 5.5, 99, double.PositiveInfinity], counts, out var m, out var inf);
        Assert.Equal([1.0, 1.0, 0.0, 1.0, 1.0], counts);
        Assert.Equal(1, m);
        Assert.Equal(1, inf);
    }

    [Fact]
    public void Constant_samples_have_zero_distance_and_no_drift()
    {
        double[] five = [5, 5, 5, 5];
        Assert.Equal(0.0, Distances.WassersteinSorted(five, five));
        // Evidently divides by max(std, 0.001): a constant reference and a moved constant give a large normed distance.
        Assert.Equal(1 / 0.001, Distances.WassersteinNormedSorted(five, [6, 6, 6]), 1e-9);
        var edges = Binning.QuantileEdges(five);
        Assert.Equal([5.0, 5.0], edges);
        Assert.Equal(1, Binning.BinOf(edges, 5));
        Assert.Equal(0, Binning.BinOf(edges, 4.9));
        Assert.Equal(2, Binning.BinOf(edges, 5.1));
        Assert.Equal(1.0, ZTest.TwoProportions(0, 10, 0, 7).PValue);
        Assert.Equal(0.0, Distances.Psi([3, 0], [6, 0]), 1e-15);
    }

    [Fact]
    public void Identical_distributions_have_zero_distances()
    {
        double[] p = [10, 20, 30, 40];
        double[] q = [1, 2, 3, 4];
        Assert.Equal(0.0, Distances.Psi(p, q), 1e-15);
        Assert.Equal(0.0, Distances.JensenShannon(p, q), 1e-7);
        Assert.Equal(0.0, Distances.Hellinger(p, q), 1e-7);
    }

    [Fact]
    public void Disjoint_distributions_reach_the_maximum_distances()
    {
        // jensenshannon([1,0],[0,1]) = sqrt(ln 2); base 2 gives 1. Hellinger gives 1.
        Assert.Equal(Math.Sqrt(Math.Log(2)), Distances.JensenShannon([1, 0], [0, 1]), 1e-12);
        Assert.Equal(1.0, Distances.JensenShannon([1, 0], [0, 1], 2), 1e-12);
        Assert.Equal(1.0, Distances.Hellinger([1, 0], [0, 1]), 1e-12);
    }

    [Fact]
    public void Psi_floors_empty_bins_as_evidently_does()
    {
        // r = [0.5, 0.5, 0], c = [0.25, 0.25, 0.5]; r's empty bin becomes 0.0001.
        // np.sum((r-c)*np.log(r/c)) with r=[.5,.5,1e-4]
        var expected = 2 * (0.25 * Math.Log(2)) + (1e-4 - 0.5) * Math.Log(1e-4 / 0.5);
        Assert.Equal(expected, Distances.Psi([5, 5, 0], [1, 1, 2]), 1e-12);
    }

    [Fact]
    public void Bin_of_follows_numpy_histogram_convention()
    {
        double[] edges = [0, 1, 2, 3];
        Assert.Equal(1, Binning.BinOf(edges, 0));
        Assert.Equal(2, Binning.BinOf(edges, 1));
        Assert.Equal(3, Binning.BinOf(edges, 2.999));
        Assert.Equal(3, Binning.BinOf(edges, 3)); // the last bin is closed on the right
        Assert.Equal(4, Binning.BinOf(edges, 3.0001));
        Assert.Equal(0, Binning.BinOf(edges, -0.1));
    }
}

public sealed class RadixSortTests
{
    [Fact]
    public void Sorted_copy_of_a_large_column_leaves_out_and_counts_missing_and_infinite_values()
    {
        var rng = new Random(11);
        var values = new double[100_000];
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = (i % 97) switch
            {
                0 => double.NaN,
                1 => double.PositiveInfinity,
                2 => double.NegativeInfinity,
                _ => (rng.NextDouble() - 0.5) * 1e4,
            };
        }
        var expected = values.Where(double.IsFinite).ToArray();
        Array.Sort(expected);

        var sorted = FiniteSample.SortedCopy(values, out var missing, out var infinite);

        Assert.Equal(expected, sorted);
        Assert.Equal(values.Count(double.IsNaN), missing);
        Assert.Equal(values.Count(double.IsInfinity), infinite);
    }

    /// <summary>
    /// The drift sorts into a pooled buffer that is longer than the column and holds an earlier column's values: the
    /// front must be exactly the sorted finite values, small (comparison sort) and large (radix) alike.
    /// </summary>
    [Theory]
    [InlineData(100)]
    [InlineData(50_000)]
    public void Sorting_into_a_used_buffer_gives_the_sorted_finite_values_at_its_front(int n)
    {
        var rng = new Random(n);
        var values = new double[n];
        for (var i = 0; i < n; i++) values[i] = i % 97 == 0 ? double.NaN : i % 89 == 0 ? double.NegativeInfinity : rng.NextDouble() * 100 - 50;
        var buffer = new double[n + 1000];
        Array.Fill(buffer, 12345.0);
        var expected = values.Where(double.IsFinite).ToArray();
        Array.Sort(expected);

        var count = RadixSort.SortFinite(values, buffer, out var missing, out var infinite);

        Assert.Equal(expected, buffer[..count]);
        Assert.Equal(values.Count(double.IsNaN), missing);
        Assert.Equal(values.Count(double.IsInfinity), infinite);
        Assert.Throws<ArgumentException>(() => RadixSort.SortFinite(values, new double[n - 1], out _, out _));
    }

    /// <summary>
    /// Shapes that stress the final in-place step (values sharing their top 33 key bits): normal data, values packed
    /// within a millionth of each other, heavy ties, signed zeros. Compared bit for bit with Array.Sort, except that
    /// -0.0 must come before +0.0.
    /// </summary>
    [Theory]
    [InlineData("normal")]
    [InlineData("packed")]
    [InlineData("ties")]
    [InlineData("zeros")]
    [InlineData("sorted")]
    public void Radix_sort_orders_every_shape_exactly(string shape)
    {
        var rng = new Random(shape.Length);
        var n = 300_000;
        var values = new double[n];
        for (var i = 0; i < n; i++)
        {
            values[i] = shape switch
            {
                "normal" => Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble()),
                "packed" => 1000 + rng.NextDouble() * 1e-7 * (rng.Next(2) == 0 ? 1 : -1),
                "ties" => rng.Next(-20, 21) / 4.0,
                "zeros" => rng.Next(3) switch { 0 => 0.0, 1 => -0.0, _ => rng.NextDouble() - 0.5 },
                _ => i * 1e-3,
            };
        }
        var expected = (double[])values.Clone();
        Array.Sort(expected, (a, b) => a == b ? (double.IsNegative(b) ? 1 : 0) - (double.IsNegative(a) ? 1 : 0) : a.CompareTo(b));
        RadixSort.Sort(values);
        for (var i = 0; i < n; i++)
        {
            Assert.True(BitConverter.DoubleToInt64Bits(expected[i]) == BitConverter.DoubleToInt64Bits(values[i]), $"index {i}: {expected[i]:R} vs {values[i]:R}");
        }
    }

    [Theory]
    [InlineData(10, 1)]
    [InlineData(5000, 2)]
    [InlineData(100_000, 3)]
    public void Radix_sort_orders_like_array_sort(int n, int seed)
    {
        var rng = new Random(seed);
        var values = new double[n];
        for (var i = 0; i < n; i++)
        {
            values[i] = (i % 7) switch
            {
                0 => rng.Next(-3, 4),                      // ties and zeros
                1 => -rng.NextDouble() * 1e300,            // huge negatives
                2 => rng.NextDouble() * 1e-300,            // tiny positives (subnormal-ish range)
                3 => double.MaxValue * (rng.Next(2) == 0 ? 1 : -1),
                _ => (rng.NextDouble() - 0.5) * 1000,
            };
        }
        var expected = (double[])values.Clone();
        Array.Sort(expected);
        RadixSort.Sort(values);
        for (var i = 0; i < n; i++) Assert.True(expected[i] == values[i], $"index {i}: {expected[i]:R} vs {values[i]:R}");
    }
}
