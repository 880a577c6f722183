using Kiln.Monitoring.Drift;

namespace Kiln.Monitoring.Tests.Drift;

/// <summary>
/// Category counts of raw labels match a naive count (a LINQ GroupBy) however the strings are shared: one object
/// per label (as the readers produce), a fresh object per row, more labels than the counter's reference slots.
/// </summary>
public sealed class ColumnSideTests
{
    [Theory]
    [InlineData(5, true)]
    [InlineData(5, false)]
    [InlineData(40, true)]
    [InlineData(40, false)]
    [InlineData(5000, true)]
    public void Label_counts_equal_a_naive_count(int distinct, bool shared)
    {
        var rng = new Random(distinct);
        var labels = Enumerable.Range(0, distinct).Select(i => $"label-{i}").ToArray();
        var values = new string?[20_000];
        for (var i = 0; i < values.Length; i++)
        {
            if (rng.Next(10) == 0) continue; // missing
            var label = labels[rng.Next(distinct)];
            values[i] = shared ? label : new string(label.AsSpan()); // a fresh object with the same text
        }
        var expected = values.Where(v => v is not null).GroupBy(v => v!, StringComparer.Ordinal).ToDictionary(g => g.Key, g => (long)g.Count());

        var side = ColumnSide.FromLabels(values);

        Assert.Equal(expected.OrderBy(p => p.Key, StringComparer.Ordinal), side.Categories.OrderBy(p => p.Key, StringComparer.Ordinal));
        Assert.Equal(values.Count(v => v is null), side.Missing);
        Assert.Equal(values.Count(v => v is not null), side.Count);
    }
}
