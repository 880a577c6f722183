namespace Kiln.Monitoring.Statistics;

/// <summary>
/// Bins for the binned distances (PSI, Jensen–Shannon, Hellinger) on numeric columns: k bins between edges taken at
/// the reference's quantiles, plus one bin below the first edge and one above the last, so current values outside
/// the training range are counted rather than dropped. Bin i (0 &lt;= i &lt; k) holds edges[i] &lt;= x &lt; edges[i+1],
/// the last inner bin also holds x == edges[k] (numpy.histogram's convention).
/// </summary>
public static class Binning
{
    /// <summary>The default number of inner bins.</summary>
    public const int DefaultBins = 10;

    /// <summary>
    /// Edges at the reference's quantiles i/k (numpy.quantile's default linear interpolation), with repeated edges
    /// removed so no bin is empty by construction. A constant reference gives the single edge pair [v, v].
    /// </summary>
    public static double[] QuantileEdges(ReadOnlySpan<double> sortedReference, int bins = DefaultBins)
    {
        if (sortedReference.IsEmpty) return [];
        if (bins < 1) throw new ArgumentOutOfRangeException(nameof(bins), "at least one bin is needed");
        var edges = new double[bins + 1];
        var count = 0;
        for (var i = 0; i <= bins; i++)
        {
            var e = Quantile(sortedReference, (double)i / bins);
            if (count == 0 || e > edges[count - 1]) edges[count++] = e;
        }
        if (count == 1) return [edges[0], edges[0]];
        return edges.AsSpan(0, count).ToArray();
    }

    /// <summary>The q-quantile of a sorted sample with linear interpolation (numpy.quantile's default).</summary>
    public static double Quantile(ReadOnlySpan<double> sorted, double q)
    {
        if (sorted.IsEmpty) return double.NaN;
        var position = q * (sorted.Length - 1);
        var lo = (int)Math.Floor(position);
        var hi = Math.Min(lo + 1, sorted.Length - 1);
        var frac = position - lo;
        return sorted[lo] + (sorted[hi] - sorted[lo]) * frac;
    }

    /// <summary>The bin of x: 0 below the first edge, 1..k for the inner bins, k+1 above the last edge.</summary>
    public static int BinOf(ReadOnlySpan<double> edges, double x)
    {
        if (x < edges[0]) return 0;
        var last = edges.Length - 1;
        if (x > edges[last]) return last + 1;
        if (x == edges[last]) return last;
        // Largest i with edges[i] <= x.
        int lo = 0, hi = last;
        while (hi - lo > 1)
        {
            var mid = (lo + hi) >>> 1;
            if (edges[mid] <= x) lo = mid;
            else hi = mid;
        }
        return lo + 1;
    }

    /// <summary>
    /// Adds the finite values of <paramref name="values"/> to <paramref name="counts"/> (length edges.Length + 1:
    /// below, the inner bins, above); NaN and ±Infinity are skipped and counted.
    /// </summary>
    public static void Count(ReadOnlySpan<double> edges, ReadOnlySpan<double> values, Span<double> counts, out long missing, out long infinite)
    {
        if (counts.Length != edges.Length + 1) throw new ArgumentException("counts needs edges.Length + 1 cells", nameof(counts));
        missing = 0;
        infinite = 0;
        foreach (var v in values)
        {
            if (double.IsNaN(v)) { missing++; continue; }
            if (double.IsInfinity(v)) { infinite++; continue; }
            counts[BinOf(edges, v)]++;
        }
    }

    /// <summary>
    /// <see cref="Count"/> for sorted finite values: one walk up the edges instead of a search per value, into
    /// <paramref name="counts"/> (length edges.Length + 1: below, the inner bins, above).
    /// </summary>
    public static void CountSorted(ReadOnlySpan<double> edges, ReadOnlySpan<double> sorted, Span<double> counts)
    {
        if (counts.Length != edges.Length + 1) throw new ArgumentException("counts needs edges.Length + 1 cells", nameof(counts));
        var e = 0;
        var last = edges.Length - 1;
        foreach (var v in sorted)
        {
            if (v < edges[0]) { counts[0]++; continue; }
            if (v > edges[last]) { counts[^1]++; continue; }
            while (e < last - 1 && v >= edges[e + 1]) e++;
            counts[e + 1]++;
        }
    }

    /// <summary>Sorted values below <paramref name="min"/> plus those above <paramref name="max"/>, counted from both ends.</summary>
    public static long CountOutsideSorted(ReadOnlySpan<double> sorted, double min, double max)
    {
        long outside = 0;
        foreach (var v in sorted)
        {
            if (v < min) outside++;
            else break;
        }
        for (var i = sorted.Length - 1; i >= 0 && sorted[i] > max; i--) outside++;
        return outside;
    }
}
