using System.Globalization;
using Kiln.Core.Data;
using Kiln.Core.Profiling;
using Kiln.Testing;

namespace Kiln.Core.Tests;

public class ProfileTests
{
    private static double[] RandomValues(int n, int seed)
    {
        var rng = new Random(seed);
        var v = new double[n];
        for (var i = 0; i < n; i++) v[i] = Math.Round(rng.NextDouble() * 100 - 20 + (i % 7) * rng.NextDouble(), 6);
        return v;
    }

    [Fact]
    public async Task Moments_and_quantiles_match_numpy()
    {
        // Oracle: numpy on the same values (count <= sample size, so the sample holds every value
        // and the quantiles are exact): np.mean, np.std(ddof=1), np.quantile(method='linear').
        var values = RandomValues(1500, 7);
        var table = new DataTable(values.Length).Add(new NumericColumn("x", values));
        var profile = DatasetProfile.Build(table).Columns[0];
        using var dir = new TempDir();
        await File.WriteAllLinesAsync(dir.File("x.txt"), values.Select(v => v.ToString("R", CultureInfo.InvariantCulture)));
        var py = await Proc.PythonAsync($"""
            import numpy as np
            x = np.loadtxt('{dir.File("x.txt")}')
            print(repr(x.mean()), repr(x.std(ddof=1)), repr(x.min()), repr(x.max()), *[repr(q) for q in np.quantile(x, [0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99])])
            """);
        Assert.True(py.ExitCode == 0, py.ToString());
        var expected = py.StdOut.Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(s => double.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        var n = profile.Numeric!;
        Assert.Equal(expected[0], n.Mean, 1e-9);
        Assert.Equal(expected[1], n.Std(profile.Count), 1e-9);
        Assert.Equal(expected[2], n.Min);
        Assert.Equal(expected[3], n.Max);
        for (var i = 0; i < 7; i++) Assert.Equal(expected[4 + i], n.Quantiles![i], 1e-9);
    }

    [Fact]
    public void Missing_and_infinite_values_are_counted_apart()
    {
        var table = new DataTable(5).Add(new NumericColumn("x", [1, double.NaN, double.PositiveInfinity, 3, double.NegativeInfinity]));
        var c = DatasetProfile.Build(table).Columns[0];
        Assert.Equal(2, c.Count);
        Assert.Equal(1, c.Missing);
        Assert.Equal(2, c.Numeric!.Infinite);
        Assert.Equal(5, c.Rows);
        Assert.Equal(2.0, c.Numeric.Mean);
    }

    [Fact]
    public void Merging_partial_profiles_equals_profiling_the_union()
    {
        var values = RandomValues(10_000, 11);
        var reference = DatasetProfile.Build(new DataTable(values.Length).Add(new NumericColumn("x", values)));
        var whole = reference.NewEmptyLike(seed: 1);
        whole.Add(new DataTable(values.Length).Add(new NumericColumn("x", values)));

        // Three "replicas" each see a third of the rows, with their own seeds.
        var merged = reference.NewEmptyLike(seed: 100);
        for (var part = 0; part < 3; part++)
        {
            var slice = values.Where((_, i) => i % 3 == part).ToArray();
            var p = reference.NewEmptyLike(seed: (ulong)(200 + part));
            p.Add(new DataTable(slice.Length).Add(new NumericColumn("x", slice)));
            merged.Merge(p);
        }
        var a = whole.Columns[0];
        var b = merged.Columns[0];
        Assert.Equal(a.Count, b.Count);
        Assert.Equal(a.Numeric!.Histogram.Counts, b.Numeric!.Histogram.Counts);
        Assert.Equal(a.Numeric.Histogram.Below + a.Numeric.Histogram.Above, b.Numeric.Histogram.Below + b.Numeric.Histogram.Above);
        Assert.Equal(a.Numeric.Mean, b.Numeric.Mean, 1e-9);
        Assert.Equal(a.Numeric.M2, b.Numeric.M2, 1e-6);
        Assert.Equal(a.Numeric.Min, b.Numeric.Min);
        Assert.Equal(a.Numeric.Max, b.Numeric.Max);
        Assert.Equal(ColumnProfile.DefaultSampleSize, b.Numeric.Sample.Values.Count);
        Assert.Equal(10_000, whole.Rows);
        Assert.Equal(10_000, merged.Rows);
    }

    [Fact]
    public void Bottom_k_merge_is_order_independent_and_keeps_every_value_while_small()
    {
        var reference = DatasetProfile.Build(new DataTable(3).Add(new NumericColumn("x", [0, 5, 10])), sampleSize: 64);
        var parts = Enumerable.Range(0, 4).Select(p =>
        {
            var d = reference.NewEmptyLike(seed: (ulong)p + 1);
            var v = Enumerable.Range(0, 30).Select(i => (double)(p * 100 + i)).ToArray();
            d.Add(new DataTable(v.Length).Add(new NumericColumn("x", v)));
            return d;
        }).ToArray();
        var ab = reference.NewEmptyLike(0);
        foreach (var p in parts) ab.Merge(p);
        var ba = reference.NewEmptyLike(0);
        foreach (var p in parts.Reverse()) ba.Merge(p);
        Assert.Equal(ab.Columns[0].Numeric!.Sample.SortedValues(), ba.Columns[0].Numeric!.Sample.SortedValues());
        Assert.Equal(64, ab.Columns[0].Numeric!.Sample.Values.Count);

        // Below capacity the sample is the data itself.
        var small = reference.NewEmptyLike(0);
        small.Merge(parts[0]);
        Assert.Equal(Enumerable.Range(0, 30).Select(i => (double)i), small.Columns[0].Numeric!.Sample.SortedValues());
    }

    [Fact]
    public void Histogram_bins_are_left_closed_and_the_last_is_closed()
    {
        var h = new Histogram { Edges = [0, 1, 2, 3], Counts = new long[3] };
        foreach (var x in new[] { -0.5, 0, 0.99, 1, 2.5, 3, 3.01 }) h.Add(x);
        Assert.Equal(new long[] { 2, 1, 2 }, h.Counts);
        Assert.Equal(1, h.Below);
        Assert.Equal(1, h.Above);
    }

    [Fact]
    public void Constant_column_gets_one_bin_and_merging_different_edges_is_refused()
    {
        var c = DatasetProfile.Build(new DataTable(4).Add(new NumericColumn("x", [2, 2, 2, 2]))).Columns[0];
        Assert.Equal(new[] { 2.0, 2.0 }, c.Numeric!.Histogram.Edges);
        Assert.Equal(new long[] { 4 }, c.Numeric.Histogram.Counts);
        var other = ColumnProfile.NewNumeric("x", [0, 1]);
        Assert.Throws<ArgumentException>(() => c.Merge(other));
    }

    [Fact]
    public void Categorical_counts_are_bounded_and_overflow_goes_to_other()
    {
        var p = ColumnProfile.NewCategorical("c", maxCategories: 2);
        foreach (var v in new[] { "a", "b", "a", "c", null, "d", "b" }) p.Add(v);
        Assert.Equal(6, p.Count);
        Assert.Equal(1, p.Missing);
        Assert.Equal(2, p.Categorical!.Counts["a"]);
        Assert.Equal(2, p.Categorical.Counts["b"]);
        Assert.Equal(2, p.Categorical.Other);
    }

    [Fact]
    public void Profile_round_trips_through_json()
    {
        var table = new DataTable(4).Add(new NumericColumn("x", [1, 2, double.NaN, 4])).Add(new TextColumn("c", ["a", null, "b", "a"]));
        var profile = DatasetProfile.Build(table);
        var json = System.Text.Json.JsonSerializer.Serialize(profile, KilnJson.Files);
        Assert.Contains("\"histogram\"", json, StringComparison.Ordinal);
        var back = System.Text.Json.JsonSerializer.Deserialize<DatasetProfile>(json, KilnJson.Files)!;
        Assert.Equal(profile.Rows, back.Rows);
        Assert.Equal(profile.Columns[0].Numeric!.Histogram.Counts, back.Columns[0].Numeric!.Histogram.Counts);
        Assert.Equal(2, back.Columns[1].Categorical!.Counts["a"]);
        Assert.Equal(ColumnKind.Categorical, back.Columns[1].Kind);
    }
}
