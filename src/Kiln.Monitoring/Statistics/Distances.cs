using System.Runtime.CompilerServices;

namespace Kiln.Monitoring.Statistics;

/// <summary>
/// Distances between a reference and a current distribution. The binned distances take counts (or shares) per bin
/// or category, the two spans indexing the same bins; each side is normalized to sum to 1 first.
/// </summary>
public static class Distances
{
    /// <summary>
    /// The floor Evidently puts in empty bins before PSI: a share of 0 becomes 0.0001, or min(non-zero share)/10^6 when
    /// the smallest non-zero share is itself at most 0.0001. It applies per side.
    /// </summary>
    public static double EmptyBinShare(ReadOnlySpan<double> shares)
    {
        var min = double.PositiveInfinity;
        foreach (var s in shares)
        {
            if (s > 0 && s < min) min = s;
        }
        if (double.IsPositiveInfinity(min)) return 0.0001;
        return min <= 0.0001 ? min / 1e6 : 0.0001;
    }

    /// <summary>
    /// Population stability index Σ (r_i - c_i)·ln(r_i / c_i) over shares, with empty bins floored by
    /// <see cref="EmptyBinShare"/> on each side (Evidently's rule). NaN when either side is empty.
    /// </summary>
    public static double Psi(ReadOnlySpan<double> referenceCounts, ReadOnlySpan<double> currentCounts)
    {
        CheckSameLength(referenceCounts, currentCounts);
        var rt = Sum(referenceCounts);
        var ct = Sum(currentCounts);
        if (rt <= 0 || ct <= 0) return double.NaN;
        double rMin = double.PositiveInfinity, cMin = double.PositiveInfinity;
        for (var i = 0; i < referenceCounts.Length; i++)
        {
            var r = referenceCounts[i] / rt;
            var c = currentCounts[i] / ct;
            if (r > 0 && r < rMin) rMin = r;
            if (c > 0 && c < cMin) cMin = c;
        }
        var rFloor = rMin <= 0.0001 ? rMin / 1e6 : 0.0001;
        var cFloor = cMin <= 0.0001 ? cMin / 1e6 : 0.0001;
        var psi = 0.0;
        for (var i = 0; i < referenceCounts.Length; i++)
        {
            var r = referenceCounts[i] / rt;
            var c = currentCounts[i] / ct;
            if (r == 0) r = rFloor;
            if (c == 0) c = cFloor;
            psi += (r - c) * Math.Log(r / c);
        }
        return psi;
    }

    /// <summary>
    /// Jensen–Shannon distance sqrt((KL(p‖m) + KL(q‖m)) / 2), m = (p + q)/2, as scipy.spatial.distance.jensenshannon
    /// computes it; natural logarithm by default (Evidently passes base=None), so it lies in [0, sqrt(ln 2)]; with
    /// <paramref name="logBase"/> 2 it lies in [0, 1]. NaN when either side is empty.
    /// </summary>
    public static double JensenShannon(ReadOnlySpan<double> p, ReadOnlySpan<double> q, double logBase = Math.E)
    {
        CheckSameLength(p, q);
        var pt = Sum(p);
        var qt = Sum(q);
        if (pt <= 0 || qt <= 0) return double.NaN;
        var js = 0.0;
        for (var i = 0; i < p.Length; i++)
        {
            var pi = p[i] / pt;
            var qi = q[i] / qt;
            var m = (pi + qi) / 2.0;
            if (pi > 0) js += pi * Math.Log(pi / m);
            if (qi > 0) js += qi * Math.Log(qi / m);
        }
        if (logBase != Math.E) js /= Math.Log(logBase);
        return Math.Sqrt(Math.Max(js, 0) / 2.0);
    }

    /// <summary>
    /// Hellinger distance sqrt(1 - Σ sqrt(p_i q_i)) (the Bhattacharyya coefficient clipped to [0, 1], as Evidently
    /// computes it); 0 for identical distributions, 1 for disjoint ones. NaN when either side is empty.
    /// </summary>
    public static double Hellinger(ReadOnlySpan<double> p, ReadOnlySpan<double> q)
    {
        CheckSameLength(p, q);
        var pt = Sum(p);
        var qt = Sum(q);
        if (pt <= 0 || qt <= 0) return double.NaN;
        var bc = 0.0;
        for (var i = 0; i < p.Length; i++) bc += Math.Sqrt(p[i] / pt * (q[i] / qt));
        return Math.Sqrt(1 - Math.Clamp(bc, 0, 1));
    }

    /// <summary>
    /// The first Wasserstein distance between two samples (scipy.stats.wasserstein_distance): the area between the
    /// two empirical cdfs. Both spans must be sorted ascending and finite. NaN when either is empty.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static double WassersteinSorted(ReadOnlySpan<double> sortedU, ReadOnlySpan<double> sortedV)
    {
        if (sortedU.IsEmpty || sortedV.IsEmpty) return double.NaN;
        double nu = sortedU.Length, nv = sortedV.Length;
        int i = 0, j = 0;
        var total = sortedU.Length + sortedV.Length;
        var sum = 0.0;
        // Walk the merged order; between consecutive merged values x_k < x_{k+1} the cdfs are i/nu and j/nv.
        var previous = Math.Min(sortedU[0], sortedV[0]);
        for (var step = 0; step < total; step++)
        {
            if (j >= sortedV.Length || (i < sortedU.Length && sortedU[i] <= sortedV[j])) i++;
            else j++;
            if (i + j == total) break;
            double next;
            if (j >= sortedV.Length) next = sortedU[i];
            else if (i >= sortedU.Length) next = sortedV[j];
            else next = Math.Min(sortedU[i], sortedV[j]);
            var delta = next - previous;
            if (delta > 0) sum += Math.Abs(i / nu - j / nv) * delta;
            previous = next;
        }
        return sum;
    }

    /// <summary>
    /// Evidently's normed Wasserstein distance: <see cref="WassersteinSorted"/> divided by max(std(reference), 0.001),
    /// the reference's population standard deviation.
    /// </summary>
    public static double WassersteinNormedSorted(ReadOnlySpan<double> sortedReference, ReadOnlySpan<double> sortedCurrent)
    {
        var w = WassersteinSorted(sortedReference, sortedCurrent);
        return w / Math.Max(FiniteSample.PopulationStd(sortedReference), 0.001);
    }

    /// <summary>The normed Wasserstein distance when the reference's standard deviation is known (from a profile).</summary>
    public static double WassersteinNormed(double wasserstein, double referenceStd) => wasserstein / Math.Max(referenceStd, 0.001);

    private static double Sum(ReadOnlySpan<double> values)
    {
        var s = 0.0;
        foreach (var v in values) s += v;
        return s;
    }

    private static void CheckSameLength(ReadOnlySpan<double> a, ReadOnlySpan<double> b)
    {
        if (a.Length != b.Length) throw new ArgumentException("both distributions must have the same bins");
    }
}
