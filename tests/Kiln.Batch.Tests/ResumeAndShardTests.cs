using System.Text.Json;
using Kiln.Core.Data;
using Kiln.Testing;

namespace Kiln.Batch.Tests;

[Collection("batch")]
public sealed class ResumeAndShardTests(BatchFixture fx)
{
    /// <summary>Every input id appears exactly once in the output, and every copy of a row got the same score as copy 0.</summary>
    private static void AssertExactlyOnce(DataTable input, DataTable output, Kiln.Scoring.Prediction[] expectedForOneCopy)
    {
        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        var ids = output.Text("transaction_id").Values;
        var p = output.Numeric("probability").Values;
        for (var i = 0; i < output.RowCount; i++)
        {
            counts[ids[i]!] = counts.GetValueOrDefault(ids[i]!) + 1;
            var row = int.Parse(ids[i]!.AsSpan(1, ids[i]!.IndexOf('#', StringComparison.Ordinal) - 1), System.Globalization.CultureInfo.InvariantCulture);
            Assert.Equal(expectedForOneCopy[row].Value, p[i], 6);
        }
        Assert.Equal(input.RowCount, output.RowCount);
        Assert.Equal(input.RowCount, counts.Count);
        Assert.All(counts.Values, c => Assert.Equal(1, c));
        foreach (var id in input.Text("transaction_id").Values.Take(input.RowCount)) Assert.True(counts.ContainsKey(id!), id);
    }

    [Fact]
    public async Task Killed_mid_run_then_resumed_holds_every_row_exactly_once()
    {
        using var dir = new TempDir();
        const int Copies = 40; // 320,000 rows in 160 row groups
        var input = fx.Repeat(Copies);
        await BatchFixture.WriteParquetAsync(input, dir.File("in.parquet"), rowGroupRows: 2000);
        var output = dir.File("out");
        string[] args = ["batch", "--model", fx.Package, "--input", dir.File("in.parquet"), "--output", output,
            "--keep", "transaction_id", "--threads", "1", "--batch-rows", "500"];

        using (var process = KilnCli.Start(args))
        {
            // Kill as soon as a few parts are committed: the run is then far from its 160 parts.
            var deadline = DateTime.UtcNow.AddMinutes(2);
            while (DateTime.UtcNow < deadline && !process.HasExited
                && (!Directory.Exists(output) || Directory.GetFiles(output, "part-*.parquet").Length < 3))
            {
                await Task.Delay(20);
            }
            Assert.False(process.HasExited, "the run ended before it could be killed");
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
        }
        var partsBefore = Directory.GetFiles(output, "part-*.parquet").Length;
        Assert.InRange(partsBefore, 3, 159);
        using (var manifest = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(output, "_manifest.json"))))
            Assert.False(manifest.RootElement.GetProperty("complete").GetBoolean());

        // Without --resume the half-done output is refused, not overwritten.
        var refused = await KilnCli.RunAsync(args);
        Assert.Equal(1, refused.ExitCode);
        Assert.Contains("--resume", refused.StdErr);

        var resumed = await KilnCli.RunAsync([.. args.Where(a => a != "1" && a != "--threads"), "--resume", "--json"]);
        Assert.True(resumed.ExitCode == 0, resumed.ToString());
        using var summary = JsonDocument.Parse(resumed.StdOut);
        var resumedParts = summary.RootElement.GetProperty("parts_resumed").GetInt32();
        Assert.True(resumedParts >= partsBefore - 1, $"resumed {resumedParts} of {partsBefore} parts found"); // the manifest may lag the last rename
        Assert.Equal(160, resumedParts + summary.RootElement.GetProperty("parts_written").GetInt32());
        Assert.Empty(Directory.GetFiles(output, ".*tmp*"));

        var all = await BatchFixture.ReadPartsAsync(output, BatchFixture.OutputColumns);
        AssertExactlyOnce(input, all, fx.Expected(fx.Rows));
        using var final = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(output, "_manifest.json")));
        Assert.True(final.RootElement.GetProperty("complete").GetBoolean());
        Assert.Equal(320_000, final.RootElement.GetProperty("rows").GetInt64());
    }

    [Fact]
    public async Task A_resume_that_does_not_match_the_output_is_refused_naming_why()
    {
        using var dir = new TempDir();
        await BatchFixture.WriteParquetAsync(fx.Repeat(1), dir.File("in.parquet"), rowGroupRows: 2000);
        var output = dir.File("out");
        string[] args = ["batch", "--model", fx.Package, "--input", dir.File("in.parquet"), "--output", output, "--keep", "transaction_id"];
        var first = await KilnCli.RunAsync(args);
        Assert.True(first.ExitCode == 0, first.ToString());
        var manifest = Path.Combine(output, "_manifest.json");
        var written = await File.ReadAllTextAsync(manifest);

        // Other output columns: the parts could not be read as one table.
        var otherColumns = await KilnCli.RunAsync(["batch", "--model", fx.Package, "--input", dir.File("in.parquet"), "--output", output, "--resume"]);
        Assert.Equal(1, otherColumns.ExitCode);
        Assert.Contains($"{manifest}: the output columns (transaction_id, prediction, probability) differ from this run's; pass the same --keep", otherColumns.StdErr, StringComparison.Ordinal);

        // Another input under the same name: its rows are not the ones the parts hold.
        await BatchFixture.WriteParquetAsync(fx.Repeat(2), dir.File("in.parquet"), rowGroupRows: 2000);
        var otherInput = await KilnCli.RunAsync([.. args, "--resume"]);
        Assert.Equal(1, otherInput.ExitCode);
        Assert.Contains($"{manifest}: the input changed since the output was started", otherInput.StdErr, StringComparison.Ordinal);
        Assert.Contains("start again in an empty directory", otherInput.StdErr, StringComparison.Ordinal);

        // Refused before anything was written: the manifest is as the first run left it.
        Assert.Equal(written, await File.ReadAllTextAsync(manifest));
    }

    [Fact]
    public async Task Three_shards_cover_the_input_without_overlap()
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir.File("in"));
        var input = fx.Repeat(4); // 32,000 rows over two Parquet files and one CSV file
        var a = input.Take(Enumerable.Range(0, 10_000).ToArray());
        var b = input.Take(Enumerable.Range(10_000, 12_000).ToArray());
        var c = input.Take(Enumerable.Range(22_000, 10_000).ToArray());
        await BatchFixture.WriteParquetAsync(a, dir.File("in/a.parquet"), 3000);
        await BatchFixture.WriteParquetAsync(b, dir.File("in/b.parquet"), 2500);
        BatchFixture.WriteCsv(c, dir.File("in/c.csv"));
        var output = dir.File("out");

        var runs = await Task.WhenAll(new[] { "0/3", "1/3", "2/3" }.Select(shard => KilnCli.RunAsync(
            ["batch", "--model", fx.Package, "--input", dir.File("in"), "--output", output, "--keep", "transaction_id",
             "--shard", shard, "--partition-rows", "2000", "--json"])));
        var byShard = new List<HashSet<string>>();
        foreach (var run in runs)
        {
            Assert.True(run.ExitCode == 0, run.ToString());
            using var s = JsonDocument.Parse(run.StdOut);
            Assert.True(s.RootElement.GetProperty("parts_written").GetInt32() > 0); // every shard got work
        }
        for (var i = 0; i < 3; i++)
        {
            using var m = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(output, $"_manifest-{i}-of-3.json")));
            Assert.True(m.RootElement.GetProperty("complete").GetBoolean());
            byShard.Add([.. m.RootElement.GetProperty("parts").EnumerateArray().Select(p => p.GetProperty("file").GetString()!)]);
        }
        // Parts are disjoint between shards...
        Assert.Empty(byShard[0].Intersect(byShard[1]));
        Assert.Empty(byShard[0].Intersect(byShard[2]));
        Assert.Empty(byShard[1].Intersect(byShard[2]));
        // ...and a.parquet has 4 row groups, b.parquet 5, c.csv 5 partitions of 2000 rows.
        Assert.Equal(14, byShard.Sum(s => s.Count));

        var all = await BatchFixture.ReadPartsAsync(output, BatchFixture.OutputColumns);
        AssertExactlyOnce(input, all, fx.Expected(fx.Rows));
    }
}
