using Kiln.Monitoring.Statistics;

namespace Kiln.Monitoring.Tests.Statistics;

/// <summary>
/// The drift statistics computed from counts over a reference sample's cut points (no sort of the current values)
/// against scipy on adversarial data: ties on the cut points, a constant side, values outside the reference, NaN and
/// ±Infinity, tiny and large samples, heavy tails, huge and tiny magnitudes, ±0. Expected values are computed by
/// python3 with scipy.stats.wasserstein_distance and scipy.stats.ks_2samp on the same finite values, numpy for the bins.
/// </summary>
public sealed class CellCountsTests
{
    private sealed record Case(string Name, double[] Sample, double[] Current, double[] Edges);

    private static double Normal(Random rng, double mean = 0, double sd = 1) =>
        mean + sd * Math.Sqrt(-2 * Math.Log(1.0 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());

    private static double[] Draw(Random rng, int n, Func<Random, double> draw)
    {
        var x = new double[n];
        for (var i = 0; i < n; i++) x[i] = draw(rng);
        return x;
    }

    private static double[] Sorted(double[] x)
    {
        var s = (double[])x.Clone();
        Array.Sort(s);
        return s;
    }

    // Edges as the profile makes them: the reference's deciles.
    private static Case Make(string name, double[] sample, double[] current) =>
        new(name, Sorted(sample), current, Binning.QuantileEdges(Sorted(sample)));

    private static List<Case> Cases()
    {
        var rng = new Random(24);
        var cases = new List<Case>
        {
            Make("normal, small shift", Draw(rng, 2048, r => Normal(r)), Draw(rng, 200_000, r => Normal(r, 0.02))),
            Make("normal, large shift", Draw(rng, 2048, r => Normal(r)), Draw(rng, 50_000, r => Normal(r, 1.5, 2))),
            Make("same distribution as the sample (cdfs cross everywhere)", Draw(rng, 2048, r => Normal(r)), Draw(rng, 100_000, r => Normal(r))),
            Make("ties on the cut points", Draw(rng, 2048, r => Math.Round(Normal(r), 1)), Draw(rng, 100_000, r => Math.Round(Normal(r, 0.1), 1))),
            Make("current entirely above the reference", Draw(rng, 500, r => Normal(r)), Draw(rng, 20_000, r => Normal(r, 10))),
            Make("current entirely below the reference", Draw(rng, 500, r => Normal(r)), Draw(rng, 20_000, r => Normal(r, -10))),
            Make("current straddling the reference", Draw(rng, 300, r => r.NextDouble()), Draw(rng, 20_000, r => 3 * r.NextDouble() - 1)),
            Make("constant reference sample", Enumerable.Repeat(5.0, 100).ToArray(), Draw(rng, 10_000, r => Normal(r, 5))),
            Make("one-value sample", [0.5], Draw(rng, 1_000, r => r.NextDouble())),
            Make("two-value sample", [0.25, 0.75], Draw(rng, 1_000, r => r.NextDouble())),
            Make("eight current values", Draw(rng, 2048, r => Normal(r)), [-3, -1, -0.5, 0, 0.1, 0.2, 2, 9]),
            Make("nine current values with a repeat", Draw(rng, 50, r => Normal(r)), [-0.3, -0.3, 0, 0.4, 0.5, 0.6, 0.7, 1.1, 4]),
            Make("heavy tails (Cauchy)", Draw(rng, 2048, r => Math.Tan(Math.PI * (r.NextDouble() - 0.5))), Draw(rng, 100_000, r => Math.Tan(Math.PI * (r.NextDouble() - 0.5)))),
            Make("huge magnitudes (their range overflows)", Draw(rng, 1000, r => (r.NextDouble() - 0.5) * 1.2e308 * 2), Draw(rng, 10_000, r => (r.NextDouble() - 0.4) * 1.2e308 * 2)),
            Make("tiny spacing", Draw(rng, 1000, r => 1 + r.Next(20) * 1e-15), Draw(rng, 10_000, r => 1 + r.Next(25) * 1e-15)),
            Make("signed zeros and integers", Draw(rng, 2048, r => r.Next(3) switch { 0 => -0.0, 1 => 0.0, _ => r.Next(-20, 20) }), Draw(rng, 30_000, r => r.Next(3) switch { 0 => -0.0, 1 => 0.0, _ => r.Next(-25, 25) })),
            Make("large current", Draw(rng, 2048, r => Normal(r)), Draw(rng, 1_000_000, r => Normal(r, 0.05))),
        };
        // NaN and ±Infinity mixed into a current: counted apart and left out of every statistic.
        var dirty = Draw(rng, 50_000, r => Normal(r, 0.2));
        for (var i = 0; i < dirty.Length; i += 97) dirty[i] = double.NaN;
        for (var i = 5; i < dirty.Length; i += 1001) dirty[i] = i % 2 == 0 ? double.PositiveInfinity : double.NegativeInfinity;
        cases.Add(Make("NaN and infinities in the current", Draw(rng, 2048, r => Normal(r)), dirty));
        return cases;
    }

    [Fact]
    public async Task Statistics_from_cell_counts_match_scipy_on_adversarial_data()
    {
        var cases = Cases();
        var finite = cases.Select(c => c.Current.Where(double.IsFinite).ToArray()).ToList();
        var expected = await ScipyOracle.RunAsync(cases.Select((c, i) => new { sample = c.Sample, current = finite[i], edges = c.Edges }), """
            out = []
            for case in data:
                a, b, e = np.array(case['sample']), np.array(case['current']), np.array(case['edges'])
                w = stats.wasserstein_distance(a, b)
                d = stats.ks_2samp(a, b).statistic
                inner = b[(b >= e[0]) & (b <= e[-1])]
                hist = np.histogram(inner, bins=e)[0].tolist() if len(e) > 1 and e[-1] > e[0] else [len(inner)]
                bins = [int((b < e[0]).sum())] + [int(h) for h in hist] + [int((b > e[-1]).sum())]
                outside = int(((b < a.min()) | (b > a.max())).sum())
                out.append([repr(float(w)), repr(float(d)), bins, outside])
            print(json.dumps(out))
            """);
        for (var i = 0; i < cases.Count; i++)
        {
            var c = cases[i];
            var e = expected[i];
            var cuts = CutPoints.Create(c.Sample, [.. c.Edges, c.Sample[0], c.Sample[^1]])!;
            var cells = CellCounts.Of(cuts, c.Current);
            Assert.Equal(c.Current.Count(double.IsNaN), cells.Missing);
            Assert.Equal(c.Current.Count(double.IsInfinity), cells.Infinite);
            Assert.Equal(finite[i].Length, cells.Count);
            Assert.False(cells.Few, c.Name);

            // Wasserstein: scipy sums the same areas in another order; relative 1e-9 (the tests' tolerance elsewhere).
            var w = ScipyOracle.Number(e[0]);
            ScipyOracle.Close(w, cells.Wasserstein(), 1e-9 * Math.Max(1, Math.Abs(w)), $"{c.Name}: wasserstein");
            // KS: the same counts divided the same way as the merge over sorted values, so equal to the last digit.
            ScipyOracle.Close(ScipyOracle.Number(e[1]), cells.KsStatistic(), 1e-12, $"{c.Name}: ks statistic");
            Assert.Equal(KolmogorovSmirnov.Statistic(c.Sample, Sorted(finite[i])), cells.KsStatistic());

            var bins = cells.BinCounts(c.Edges);
            Assert.Equal(e[2].EnumerateArray().Select(x => (double)x.GetInt64()), bins);
            var binary = new double[c.Edges.Length + 1];
            Binning.Count(c.Edges, c.Current, binary, out _, out _);
            Assert.Equal(binary, bins); // and the binary search per value agrees
            var walked = new double[c.Edges.Length + 1];
            Binning.CountSorted(c.Edges, Sorted(finite[i]), walked);
            Assert.Equal(binary, walked); // and the walk over sorted values (the sorting path) agrees
            Assert.Equal(e[3].GetInt64(), cells.CountOutside(c.Sample[0], c.Sample[^1]));
            Assert.Equal(e[3].GetInt64(), Binning.CountOutsideSorted(Sorted(finite[i]), c.Sample[0], c.Sample[^1]));
            Assert.Equal(finite[i].Min(), cells.Min);
            Assert.Equal(finite[i].Max(), cells.Max);
        }
    }

    [Fact]
    public void Few_distinct_values_are_kept_whole_and_sorted_for_the_value_count_tests()
    {
        var cuts = CutPoints.Create([1, 2, 3], [0, 4])!;
        double[] current = [3, -0.0, 7, 3, double.NaN, 0.0, 7, 7, 1.5, double.PositiveInfinity];
        var cells = CellCounts.Of(cuts, current);
        Assert.True(cells.Few);
        Assert.True(double.IsNaN(cells.Wasserstein())); // not kept for the walk: the caller sorts
        var sorted = new double[current.Length];
        var n = cells.WriteSorted(sorted);
        Assert.Equal(8, n);
        double[] expected = [-0.0, 0.0, 1.5, 3, 3, 7, 7, 7];
        Assert.Equal(expected.Select(BitConverter.DoubleToInt64Bits), sorted[..n].Select(BitConverter.DoubleToInt64Bits));
        Assert.Equal(KolmogorovSmirnov.Statistic([1, 2, 3], sorted[..n]), cells.KsStatistic());
    }

    [Fact]
    public void Edges_and_range_must_be_cut_points()
    {
        var cuts = CutPoints.Create([1, 2, 3], [])!;
        var cells = CellCounts.Of(cuts, [1.5, 2.5]);
        Assert.Throws<ArgumentException>(() => cells.BinCounts([1, 2.2, 3]));
        Assert.Throws<ArgumentException>(() => cells.CountOutside(0, 3));
        Assert.Null(CutPoints.Create([], [1]));
        Assert.Null(CutPoints.Create([1, double.NaN], []));
        Assert.Null(CutPoints.Create([3, 1, 2], [])); // not sorted
    }
}
