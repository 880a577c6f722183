using Kiln.Monitoring.Statistics;

namespace Kiln.Monitoring.Tests.Statistics;

// Expected values come from Debian's python3-scipy 1.10.1 (numpy 1.24.2); the Python line that produced each one is
// written beside it. Tolerance 1e-6 absolute unless stated.
public sealed class FixedCaseTests
{
    private const double Tol = 1e-6;

    private static readonly double[] A =
    [
        0.61, 0.29, 0.06, 0.59, -1.73, -0.74, 0.51, -0.56, 0.39, 1.64, 0.05, -0.06, 0.64, -0.82, 0.37, 1.77, 1.09,
        -1.28, 2.36, 1.31, 1.05, -0.32, -0.4, 1.06, -2.47,
    ];

    private static readonly double[] B =
    [
        2.2, 1.66, 1.38, 0.2, 0.36, 0.0, 0.96, 1.56, 0.44, 1.5, -0.23, 0.23, 0.11, 1.39, 0.45, 0.73, 1.26, 0.56, 0.08, 0.96,
    ];

    [Fact]
    public void Ks_two_samples_of_different_sizes_matches_scipy_exact()
    {
        // stats.ks_2samp(a, b) -> statistic=0.34, pvalue=0.12276281531463283
        var r = KolmogorovSmirnov.Test(A, B);
        Assert.Equal(KsMethod.Exact, r.Method);
        Assert.Equal(0.34, r.Statistic, Tol);
        Assert.Equal(0.12276281531463283, r.PValue, Tol);
    }

    [Fact]
    public void Ks_sample_against_its_own_prefix_matches_scipy()
    {
        // stats.ks_2samp(a, a[:20]) -> statistic=0.07, pvalue=0.9999996692054484
        var r = KolmogorovSmirnov.Test(A, A.AsSpan(0, 20));
        Assert.Equal(0.07, r.Statistic, Tol);
        Assert.Equal(0.9999996692054484, r.PValue, Tol);
    }

    [Fact]
    public void Ks_with_ties_matches_scipy()
    {
        // stats.ks_2samp([1,1,2,2,3], [2,2,3,3,3,4]) -> statistic=0.4666666666666667, pvalue=0.474025974025974
        var r = KolmogorovSmirnov.Test([1, 1, 2, 2, 3], [2, 2, 3, 3, 3, 4]);
        Assert.Equal(0.4666666666666667, r.Statistic, Tol);
        Assert.Equal(0.474025974025974, r.PValue, Tol);
    }

    [Fact]
    public void Ks_identical_single_and_constant_samples_match_scipy()
    {
        // stats.ks_2samp([1,2,3,4,5], [1,2,3,4,5]) -> statistic=0.0, pvalue=1.0
        var same = KolmogorovSmirnov.Test([1, 2, 3, 4, 5], [1, 2, 3, 4, 5]);
        Assert.Equal(0.0, same.Statistic);
        Assert.Equal(1.0, same.PValue);
        // stats.ks_2samp([1.0], [2.0]) -> statistic=1.0, pvalue=1.0
        var single = KolmogorovSmirnov.Test([1.0], [2.0]);
        Assert.Equal(1.0, single.Statistic);
        Assert.Equal(1.0, single.PValue, Tol);
        // stats.ks_2samp([5.0]*7, [5.0]*9) -> statistic=0.0, pvalue=1.0
        var constant = KolmogorovSmirnov.Test([5, 5, 5, 5, 5, 5, 5], [5, 5, 5, 5, 5, 5, 5, 5, 5]);
        Assert.Equal(0.0, constant.Statistic);
        Assert.Equal(1.0, constant.PValue);
    }

    [Theory]
    // stats.kstwo.sf(0.05, 500) -> 0.15866260223815365      (n > 140, Durbin matrix)
    [InlineData(500, 0.05, 0.15866260223815365)]
    // stats.kstwo.sf(0.02, 5000) -> 0.03613941395325637     (n > 140, Pelz-Good)
    [InlineData(5000, 0.02, 0.03613941395325637)]
    // stats.kstwo.sf(0.01, 50000) -> 9.018048811843602e-05  (n x^2 >= 2.2: 2 * smirnov)
    [InlineData(50000, 0.01, 9.018048811843602e-05)]
    // stats.kstwo.sf(0.003, 200000) -> 0.0545369786611305   (n > 100000: Pelz-Good)
    [InlineData(200000, 0.003, 0.0545369786611305)]
    // stats.kstwo.sf(0.1, 100) -> 0.2526927570063874        (n <= 140, Pomeranz)
    [InlineData(100, 0.1, 0.2526927570063874)]
    // stats.kstwo.sf(0.2, 100) -> 0.0005551927327988775     (n <= 140, 2 * smirnov)
    [InlineData(100, 0.2, 0.0005551927327988775)]
    // stats.kstwo.sf(0.06, 100) -> 0.8428847956274123       (n <= 140, Durbin matrix)
    [InlineData(100, 0.06, 0.8428847956274123)]
    // stats.kstwo.sf(0.004, 2000000) -> 3.199079428897566e-28 (n > 10^6: smirnov's large-n formula)
    [InlineData(2000000, 0.004, 3.199079428897566e-28)]
    public void Kolmogorov_distribution_tail_matches_scipy_kstwo(long n, double x, double expected)
    {
        Assert.Equal(expected, KolmogorovDistribution.TwoSidedSf(n, x), Tol);
    }

    [Theory]
    // special.smirnov(1000, 0.05) -> 0.006506037390545166
    [InlineData(1000, 0.05, 0.006506037390545166)]
    // special.smirnov(500000, 0.002) -> 0.018291201767145205
    [InlineData(500000, 0.002, 0.018291201767145205)]
    public void Smirnov_matches_scipy(long n, double x, double expected)
    {
        Assert.Equal(expected, KolmogorovDistribution.Smirnov(n, x), 1e-9);
    }

    [Theory]
    // special.gammaincc(0.5, 0.3) -> 0.4385780260809997
    [InlineData(0.5, 0.3, 0.4385780260809997)]
    // special.gammaincc(3, 7.5) -> 0.020256715056664387
    [InlineData(3, 7.5, 0.020256715056664387)]
    // special.gammaincc(250, 280) -> 0.03235481928208544
    [InlineData(250, 280, 0.03235481928208544)]
    // special.gammaincc(10, 1) -> 0.9999998885745217
    [InlineData(10, 1, 0.9999998885745217)]
    public void Upper_incomplete_gamma_matches_scipy_gammaincc(double a, double x, double expected)
    {
        Assert.Equal(expected, SpecialFunctions.GammaQ(a, x), 1e-12);
    }

    [Fact]
    public void Normal_tail_matches_scipy()
    {
        // 2*(1-stats.norm.cdf(1.7)) -> 0.08913092551708601
        Assert.Equal(0.08913092551708601, 2 * SpecialFunctions.NormalSf(1.7), 1e-12);
        // stats.norm.sf(9) -> 1.1285884059538324e-19 (relative check: the tail is computed directly)
        Assert.Equal(1.1285884059538324e-19, SpecialFunctions.NormalSf(9), 1e-30);
    }

    [Fact]
    public void Chi_square_matches_scipy_chisquare()
    {
        // Reference counts scaled so their total equals the current total (184), as Evidently does:
        // stats.chisquare([30,14,34,45,57], [29.6,21.1,33.2,43.9,52.2]) -> statistic=2.882723992619339, pvalue=0.5776391475166863
        var r = ChiSquare.Test([29.6, 21.1, 33.2, 43.9, 52.2], [30, 14, 34, 45, 57]);
        Assert.Equal(2.882723992619339, r.Statistic, Tol);
        Assert.Equal(0.5776391475166863, r.PValue, Tol);
        Assert.Equal(4, r.DegreesOfFreedom);
    }

    [Fact]
    public void Chi_square_category_unseen_in_reference_is_certain_drift()
    {
        // scipy: stats.chisquare([5, 5, 1], [5.5, 5.5, 0]) -> statistic=inf, pvalue=0.0 (division by the zero expectation)
        var r = ChiSquare.Test([10, 10, 0], [5, 5, 1]);
        Assert.True(double.IsPositiveInfinity(r.Statistic));
        Assert.Equal(0.0, r.PValue);
    }

    [Fact]
    public void Chi_square_single_category_on_both_sides_is_no_drift()
    {
        // stats.chisquare([5], [5]) -> statistic=0.0, pvalue=nan: Kiln defines p = 1 (nothing can have moved).
        var r = ChiSquare.Test([12], [5]);
        Assert.Equal(0.0, r.Statistic);
        Assert.Equal(1.0, r.PValue);
    }

    [Fact]
    public void Jensen_shannon_matches_scipy_in_both_bases()
    {
        // distance.jensenshannon([0.1,0.2,0.7], [0.3,0.3,0.4]) -> 0.2278426194505835
        Assert.Equal(0.2278426194505835, Distances.JensenShannon([0.1, 0.2, 0.7], [0.3, 0.3, 0.4]), 1e-12);
        // distance.jensenshannon([0.1,0.2,0.7], [0.3,0.3,0.4], 2) -> 0.27366687589869926
        Assert.Equal(0.27366687589869926, Distances.JensenShannon([0.1, 0.2, 0.7], [0.3, 0.3, 0.4], 2), 1e-12);
        // Counts are normalized first, as scipy does: the same shares from counts.
        Assert.Equal(0.2278426194505835, Distances.JensenShannon([1, 2, 7], [30, 30, 40]), 1e-12);
    }

    [Fact]
    public void Wasserstein_and_normed_wasserstein_match_scipy()
    {
        var a = (double[])A.Clone();
        var b = (double[])B.Clone();
        Array.Sort(a);
        Array.Sort(b);
        // stats.wasserstein_distance(a, b) -> 0.5961999999999998
        Assert.Equal(0.5961999999999998, Distances.WassersteinSorted(a, b), 1e-12);
        // stats.wasserstein_distance(a, b) / max(np.std(a), 0.001) -> 0.5961999999999998 / 1.0890835780600128
        Assert.Equal(0.5961999999999998 / 1.0890835780600128, Distances.WassersteinNormedSorted(a, b), 1e-12);
    }

    [Fact]
    public void Z_test_matches_evidently_formula()
    {
        // n1=200 (60 successes), n2=150 (30 successes):
        // p1, p2 = .3, .2; P = 90/350; z = (p1-p2)/np.sqrt(P*(1-P)*(1/200+1/150)); 2*(1-stats.norm.cdf(abs(z)))
        // -> z = 2.118296364340808, p = 0.03414997635455563
        var r = ZTest.TwoProportions(60, 200, 30, 150);
        Assert.Equal(2.118296364340808, r.Statistic, 1e-9);
        Assert.Equal(0.03414997635455563, r.PValue, 1e-9);
    }
}
