namespace Kiln.Monitoring.Statistics;

/// <summary>
/// The distribution of the one-sample Kolmogorov–Smirnov statistic D_n (scipy.stats.kstwo) and of the one-sided
/// D+_n (scipy.special.smirnov). The two-sample test uses <see cref="TwoSidedSf"/> for its asymptotic p-value, as
/// scipy.stats.ks_2samp does. The method chosen for each (n, x) follows Simard and L'Ecuyer (2011), the same
/// selection scipy makes, so values agree with scipy to rounding.
/// </summary>
public static class KolmogorovDistribution
{
    private const int SmirnovMaxExactN = 1_000_000;
    private const double Scale = 3.4028236692093846e38; // 2^128
    private const double InverseScale = 2.938735877055719e-39; // 2^-128
    private static readonly double SqrtTwoPi = Math.Sqrt(2 * Math.PI);

    /// <summary>P(D_n &gt;= x): the upper tail of the two-sided one-sample statistic for a sample of n.</summary>
    public static double TwoSidedSf(long n, double x)
    {
        if (n <= 0 || double.IsNaN(x)) return double.NaN;
        if (x >= 1) return 0;
        if (x <= 0) return 1;
        var t = n * x;
        if (t <= 1.0)
        {
            // Ruben–Gambino: exact for 1/(2n) <= x <= 1/n.
            if (t <= 0.5) return 1;
            double cdf;
            if (n <= 140)
            {
                cdf = 1.0;
                for (var i = 1; i <= n; i++) cdf *= i * (1.0 / n) * (2 * t - 1);
            }
            else
            {
                cdf = Math.Exp(LogFactorialOverPower(n) + n * Math.Log(2 * t - 1));
            }
            return Clip(1 - cdf);
        }
        if (t >= n - 1) return Clip(2 * Math.Pow(1 - x, n));
        if (x >= 0.5) return Clip(2 * Smirnov(n, x));
        var nxSquared = t * x;
        if (n <= 140)
        {
            if (nxSquared <= 0.754693) return Clip(1 - DurbinMatrix(n, x));
            if (nxSquared <= 4) return Clip(1 - Pomeranz(n, x));
            return Clip(2 * Smirnov(n, x));
        }
        if (nxSquared >= 370.0) return 0;
        if (nxSquared >= 2.2) return Clip(2 * Smirnov(n, x));
        double p;
        if (n <= 100_000 && n * Math.Pow(x, 1.5) <= 1.4) p = DurbinMatrix(n, x);
        else p = PelzGood(n, x);
        return Clip(1 - p);
    }

    /// <summary>P(D+_n &gt;= x) (scipy.special.smirnov): Smirnov/Birnbaum–Tingey's sum, exact up to n = 10^6.</summary>
    public static double Smirnov(long n, double x)
    {
        if (n <= 0 || double.IsNaN(x)) return double.NaN;
        if (x >= 1) return 0;
        if (x <= 0) return 1;
        if (n > SmirnovMaxExactN)
        {
            // scipy's shortcut for very large n: p ~ exp(-(6nx+1)^2 / 18n).
            var logp = -Math.Pow(6.0 * n * x + 1, 2) / 18.0 / n;
            return Math.Exp(logp);
        }
        if (n == 1) return 1 - x;
        // The terms are positive (no cancellation) and, as a function of j, rise to a single peak (near
        // j = n(1/2 - x) for large n) and fall. Find the peak by ternary search, then sum outward from it until the
        // terms are negligible: O(sqrt(n)) terms instead of n.
        var nd = (double)n;
        var last = (long)Math.Floor(nd * (1 - x));
        if ((nd - last - nd * x) / nd <= 0) last--; // that term is (1 - x - j/n)^(n-j) = 0
        if (last < 0) return 0;
        var logFactN = SpecialFunctions.LogGamma(nd + 1);
        var logX = Math.Log(x);
        long lo = 0, hi = last;
        while (hi - lo > 2)
        {
            var m1 = lo + (hi - lo) / 3;
            var m2 = hi - (hi - lo) / 3;
            if (SmirnovLogTerm(n, x, m1, logFactN, logX) < SmirnovLogTerm(n, x, m2, logFactN, logX)) lo = m1 + 1;
            else hi = m2 - 1;
        }
        var peak = lo;
        var best = SmirnovLogTerm(n, x, lo, logFactN, logX);
        for (var j = lo + 1; j <= hi; j++)
        {
            var t = SmirnovLogTerm(n, x, j, logFactN, logX);
            if (t > best) (best, peak) = (t, j);
        }
        var sum = Math.Exp(best);
        var previous = sum;
        for (var j = peak - 1; j >= 0; j--)
        {
            var term = Math.Exp(SmirnovLogTerm(n, x, j, logFactN, logX));
            sum += term;
            if (term < previous && term <= sum * 1e-20) break;
            previous = term;
        }
        previous = Math.Exp(best);
        for (var j = peak + 1; j <= last; j++)
        {
            var term = Math.Exp(SmirnovLogTerm(n, x, j, logFactN, logX));
            sum += term;
            if (term < previous && term <= sum * 1e-20) break;
            previous = term;
        }
        return Clip(sum);
    }

    // log of C(n, j) · x · (x + j/n)^(j-1) · (1 - x - j/n)^(n-j).
    private static double SmirnovLogTerm(long n, double x, long j, double logFactN, double logX)
    {
        var nd = (double)n;
        var rest = (nd - j - nd * x) / nd;
        return logFactN - SpecialFunctions.LogGamma(j + 1.0) - SpecialFunctions.LogGamma(nd - j + 1)
            + logX + (j - 1) * Math.Log(x + j / nd) + (nd - j) * Math.Log(rest);
    }

    private static double Clip(double p) => double.IsNaN(p) ? p : Math.Clamp(p, 0.0, 1.0);

    // log(n! / n^n) by Stirling's series (scipy's _log_nfactorial_div_n_pow_n).
    private static double LogFactorialOverPower(long n)
    {
        var rn = 1.0 / n;
        ReadOnlySpan<double> c =
        [
            -2.955065359477124183e-2, 6.4102564102564102564e-3, -1.9175269175269175269e-3, 8.4175084175084175084e-4,
            -5.952380952380952381e-4, 7.9365079365079365079e-4, -2.7777777777777777778e-3, 8.3333333333333333333e-2,
        ];
        var y = rn / n;
        var poly = 0.0;
        foreach (var coefficient in c) poly = poly * y + coefficient;
        return Math.Log(n) / 2 - n + Math.Log(2 * Math.PI) / 2 + rn * poly;
    }

    // P(D_n < x) by Durbin's matrix, as Marsaglia, Tsang and Wang compute it (with exponent tracking).
    private static double DurbinMatrix(long n, double d)
    {
        if (d >= 1.0) return 1.0;
        var nd = n * d;
        if (nd <= 0.5) return 0.0;
        var k = (int)Math.Ceiling(nd);
        var h = k - nd;
        var m = 2 * k - 1;
        var hm = new double[m * m];
        var v = new double[m];
        var w = new double[m];
        var fac = 1.0;
        for (var j = 1; j <= m; j++)
        {
            v[j - 1] = 1.0 - Math.Pow(h, j);
            w[j - 1] = fac;
            fac /= j;
            v[j - 1] *= fac;
        }
        var tt = Math.Pow(Math.Max(2 * h - 1.0, 0), m) - 2 * Math.Pow(h, m);
        v[m - 1] = (1.0 + tt) * fac;
        for (var i = 1; i < m; i++)
        {
            for (var r = i - 1; r < m; r++) hm[r * m + i] = w[r - (i - 1)];
        }
        for (var r = 0; r < m; r++) hm[r * m] = v[r];
        for (var c = 0; c < m; c++) hm[(m - 1) * m + c] = v[m - 1 - c];

        var power = new double[m * m];
        for (var i = 0; i < m; i++) power[i * m + i] = 1;
        var scratch = new double[m * m];
        var nn = n;
        var exponent = 0;
        var hExponent = 0;
        while (nn > 0)
        {
            if (nn % 2 == 1)
            {
                Multiply(power, hm, scratch, m);
                (power, scratch) = (scratch, power);
                exponent += hExponent;
            }
            Multiply(hm, hm, scratch, m);
            (hm, scratch) = (scratch, hm);
            hExponent *= 2;
            if (Math.Abs(hm[(k - 1) * m + k - 1]) > Scale)
            {
                for (var i = 0; i < hm.Length; i++) hm[i] /= Scale;
                hExponent += 128;
            }
            nn /= 2;
        }
        var p = power[(k - 1) * m + k - 1];
        for (long i = 1; i <= n; i++)
        {
            p = i * p / n;
            if (Math.Abs(p) < InverseScale)
            {
                p *= Scale;
                exponent -= 128;
            }
        }
        if (exponent != 0) p = Math.ScaleB(p, exponent);
        return Clip(p);
    }

    private static void Multiply(double[] a, double[] b, double[] result, int m)
    {
        Array.Clear(result);
        for (var i = 0; i < m; i++)
        {
            for (var l = 0; l < m; l++)
            {
                var ail = a[i * m + l];
                if (ail == 0) continue;
                var row = i * m;
                var brow = l * m;
                for (var j = 0; j < m; j++) result[row + j] += ail * b[brow + j];
            }
        }
    }

    private static (int J1, int J2) PomeranzBounds(int i, int n, int ll, int ceilf, int roundf)
    {
        int j1, j2;
        if (i == 0)
        {
            j1 = -ll - ceilf - 1;
            j2 = ll + ceilf - 1;
        }
        else
        {
            var half = (i + 1) / 2;
            var odd = (i + 1) % 2 == 0;
            if (odd)
            {
                if (half == n + 1)
                {
                    j1 = n - ll - ceilf - 1;
                    j2 = n + ll + ceilf - 1;
                }
                else
                {
                    j1 = half - 1 - ll - roundf - 1;
                    j2 = half + ll - 1 + ceilf - 1;
                }
            }
            else
            {
                j1 = half - 1 - ll - 1;
                j2 = half + ll + roundf - 1;
            }
        }
        return (Math.Max(j1 + 2, 0), Math.Min(j2, n));
    }

    // P(D_n < x) by Pomeranz's recursion (used for n <= 140).
    private static double Pomeranz(long nLong, double x)
    {
        var n = (int)nLong;
        var t = n * x;
        var ll = (int)Math.Floor(t);
        var f = t - ll;
        var g = Math.Min(f, 1.0 - f);
        var ceilf = f > 0 ? 1 : 0;
        var roundf = f > 0.5 ? 1 : 0;
        var npwrs = 2 * (ll + 1);
        var gpower = new double[npwrs];
        var twogpower = new double[npwrs];
        var onem2gpower = new double[npwrs];
        gpower[0] = twogpower[0] = onem2gpower[0] = 1.0;
        var exponent = 0;
        double gOverN = g / n, twoGOverN = 2 * g / n, oneMinusTwoGOverN = (1 - 2 * g) / n;
        for (var m = 1; m < npwrs; m++)
        {
            gpower[m] = gpower[m - 1] * gOverN / m;
            twogpower[m] = twogpower[m - 1] * twoGOverN / m;
            onem2gpower[m] = onem2gpower[m - 1] * oneMinusTwoGOverN / m;
        }
        var v0 = new double[npwrs];
        var v1 = new double[npwrs];
        v1[0] = 1;
        int v0s = 0, v1s = 0;
        var (j1, j2) = PomeranzBounds(0, n, ll, ceilf, roundf);
        var conv = new double[2 * npwrs];
        for (var i = 1; i < 2 * n + 2; i++)
        {
            var k1 = j1;
            (v0, v1) = (v1, v0);
            (v0s, v1s) = (v1s, v0s);
            Array.Clear(v1);
            (j1, j2) = PomeranzBounds(i, n, ll, ceilf, roundf);
            var pwrs = i == 1 || i == 2 * n + 1 ? gpower : (i % 2 == 1 ? twogpower : onem2gpower);
            var ln2 = j2 - k1 + 1;
            if (ln2 > 0)
            {
                var start = k1 - v0s;
                var segment = Math.Min(ln2, npwrs - start);
                var plen = Math.Min(ln2, npwrs);
                var convLength = segment + plen - 1;
                Array.Clear(conv, 0, Math.Max(convLength, 0));
                for (var a = 0; a < segment; a++)
                {
                    var va = v0[start + a];
                    if (va == 0) continue;
                    for (var b = 0; b < plen; b++) conv[a + b] += va * pwrs[b];
                }
                var convStart = j1 - k1;
                var convLen = j2 - j1 + 1;
                var max = 0.0;
                for (var c = 0; c < convLen; c++)
                {
                    var idx = convStart + c;
                    var value = idx < convLength ? conv[idx] : 0.0;
                    v1[c] = value;
                    if (value > max) max = value;
                }
                if (max > 0 && max < InverseScale)
                {
                    for (var c = 0; c < v1.Length; c++) v1[c] *= Scale;
                    exponent -= 128;
                }
                v1s = v0s + j1 - k1;
            }
        }
        var ans = v1[n - v1s];
        for (var m = 1; m <= n; m++)
        {
            if (Math.Abs(ans) > Scale)
            {
                ans *= InverseScale;
                exponent += 128;
            }
            ans *= m;
        }
        if (exponent != 0) ans = Math.ScaleB(ans, exponent);
        return Clip(ans);
    }

    // P(D_n < x) by Pelz and Good's approximation (large n).
    private static double PelzGood(long n, double x)
    {
        if (x <= 0.0) return 0.0;
        if (x >= 1.0) return 1.0;
        const double pi2 = Math.PI * Math.PI;
        var pi4 = pi2 * pi2;
        var pi6 = pi4 * pi2;
        var z = Math.Sqrt(n) * x;
        double z2 = z * z, z3 = z2 * z, z4 = z2 * z2, z6 = z4 * z2;
        var qlog = -pi2 / 8 / z2;
        if (qlog < -708) return 0.0;
        var q = Math.Exp(qlog);
        var k1a = -z2;
        var k1b = pi2 / 4;
        var k2a = 6 * z6 + 2 * z4;
        var k2b = (2 * z4 - 5 * z2) * pi2 / 4;
        var k2c = pi4 * (1 - 2 * z2) / 16;
        var k3d = pi6 * (5 - 30 * z2) / 64;
        var k3c = pi4 * (-60 * z2 + 212 * z4) / 16;
        var k3b = pi2 * (135 * z4 - 96 * z6) / 4;
        var k3a = -30 * z6 - 90 * Math.Pow(z, 8);
        double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        var maxk = (int)Math.Ceiling(16 * z / Math.PI);
        for (var k = maxk; k > 0; k--)
        {
            double m = 2 * k - 1;
            double m2 = m * m, m4 = m2 * m2, m6 = m4 * m2;
            var qpower = Math.Pow(q, 8 * k);
            s0 = s0 * qpower + 1.0;
            s1 = s1 * qpower + (k1a + k1b * m2);
            s2 = s2 * qpower + (k2a + k2b * m2 + k2c * m4);
            s3 = s3 * qpower + (k3a + k3b * m2 + k3c * m4 + k3d * m6);
        }
        s0 *= q * SqrtTwoPi / z;
        s1 *= q * SqrtTwoPi / (6 * z4);
        s2 *= q * SqrtTwoPi / (72 * Math.Pow(z, 7));
        s3 *= q * SqrtTwoPi / (6480 * Math.Pow(z, 10));
        var q2 = Math.Exp(-pi2 / 2 / z2);
        double k2extra = 0, k3extra = 0;
        var sqrt3z = Math.Sqrt(3) * z;
        for (var k = maxk; k > 0; k--)
        {
            double ks2 = (double)k * k;
            var qp = Math.Pow(q2, ks2);
            k2extra += ks2 * qp;
            var kspi = Math.PI * k;
            k3extra += (sqrt3z + kspi) * (sqrt3z - kspi) * ks2 * qp;
        }
        k2extra *= pi2 * SqrtTwoPi / (-36 * z3);
        k3extra *= pi2 * SqrtTwoPi / (216 * z6);
        s2 += k2extra;
        s3 += k3extra;
        var sqrtN = Math.Sqrt(n);
        return s0 + s1 / sqrtN + s2 / n + s3 / (n * sqrtN);
    }
}
