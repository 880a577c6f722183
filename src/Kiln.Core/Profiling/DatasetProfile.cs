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
            if (column is null) continue;
            switch (column)
            {
                case NumericColumn n when profile.Kind == ColumnKind.Numeric:
                    foreach (var v in n.Values.AsSpan(0, table.RowCount)) profile.Add(v);
                    break;
                case TextColumn t when profile.Kind == ColumnKind.Categorical:
                    foreach (var v in t.Values.AsSpan(0, table.RowCount)) profile.Add(v);
                    break;
                case NumericColumn n:
                    foreach (var v in n.Values.AsSpan(0, table.RowCount)) profile.Add(double.IsNaN(v) ? null : v.ToString("R", System.Globalization.CultureInfo.InvariantCulture));
                    break;
                case TextColumn t:
                    foreach (var v in t.Values.AsSpan(0, table.RowCount)) profile.Add(NumericColumn.ParseOrNaN(v));
                    break;
            }
        }
        Rows += table.RowCount;
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
        var profile = new DatasetProfile();
        var i = 0UL;
        foreach (var column in table.Columns)
        {
            var columnSeed = seed + i++ * 0x632BE59BD9B4E019UL;
            profile.Columns.Add(column switch
            {
                NumericColumn n => ColumnProfile.NewNumeric(n.Name, Histogram.QuantileEdges(SortedFinite(n.Values.AsSpan(0, table.RowCount)), bins), sampleSize, columnSeed),
                _ => ColumnProfile.NewCategorical(column.Name),
            });
        }
        profile.Add(table);
        profile.Complete();
        return profile;
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
