using System.Globalization;
using System.Runtime.CompilerServices;
using Kiln.Core.Data;
using Kiln.Core.Profiling;
using Kiln.Monitoring.Statistics;

namespace Kiln.Monitoring.Drift;

/// <summary>
/// One side of a comparison for one column, in the form the tests need: for numbers, the sorted finite values (all
/// of them, or the profile's bottom-k sample) and counts over the reference's bins; for categories, counts per label.
/// </summary>
internal sealed class ColumnSide
{
    public required ColumnKind Kind { get; init; }

    public long Count { get; init; }

    public long Missing { get; init; }

    public long Infinite { get; init; }

    /// <summary>Unparsable text in a column that should hold numbers (counted in Missing too).</summary>
    public long Unparsable { get; init; }

    public long Rows => Count + Missing + Infinite;

    // Numeric
    /// <summary>The sorted finite values (may be a slice of a pooled buffer that lives only as long as the comparison).</summary>
    public ReadOnlyMemory<double> Sorted { get; init; } = ReadOnlyMemory<double>.Empty;

    /// <summary>True when <see cref="Sorted"/> holds every finite value (not a sample).</summary>
    public bool Complete { get; init; }

    public double Min { get; init; } = double.NaN;

    public double Max { get; init; } = double.NaN;

    /// <summary>Population standard deviation over all values: the reference's, which the normed Wasserstein distance divides by (raw current data leaves it NaN, as no test reads it).</summary>
    public double PopulationStd { get; init; } = double.NaN;

    /// <summary>The reference's bin edges the counts use.</summary>
    public double[]? Edges { get; init; }

    /// <summary>Counts over the reference bins: [below, inner bins…, above]; null when there are no edges.</summary>
    public double[]? BinCounts { get; init; }

    /// <summary>Values below the reference minimum plus values above its maximum.</summary>
    public long OutOfRange { get; init; }

    // Categorical
    public Dictionary<string, long> Categories { get; init; } = new(StringComparer.Ordinal);

    /// <summary>Values pooled as "other" (beyond the profile's category bound).</summary>
    public long Other { get; init; }

    public static ColumnSide FromProfile(ColumnProfile p, ColumnProfile? reference)
    {
        // A profile read from a hand-edited or truncated file may lack its summary: treat it as holding no values.
        if (p.Kind == ColumnKind.Categorical && p.Categorical is null) return new ColumnSide { Kind = p.Kind, Missing = p.Missing };
        if (p.Kind == ColumnKind.Numeric && p.Numeric is null) return new ColumnSide { Kind = p.Kind, Missing = p.Missing };
        if (p.Kind == ColumnKind.Categorical)
        {
            var c = p.Categorical!;
            return new ColumnSide
            {
                Kind = ColumnKind.Categorical,
                Count = p.Count,
                Missing = p.Missing,
                Categories = c.Counts,
                Other = c.Other,
            };
        }
        var n = p.Numeric!;
        var sorted = n.Sample.SortedValues();
        var h = n.Histogram;
        double[]? bins = null;
        long outOfRange = 0;
        var refEdges = reference?.Numeric?.Histogram.Edges ?? h.Edges;
        if (h.Edges.Length >= 2 && h.Counts.Length == h.Edges.Length - 1 && h.Edges.AsSpan().SequenceEqual(refEdges))
        {
            bins = new double[h.Counts.Length + 2];
            bins[0] = h.Below;
            for (var i = 0; i < h.Counts.Length; i++) bins[i + 1] = h.Counts[i];
            bins[^1] = h.Above;
            outOfRange = h.Below + h.Above; // Kiln's reference edges run from the training minimum to its maximum
        }
        else if (refEdges.Length >= 2)
        {
            // Built with other edges: re-bin the sample (an estimate unless the sample is complete).
            bins = new double[refEdges.Length + 1];
            Binning.Count(refEdges, sorted, bins, out _, out _);
            var scale = sorted.Length > 0 ? (double)p.Count / sorted.Length : 0;
            for (var i = 0; i < bins.Length; i++) bins[i] *= scale;
            outOfRange = (long)Math.Round(bins[0] + bins[^1]);
        }
        return new ColumnSide
        {
            Kind = ColumnKind.Numeric,
            Count = p.Count,
            Missing = p.Missing,
            Infinite = n.Infinite,
            Sorted = sorted,
            Complete = sorted.Length == p.Count,
            Min = p.Count > 0 ? n.Min : double.NaN,
            Max = p.Count > 0 ? n.Max : double.NaN,
            PopulationStd = p.Count > 0 ? Math.Sqrt(n.Variance(p.Count)) : double.NaN,
            BinCounts = bins,
            Edges = bins is null ? null : refEdges,
            OutOfRange = outOfRange,
        };
    }

    /// <summary>
    /// Raw current numbers counted over the reference's cut points (<see cref="CellCounts"/>), when the test does not
    /// need them sorted; null for a side built by sorting.
    /// </summary>
    public CellCounts? Cells { get; init; }

    /// <summary>Numbers from raw data, binned on the reference's edges and checked against its range.</summary>
    /// <param name="values">The current values (NaN: missing).</param>
    /// <param name="reference">The reference column (bins, range and sample).</param>
    /// <param name="unparsable">Values that were text and not numbers (already NaN in <paramref name="values"/>).</param>
    /// <param name="buffer">Scratch that the side may point into (at least as long as the values; it must outlive
    /// the side), or null for a new array.</param>
    /// <remarks>
    /// A reference with a sample, bin edges and a range is compared without sorting the current values: they are
    /// counted once over the cells that the sample's values, the edges and the range cut the line into, which gives
    /// the bins, the out-of-range count, the KS statistic and the Wasserstein distance (<see cref="CellCounts"/>).
    /// Anything else (no edges, a non-finite edge) sorts them, as does a column of at most seven distinct values,
    /// whose value-count tests need them in order.
    /// </remarks>
    public static ColumnSide FromNumbers(ReadOnlySpan<double> values, ColumnProfile reference, long unparsable = 0, double[]? buffer = null)
    {
        var rn = reference.Numeric;
        var edges = rn?.Histogram.Edges ?? [];
        var cuts = reference.Count > 0 && rn is not null && edges.Length >= 2
            ? CutPoints.Create(rn.Sample.SortedValues(), [.. edges, rn.Min, rn.Max])
            : null;
        if (cuts is null) return FromSortedNumbers(values, reference, unparsable, buffer);
        var cells = CellCounts.Of(cuts, values, buffer);
        var sorted = ReadOnlyMemory<double>.Empty;
        if (cells.Few)
        {
            var target = buffer ?? new double[checked((int)cells.Count)];
            sorted = target.AsMemory(0, cells.WriteSorted(target));
        }
        return new ColumnSide
        {
            Kind = ColumnKind.Numeric,
            Count = cells.Count,
            Missing = cells.Missing,
            Infinite = cells.Infinite,
            Unparsable = unparsable,
            Sorted = sorted,
            Cells = cells.Few ? null : cells,
            Complete = cells.Few,
            Min = cells.Min,
            Max = cells.Max,
            BinCounts = cells.BinCounts(edges),
            Edges = edges,
            OutOfRange = cells.CountOutside(rn!.Min, rn.Max),
        };
    }

    /// <summary>Numbers from raw data, sorted, binned on the reference's edges and checked against its range.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static ColumnSide FromSortedNumbers(ReadOnlySpan<double> values, ColumnProfile reference, long unparsable, double[]? buffer)
    {
        long missing, infinite;
        ReadOnlyMemory<double> sortedMemory;
        if (buffer is null) sortedMemory = FiniteSample.SortedCopy(values, out missing, out infinite);
        else sortedMemory = buffer.AsMemory(0, RadixSort.SortFinite(values, buffer, out missing, out infinite));
        var sorted = sortedMemory.Span;
        var edges = reference.Numeric?.Histogram.Edges ?? [];
        double[]? bins = null;
        if (edges.Length >= 2)
        {
            bins = new double[edges.Length + 1];
            Binning.CountSorted(edges, sorted, bins);
        }
        var outOfRange = reference.Count > 0 && reference.Numeric is { } rn ? Binning.CountOutsideSorted(sorted, rn.Min, rn.Max) : 0;
        return new ColumnSide
        {
            Kind = ColumnKind.Numeric,
            Count = sorted.Length,
            Missing = missing,
            Infinite = infinite,
            Unparsable = unparsable,
            Sorted = sortedMemory,
            Complete = true,
            Min = sorted.Length > 0 ? sorted[0] : double.NaN,
            Max = sorted.Length > 0 ? sorted[^1] : double.NaN,
            BinCounts = bins,
            Edges = bins is null ? null : edges,
            OutOfRange = outOfRange,
        };
    }

    /// <summary>Labels from raw data; null is missing.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static ColumnSide FromLabels(ReadOnlySpan<string?> values)
    {
        // The readers hand out one string object per distinct label (a million rows of ten labels hold ten
        // strings), so a few slots compared by reference count most rows without hashing a string; the slots are
        // merged by value at the end. Labels beyond the slots, or input without shared strings, go to the dictionary.
        const int slotCount = 32;
        var counts = new Dictionary<string, long>(StringComparer.Ordinal);
        var slots = new string?[slotCount];
        Span<long> slotCounts = stackalloc long[slotCount];
        int used = 0, last = 0;
        long missing = 0, misses = 0;
        foreach (var v in values)
        {
            if (v is null)
            {
                missing++;
                continue;
            }
            if (ReferenceEquals(v, slots[last]))
            {
                slotCounts[last]++;
                continue;
            }
            var slot = -1;
            if (misses < 4096)
            {
                for (var i = 0; i < used; i++)
                {
                    if (ReferenceEquals(v, slots[i]))
                    {
                        slot = i;
                        break;
                    }
                }
                if (slot < 0 && used < slotCount) slots[slot = used++] = v;
            }
            if (slot >= 0)
            {
                slotCounts[slot]++;
                last = slot;
                continue;
            }
            misses++;
            System.Runtime.InteropServices.CollectionsMarshal.GetValueRefOrAddDefault(counts, v, out _)++;
        }
        for (var i = 0; i < used; i++) System.Runtime.InteropServices.CollectionsMarshal.GetValueRefOrAddDefault(counts, slots[i]!, out _) += slotCounts[i];
        return new ColumnSide { Kind = ColumnKind.Categorical, Count = values.Length - missing, Missing = missing, Categories = counts };
    }

    /// <summary>Labels already counted (a text column counted straight from a file, <see cref="TextCounts"/>).</summary>
    public static ColumnSide FromCounts(TextCounts counts) =>
        new() { Kind = ColumnKind.Categorical, Count = counts.Present, Missing = counts.Missing, Categories = counts.ToDictionary() };

    /// <summary>Numbers read as labels (a numeric column where the reference saw categories), as invariant "R" strings.</summary>
    public static ColumnSide FromNumbersAsLabels(ReadOnlySpan<double> values)
    {
        var labels = new string?[values.Length];
        for (var i = 0; i < values.Length; i++)
        {
            labels[i] = double.IsNaN(values[i]) ? null : values[i].ToString("R", CultureInfo.InvariantCulture);
        }
        return FromLabels(labels);
    }
}
