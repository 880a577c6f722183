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
                NumericColumn n => ColumnProfile.NewNumeric(n.Name, Histogram.QuantileEdges(SortedFinite(n.Values.AsSpan(0, table.RowCount)), bins), sampleSize, columnSeed),
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

    private static double[] SortedFinite(ReadOnlySpan<double> values)
    {
        var finite = new double[values.Length];
        var k = 0;
        foreach (var v in values) if (double.IsFinite(v)) finite[k++] = v;
        Array.Resize(ref finite, k);
        Array.Sort(finite);
        return finite;
    }
}
