using System.Text.Json;
using Kiln.Core.Data;
using Kiln.Core.Profiling;

namespace Kiln.Core.Tests.Profiling;

/// <summary>
/// DatasetProfile.Build profiles columns in parallel (bench/Kiln.Bench.Training showed the
/// one-thread build of 1M x 20 missing its 2 s goal): the result must be exactly the profile that
/// adding the rows column by column on one thread gives, run after run.
/// </summary>
public sealed class ParallelBuildTests
{
    [Fact]
    public void Build_equals_the_sequential_profile_of_every_column_and_is_the_same_every_run()
    {
        var table = Table(rows: 20_000, seed: 7);

        // The sequential reference: Build's edges and seeds, then DatasetProfile.Add over the table.
        var reference = new DatasetProfile();
        for (var i = 0; i < table.Columns.Count; i++)
        {
            var seed = 42UL + (ulong)i * 0x632BE59BD9B4E019UL;
            reference.Columns.Add(table.Columns[i] is NumericColumn n
                ? ColumnProfile.NewNumeric(n.Name, Histogram.QuantileEdges([.. n.Values.Where(double.IsFinite).Order()], 20), ColumnProfile.DefaultSampleSize, seed)
                : ColumnProfile.NewCategorical(table.Columns[i].Name));
        }
        reference.Add(table);
        reference.Complete();
        var expected = JsonSerializer.Serialize(reference, KilnJson.Files);

        for (var run = 0; run < 3; run++)
        {
            var built = DatasetProfile.Build(table, seed: 42);
            Assert.Equal(expected, JsonSerializer.Serialize(built, KilnJson.Files));
            Assert.Equal(table.RowCount, built.Rows);
            Assert.Equal(table.Columns.Select(c => c.Name), built.Columns.Select(c => c.Name));
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(31)]
    [InlineData(33)]
    [InlineData(100)]
    [InlineData(5_000)]
    [InlineData(200_000)]
    public void Histogram_edges_are_those_of_a_full_sort_for_any_order_and_many_ties(int rows)
    {
        // Build finds the edge positions by selection, not by sorting: the edges must still be
        // Histogram.QuantileEdges of the fully sorted finite values.
        var rng = new Random(rows);
        var shapes = new Dictionary<string, Func<int, double>>
        {
            ["uniform"] = _ => rng.NextDouble(),
            ["few_ties"] = _ => rng.Next(0, 101),
            ["two_values"] = _ => rng.Next(0, 2),
            ["constant"] = _ => 3.25,
            ["ascending"] = i => i,
            ["descending"] = i => -i,
            ["organ_pipe"] = i => Math.Min(i, rows - i),
            ["missing_and_infinite"] = i => (i % 7) switch { 0 => double.NaN, 1 => double.PositiveInfinity, _ => rng.Next(0, 50) },
        };
        var table = new DataTable(rows);
        foreach (var (name, f) in shapes) table.Add(new NumericColumn(name, [.. Enumerable.Range(0, rows).Select(f)]));

        foreach (var bins in new[] { 1, 3, 20, 50 })
        {
            var profile = DatasetProfile.Build(table, bins);
            foreach (var column in table.Columns)
            {
                var sorted = ((NumericColumn)column).Values.Where(double.IsFinite).Order().ToArray();
                Assert.Equal(Histogram.QuantileEdges(sorted, bins), profile.Find(column.Name)!.Numeric!.Histogram.Edges);
            }
        }
    }

    private static DataTable Table(int rows, int seed)
    {
        var rng = new Random(seed);
        var table = new DataTable(rows);
        for (var c = 0; c < 6; c++)
        {
            var values = new double[rows];
            for (var i = 0; i < rows; i++) values[i] = rng.NextDouble() < 0.02 ? double.NaN : Math.Round(rng.NextDouble() * (c + 1) * 100, 2);
            table.Add(new NumericColumn($"n{c}", values));
        }
        for (var c = 0; c < 3; c++)
        {
            var values = new string?[rows];
            for (var i = 0; i < rows; i++) values[i] = rng.NextDouble() < 0.02 ? null : $"k{rng.Next(0, 10 * (c + 1))}";
            table.Add(new TextColumn($"t{c}", values));
        }
        return table;
    }
}
