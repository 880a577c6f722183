namespace Kiln.Monitoring.Statistics;

/// <summary>Special functions the tests need: log-gamma, the regularized incomplete gamma functions, erfc and the normal and chi-square tails.</summary>
public static class SpecialFunctions
{
    private const double HalfLogTwoPi = 0.91893853320467274178032973640562;

    // Lanczos approximation, g = 7, nine coefficients (relative error about 1e-15 for x in (0, 10)).
    private static readonly double[] Lanczos =
    [
        0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313,
        -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6,
        1.5056327351493116e-7,
    ];

    /// <summary>ln Γ(x) for x &gt; 0 (NaN otherwise).</summary>
    public static double LogGamma(double x)
    {
        if (double.IsNaN(x) || x <= 0) return double.NaN;
        if (double.IsPositiveInfinity(x)) return double.PositiveInfinity;
        if (x >= 10)
        {
            // Stirling's series: the correction terms are below 1e-17 relative for x >= 10.
            var r = 1.0 / x;
            var r2 = r * r;
            var series = r * (1.0 / 12 - r2 * (1.0 / 360 - r2 * (1.0 / 1260 - r2 * (1.0 / 1680 - r2 * (1.0 / 1188)))));
            return (x - 0.5) * Math.Log(x) - x + HalfLogTwoPi + series;
        }
        if (x < 0.5)
        {
            // Reflection keeps the Lanczos sum in its accurate range.
            return Math.Log(Math.PI / Math.Abs(Math.Sin(Math.PI * x))) - LogGamma(1 - x);
        }
        var z = x - 1;
        var a = Lanczos[0];
        var t = z + 7.5;
        for (var i = 1; i < Lanczos.Length; i++) a += Lanczos[i] / (z + i);
        return HalfLogTwoPi + (z + 0.5) * Math.Log(t) - t + Math.Log(a);
    }

    /// <summary>The regularized lower incomplete gamma function P(a, x) (scipy.special.gammainc).</summary>
    public static double GammaP(double a, double x)
    {
        if (double.IsNaN(a) || double.IsNaN(x) || a <= 0 || x < 0) return double.NaN;
        if (x == 0) return 0;
        if (double.IsPositiveInfinity(x)) return 1;
        return x < a + 1 ? GammaSeries(a, x) : 1 - GammaContinuedFraction(a, x);
    }

    /// <summary>The regularized upper incomplete gamma function Q(a, x) = 1 - P(a, x) (scipy.special.gammaincc).</summary>
    public static double GammaQ(double a, double x)
    {
        if (double.IsNaN(a) || double.IsNaN(x) || a <= 0 || x < 0) return double.NaN;
        if (x == 0) return 1;
        if (double.IsPositiveInfinity(x)) return 0;
        return x < a + 1 ? 1 - GammaSeries(a, x) : GammaContinuedFraction(a, x);
    }

    private static double LogPrefactor(double a, double x) => -x + a * Math.Log(x) - LogGamma(a);

    // P(a, x) by its power series; converges quickly for x < a + 1.
    private static double GammaSeries(double a, double x)
    {
        var ap = a;
        var term = 1.0 / a;
        var sum = term;
        for (var n = 0; n < 100_000; n++)
        {
            ap += 1;
            term *= x / ap;
            sum += term;
            if (Math.Abs(term) < Math.Abs(sum) * 1e-17) break;
        }
        return Math.Min(1.0, sum * Math.Exp(LogPrefactor(a, x)));
    }

    // Q(a, x) by its continued fraction (modified Lentz); converges quickly for x >= a + 1.
    private static double GammaContinuedFraction(double a, double x)
    {
        const double tiny = 1e-300;
        var b = x + 1 - a;
        var c = 1 / tiny;
        var d = 1 / b;
        var h = d;
        for (var i = 1; i < 100_000; i++)
        {
            var an = -i * (i - a);
            b += 2;
            d = an * d + b;
            if (Math.Abs(d) < tiny) d = tiny;
            c = b + an / c;
            if (Math.Abs(c) < tiny) c = tiny;
            d = 1 / d;
            var delta = d * c;
            h *= delta;
            if (Math.Abs(delta - 1) < 1e-16) break;
        }
        return Math.Min(1.0, Math.Exp(LogPrefactor(a, x)) * h);
    }

    /// <summary>The complementary error function erfc(x).</summary>
    public static double Erfc(double x)
    {
        if (double.IsNaN(x)) return double.NaN;
        return x >= 0 ? GammaQ(0.5, x * x) : 2 - GammaQ(0.5, x * x);
    }

    /// <summary>The standard normal upper tail 1 - Φ(z), accurate far into the tail.</summary>
    public static double NormalSf(double z) => 0.5 * Erfc(z / Math.Sqrt(2));

    /// <summary>The standard normal cdf Φ(z).</summary>
    public static double NormalCdf(double z) => 0.5 * Erfc(-z / Math.Sqrt(2));

    /// <summary>The chi-square upper tail with <paramref name="degreesOfFreedom"/> degrees of freedom (scipy.stats.chi2.sf).</summary>
    public static double ChiSquareSf(double statistic, double degreesOfFreedom)
    {
        if (double.IsNaN(statistic) || degreesOfFreedom <= 0) return double.NaN;
        if (statistic <= 0) return 1;
        return GammaQ(degreesOfFreedom / 2, statistic / 2);
    }
}
