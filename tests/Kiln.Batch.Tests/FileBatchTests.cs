using System.Text.Json;
using Kiln.Core;
using Kiln.Core.Data;
using Kiln.Testing;

namespace Kiln.Batch.Tests;

[Collection("batch")]
public sealed class FileBatchTests(BatchFixture fx)
{
    private static void AssertSameAsScorer(DataTable input, DataTable output, Kiln.Scoring.Prediction[] expected)
    {
        Assert.Equal(input.RowCount, output.RowCount);
        var inIds = input.Text("transaction_id").Values;
        var outIds = output.Text("transaction_id").Values;
        var labels = output.Text("prediction").Values;
        var p = output.Numeric("probability").Values;
        for (var i = 0; i < input.RowCount; i++)
        {
            Assert.Equal(inIds[i], outIds[i]);          // input order kept, --keep column carried
            Assert.Equal(expected[i].Label, labels[i]);
            Assert.Equal(expected[i].Value, p[i], 6);   // the scorer's own prediction on the same row
        }
    }

    [Fact]
    public async Task Parquet_to_parquet_equals_the_scorer_row_for_row_with_one_part_per_row_group()
    {
        using var dir = new TempDir();
        var input = fx.Repeat(2); // 16,000 rows
        await BatchFixture.WriteParquetAsync(input, dir.File("in.parquet"), rowGroupRows: 5000);
        var result = await new BatchJob(new BatchOptions
        {
            Model = fx.Package,
            Input = dir.File("in.parquet"),
            Output = dir.File("out"),
            Keep = ["transaction_id"],
            BatchRows = 1500, // slices smaller than a row group: order must survive parallel scoring
            Threads = 3,
        }).RunAsync();

        Assert.Equal(16_000, result.Rows);
        Assert.Equal(4, result.PartsWritten); // 5000+5000+5000+1000
        Assert.Equal(
            ["part-00000-00000.parquet", "part-00000-00001.parquet", "part-00000-00002.parquet", "part-00000-00003.parquet"],
            Directory.GetFiles(dir.File("out"), "part-*").Select(Path.GetFileName).Order(StringComparer.Ordinal));
        var output = await BatchFixture.ReadPartsAsync(dir.File("out"), BatchFixture.OutputColumns);
        AssertSameAsScorer(input, output, fx.Expected(input));

        using var manifest = JsonDocument.Parse(await File.ReadAllTextAsync(dir.File("out/_manifest.json")));
        Assert.True(manifest.RootElement.GetProperty("complete").GetBoolean());
        Assert.Equal(16_000, manifest.RootElement.GetProperty("rows").GetInt64());
        Assert.Equal("fraud", manifest.RootElement.GetProperty("model_name").GetString());
        Assert.Equal(4, manifest.RootElement.GetProperty("parts").GetArrayLength());
        Assert.Equal(15_000, manifest.RootElement.GetProperty("parts")[3].GetProperty("first_row").GetInt64());
    }

    [Fact]
    public async Task Csv_to_parquet_through_the_cli_equals_the_scorer_and_keeps_order()
    {
        using var dir = new TempDir();
        var run = await KilnCli.RunAsync(["batch", "--model", fx.Package, "--input", fx.Csv, "--output", dir.File("out"),
            "--keep", "transaction_id", "--partition-rows", "3000", "--batch-rows", "1000", "--json"]);
        Assert.True(run.ExitCode == 0, run.ToString());
        using var summary = JsonDocument.Parse(run.StdOut);
        Assert.Equal(8000, summary.RootElement.GetProperty("rows").GetInt64());
        Assert.Equal(3, summary.RootElement.GetProperty("parts_written").GetInt32()); // 3000 + 3000 + 2000 rows

        var output = await BatchFixture.ReadPartsAsync(dir.File("out"), BatchFixture.OutputColumns);
        AssertSameAsScorer(fx.Rows, output, fx.Expected(fx.Rows));
    }

    [Fact]
    public async Task Csv_chunks_of_different_lengths_in_recycled_arrays_give_every_row_once_and_ids_are_written_plain()
    {
        // The CSV reader's column arrays and the prediction columns' arrays go back to be filled again once a slice is
        // written: chunks of 17,000, 17,000 and 6,000 rows a partition, three scorers, must still give each row its own
        // values. Past 100,000 distinct ids the reader keeps the id column as characters (no strings): the last chunk.
        using var dir = new TempDir();
        var input = fx.Repeat(16); // 128,000 rows, unique ids
        BatchFixture.WriteCsv(input, dir.File("in.csv"));
        var result = await new BatchJob(new BatchOptions
        {
            Model = fx.Package,
            Input = dir.File("in.csv"),
            Output = dir.File("out"),
            Keep = ["transaction_id"],
            PartitionRows = 40_000,
            BatchRows = 17_000,
            Threads = 3,
        }).RunAsync();
        Assert.Equal(128_000, result.Rows);
        Assert.Equal(4, result.PartsWritten);
        var output = await BatchFixture.ReadPartsAsync(dir.File("out"), BatchFixture.OutputColumns);
        AssertSameAsScorer(input, output, fx.Expected(input));

        // DuckDB reads the same ids; the id column (all distinct) has no dictionary, the predicted label keeps one.
        var files = $"{dir.File("out")}/part-*.parquet";
        Assert.Equal(input.Text("transaction_id").Values,
            DuckSql.Rows($"SELECT transaction_id FROM read_parquet('{files}', filename = true, file_row_number = true) ORDER BY filename, file_row_number")
                .Select(r => (string?)r[0]));
        var encodings = DuckSql.Rows($"SELECT path_in_schema, encodings FROM parquet_metadata('{files}')").Select(r => ((string)r[0]!, r[1]!.ToString()!)).ToList();
        Assert.Equal(20, encodings.Count(e => e.Item1 is "transaction_id" or "prediction")); // 3 + 3 + 3 + 1 row groups
        Assert.All(encodings.Where(e => e.Item1 == "transaction_id"), e => Assert.DoesNotContain("DICTIONARY", e.Item2, StringComparison.Ordinal));
        Assert.All(encodings.Where(e => e.Item1 == "prediction"), e => Assert.Contains("DICTIONARY", e.Item2, StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_directory_of_files_gives_one_part_per_file_partition_in_path_order()
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir.File("in"));
        var all = fx.Rows;
        var first = all.Take(Enumerable.Range(0, 3000).ToArray());
        var second = all.Take(Enumerable.Range(3000, 5000).ToArray());
        BatchFixture.WriteCsv(first, dir.File("in/a.csv"));
        await BatchFixture.WriteParquetAsync(second, dir.File("in/b.parquet"), 2500);
        var result = await new BatchJob(new BatchOptions
        {
            Model = fx.Package, Input = dir.File("in"), Output = dir.File("out"), Keep = ["transaction_id"],
        }).RunAsync();
        Assert.Equal(8000, result.Rows);
        Assert.Equal(
            ["part-00000-00000.parquet", "part-00001-00000.parquet", "part-00001-00001.parquet"],
            Directory.GetFiles(dir.File("out"), "part-*").Select(Path.GetFileName).Order(StringComparer.Ordinal));
        var output = await BatchFixture.ReadPartsAsync(dir.File("out"), BatchFixture.OutputColumns);
        AssertSameAsScorer(all, output, fx.Expected(all));
    }

    [Fact]
    public async Task A_missing_input_column_fails_before_scoring_naming_file_and_column()
    {
        using var dir = new TempDir();
        var withoutAge = new DataTable(fx.Rows.RowCount);
        foreach (var c in fx.Rows.Columns) if (c.Name != "customer_age") withoutAge.Add(c);
        await BatchFixture.WriteParquetAsync(withoutAge, dir.File("in.parquet"), 4000);
        var run = await KilnCli.RunAsync(["batch", "--model", fx.Package, "--input", dir.File("in.parquet"), "--output", dir.File("out")]);
        Assert.Equal(1, run.ExitCode);
        Assert.Contains("in.parquet", run.StdErr);
        Assert.Contains("'customer_age'", run.StdErr);
        Assert.Contains("missing", run.StdErr);
        Assert.False(Directory.Exists(dir.File("out")) && Directory.EnumerateFiles(dir.File("out"), "part-*").Any());
    }

    [Fact]
    public async Task Bad_files_among_good_ones_fail_the_job_by_default_and_are_listed_and_left_out_with_on_bad_file_skip()
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir.File("in"));
        var all = fx.Rows;
        var first = all.Take(Enumerable.Range(0, 3000).ToArray());
        var second = all.Take(Enumerable.Range(3000, 5000).ToArray());
        BatchFixture.WriteCsv(first, dir.File("in/a.csv"));
        await BatchFixture.WriteParquetAsync(second, dir.File("in/c.parquet"), 2500);
        // b.parquet: a Parquet file cut short (an upload that stopped); d.csv: a file of another table.
        await BatchFixture.WriteParquetAsync(second, dir.File("b-full.parquet"), 2500);
        var bytes = await File.ReadAllBytesAsync(dir.File("b-full.parquet"));
        await File.WriteAllBytesAsync(dir.File("in/b.parquet"), bytes[..(bytes.Length / 2)]);
        await File.WriteAllTextAsync(dir.File("in/d.csv"), "user,score\nu1,3\n");

        // The default stops before anything is scored, naming the first bad file.
        var failed = await KilnCli.RunAsync(["batch", "--model", fx.Package, "--input", dir.File("in"), "--output", dir.File("out-fail")]);
        Assert.Equal(1, failed.ExitCode);
        Assert.StartsWith($"error: {dir.File("in/b.parquet")}: not a readable Parquet file", failed.StdErr, StringComparison.Ordinal);
        Assert.False(Directory.Exists(dir.File("out-fail")) && Directory.EnumerateFiles(dir.File("out-fail"), "part-*").Any());

        var run = await KilnCli.RunAsync(["batch", "--model", fx.Package, "--input", dir.File("in"), "--output", dir.File("out"),
            "--keep", "transaction_id", "--on-bad-file", "skip", "--json"]);
        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Contains($"warning: skipped {dir.File("in/b.parquet")}: not a readable Parquet file", run.StdErr);
        Assert.Contains($"warning: skipped {dir.File("in/d.csv")}: column '", run.StdErr);

        // The good files' rows, all of them, scored as the scorer scores them; the bad files' partitions do not exist.
        var output = await BatchFixture.ReadPartsAsync(dir.File("out"), BatchFixture.OutputColumns);
        AssertSameAsScorer(all, output, fx.Expected(all));
        Assert.Equal(
            ["part-00000-00000.parquet", "part-00002-00000.parquet", "part-00002-00001.parquet"],
            Directory.GetFiles(dir.File("out"), "part-*").Select(Path.GetFileName).Order(StringComparer.Ordinal));

        using var summary = JsonDocument.Parse(run.StdOut);
        Assert.Equal(8000, summary.RootElement.GetProperty("rows").GetInt64());
        var skipped = summary.RootElement.GetProperty("skipped_files").EnumerateArray().Select(e => e.GetProperty("file").GetString()).ToList();
        Assert.Equal([dir.File("in/b.parquet"), dir.File("in/d.csv")], skipped);
        using var manifest = JsonDocument.Parse(await File.ReadAllTextAsync(dir.File("out/_manifest.json")));
        Assert.True(manifest.RootElement.GetProperty("complete").GetBoolean());
        Assert.Equal(2, manifest.RootElement.GetProperty("skipped_files").GetArrayLength());
        Assert.Contains("missing", manifest.RootElement.GetProperty("skipped_files")[1].GetProperty("reason").GetString());

        // When every file is bad, skipping leaves nothing to score: the job fails.
        var none = await KilnCli.RunAsync(["batch", "--model", fx.Package, "--input", dir.File("in/d.csv"), "--output", dir.File("out-none"),
            "--on-bad-file", "skip"]);
        Assert.Equal(1, none.ExitCode);
        Assert.StartsWith("error: every input file is bad (1); the first: ", none.StdErr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Text_in_a_numeric_parquet_column_fails_before_scoring()
    {
        using var dir = new TempDir();
        var table = new DataTable(fx.Rows.RowCount);
        foreach (var c in fx.Rows.Columns)
        {
            if (c.Name == "hour")
                table.Add(new TextColumn("hour", [.. ((NumericColumn)c).Values.Take(fx.Rows.RowCount).Select(v => v.ToString(System.Globalization.CultureInfo.InvariantCulture))]));
            else table.Add(c);
        }
        await BatchFixture.WriteParquetAsync(table, dir.File("typed.parquet"), 4000);
        var ex = await Assert.ThrowsAsync<KilnException>(() => new BatchJob(new BatchOptions
        {
            Model = fx.Package, Input = dir.File("typed.parquet"), Output = dir.File("out"),
        }).RunAsync());
        Assert.Contains("typed.parquet", ex.Message);
        Assert.Contains("column 'hour' holds text", ex.Message);
        Assert.False(Directory.Exists(dir.File("out")));
    }

    [Fact]
    public async Task A_bad_row_fails_the_job_with_file_line_and_column()
    {
        using var dir = new TempDir();
        var lines = File.ReadAllLines(fx.Csv);
        var fields = lines[4000].Split(',');
        fields[1] = "twelve"; // amount
        lines[4000] = string.Join(',', fields);
        File.WriteAllLines(dir.File("bad.csv"), lines);
        var run = await KilnCli.RunAsync(["batch", "--model", fx.Package, "--input", dir.File("bad.csv"), "--output", dir.File("out")]);
        Assert.Equal(1, run.ExitCode);
        Assert.Contains("bad.csv", run.StdErr);
        Assert.Contains("line 4001", run.StdErr);           // header is line 1
        Assert.Contains("'amount'", run.StdErr);
        Assert.Contains("'twelve' is not a number", run.StdErr);
    }

    [Fact]
    public async Task Skip_writes_bad_rows_with_reasons_to_rejects_and_scores_the_rest()
    {
        using var dir = new TempDir();
        var lines = File.ReadAllLines(fx.Csv);
        var header = lines[0].Split(',');
        var amount = Array.IndexOf(header, "amount");
        var age = Array.IndexOf(header, "customer_age");
        var distance = Array.IndexOf(header, "distance_from_home_km");
        string Set(string line, int field, string value)
        {
            var f = line.Split(',');
            f[field] = value;
            return string.Join(',', f);
        }
        lines[10] = Set(lines[10], amount, "n/a");        // data row 10: not a number
        lines[5000] = Set(lines[5000], age, "");          // data row 5000: missing, and customer_age is not nullable
        lines[6000] = Set(lines[6000], distance, "");     // missing but nullable: scored
        lines[7000] = Set(lines[7000], Array.IndexOf(header, "merchant_category"), "spaceships"); // unseen category: scored, counted
        File.WriteAllLines(dir.File("bad.csv"), lines);

        var run = await KilnCli.RunAsync(["batch", "--model", fx.Package, "--input", dir.File("bad.csv"), "--output", dir.File("out"),
            "--keep", "transaction_id", "--on-bad-row", "skip", "--partition-rows", "3000", "--json"]);
        Assert.True(run.ExitCode == 0, run.ToString());
        using var summary = JsonDocument.Parse(run.StdOut);
        Assert.Equal(7998, summary.RootElement.GetProperty("rows").GetInt64());
        Assert.Equal(2, summary.RootElement.GetProperty("rejected").GetInt64());
        Assert.Equal(1, summary.RootElement.GetProperty("unseen_categories").GetInt64());

        var output = await BatchFixture.ReadPartsAsync(dir.File("out"), BatchFixture.OutputColumns);
        var ids = output.Text("transaction_id").Values.Take(output.RowCount).ToList();
        Assert.Equal(7998, ids.Count);
        Assert.DoesNotContain(lines[10].Split(',')[0], ids);
        Assert.DoesNotContain(lines[5000].Split(',')[0], ids);
        Assert.Contains(lines[6000].Split(',')[0], ids);
        Assert.Contains(lines[7000].Split(',')[0], ids);

        var rejects = Directory.GetFiles(dir.File("out/_rejects"), "*.csv").Order(StringComparer.Ordinal).ToArray();
        Assert.Equal(["part-00000-00000.csv", "part-00000-00001.csv"], rejects.Select(Path.GetFileName));
        var r0 = File.ReadAllLines(rejects[0]);
        Assert.StartsWith("source,row,column,reason,", r0[0]);
        Assert.Contains(",10,amount,'n/a' is not a number,", r0[1]);
        var r1 = File.ReadAllLines(rejects[1]);
        Assert.Contains(",5000,customer_age,", r1[1]);
        Assert.Contains("not", r1[1]);
        Assert.Contains(lines[5000].Split(',')[0], r1[1]);
    }
}
