using System.Text.Json;
using Kiln.Core.Data;
using Kiln.Monitoring.Tests.Continuous;
using Kiln.Testing;

namespace Kiln.Monitoring.Tests.Cli;

// Runs the real kiln binary: `kiln drift --model PACKAGE --current DATA [--out report.html] [--json] [--json-out report.json]`.
public sealed class DriftCommandTests : IDisposable
{
    private readonly TempDir _dir = new("kiln-drift-cli");

    public void Dispose() => _dir.Dispose();

    private static DataTable Data(int rows, double shift, int seed, string extraColor = "blue") => LogFixtures.Data(rows, shift, seed, extraColor);

    private string Package(DataTable training) => LogFixtures.Package(_dir.File("model"), training, "drift-test");

    [Fact]
    public async Task Drifted_parquet_exits_2_and_writes_json_and_a_self_contained_html_report()
    {
        var model = Package(Data(3000, 0, 1));
        var current = _dir.File("current.parquet");
        await ParquetTable.WriteAsync(Data(2000, 1.0, 2, extraColor: "purple<script>"), current);
        var json = _dir.File("report.json");
        var html = _dir.File("report.html");
        var r = await KilnCli.RunAsync(["drift", "--model", model, "--current", current, "--json", "--json-out", json, "--out", html]);
        Assert.True(r.ExitCode == 2, r.ToString());
        using var printed = JsonDocument.Parse(r.StdOut); // --json: the same report on stdout, nothing else
        Assert.True(printed.RootElement.GetProperty("dataset_drift").GetBoolean());
        Assert.Equal(await File.ReadAllTextAsync(json), r.StdOut.TrimEnd('\n'));

        // --fail-on-drift false: the same report, exit 0 (the verdict is left to the report).
        var quiet = await KilnCli.RunAsync(["drift", "--model", model, "--current", current, "--fail-on-drift", "false"]);
        Assert.True(quiet.ExitCode == 0, quiet.ToString());
        Assert.Equal("", quiet.StdOut);
        Assert.Contains("dataset drift", quiet.StdErr);

        using var doc = JsonDocument.Parse(await File.ReadAllTextAsync(json));
        var features = doc.RootElement.GetProperty("features").EnumerateArray().ToDictionary(f => f.GetProperty("name").GetString()!);
        Assert.Equal("wasserstein", features["x"].GetProperty("test").GetString());
        Assert.True(features["x"].GetProperty("drifted").GetBoolean());
        Assert.Equal("jensenshannon", features["color"].GetProperty("test").GetString());
        Assert.Equal(1, features["color"].GetProperty("quality").GetProperty("unseen_categories").GetInt32());

        var page = await File.ReadAllTextAsync(html);
        Assert.Contains("<svg", page);
        Assert.DoesNotContain("http://", page);
        Assert.DoesNotContain("https://", page);
        Assert.DoesNotContain("<script>", page); // a category name is escaped, not executed
        Assert.Contains("purple&lt;script&gt;", page);
        Assert.True(page.IndexOf(">x<", StringComparison.Ordinal) < page.IndexOf(">color<", StringComparison.Ordinal)); // most severe first
    }

    [Fact]
    public async Task Same_distribution_csv_exits_0()
    {
        var model = Package(Data(3000, 0, 3));
        var current = _dir.File("current.csv");
        var t = Data(1500, 0, 4);
        var x = ((NumericColumn)t["x"]).Values;
        var c = ((TextColumn)t["color"]).Values;
        var lines = new List<string> { "x,color,extra" };
        for (var i = 0; i < t.RowCount; i++) lines.Add($"{x[i].ToString("R", System.Globalization.CultureInfo.InvariantCulture)},{c[i]},1");
        await File.WriteAllLinesAsync(current, lines);
        var json = _dir.File("same.json");
        var r = await KilnCli.RunAsync(["drift", "--model", model, "--current", current, "--json-out", json]);
        Assert.True(r.ExitCode == 0, r.ToString());
        var report = await File.ReadAllTextAsync(json);
        Assert.Contains("column_not_in_reference", report); // the extra column is named, not tested
    }

    [Theory]
    [InlineData("snappy", 10_000)]
    [InlineData("zstd", 700)]
    [InlineData("uncompressed", 3000)]
    public async Task A_parquet_file_DuckDB_wrote_drifts_exactly_as_the_same_rows_from_csv(string codec, int rowGroup)
    {
        var model = Package(Data(3000, 0, 10));
        var t = Data(2500, 0.3, 11);
        var x = ((NumericColumn)t["x"]).Values;
        var c = ((TextColumn)t["color"]).Values;
        var csv = _dir.File($"cur-{codec}.csv");
        var lines = new List<string> { "x,color" };
        for (var i = 0; i < t.RowCount; i++) lines.Add($"{x[i].ToString("R", System.Globalization.CultureInfo.InvariantCulture)},{c[i]}");
        await File.WriteAllLinesAsync(csv, lines);
        // DuckDB (an independent writer) turns the same CSV into Parquet: x as DOUBLE, color dictionary-encoded text.
        var parquet = _dir.File($"cur-{codec}.parquet");
        using (var duck = new DuckDB.NET.Data.DuckDBConnection("DataSource=:memory:"))
        {
            duck.Open();
            using var command = duck.CreateCommand();
            command.CommandText = $"COPY (SELECT * FROM read_csv('{csv}', columns = {{'x': 'DOUBLE', 'color': 'VARCHAR'}}, header = true)) TO '{parquet}' (FORMAT parquet, COMPRESSION {codec}, ROW_GROUP_SIZE {rowGroup})";
            command.ExecuteNonQuery();
        }

        var fromCsv = await KilnCli.RunAsync(["drift", "--model", model, "--current", csv, "--json", "--fail-on-drift", "false"]);
        var fromParquet = await KilnCli.RunAsync(["drift", "--model", model, "--current", parquet, "--json", "--fail-on-drift", "false"]);

        Assert.True(fromCsv.ExitCode == 0, fromCsv.ToString());
        Assert.True(fromParquet.ExitCode == 0, fromParquet.ToString());
        using var a = JsonDocument.Parse(fromCsv.StdOut);
        using var b = JsonDocument.Parse(fromParquet.StdOut);
        // Every score, p-value and histogram to the last digit; only the name of the current data differs.
        Assert.Equal(a.RootElement.GetProperty("features").GetRawText(), b.RootElement.GetProperty("features").GetRawText());
        Assert.Equal(a.RootElement.GetProperty("dataset_drift").GetBoolean(), b.RootElement.GetProperty("dataset_drift").GetBoolean());
    }

    [Fact]
    public async Task Errors_exit_1_with_one_line_naming_the_problem()
    {
        var missing = await KilnCli.RunAsync(["drift", "--model", _dir.File("nope"), "--current", _dir.File("x.csv")]);
        Assert.Equal(1, missing.ExitCode);
        Assert.Contains("not a Kiln model package", missing.StdErr);

        var model = Package(Data(100, 0, 5));
        var badTest = await KilnCli.RunAsync(["drift", "--model", model, "--current", _dir.File("x.csv"), "--test", "magic"]);
        Assert.Equal(1, badTest.ExitCode);
        Assert.Contains("--test: unknown test 'magic'", badTest.StdErr);

        var noCurrent = await KilnCli.RunAsync(["drift", "--model", model]);
        Assert.Equal(1, noCurrent.ExitCode);
        Assert.Contains("--current is required", noCurrent.StdErr);

        // --json once took a file: that spelling is refused in one line that names --json-out, and writes nothing.
        var old = await KilnCli.RunAsync(["drift", "--model", model, "--current", _dir.File("x.csv"), "--json", _dir.File("old.json")]);
        Assert.Equal(1, old.ExitCode);
        Assert.Equal($"error: --json {_dir.File("old.json")}: --json no longer takes a file, it prints the JSON on stdout; write the file with --json-out {_dir.File("old.json")}",
            old.StdErr.Trim());
        Assert.False(File.Exists(_dir.File("old.json")));

        var noData = await KilnCli.RunAsync(["drift", "--model", model, "--current", _dir.File("absent.parquet")]);
        Assert.Equal(1, noData.ExitCode);
        Assert.Contains("absent.parquet", noData.StdErr);
    }

    [Fact]
    public async Task Per_column_override_is_applied()
    {
        var model = Package(Data(500, 0, 6));
        var current = _dir.File("cur.parquet");
        await ParquetTable.WriteAsync(Data(400, 0, 7), current);
        var json = _dir.File("o.json");
        var r = await KilnCli.RunAsync(["drift", "--model", model, "--current", current, "--json-out", json, "--column", "x=psi:0.3"]);
        Assert.True(r.ExitCode is 0 or 2, r.ToString());
        using var doc = JsonDocument.Parse(await File.ReadAllTextAsync(json));
        var x = doc.RootElement.GetProperty("features").EnumerateArray().Single(f => f.GetProperty("name").GetString() == "x");
        Assert.Equal("psi", x.GetProperty("test").GetString());
        Assert.Equal(0.3, x.GetProperty("threshold").GetDouble());
    }

    /// <summary>Writes a table as one Parquet file of several row groups (as large files are written).</summary>
    private static async Task WriteRowGroupsAsync(DataTable t, string path, int rowGroupRows)
    {
        await using var stream = File.Create(path);
        using var writer = new ParquetTableWriter(stream, [new("x", ParquetColumnKind.Double, true), new("color", ParquetColumnKind.Text, true)]);
        for (var start = 0; start < t.RowCount; start += rowGroupRows)
        {
            var n = Math.Min(rowGroupRows, t.RowCount - start);
            writer.WriteRowGroup(t.Take([.. Enumerable.Range(start, n)]));
        }
        writer.Finish();
    }

    [Fact]
    public async Task A_parquet_file_past_max_exact_rows_is_folded_row_group_by_row_group_with_the_same_counts_histograms_and_verdicts()
    {
        var model = Package(Data(3000, 0, 8));
        var current = _dir.File("large.parquet");
        await WriteRowGroupsAsync(Data(20_000, 0.4, 9, extraColor: "purple"), current, 4000); // 5 row groups
        async Task<(int Exit, Dictionary<string, JsonElement> Features, JsonElement Report)> DriftAsync(string name, params string[] extra)
        {
            var json = _dir.File(name);
            var r = await KilnCli.RunAsync(["drift", "--model", model, "--current", current, "--json-out", json, .. extra]);
            Assert.True(r.ExitCode is 0 or 2, r.ToString());
            var doc = JsonDocument.Parse(await File.ReadAllTextAsync(json)).RootElement.Clone();
            return (r.ExitCode, doc.GetProperty("features").EnumerateArray().ToDictionary(f => f.GetProperty("name").GetString()!), doc);
        }

        // Oracle: the same file read whole (20,000 rows is under the default 5,000,000), every row tested.
        foreach (var test in new[] { "psi", "hellinger" })
        {
            var exact = await DriftAsync($"exact-{test}.json", "--test", test);
            var folded = await DriftAsync($"folded-{test}.json", "--test", test, "--max-exact-rows", "5000");
            Assert.DoesNotContain("summarized", exact.Report.GetProperty("warnings").EnumerateArray().Select(w => w.GetString()));
            Assert.Contains("summarized", folded.Report.GetProperty("warnings").EnumerateArray().Select(w => w.GetString()));
            Assert.Equal(exact.Exit, folded.Exit);
            Assert.Equal(20_000, folded.Report.GetProperty("current_rows").GetInt64());
            foreach (var name in new[] { "x", "color" })
            {
                var (e, f) = (exact.Features[name], folded.Features[name]);
                // Histograms over the reference's bins and categories are exact on both paths, so are these distances.
                Assert.Equal(e.GetProperty("score").GetDouble(), f.GetProperty("score").GetDouble(), 12);
                Assert.Equal(e.GetProperty("drifted").GetBoolean(), f.GetProperty("drifted").GetBoolean());
                Assert.Equal(e.GetProperty("quality").GetRawText(), f.GetProperty("quality").GetRawText());
            }
        }
        // Default tests (Wasserstein on the bottom-k sample when folded): the same verdicts on a clear shift.
        var exactDefault = await DriftAsync("exact.json");
        var foldedDefault = await DriftAsync("folded.json", "--max-exact-rows", "5000");
        Assert.True(exactDefault.Features["x"].GetProperty("drifted").GetBoolean());
        Assert.True(foldedDefault.Features["x"].GetProperty("drifted").GetBoolean());
        Assert.Equal(exactDefault.Exit, foldedDefault.Exit);

        var bad = await KilnCli.RunAsync(["drift", "--model", model, "--current", current, "--max-exact-rows", "-1"]);
        Assert.Equal(1, bad.ExitCode);
        Assert.Contains("--max-exact-rows: -1 is negative", bad.StdErr);
    }
}
