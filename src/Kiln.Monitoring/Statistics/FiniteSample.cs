using System.Runtime.CompilerServices;

namespace Kiln.Monitoring.Statistics;

/// <summary>
/// Cleans a numeric sample before a test: NaN is a missing value and is left out; ±Infinity is left out too and
/// counted, so a drift report can warn about it (no distance or test is defined on infinite values).
/// </summary>
public static class FiniteSample
{
    /// <summary>Copies the finite values of <paramref name="values"/> into a new array, sorted ascending.</summary>
    public static double[] SortedCopy(ReadOnlySpan<double> values, out long missing, out long infinite) =>
        RadixSort.SortedFinite(values, out missing, out infinite);

    /// <summary>The population standard deviation (numpy.std with ddof=0) of finite values.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static double PopulationStd(ReadOnlySpan<double> values)
    {
        if (values.IsEmpty) return double.NaN;
        var mean = 0.0;
        foreach (var v in values) mean += v;
        mean /= values.Length;
        var ss = 0.0;
        foreach (var v in values)
        {
            var d = v - mean;
            ss += d * d;
        }
        return Math.Sqrt(ss / values.Length);
    }

    /// <summary>The number of distinct values in a sorted span.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static int DistinctSorted(ReadOnlySpan<double> sorted)
    {
        if (sorted.IsEmpty) return 0;
        var distinct = 1;
        for (var i = 1; i < sorted.Length; i++)
        {
            if (sorted[i] != sorted[i - 1]) distinct++;
        }
        return distinct;
    }
}
