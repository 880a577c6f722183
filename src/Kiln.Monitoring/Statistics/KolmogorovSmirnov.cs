namespace Kiln.Monitoring.Statistics;

/// <summary>How the two-sample Kolmogorov–Smirnov p-value is computed (scipy.stats.ks_2samp's <c>method</c>).</summary>
public enum KsMethod
{
    /// <summary>Exact when both samples have at most 10 000 values, asymptotic otherwise.</summary>
    Auto,
    /// <summary>The exact distribution (falls back to asymptotic if it cannot be computed in doubles).</summary>
    Exact,
    /// <summary>The distribution of the one-sample statistic for n = round(n1·n2/(n1+n2)) (scipy.stats.kstwo).</summary>
    Asymptotic,
}

/// <summary>The result of a two-sample Kolmogorov–Smirnov test.</summary>
/// <param name="Statistic">D = sup |F1 - F2| (rounded to a multiple of 1/lcm(n1, n2) by the exact method, as scipy does).</param>
/// <param name="PValue">The two-sided p-value; NaN when either sample is empty.</param>
/// <param name="Method">The method actually used.</param>
public readonly record struct KsResult(double Statistic, double PValue, KsMethod Method);

/// <summary>The two-sided two-sample Kolmogorov–Smirnov test, computed as scipy.stats.ks_2samp does.</summary>
public static class KolmogorovSmirnov
{
    /// <summary>Above this sample size, <see cref="KsMethod.Auto"/> uses the asymptotic distribution (scipy's MAX_AUTO_N).</summary>
    public const int MaxAutoExactN = 10_000;

    /// <summary>Tests two samples; NaN and ±Infinity are left out (see <see cref="FiniteSample"/>). Sorts copies.</summary>
    public static KsResult Test(ReadOnlySpan<double> reference, ReadOnlySpan<double> current, KsMethod method = KsMethod.Auto)
    {
        var a = FiniteSample.SortedCopy(reference, out _, out _);
        var b = FiniteSample.SortedCopy(current, out _, out _);
        return TestSorted(a, b, method);
    }

    /// <summary>Tests two samples that are already sorted ascending and hold only finite values.</summary>
    public static KsResult TestSorted(ReadOnlySpan<double> sortedA, ReadOnlySpan<double> sortedB, KsMethod method = KsMethod.Auto)
    {
        long n1 = sortedA.Length, n2 = sortedB.Length;
        if (n1 == 0 || n2 == 0) return new KsResult(double.NaN, double.NaN, method);
        return TestStatistic(Statistic(sortedA, sortedB), n1, n2, method);
    }

    /// <summary>
    /// The test for a statistic <paramref name="d"/> already computed (e.g. by <see cref="CellCounts.KsStatistic"/>)
    /// between samples of <paramref name="n1"/> and <paramref name="n2"/> values.
    /// </summary>
    public static KsResult TestStatistic(double d, long n1, long n2, KsMethod method = KsMethod.Auto)
    {
        if (n1 <= 0 || n2 <= 0 || double.IsNaN(d)) return new KsResult(double.NaN, double.NaN, method);
        if (method == KsMethod.Auto) method = Math.Max(n1, n2) <= MaxAutoExactN ? KsMethod.Exact : KsMethod.Asymptotic;
        var g = Gcd(n1, n2);
        if (method == KsMethod.Exact && n1 / g >= int.MaxValue / (double)(n2 / g)) method = KsMethod.Asymptotic;
        if (method == KsMethod.Exact)
        {
            var lcm = n1 / g * n2;
            var h = (long)Math.Round(d * lcm, MidpointRounding.ToEven);
            var dExact = h * 1.0 / lcm;
            if (h == 0) return new KsResult(dExact, 1.0, KsMethod.Exact);
            var p = n1 == n2 ? ProbabilityOutsideSquare(n1, h) : ProbabilityOutsideInside(n1, n2, g, h);
            if (p is >= 0 and <= 1) return new KsResult(dExact, p, KsMethod.Exact);
            d = dExact; // scipy keeps the rounded statistic when it falls back
        }
        // Asymptotic: the one-sample distribution with the effective size n1·n2/(n1+n2), rounded half to even.
        double m = Math.Max(n1, n2), n = Math.Min(n1, n2);
        var en = m * n / (m + n);
        var size = (long)Math.Round(en, MidpointRounding.ToEven);
        var prob = KolmogorovDistribution.TwoSidedSf(size, d);
        return new KsResult(d, Math.Clamp(prob, 0, 1), KsMethod.Asymptotic);
    }

    /// <summary>D = max over all observed values of |F_a(x) - F_b(x)|, with right-continuous empirical cdfs.</summary>
    public static double Statistic(ReadOnlySpan<double> sortedA, ReadOnlySpan<double> sortedB)
    {
        double n1 = sortedA.Length, n2 = sortedB.Length;
        int i = 0, j = 0;
        double maxDiff = 0, minDiff = 0;
        while (i < sortedA.Length || j < sortedB.Length)
        {
            double v;
            if (j >= sortedB.Length || (i < sortedA.Length && sortedA[i] <= sortedB[j])) v = sortedA[i];
            else v = sortedB[j];
            while (i < sortedA.Length && sortedA[i] <= v) i++;
            while (j < sortedB.Length && sortedB[j] <= v) j++;
            var diff = i / n1 - j / n2;
            if (diff > maxDiff) maxDiff = diff;
            if (diff < minDiff) minDiff = diff;
        }
        var minS = Math.Clamp(-minDiff, 0, 1);
        return minS > maxDiff ? minS : maxDiff;
    }

    private static long Gcd(long a, long b)
    {
        while (b != 0) (a, b) = (b, a % b);
        return a;
    }

    // P(D_{n,n} >= h/n), by the alternating binomial sum written Horner-style to avoid cancellation.
    private static double ProbabilityOutsideSquare(long n, long h)
    {
        var p = 0.0;
        var k = (long)Math.Floor(n / (double)h);
        while (k >= 0)
        {
            var p1 = 1.0;
            for (long j = 0; j < h; j++) p1 = (n - k * h - j) * p1 / (n + k * h + j + 1);
            p = p1 * (1.0 - p);
            k--;
        }
        return 2 * p;
    }

    // 1 - (share of lattice paths from (0,0) to (m,n) staying strictly inside |x/m - y/n| < h/lcm), computed directly
    // as the complement (Hodges' inside method with Viehmann's recursion for 1 - p).
    private static double ProbabilityOutsideInside(long mIn, long nIn, long g, long h)
    {
        long m = Math.Max(mIn, nIn), n = Math.Min(mIn, nIn);
        var mg = m / g;
        var ng = n / g;
        long minj = 0;
        var maxj = Math.Min((long)Math.Ceiling(h / (double)mg), n + 1);
        var curlen = maxj - minj;
        var lenA = (int)Math.Min(2 * maxj + 2, n + 1);
        var a = new double[lenA];
        a.AsSpan().Fill(1.0);
        for (var t = minj; t < maxj; t++) a[t] = 0.0;
        for (long i = 1; i <= m; i++)
        {
            var lastminj = minj;
            var lastlen = curlen;
            minj = Math.Max((long)Math.Floor((ng * i - h) / (double)mg) + 1, 0);
            minj = Math.Min(minj, n);
            maxj = Math.Min((long)Math.Ceiling((ng * i + h) / (double)mg), n + 1);
            if (maxj <= minj) return 1.0;
            var val = minj == 0 ? 0.0 : 1.0;
            for (long jj = 0; jj < maxj - minj; jj++)
            {
                var j = jj + minj;
                val = (a[jj + minj - lastminj] * i + val * j) / (i + j);
                a[jj] = val;
            }
            curlen = maxj - minj;
            if (lastlen > curlen)
            {
                for (var t = maxj - minj; t < maxj - minj + (lastlen - curlen) && t < lenA; t++) a[t] = 1;
            }
        }
        return a[maxj - minj - 1];
    }
}
