using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Kiln.Monitoring.Statistics;

/// <summary>
/// The points at which a reference's empirical cdf can change (its sample's values), plus any other points a caller
/// needs counts at (bin edges, the training range), sorted and distinct: the cells they cut the line into are where
/// <see cref="CellCounts"/> counts a current sample. Finding a value's cell is one multiply into a uniform grid over
/// the points and a short look inside one grid cell, instead of a binary search over all of them; a cell of at most
/// two points (nearly all of them: there are twice as many cells as points) is looked at without a branch.
/// </summary>
public sealed class CutPoints
{
    private const int LinearLimit = 8;
    private readonly double _low;
    private readonly double _scale;
    private readonly int _cells;
    private readonly int[] _start;
    private readonly double[] _padded; // the points, then two +Infinity: a look two past a cell's end stays in the array

    private CutPoints(double[] values, long[] sampleAtOrBelow, int sampleCount)
    {
        Values = values;
        _padded = new double[values.Length + 2];
        values.CopyTo(_padded, 0);
        _padded[^2] = _padded[^1] = double.PositiveInfinity;
        SampleAtOrBelow = sampleAtOrBelow;
        SampleCount = sampleCount;
        _cells = (int)BitOperations.RoundUpToPowerOf2((uint)Math.Max(2 * values.Length, 16));
        _low = values[0];
        var range = values[^1] - values[0];
        var scale = range > 0 ? _cells / range : 0;
        _scale = double.IsFinite(scale) ? scale : 0;
        // _start[g] = how many points fall in grid cells before g. Grid cells are monotone in the value (a rounded
        // subtraction and a product by a positive constant never reverse an order), so every point in an earlier
        // grid cell is below a value and every point in a later one above it: only the value's own cell is searched.
        _start = new int[_cells + 1];
        foreach (var v in values) _start[GridCell(v) + 1]++;
        for (var g = 1; g <= _cells; g++) _start[g] += _start[g - 1];
    }

    /// <summary>The points, ascending and distinct (by ==).</summary>
    public double[] Values { get; }

    /// <summary>Per point, how many of the sample's values are at or below it (the reference's cdf numerator there).</summary>
    public long[] SampleAtOrBelow { get; }

    /// <summary>Values in the reference's sample.</summary>
    public int SampleCount { get; }

    /// <summary>
    /// Cut points of a sorted reference sample and <paramref name="extra"/> points; null when the sample is empty or
    /// any value is NaN or infinite, or the sample is not sorted (the caller then sorts instead).
    /// </summary>
    public static CutPoints? Create(ReadOnlySpan<double> sortedSample, ReadOnlySpan<double> extra)
    {
        if (sortedSample.IsEmpty) return null;
        for (var i = 1; i < sortedSample.Length; i++)
        {
            if (sortedSample[i] < sortedSample[i - 1]) return null;
        }
        var all = new double[sortedSample.Length + extra.Length];
        sortedSample.CopyTo(all);
        extra.CopyTo(all.AsSpan(sortedSample.Length));
        foreach (var v in all)
        {
            if (!double.IsFinite(v)) return null;
        }
        Array.Sort(all);
        var distinct = 1;
        for (var i = 1; i < all.Length; i++)
        {
            if (all[i] != all[distinct - 1]) all[distinct++] = all[i];
        }
        var values = all.AsSpan(0, distinct).ToArray();
        var atOrBelow = new long[distinct];
        var s = 0;
        for (var t = 0; t < distinct; t++)
        {
            while (s < sortedSample.Length && sortedSample[s] <= values[t]) s++;
            atOrBelow[t] = s;
        }
        return new CutPoints(values, atOrBelow, sortedSample.Length);
    }

    /// <summary>Whether <paramref name="x"/> is one of the points.</summary>
    public bool Contains(double x) => double.IsFinite(x) && Array.BinarySearch(Values, x) >= 0;

    /// <summary>How many points are at or below the finite value <paramref name="v"/>.</summary>
    internal int AtOrBelow(double v) => new Finder(this).AtOrBelow(v);

    /// <summary>
    /// <see cref="AtOrBelow(double)"/> for a hot loop: the grid and the points as references held in locals, so the loop
    /// reads them without a bounds check or a field load per value.
    /// </summary>
    internal readonly ref struct Finder
    {
        private readonly ref int _start;
        private readonly ref double _points;
        private readonly double _low;
        private readonly double _scale;
        private readonly int _last;

        public Finder(CutPoints cuts)
        {
            _start = ref MemoryMarshal.GetArrayDataReference(cuts._start);
            _points = ref MemoryMarshal.GetArrayDataReference(cuts._padded);
            _low = cuts._low;
            _scale = cuts._scale;
            _last = cuts._cells - 1;
        }

        /// <summary>How many points are at or below the finite value <paramref name="v"/>.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public int AtOrBelow(double v)
        {
            var x = (v - _low) * _scale;
            var g = x > 0 ? (x < _last ? (int)x : _last) : 0;
            var t = Unsafe.Add(ref _start, g);
            var end = Unsafe.Add(ref _start, g + 1);
            if (end - t <= 2)
            {
                // Points of later grid cells, and the padding, are above v: two steps find the count in a cell of two
                // points or fewer without a branch to mispredict.
                t += Unsafe.Add(ref _points, t) <= v ? 1 : 0;
                t += Unsafe.Add(ref _points, t) <= v ? 1 : 0;
                return t;
            }
            if (end - t > LinearLimit)
            {
                // A crowded grid cell (a heavy tail puts many points in few cells): first index whose point is above v.
                while (t < end)
                {
                    var mid = (t + end) >>> 1;
                    if (Unsafe.Add(ref _points, mid) <= v) t = mid + 1;
                    else end = mid;
                }
                return t;
            }
            while (t < end && Unsafe.Add(ref _points, t) <= v) t++;
            return t;
        }

        /// <summary>The point at <paramref name="t"/> (0 ≤ t &lt; the number of points, unchecked).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public double Point(int t) => Unsafe.Add(ref _points, t);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int GridCell(double v)
    {
        var x = (v - _low) * _scale;
        return x > 0 ? (x < _cells ? (int)x : _cells - 1) : 0;
    }
}
