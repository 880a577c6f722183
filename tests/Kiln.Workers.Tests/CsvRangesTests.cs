using System.Text;
using Kiln.Core.Data;
using Kiln.Testing;

namespace Kiln.Workers.Tests;

/// <summary>The byte ranges a distributed job splits a CSV file into.</summary>
public class CsvRangesTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(7)]
    [InlineData(500)]
    public void Ranges_start_at_line_starts_and_cover_every_data_line_once(int parts)
    {
        using var dir = new TempDir("kiln-ranges");
        var file = dir.File("in.csv");
        var sb = new StringBuilder("id,x\n");
        // Lines of uneven length, so that cuts fall mid-line and must move to the next line start.
        for (var i = 0; i < 300; i++) sb.Append('r').Append(i).Append(',').Append(new string('x', i % 17)).Append('\n');
        File.WriteAllText(file, sb.ToString());
        var bytes = File.ReadAllBytes(file);

        var ranges = CsvRanges.Split(file, parts);

        Assert.InRange(ranges.Count, 1, Math.Min(parts, 300));
        Assert.Equal("id,x\n".Length, ranges[0].Start);
        Assert.Equal(bytes.Length, ranges[^1].End);
        for (var i = 0; i < ranges.Count; i++)
        {
            Assert.True(ranges[i].Length > 0, $"range {i} is empty");
            Assert.Equal((byte)'\n', bytes[ranges[i].Start - 1]);
            if (i > 0) Assert.Equal(ranges[i - 1].End, ranges[i].Start);
        }
        // Reading every range with the CSV reader gives every row once, in order (the oracle: the lines written above).
        var ids = new List<string>();
        foreach (var r in ranges)
        {
            using var reader = CsvTableReader.OpenRange(file, [new ColumnRequest("id", ColumnType.Text)], r.Start, r.End);
            while (true)
            {
                var t = reader.ReadBatch(64);
                if (t.RowCount == 0) break;
                ids.AddRange(t.Text("id").Values.Take(t.RowCount)!);
            }
        }
        Assert.Equal(Enumerable.Range(0, 300).Select(i => $"r{i}"), ids);
    }

    [Fact]
    public void A_file_without_a_trailing_newline_keeps_its_last_line()
    {
        using var dir = new TempDir("kiln-ranges");
        var file = dir.File("in.csv");
        File.WriteAllText(file, "id\na\nb\nc");
        var ranges = CsvRanges.Split(file, 2);
        var ids = new List<string>();
        foreach (var r in ranges)
        {
            using var reader = CsvTableReader.OpenRange(file, [new ColumnRequest("id", ColumnType.Text)], r.Start, r.End);
            var t = reader.ReadBatch(100);
            ids.AddRange(t.Text("id").Values.Take(t.RowCount)!);
        }
        Assert.Equal(["a", "b", "c"], ids);
    }
}
