using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Kiln.Monitoring.Statistics;

/// <summary>
/// A current sample counted over a reference's <see cref="CutPoints"/>, in one pass and without sorting it: per cut
/// point the values equal to it, per open interval between two points the values inside and the sum of their
/// distances to the interval's end. That is all the two-sample KS statistic needs (the reference's cdf is constant
/// inside an interval, so |F_ref − F_cur| is largest at an interval's ends), all the bin counts and out-of-range counts
/// need (the edges and the range are points), and all the Wasserstein distance needs where the two cdfs do not cross
/// inside an interval; the few intervals where they cross keep their values, sorted, for an ordered walk.
/// </summary>
public sealed class CellCounts
{
    private const int FewCapacity = 7; // bit patterns: an eighth means at least seven distinct numbers (only ±0 share one)
    private readonly long[] _open;
    private readonly long[] _at;
    private readonly double[] _sums;
    private readonly int[]? _segment;
    private readonly ReadOnlyMemory<double> _crossing;
    private readonly ulong[] _few;
    private readonly long[] _fewCounts;
    private readonly int _fewUsed;
    private double SumScale { get; init; } // turns a sum per value read into a sum per finite value

    private CellCounts(CutPoints cuts, long[] open, long[] at, double[] sums, int[]? segment, ReadOnlyMemory<double> crossing,
        ulong[] few, long[] fewCounts, int fewUsed)
    {
        Cuts = cuts;
        _open = open;
        _at = at;
        _sums = sums;
        _segment = segment;
        _crossing = crossing;
        _few = few;
        _fewCounts = fewCounts;
        _fewUsed = fewUsed;
    }

    /// <summary>The reference's points the values were counted over.</summary>
    public CutPoints Cuts { get; }

    /// <summary>Finite values counted.</summary>
    public long Count { get; private init; }

    /// <summary>NaN values (missing).</summary>
    public long Missing { get; private init; }

    /// <summary>±Infinity values (left out of every count).</summary>
    public long Infinite { get; private init; }

    /// <summary>The smallest finite value; NaN when there is none.</summary>
    public double Min { get; private init; }

    /// <summary>The largest finite value; NaN when there is none.</summary>
    public double Max { get; private init; }

    /// <summary>
    /// True when the values hold at most seven distinct bit patterns (more means at least six distinct numbers, as only
    /// ±0 share a number): they were not kept for the Wasserstein walk, and <see cref="WriteSorted"/> gives them all,
    /// sorted, for the value-count tests that few distinct values call for.
    /// </summary>
    public bool Few => _fewUsed >= 0;

    /// <summary>
    /// Counts the finite values of <paramref name="values"/> (NaN and ±Infinity are counted apart). The values of
    /// intervals where the two cdfs cross are kept, sorted, in <paramref name="buffer"/> (at least as long as the
    /// values; null: a new array), which must outlive the result.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static CellCounts Of(CutPoints cuts, ReadOnlySpan<double> values, double[]? buffer = null)
    {
        if (buffer is not null && buffer.Length < values.Length) throw new ArgumentException("the buffer is shorter than the values", nameof(buffer));
        var points = cuts.Values;
        var p = points.Length;
        var last = points[p - 1];
        var open = new long[p + 1];
        var at = new long[p];
        var sums = new double[p + 1];
        var few = new ulong[FewCapacity];
        var fewCounts = new long[FewCapacity];
        var fewUsed = 0;
        long missing = 0, infinite = 0;
        double min = double.PositiveInfinity, max = double.NegativeInfinity;
        // The distances are summed divided by the number of values, so that a sum of many values near ±1e308 stays finite.
        var perValue = 1.0 / Math.Max(values.Length, 1);
        // Each value's cell (2t: open interval t; 2t+1: point t; -1: not finite), for gathering the crossing ones.
        var ids = ArrayPool<int>.Shared.Rent(Math.Max(values.Length, 1));
        try
        {
            // The arrays are read and written through references (no bounds checks in the loop): t is at most p, and
            // open and sums hold p + 1 counts, at p.
            var finder = new CutPoints.Finder(cuts);
            ref var openAt = ref MemoryMarshal.GetArrayDataReference(open);
            ref var pointAt = ref MemoryMarshal.GetArrayDataReference(at);
            ref var sumAt = ref MemoryMarshal.GetArrayDataReference(sums);
            ref var idAt = ref MemoryMarshal.GetArrayDataReference(ids);
            for (var i = 0; i < values.Length; i++)
            {
                var v = values[i];
                if (!double.IsFinite(v))
                {
                    if (double.IsNaN(v)) missing++;
                    else infinite++;
                    Unsafe.Add(ref idAt, i) = -1;
                    continue;
                }
                if (v < min) min = v;
                if (v > max) max = v;
                if (fewUsed >= 0) fewUsed = Track(v, few, fewCounts, fewUsed);
                var t = finder.AtOrBelow(v);
                if (t > 0 && finder.Point(t - 1) == v)
                {
                    Unsafe.Add(ref pointAt, t - 1)++;
                    Unsafe.Add(ref idAt, i) = 2 * t - 1;
                }
                else
                {
                    Unsafe.Add(ref openAt, t)++;
                    Unsafe.Add(ref sumAt, t) += (t < p ? finder.Point(t) - v : v - last) * perValue;
                    Unsafe.Add(ref idAt, i) = 2 * t;
                }
            }
            var count = values.Length - missing - infinite;
            int[]? segment = null;
            ReadOnlyMemory<double> crossing = ReadOnlyMemory<double>.Empty;
            if (fewUsed < 0 && count > 0)
            {
                // Intervals where the reference's cdf (constant inside) lies strictly between the current's at the
                // interval's two ends: the integral of |F_ref − F_cur| there needs the values in order.
                double nu = cuts.SampleCount, nv = count;
                long j = 0;
                var total = 0;
                for (var t = 0; t <= p; t++)
                {
                    var inside = open[t];
                    if (t > 0 && t < p && inside > 0)
                    {
                        var c = cuts.SampleAtOrBelow[t - 1] / nu;
                        if (c - j / nv > 0 && c - (j + inside) / nv < 0)
                        {
                            segment ??= NewSegments(p + 1);
                            segment[t] = total;
                            total += checked((int)inside);
                        }
                    }
                    j += inside;
                    if (t < p) j += at[t];
                }
                if (segment is not null)
                {
                    var kept = buffer ?? new double[total];
                    var next = (int[])segment.Clone();
                    for (var i = 0; i < values.Length; i++)
                    {
                        var id = ids[i];
                        if (id < 0 || (id & 1) != 0) continue;
                        var s = next[id >> 1];
                        if (s < 0) continue;
                        kept[s] = values[i];
                        next[id >> 1] = s + 1;
                    }
                    for (var t = 0; t <= p; t++)
                    {
                        if (segment[t] >= 0) kept.AsSpan(segment[t], (int)open[t]).Sort();
                    }
                    crossing = kept.AsMemory(0, total);
                }
            }
            return new CellCounts(cuts, open, at, sums, segment, crossing, few, fewCounts, fewUsed)
            {
                SumScale = values.Length / (double)Math.Max(count, 1),
                Count = count,
                Missing = missing,
                Infinite = infinite,
                Min = count > 0 ? min : double.NaN,
                Max = count > 0 ? max : double.NaN,
            };
        }
        finally
        {
            ArrayPool<int>.Shared.Return(ids);
        }
    }

    /// <summary>
    /// The two-sample KS statistic D = sup |F_ref − F_cur| against the cut points' sample, the same number as
    /// <see cref="KolmogorovSmirnov.Statistic"/> on the sorted values (the same counts divided the same way, at the
    /// points where the extremes lie); NaN when either side is empty.
    /// </summary>
    public double KsStatistic()
    {
        if (Count == 0) return double.NaN;
        double n1 = Cuts.SampleCount, n2 = Count;
        var p = Cuts.Values.Length;
        double maxDiff = 0, minDiff = 0;
        long j = 0;
        for (var t = 0; t <= p; t++)
        {
            // The top of open interval t: the reference's cdf as at its left point, the current's just below its right.
            var i = t == 0 ? 0 : Cuts.SampleAtOrBelow[t - 1];
            j += _open[t];
            var diff = i / n1 - j / n2;
            if (diff > maxDiff) maxDiff = diff;
            if (diff < minDiff) minDiff = diff;
            if (t == p) break;
            // The point itself.
            j += _at[t];
            diff = Cuts.SampleAtOrBelow[t] / n1 - j / n2;
            if (diff > maxDiff) maxDiff = diff;
            if (diff < minDiff) minDiff = diff;
        }
        var minS = Math.Clamp(-minDiff, 0, 1);
        return minS > maxDiff ? minS : maxDiff;
    }

    /// <summary>
    /// The first Wasserstein distance between the cut points' sample and the values (scipy.stats.wasserstein_distance):
    /// per interval the area between the two cdfs from the counts and sums, or by an ordered walk where they cross.
    /// NaN when either side is empty, or when the values are <see cref="Few"/> (sort them instead).
    /// </summary>
    public double Wasserstein()
    {
        if (Count == 0 || Few) return double.NaN;
        var points = Cuts.Values;
        var p = points.Length;
        double nu = Cuts.SampleCount, nv = Count;
        var crossing = _crossing.Span;
        var sum = 0.0;
        long j = 0;
        for (var t = 0; t <= p; t++)
        {
            var inside = _open[t];
            if (t == 0 || t == p)
            {
                // Below every point the reference's cdf is 0, above every point 1: the area is the values' distance
                // to the nearest point over nv.
                sum += _sums[t] * SumScale;
            }
            else
            {
                double a = points[t - 1], b = points[t];
                var c = Cuts.SampleAtOrBelow[t - 1] / nu;
                var left = c - j / nv;
                if (_segment is not null && _segment[t] >= 0)
                {
                    var values = crossing.Slice(_segment[t], (int)inside);
                    var previous = a;
                    var k = j;
                    foreach (var v in values)
                    {
                        var delta = v - previous;
                        if (delta > 0) sum += Math.Abs(c - k / nv) * delta;
                        k++;
                        previous = v;
                    }
                    sum += Math.Abs(c - k / nv) * (b - previous);
                }
                else if (c - (j + inside) / nv >= 0)
                {
                    sum += left * (b - a) - _sums[t] * SumScale; // the current's cdf stays at or below the reference's
                }
                else
                {
                    sum += -left * (b - a) + _sums[t] * SumScale; // at or above it
                }
            }
            j += inside;
            if (t < p) j += _at[t];
        }
        return sum;
    }

    /// <summary>
    /// Counts over bins whose <paramref name="edges"/> are among the cut points: [below, inner bins…, above], the
    /// bins of <see cref="Binning"/> (the last inner bin holds its upper edge).
    /// </summary>
    public double[] BinCounts(ReadOnlySpan<double> edges)
    {
        if (edges.Length < 2) throw new ArgumentException("at least two edges are needed", nameof(edges));
        foreach (var e in edges)
        {
            if (!Cuts.Contains(e)) throw new ArgumentException("every edge must be a cut point", nameof(edges));
        }
        var points = Cuts.Values;
        var p = points.Length;
        var bins = new double[edges.Length + 1];
        for (var t = 0; t <= p; t++)
        {
            if (_open[t] > 0)
            {
                int bin;
                if (t == 0) bin = 0;
                else if (t == p) bin = edges.Length;
                else if (points[t] <= edges[0]) bin = 0;
                else if (points[t - 1] >= edges[^1]) bin = edges.Length;
                else bin = Binning.BinOf(edges, points[t - 1]); // no edge lies inside the interval
                bins[bin] += _open[t];
            }
            if (t < p && _at[t] > 0) bins[Binning.BinOf(edges, points[t])] += _at[t];
        }
        return bins;
    }

    /// <summary>Values below <paramref name="min"/> plus values above <paramref name="max"/> (both cut points).</summary>
    public long CountOutside(double min, double max)
    {
        if (!Cuts.Contains(min) || !Cuts.Contains(max)) throw new ArgumentException("the range must be cut points");
        var points = Cuts.Values;
        var p = points.Length;
        long outside = 0;
        for (var t = 0; t <= p; t++)
        {
            if ((t < p && points[t] <= min) || (t > 0 && points[t - 1] >= max)) outside += _open[t];
            if (t < p && (points[t] < min || points[t] > max)) outside += _at[t];
        }
        return outside;
    }

    /// <summary>When the values are <see cref="Few"/>: writes them all sorted (-0.0 before +0.0) and returns how many.</summary>
    public int WriteSorted(Span<double> destination)
    {
        if (!Few) throw new InvalidOperationException("the values were not kept: they hold more than seven distinct bit patterns");
        var order = new int[_fewUsed];
        for (var k = 0; k < order.Length; k++) order[k] = k;
        Array.Sort(order, (x, y) => RadixSort.Key(BitConverter.UInt64BitsToDouble(_few[x])).CompareTo(RadixSort.Key(BitConverter.UInt64BitsToDouble(_few[y]))));
        var w = 0;
        foreach (var k in order)
        {
            var v = BitConverter.UInt64BitsToDouble(_few[k]);
            var n = checked((int)_fewCounts[k]);
            destination.Slice(w, n).Fill(v);
            w += n;
        }
        return w;
    }

    // Counts v among the first bit patterns seen; returns how many are used, or -1 once there are more than seven.
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static int Track(double v, ulong[] few, long[] counts, int used)
    {
        var bits = BitConverter.DoubleToUInt64Bits(v);
        for (var k = 0; k < used; k++)
        {
            if (few[k] == bits)
            {
                counts[k]++;
                return used;
            }
        }
        if (used == few.Length) return -1;
        few[used] = bits;
        counts[used] = 1;
        return used + 1;
    }

    private static int[] NewSegments(int length)
    {
        var s = new int[length];
        s.AsSpan().Fill(-1);
        return s;
    }
}
