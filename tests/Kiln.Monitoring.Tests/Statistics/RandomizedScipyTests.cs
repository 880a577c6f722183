using Kiln.Monitoring.Statistics;

namespace Kiln.Monitoring.Tests.Statistics;

// Each test generates data in C# with a fixed seed, writes it to a temp file, has python3 + scipy compute the same
// statistic, and compares to 1e-6 (absolute).
public sealed class RandomizedScipyTests
{
    private const double Tol = 1e-6;

    private static double Normal(Random rng, double mean, double sd)
    {
        var u1 = 1.0 - rng.NextDouble();
        var u2 = rng.NextDouble();
        return mean + sd * Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }

    private static double[] Sample(Random rng, int n, double mean, double sd, int roundTo)
    {
        var x = new double[n];
        for (var i = 0; i < n; i++)
        {
            var v = Normal(rng, mean, sd);
            x[i] = roundTo >= 0 ? Math.Round(v, roundTo) : v;
        }
        return x;
    }

    [Fact]
    public async Task Ks_two_sample_matches_scipy_ks_2samp_on_random_samples()
    {
        var rng = new Random(20261126);
        // (n1, n2): exact (equal and unequal sizes), the boundary 10 000, and asymptotic ones (one side > 10 000).
        (int, int)[] sizes =
        [
            (1, 1), (1, 7), (3, 4), (10, 10), (25, 40), (60, 61), (100, 37), (250, 250), (400, 1000), (999, 1000),
            (2000, 1500), (10000, 30), (10001, 30), (12000, 5), (12000, 150), (15000, 15000), (20000, 3000), (50000, 8),
        ];
        var cases = new List<double[][]>();
        foreach (var (n1, n2) in sizes)
        {
            foreach (var shift in new[] { 0.0, 0.05, 0.3 })
            {
                var roundTo = rng.Next(3) == 0 ? 1 : -1; // a third of the cases have many ties
                cases.Add([Sample(rng, n1, 0, 1, roundTo), Sample(rng, n2, shift, 1, roundTo)]);
            }
        }
        var expected = await ScipyOracle.RunAsync(cases, """
            out = []
            for a, b in data:
                r = stats.ks_2samp(a, b)   # method='auto'
                out.append([float(r.statistic), float(r.pvalue)])
            print(json.dumps(out))
            """);
        for (var i = 0; i < cases.Count; i++)
        {
            var r = KolmogorovSmirnov.Test(cases[i][0], cases[i][1]);
            var what = $"case {i} (n1={cases[i][0].Length}, n2={cases[i][1].Length}, {r.Method})";
            ScipyOracle.Close(expected[i][0].GetDouble(), r.Statistic, 1e-12, what + " statistic");
            ScipyOracle.Close(expected[i][1].GetDouble(), r.PValue, Tol, what + " p-value");
        }
    }

    [Fact]
    public async Task Kolmogorov_distribution_matches_scipy_kstwo_across_its_regimes()
    {
        var rng = new Random(7);
        var cases = new List<double[]>();
        foreach (var n in new long[] { 1, 2, 5, 20, 77, 140, 141, 500, 3000, 99_999, 100_001, 400_000, 1_500_000 })
        {
            for (var k = 0; k < 8; k++)
            {
                // x spread over the interesting range: around 1/sqrt(n) (the bulk) and into both tails.
                var scale = 1.0 / Math.Sqrt(n);
                var x = Math.Min(0.999, scale * (0.2 + 2.2 * rng.NextDouble()));
                cases.Add([n, x]);
            }
            cases.Add([n, 0.6]);
            cases.Add([n, 0.75 / n]);
        }
        var expected = await ScipyOracle.RunAsync(cases, """
            print(json.dumps([float(stats.kstwo.sf(x, int(n))) for n, x in data]))
            """);
        for (var i = 0; i < cases.Count; i++)
        {
            var actual = KolmogorovDistribution.TwoSidedSf((long)cases[i][0], cases[i][1]);
            ScipyOracle.Close(expected[i].GetDouble(), actual, Tol, $"kstwo.sf({cases[i][1]:R}, {cases[i][0]})");
        }
    }

    [Fact]
    public async Task Upper_incomplete_gamma_matches_scipy_gammaincc()
    {
        var rng = new Random(11);
        var cases = new List<double[]>();
        for (var i = 0; i < 200; i++)
        {
            var a = i % 4 == 0 ? 0.5 * (1 + rng.Next(400)) : Math.Exp(rng.NextDouble() * 9 - 3);
            var x = a * Math.Exp(rng.NextDouble() * 2 - 1) + rng.NextDouble();
            cases.Add([a, x]);
        }
        var expected = await ScipyOracle.RunAsync(cases, """
            print(json.dumps([float(special.gammaincc(a, x)) for a, x in data]))
            """);
        for (var i = 0; i < cases.Count; i++)
        {
            ScipyOracle.Close(expected[i].GetDouble(), SpecialFunctions.GammaQ(cases[i][0], cases[i][1]), 1e-10,
                $"gammaincc({cases[i][0]:R}, {cases[i][1]:R})");
        }
    }

    [Fact]
    public async Task Chi_square_matches_scipy_chisquare_with_evidently_expectations()
    {
        var rng = new Random(3);
        var cases = new List<double[][]>();
        for (var i = 0; i < 60; i++)
        {
            var k = 2 + rng.Next(30);
            var reference = new double[k];
            var current = new double[k];
            for (var c = 0; c < k; c++)
            {
                reference[c] = 1 + rng.Next(500);
                current[c] = rng.Next(i % 3 == 0 ? 50 : 500);
            }
            if (current.Sum() == 0) current[0] = 1;
            cases.Add([reference, current]);
        }
        var expected = await ScipyOracle.RunAsync(cases, """
            out = []
            for ref, cur in data:
                ref, cur = np.array(ref), np.array(cur)
                f_exp = ref * (cur.sum() / ref.sum())   # Evidently: reference counts scaled by k_norm
                r = stats.chisquare(cur, f_exp)
                out.append([float(r.statistic), float(r.pvalue)])
            print(json.dumps(out))
            """);
        for (var i = 0; i < cases.Count; i++)
        {
            var r = ChiSquare.Test(cases[i][0], cases[i][1]);
            ScipyOracle.Close(expected[i][0].GetDouble(), r.Statistic, 1e-8 * Math.Max(1, r.Statistic), $"case {i} statistic");
            ScipyOracle.Close(expected[i][1].GetDouble(), r.PValue, Tol, $"case {i} p-value");
        }
    }

    [Fact]
    public async Task Z_test_matches_evidently_formula_with_scipy_norm()
    {
        var rng = new Random(5);
        var cases = new List<double[]>();
        for (var i = 0; i < 100; i++)
        {
            double n1 = 1 + rng.Next(2000), n2 = 1 + rng.Next(2000);
            double s1 = rng.Next((int)n1 + 1), s2 = rng.Next((int)n2 + 1);
            if (s1 + s2 == 0) s1 = 1;
            if (s1 + s2 == n1 + n2) s1 -= 1;
            cases.Add([s1, n1, s2, n2]);
        }
        var expected = await ScipyOracle.RunAsync(cases, """
            out = []
            for s1, n1, s2, n2 in data:
                p1, p2 = s1 / n1, s2 / n2
                P = (p1 * n1 + p2 * n2) / (n1 + n2)
                z = (p1 - p2) / np.sqrt(P * (1 - P) * (1.0 / n1 + 1.0 / n2))
                out.append([float(z), float(2 * (1 - stats.norm.cdf(np.abs(z))))])
            print(json.dumps(out))
            """);
        for (var i = 0; i < cases.Count; i++)
        {
            var c = cases[i];
            var r = ZTest.TwoProportions(c[0], c[1], c[2], c[3]);
            ScipyOracle.Close(expected[i][0].GetDouble(), r.Statistic, 1e-9, $"case {i} z");
            ScipyOracle.Close(expected[i][1].GetDouble(), r.PValue, Tol, $"case {i} p-value");
        }
    }

    [Fact]
    public async Task Binned_distances_match_scipy_and_numpy_formulas()
    {
        var rng = new Random(9);
        var cases = new List<double[][]>();
        for (var i = 0; i < 60; i++)
        {
            var k = 2 + rng.Next(25);
            var p = new double[k];
            var q = new double[k];
            for (var c = 0; c < k; c++)
            {
                // Some empty bins on either side (never on both: such a bin does not exist for Evidently).
                p[c] = rng.Next(6) == 0 ? 0 : rng.Next(1, 1000);
                q[c] = rng.Next(6) == 0 && p[c] > 0 ? 0 : rng.Next(1, 1000);
            }
            if (i % 10 == 0) p[0] = 1e-3; // a tiny share triggers Evidently's min/1e6 floor
            cases.Add([p, q]);
        }
        var expected = await ScipyOracle.RunAsync(cases, """
            def floor(s):
                m = s[s != 0].min()
                return m / 10**6 if m <= 0.0001 else 0.0001
            out = []
            for p, q in data:
                p, q = np.array(p), np.array(q)
                r, c = p / p.sum(), q / q.sum()
                r2, c2 = r.copy(), c.copy()
                np.place(r2, r2 == 0, floor(r)); np.place(c2, c2 == 0, floor(c))   # Evidently's get_binned_data(feel_zeroes=True)
                psi = float(np.sum((r2 - c2) * np.log(r2 / c2)))
                js_e = float(distance.jensenshannon(p, q))
                js_2 = float(distance.jensenshannon(p, q, 2))
                hel = float(np.sqrt(1 - np.clip(np.sum(np.sqrt(r * c)), 0, 1)))
                out.append([psi, js_e, js_2, hel])
            print(json.dumps(out))
            """);
        for (var i = 0; i < cases.Count; i++)
        {
            var (p, q) = (cases[i][0], cases[i][1]);
            ScipyOracle.Close(expected[i][0].GetDouble(), Distances.Psi(p, q), Tol, $"case {i} psi");
            ScipyOracle.Close(expected[i][1].GetDouble(), Distances.JensenShannon(p, q), Tol, $"case {i} js");
            ScipyOracle.Close(expected[i][2].GetDouble(), Distances.JensenShannon(p, q, 2), Tol, $"case {i} js base 2");
            ScipyOracle.Close(expected[i][3].GetDouble(), Distances.Hellinger(p, q), Tol, $"case {i} hellinger");
        }
    }

    [Fact]
    public async Task Wasserstein_matches_scipy_and_quantile_edges_match_numpy()
    {
        var rng = new Random(13);
        var cases = new List<double[][]>();
        foreach (var (n1, n2) in new[] { (1, 1), (1, 5), (7, 3), (50, 80), (500, 200), (3000, 4000), (20000, 100) })
        {
            for (var k = 0; k < 3; k++)
            {
                var roundTo = k == 2 ? 0 : -1;
                cases.Add([Sample(rng, n1, 10, 3, roundTo), Sample(rng, n2, 10 + k, 3 + k, roundTo)]);
            }
        }
        var expected = await ScipyOracle.RunAsync(cases, """
            out = []
            for a, b in data:
                w = float(stats.wasserstein_distance(a, b))
                wn = w / max(float(np.std(a)), 0.001)          # Evidently's normed Wasserstein
                edges = np.unique(np.quantile(a, np.linspace(0, 1, 11))).tolist()
                out.append([w, wn, edges])
            print(json.dumps(out))
            """);
        for (var i = 0; i < cases.Count; i++)
        {
            var a = FiniteSample.SortedCopy(cases[i][0], out _, out _);
            var b = FiniteSample.SortedCopy(cases[i][1], out _, out _);
            ScipyOracle.Close(expected[i][0].GetDouble(), Distances.WassersteinSorted(a, b), 1e-9, $"case {i} wasserstein");
            ScipyOracle.Close(expected[i][1].GetDouble(), Distances.WassersteinNormedSorted(a, b), 1e-9, $"case {i} normed");
            var edges = Binning.QuantileEdges(a);
            var expectedEdges = expected[i][2].EnumerateArray().Select(e => e.GetDouble()).ToArray();
            if (expectedEdges.Length == 1) expectedEdges = [expectedEdges[0], expectedEdges[0]];
            Assert.Equal(expectedEdges.Length, edges.Length);
            for (var e = 0; e < edges.Length; e++) ScipyOracle.Close(expectedEdges[e], edges[e], 1e-12, $"case {i} edge {e}");
        }
    }
}
