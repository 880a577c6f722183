using System.Text.Json.Serialization;

namespace Kiln.Core.Profiling;

/// <summary>What a column holds: numbers, or category labels.</summary>
public enum ColumnKind
{
    Numeric,
    Categorical,
}

/// <summary>
/// A mergeable, bounded summary of one column: counts, moments, a fixed-edge histogram and a
/// bottom-k sample for numbers; bounded category counts for labels. Two profiles built with the
/// same edges merge into exactly the profile of the union of their rows (see docs/model-package.md).
/// </summary>
public sealed class ColumnProfile
{
    /// <summary>Default size of the bottom-k sample kept per numeric column.</summary>
    public const int DefaultSampleSize = 2048;

    /// <summary>Default bound on distinct categories kept per categorical column.</summary>
    public const int DefaultMaxCategories = 1000;

    public required string Name { get; init; }

    public required ColumnKind Kind { get; init; }

    /// <summary>Non-missing values seen (for numbers: finite ones).</summary>
    public long Count { get; set; }

    /// <summary>Missing values: empty cells, nulls, NaN.</summary>
    public long Missing { get; set; }

    public NumericSummary? Numeric { get; set; }

    public CategoricalSummary? Categorical { get; set; }

    /// <summary>Rows seen in all: present, missing and (for numbers) infinite.</summary>
    [JsonIgnore]
    public long Rows => Count + Missing + (Numeric?.Infinite ?? 0);

    /// <summary>An empty numeric profile whose histogram uses the given edges (from a reference profile).</summary>
    public static ColumnProfile NewNumeric(string name, double[] edges, int sampleSize = DefaultSampleSize, ulong seed = 0) => new()
    {
        Name = name,
        Kind = ColumnKind.Numeric,
        Numeric = NumericSummary.Empty(edges, sampleSize, seed),
    };

    /// <summary>An empty categorical profile.</summary>
    public static ColumnProfile NewCategorical(string name, int maxCategories = DefaultMaxCategories) => new()
    {
        Name = name,
        Kind = ColumnKind.Categorical,
        Categorical = new CategoricalSummary { MaxCategories = maxCategories },
    };

    /// <summary>An empty profile shaped like this one (same edges, same bounds), for live traffic.</summary>
    public ColumnProfile NewEmptyLike(ulong seed) => Kind == ColumnKind.Numeric
        ? NewNumeric(Name, Numeric!.Histogram.Edges, Numeric.Sample.Capacity, seed)
        : NewCategorical(Name, Categorical!.MaxCategories);

    /// <summary>Adds one number; NaN counts as missing and ±Infinity as infinite.</summary>
    public void Add(double value)
    {
        var n = Numeric ?? throw new InvalidOperationException($"column '{Name}' is categorical");
        if (double.IsNaN(value)) { Missing++; return; }
        if (double.IsInfinity(value)) { n.Infinite++; return; }
        Count++;
        n.AddFinite(value, Count);
    }

    /// <summary>Adds one category label; null counts as missing.</summary>
    public void Add(string? value)
    {
        var c = Categorical ?? throw new InvalidOperationException($"column '{Name}' is numeric");
        if (value is null) { Missing++; return; }
        Count++;
        c.Add(value, 1);
    }

    /// <summary>Adds another profile of the same column into this one.</summary>
    public void Merge(ColumnProfile other)
    {
        if (other.Kind != Kind || other.Name != Name)
            throw new ArgumentException($"cannot merge profile of '{other.Name}' ({other.Kind}) into '{Name}' ({Kind})");
        var before = Count;
        Count += other.Count;
        Missing += other.Missing;
        if (Kind == ColumnKind.Numeric) Numeric!.Merge(other.Numeric!, before, other.Count, Name);
        else Categorical!.Merge(other.Categorical!);
    }
}

/// <summary>Moments, range, histogram and sample of a numeric column.</summary>
public sealed class NumericSummary
{
    /// <summary>±Infinity values seen (neither counted nor missing).</summary>
    public long Infinite { get; set; }

    public double Mean { get; set; }

    /// <summary>Sum of squared deviations from the mean (Welford's M2).</summary>
    public double M2 { get; set; }

    public double Min { get; set; } = double.PositiveInfinity;

    public double Max { get; set; } = double.NegativeInfinity;

    public required Histogram Histogram { get; init; }

    public required BottomKSample Sample { get; init; }

    /// <summary>Quantiles at <see cref="QuantileLevels"/>, estimated from the sample (exact while Count ≤ sample size).</summary>
    public double[]? Quantiles { get; set; }

    public static double[] QuantileLevels { get; } = [0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99];

    /// <summary>Population variance (divides by the count).</summary>
    public double Variance(long count) => count > 0 ? M2 / count : double.NaN;

    /// <summary>Sample standard deviation (divides by count − 1), as pandas' std.</summary>
    public double Std(long count) => count > 1 ? Math.Sqrt(M2 / (count - 1)) : double.NaN;

    internal static NumericSummary Empty(double[] edges, int sampleSize, ulong seed) => new()
    {
        Histogram = new Histogram { Edges = edges, Counts = new long[Math.Max(edges.Length - 1, 0)] },
        Sample = new BottomKSample { Capacity = sampleSize, Seed = seed },
    };

    internal void AddFinite(double x, long countAfter)
    {
        var delta = x - Mean;
        Mean += delta / countAfter;
        M2 += delta * (x - Mean);
        if (x < Min) Min = x;
        if (x > Max) Max = x;
        Histogram.Add(x);
        Sample.Add(x);
    }

    internal void Merge(NumericSummary other, long countA, long countB, string column)
    {
        Infinite += other.Infinite;
        if (countB > 0)
        {
            if (countA == 0)
            {
                Mean = other.Mean;
                M2 = other.M2;
            }
            else
            {
                // Chan et al.'s pairwise update.
                double n = countA + countB;
                var delta = other.Mean - Mean;
                Mean += delta * countB / n;
                M2 += other.M2 + delta * delta * countA * countB / n;
            }
            Min = Math.Min(Min, other.Min);
            Max = Math.Max(Max, other.Max);
        }
        Histogram.Merge(other.Histogram, column);
        Sample.Merge(other.Sample);
        Quantiles = null;
    }

    /// <summary>Recomputes the quantile estimates from the sample.</summary>
    public void ComputeQuantiles()
    {
        var values = Sample.SortedValues();
        if (values.Length == 0) { Quantiles = null; return; }
        var q = new double[QuantileLevels.Length];
        for (var i = 0; i < q.Length; i++) q[i] = Quantile(values, QuantileLevels[i]);
        Quantiles = q;
    }

    /// <summary>Linear-interpolation quantile of sorted values (numpy's default, "linear").</summary>
    public static double Quantile(ReadOnlySpan<double> sorted, double level)
    {
        if (sorted.Length == 0) return double.NaN;
        var pos = level * (sorted.Length - 1);
        var lo = (int)Math.Floor(pos);
        var hi = Math.Min(lo + 1, sorted.Length - 1);
        return sorted[lo] + (pos - lo) * (sorted[hi] - sorted[lo]);
    }
}

/// <summary>
/// Counts over fixed edges: bin i holds edges[i] ≤ x &lt; edges[i+1], the last bin is closed on the
/// right; values below the first edge or above the last are counted apart.
/// </summary>
public sealed class Histogram
{
    public required double[] Edges { get; init; }

    public required long[] Counts { get; init; }

    public long Below { get; set; }

    public long Above { get; set; }

    public void Add(double x)
    {
        var edges = Edges;
        if (edges.Length < 2 || x < edges[0]) { Below++; return; }
        if (x > edges[^1]) { Above++; return; }
        Counts[BinOf(edges, x)]++;
    }

    /// <summary>The bin of a value known to lie within [edges[0], edges[^1]].</summary>
    public static int BinOf(double[] edges, double x)
    {
        // Upper bound: first edge strictly greater than x, minus one; clamp the right end.
        int lo = 0, hi = edges.Length - 1;
        while (lo < hi)
        {
            var mid = (lo + hi) >>> 1;
            if (edges[mid] <= x) lo = mid + 1; else hi = mid;
        }
        var bin = lo - 1;
        if (edges[lo] <= x) bin = lo;
        return Math.Clamp(bin, 0, edges.Length - 2);
    }

    internal void Merge(Histogram other, string column)
    {
        if (!Edges.AsSpan().SequenceEqual(other.Edges))
            throw new ArgumentException($"cannot merge histograms of '{column}': their bin edges differ");
        for (var i = 0; i < Counts.Length; i++) Counts[i] += other.Counts[i];
        Below += other.Below;
        Above += other.Above;
    }

    /// <summary>Edges from the distinct quantiles of sorted values: at most <paramref name="bins"/> bins of about equal mass.</summary>
    public static double[] QuantileEdges(ReadOnlySpan<double> sorted, int bins)
    {
        if (sorted.Length == 0) return [];
        var edges = new List<double>(bins + 1);
        for (var i = 0; i <= bins; i++)
        {
            var e = NumericSummary.Quantile(sorted, (double)i / bins);
            if (edges.Count == 0 || e > edges[^1]) edges.Add(e);
        }
        if (edges.Count == 1) edges.Add(edges[0]); // a constant column: one bin holding that value
        return [.. edges];
    }
}

/// <summary>
/// A bottom-k sample: every value gets a pseudo-random 64-bit priority and the k lowest are kept.
/// The bottom-k of a union is the bottom-k of the parts' bottom-ks, so merging is exact.
/// </summary>
public sealed class BottomKSample
{
    private ulong _state;
    private bool _seeded;

    public int Capacity { get; init; } = ColumnProfile.DefaultSampleSize;

    /// <summary>Seed of the priority stream; replicas use different seeds.</summary>
    public ulong Seed { get; init; }

    /// <summary>Kept values, a max-heap on <see cref="Priorities"/> while building.</summary>
    public List<double> Values { get; init; } = [];

    public List<ulong> Priorities { get; init; } = [];

    public void Add(double value)
    {
        if (!_seeded) { _state = Seed ^ 0x9E3779B97F4A7C15UL; _seeded = true; }
        _state += 0x9E3779B97F4A7C15UL;
        var z = _state;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        Offer(value, z ^ (z >> 31));
    }

    internal void Offer(double value, ulong priority)
    {
        if (Capacity <= 0) return;
        if (Values.Count < Capacity)
        {
            Values.Add(value);
            Priorities.Add(priority);
            SiftUp(Values.Count - 1);
        }
        else if (priority < Priorities[0])
        {
            Values[0] = value;
            Priorities[0] = priority;
            SiftDown(0);
        }
    }

    internal void Merge(BottomKSample other)
    {
        for (var i = 0; i < other.Values.Count; i++) Offer(other.Values[i], other.Priorities[i]);
    }

    /// <summary>The kept values, sorted ascending.</summary>
    public double[] SortedValues()
    {
        var v = Values.ToArray();
        Array.Sort(v);
        return v;
    }

    private void SiftUp(int i)
    {
        while (i > 0)
        {
            var parent = (i - 1) / 2;
            if (Priorities[parent] >= Priorities[i]) break;
            Swap(i, parent);
            i = parent;
        }
    }

    private void SiftDown(int i)
    {
        var n = Values.Count;
        while (true)
        {
            int l = 2 * i + 1, r = l + 1, largest = i;
            if (l < n && Priorities[l] > Priorities[largest]) largest = l;
            if (r < n && Priorities[r] > Priorities[largest]) largest = r;
            if (largest == i) return;
            Swap(i, largest);
            i = largest;
        }
    }

    private void Swap(int a, int b)
    {
        (Values[a], Values[b]) = (Values[b], Values[a]);
        (Priorities[a], Priorities[b]) = (Priorities[b], Priorities[a]);
    }
}

/// <summary>Counts per category, bounded: past <see cref="MaxCategories"/> distinct labels, new ones count as Other.</summary>
public sealed class CategoricalSummary
{
    public int MaxCategories { get; init; } = ColumnProfile.DefaultMaxCategories;

    public Dictionary<string, long> Counts { get; init; } = new(StringComparer.Ordinal);

    /// <summary>Values of categories beyond the bound.</summary>
    public long Other { get; set; }

    public void Add(string value, long count)
    {
        if (Counts.TryGetValue(value, out var c)) Counts[value] = c + count;
        else if (Counts.Count < MaxCategories) Counts[value] = count;
        else Other += count;
    }

    internal void Merge(CategoricalSummary other)
    {
        foreach (var (k, v) in other.Counts) Add(k, v);
        Other += other.Other;
    }
}
