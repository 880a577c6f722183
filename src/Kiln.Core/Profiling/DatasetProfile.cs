using Kiln.Core.Data;

namespace Kiln.Core.Profiling;

/// <summary>The profile of a dataset: one <see cref="ColumnProfile"/> per column, in column order.</summary>
public sealed class DatasetProfile
{
    /// <summary>Rows seen.</summary>
    public long Rows { get; set; }

    public List<ColumnProfile> Columns { get; init; } = [];

    public ColumnProfile? Find(string name)
    {
        foreach (var c in Columns) if (c.Name == name) return c;
        return null;
    }

    /// <summary>An empty profile with the same columns, edges and bounds, to fill from live traffic and compare.</summary>
    public DatasetProfile NewEmptyLike(ulong seed)
    {
        var p = new DatasetProfile();
        for (var i = 0; i < Columns.Count; i++) p.Columns.Add(Columns[i].NewEmptyLike(seed + (ulong)i * 0x632BE59BD9B4E019UL));
        return p;
    }

    /// <summary>Adds another profile of the same columns into this one.</summary>
    public void Merge(DatasetProfile other)
    {
        foreach (var oc in other.Columns)
        {
            var mine = Find(oc.Name);
            if (mine is null) Columns.Add(oc);
            else mine.Merge(oc);
        }
        Rows += other.Rows;
    }

    /// <summary>Adds every row of a table; columns this profile lacks are ignored.</summary>
    public void Add(DataTable table)
    {
        foreach (var profile in Columns)
        {
            var column = table.Find(profile.Name);
            if (column is not null) AddColumn(profile, column, table.RowCount);
        }
        Rows += table.RowCount;
    }

    private static void AddColumn(ColumnProfile profile, Column column, int rows)
    {
        switch (column)
        {
            case NumericColumn n when profile.Kind == ColumnKind.Numeric:
                foreach (var v in n.Values.AsSpan(0, rows)) profile.Add(v);
                break;
            case TextColumn t when profile.Kind == ColumnKind.Categorical:
                foreach (var v in t.Values.AsSpan(0, rows)) profile.Add(v);
                break;
            case NumericColumn n:
                foreach (var v in n.Values.AsSpan(0, rows)) profile.Add(double.IsNaN(v) ? null : v.ToString("R", System.Globalization.CultureInfo.InvariantCulture));
                break;
            case TextColumn t:
                foreach (var v in t.Values.AsSpan(0, rows)) profile.Add(NumericColumn.ParseOrNaN(v));
                break;
            case TimestampColumn s:
                AddColumn(profile, s.ToText(), rows);
                break;
        }
    }

    /// <summary>Finishes derived statistics (quantiles) after the last row.</summary>
    public void Complete()
    {
        foreach (var c in Columns) c.Numeric?.ComputeQuantiles();
    }

    /// <summary>
    /// Profiles a whole table as a reference: histogram edges come from the quantiles of the data
    /// itself (<paramref name="bins"/> bins of about equal mass), so that live profiles reuse them.
    /// </summary>
    public static DatasetProfile Build(DataTable table, int bins = 20, int sampleSize = ColumnProfile.DefaultSampleSize, ulong seed = 42)
    {
        // Columns are independent, so they are profiled in parallel; each column's result depends
        // only on its values and its seed, never on the thread that computed it.
        var columns = new ColumnProfile[table.Columns.Count];
        Parallel.For(0, columns.Length, i =>
        {
            var column = table.Columns[i];
            var columnSeed = seed + (ulong)i * 0x632BE59BD9B4E019UL;
            var profile = column switch
            {
                NumericColumn n => ColumnProfile.NewNumeric(n.Name, Histogram.QuantileEdges(FiniteWithEdgeRanksInPlace(n.Values.AsSpan(0, table.RowCount), bins), bins), sampleSize, columnSeed),
                _ => ColumnProfile.NewCategorical(column.Name),
            };
            AddColumn(profile, column, table.RowCount);
            profile.Numeric?.ComputeQuantiles();
            columns[i] = profile;
        });
        var result = new DatasetProfile { Rows = table.RowCount };
        result.Columns.AddRange(columns);
        return result;
    }

    /// <summary>
    /// The finite values with every position that <see cref="Histogram.QuantileEdges"/> reads for
    /// <paramref name="bins"/> bins holding the value a full sort would put there (a multi-quickselect:
    /// about three times less work than sorting a million values).
    /// </summary>
    private static double[] FiniteWithEdgeRanksInPlace(ReadOnlySpan<double> values, int bins)
    {
        var finite = new double[values.Length];
        var k = 0;
        foreach (var v in values) if (double.IsFinite(v)) finite[k++] = v;
        Array.Resize(ref finite, k);
        if (k == 0) return finite;
        // The positions NumericSummary.Quantile reads for the levels i / bins, computed the same way.
        var ranks = new SortedSet<int>();
        for (var i = 0; i <= bins; i++)
        {
            var pos = (double)i / bins * (k - 1);
            var lo = (int)Math.Floor(pos);
            ranks.Add(lo);
            ranks.Add(Math.Min(lo + 1, k - 1));
        }
        SelectRanks(finite, 0, k - 1, [.. ranks], 2 * (int)Math.Log2(k) + 4);
        return finite;
    }

    /// <summary>
    /// Rearranges values[lo..hi] (inclusive) so that every position in <paramref name="ranks"/>
    /// (ascending, within [lo, hi]) holds the value a full sort would put there. Hoare partitions
    /// around a median-of-three pivot; past the depth limit, or for short ranges, it sorts instead.
    /// </summary>
    internal static void SelectRanks(double[] values, int lo, int hi, ReadOnlySpan<int> ranks, int depth)
    {
        while (ranks.Length > 0)
        {
            if (hi - lo < 32 || depth-- <= 0)
            {
                Array.Sort(values, lo, hi - lo + 1);
                return;
            }
            // Median of three into the middle slot; Hoare's scheme with the middle element as pivot
            // always leaves two non-empty parts.
            var mid = lo + (hi - lo) / 2;
            if (values[mid] < values[lo]) (values[mid], values[lo]) = (values[lo], values[mid]);
            if (values[hi] < values[lo]) (values[hi], values[lo]) = (values[lo], values[hi]);
            if (values[hi] < values[mid]) (values[hi], values[mid]) = (values[mid], values[hi]);
            var pivot = values[mid];
            int i = lo - 1, j = hi + 1;
            while (true)
            {
                do i++; while (values[i] < pivot);
                do j--; while (values[j] > pivot);
                if (i >= j) break;
                (values[i], values[j]) = (values[j], values[i]);
            }
            // values[lo..j] <= pivot <= values[j+1..hi]: ranks split at j.
            var split = 0;
            while (split < ranks.Length && ranks[split] <= j) split++;
            if (split < ranks.Length) SelectRanks(values, j + 1, hi, ranks[split..], depth);
            ranks = ranks[..split];
            hi = j;
        }
    }
}
