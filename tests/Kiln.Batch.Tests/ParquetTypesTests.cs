using Kiln.Testing;

namespace Kiln.Batch.Tests;

/// <summary>
/// `kiln batch` over Parquet files written by an independent implementation, DuckDB: the same rows score exactly as
/// from CSV, `--keep` writes every column back with the type and nullability the input declared (DuckDB reads the
/// output's types), and a nested column is refused only when it is needed. Expected values are DuckDB's own reads.
/// </summary>
[Collection("batch")]
public sealed class ParquetTypesTests(BatchFixture fx)
{
    [Fact]
    public async Task A_DuckDB_file_scores_as_the_same_rows_from_CSV_and_keep_writes_back_each_type()
    {
        using var dir = new TempDir();
        var input = dir.File("in.parquet");
        // The CSV's columns as the model saw them in training (card_present is text, not the boolean DuckDB would guess);
        // hour as INTEGER (int32), a row number as BIGINT, a flag, timestamps with and without a time zone, and a nested
        // column that nobody asks for; zstd, row groups of 3,000 rows.
        const string cardPresentAsText = "{'card_present': 'VARCHAR'}";
        DuckSql.Exec($"""
            COPY (SELECT * EXCLUDE (hour), hour::INTEGER AS hour, (row_number() OVER ())::BIGINT AS n,
                         card_present = 'yes' AS flag,
                         TIMESTAMP '2026-01-01 00:00:00' + INTERVAL (row_number() OVER ()) SECOND AS ts,
                         TIMESTAMPTZ '2026-01-01 00:00:00+00' + INTERVAL (row_number() OVER () * 1001) MILLISECOND AS tstz,
                         CASE WHEN row_number() OVER () % 10 = 0 THEN NULL ELSE hour::INTEGER END AS k,
                         [hour, hour] AS nested
                  FROM read_csv('{fx.Csv}', types = {cardPresentAsText}))
            TO '{input}' (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 3000)
            """);

        var fromParquet = await KilnCli.RunAsync(["batch", "--model", fx.Package, "--input", input, "--output", dir.File("out"),
            "--keep", "transaction_id,hour,n,flag,ts,tstz,k"]);
        var fromCsv = await KilnCli.RunAsync(["batch", "--model", fx.Package, "--input", fx.Csv, "--output", dir.File("csv-out"), "--keep", "transaction_id"]);

        Assert.True(fromParquet.ExitCode == 0, fromParquet.StdErr);
        Assert.True(fromCsv.ExitCode == 0, fromCsv.StdErr);
        var types = DuckSql.Rows($"SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM read_parquet('{dir.File("out")}/part-*.parquet'))")
            .ToDictionary(r => (string)r[0]!, r => (string)r[1]!);
        Assert.Equal("INTEGER", types["hour"]);
        Assert.Equal("BIGINT", types["n"]);
        Assert.Equal("BOOLEAN", types["flag"]);
        Assert.Equal("TIMESTAMP", types["ts"]);
        Assert.Equal("TIMESTAMP WITH TIME ZONE", types["tstz"]);
        Assert.Equal("INTEGER", types["k"]);
        Assert.Equal("VARCHAR", types["transaction_id"]);
        // Every kept value is the input's, and every prediction the CSV run's, to the last digit.
        var differences = DuckSql.Rows($"""
            SELECT count(*),
                   count(*) FILTER (o.hour IS DISTINCT FROM i.hour), count(*) FILTER (o.n IS DISTINCT FROM i.n),
                   count(*) FILTER (o.flag IS DISTINCT FROM i.flag), count(*) FILTER (o.ts IS DISTINCT FROM i.ts),
                   count(*) FILTER (o.tstz IS DISTINCT FROM i.tstz), count(*) FILTER (o.k IS DISTINCT FROM i.k),
                   count(*) FILTER (o.prediction IS DISTINCT FROM c.prediction), count(*) FILTER (o.probability IS DISTINCT FROM c.probability),
                   any_value(o.probability) FILTER (o.probability IS DISTINCT FROM c.probability), any_value(c.probability) FILTER (o.probability IS DISTINCT FROM c.probability)
            FROM read_parquet('{dir.File("out")}/part-*.parquet') o
            JOIN read_parquet('{input}') i USING (transaction_id)
            JOIN read_parquet('{dir.File("csv-out")}/part-*.parquet') c USING (transaction_id)
            WHERE o.hour IS DISTINCT FROM i.hour OR o.n IS DISTINCT FROM i.n OR o.flag IS DISTINCT FROM i.flag
               OR o.ts IS DISTINCT FROM i.ts OR o.tstz IS DISTINCT FROM i.tstz OR o.k IS DISTINCT FROM i.k
               OR o.prediction IS DISTINCT FROM c.prediction OR o.probability IS DISTINCT FROM c.probability
            """);
        Assert.True(0L == Convert.ToInt64(differences[0][0], System.Globalization.CultureInfo.InvariantCulture), string.Join(", ", differences[0]));
        Assert.Equal(DuckSql.Rows($"SELECT count(*) FROM read_csv('{fx.Csv}')")[0][0], DuckSql.Rows($"SELECT count(*) FROM read_parquet('{dir.File("out")}/part-*.parquet')")[0][0]);
        // Nullability follows the input: the keys DuckDB wrote as OPTIONAL stay OPTIONAL, and the nulls of k stay null.
        Assert.Equal(DuckSql.Rows($"SELECT count(*) FROM read_parquet('{input}') WHERE k IS NULL")[0][0],
            DuckSql.Rows($"SELECT count(*) FROM read_parquet('{dir.File("out")}/part-*.parquet') WHERE k IS NULL")[0][0]);
    }

    [Fact]
    public async Task A_nested_column_that_is_kept_is_refused_in_one_line_naming_file_and_column_and_nothing_is_written()
    {
        using var dir = new TempDir();
        var input = dir.File("nested.parquet");
        DuckSql.Exec($"COPY (SELECT *, {{'a': hour}} AS point FROM read_csv('{fx.Csv}')) TO '{input}' (FORMAT parquet)");

        var run = await KilnCli.RunAsync(["batch", "--model", fx.Package, "--input", input, "--output", dir.File("out"), "--keep", "transaction_id,point"]);

        Assert.Equal(1, run.ExitCode);
        var line = Assert.Single(run.StdErr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains(input, line);
        Assert.Contains("'point'", line);
        Assert.Contains("nested", line);
        Assert.False(Directory.Exists(dir.File("out")));
    }

    [Theory]
    [InlineData("truncated")]
    [InlineData("magic")]
    public async Task A_damaged_file_fails_the_job_in_one_line_naming_it_and_nothing_is_written(string damage)
    {
        using var dir = new TempDir();
        var clean = dir.File("clean.parquet");
        DuckSql.Exec($"COPY (SELECT * FROM read_csv('{fx.Csv}')) TO '{clean}' (FORMAT parquet)");
        var bytes = await File.ReadAllBytesAsync(clean);
        var input = dir.File("bad.parquet");
        await File.WriteAllBytesAsync(input, damage == "truncated" ? bytes[..(bytes.Length * 2 / 3)] : [.. bytes[..^4], .. "XXXX"u8]);

        var run = await KilnCli.RunAsync(["batch", "--model", fx.Package, "--input", input, "--output", dir.File("out")]);

        Assert.Equal(1, run.ExitCode);
        // One error line (the CLI adds its usual hint that --verbose shows the cause).
        var lines = run.StdErr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.StartsWith($"error: {input}: not a readable Parquet file", lines[0], StringComparison.Ordinal);
        Assert.All(lines.Skip(1), l => Assert.Equal("(run with --verbose for detail)", l));
        Assert.Empty(Directory.Exists(dir.File("out")) ? Directory.GetFiles(dir.File("out"), "part-*") : []);
    }
}
