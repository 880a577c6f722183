using Kiln.Core.Data;
using Kiln.Testing;

namespace Kiln.Core.Tests.Data;

/// <summary>
/// Parquet timestamps read as what they are: a <see cref="TimestampColumn"/> of ticks, instant or local, for every unit
/// DuckDB writes, with nulls, before 1970 and below 100 ns. The oracle is DuckDB itself: each expected instant is
/// DuckDB's epoch_ns (or epoch_us) of the same cell as an integer, turned into ticks as
/// 621355968000000000 (1970-01-01 in ticks) + floor(ns / 100).
/// </summary>
public sealed class ParquetTimestampTests
{
    private const long UnixEpochTicks = 621_355_968_000_000_000;

    // Instants and wall-clock times in every unit, nulls in each, values before 1970, nanoseconds that are not whole
    // 100 ns (DuckDB keeps them in TIMESTAMP_NS), several row groups.
    private const string Rows = """
        SELECT i,
          CASE WHEN i % 7 = 0 THEN NULL ELSE TIMESTAMP '1969-12-31 20:00:00' + INTERVAL (i * 3_600_000_123) MICROSECONDS END AS ts,
          CASE WHEN i % 11 = 0 THEN NULL ELSE TIMESTAMPTZ '1950-06-01 12:00:00+00' + INTERVAL (i * 86_400_123_457) MICROSECONDS END AS tstz,
          CASE WHEN i % 13 = 0 THEN NULL ELSE (TIMESTAMP '2026-03-01 10:00:00' + INTERVAL (i * 1234) MILLISECONDS)::TIMESTAMP_MS END AS ts_ms,
          CASE WHEN i % 17 = 0 THEN NULL ELSE make_timestamp_ns(1_700_000_000_000_000_000 + i * 1_234_567_891 - 5_000_000_000_000_000_000) END AS ts_ns,
          CASE WHEN i % 19 = 0 THEN NULL ELSE (TIMESTAMP '2001-09-09 01:46:40' + INTERVAL (i) SECONDS)::TIMESTAMP_S END AS ts_s
        FROM range(5000) r(i)
        """;

    private static readonly string[] Columns = ["ts", "tstz", "ts_ms", "ts_ns", "ts_s"];

    [Fact]
    public async Task DuckDB_timestamps_of_every_unit_read_as_the_instants_DuckDB_reads()
    {
        using var dir = new TempDir();
        var path = dir.File("times.parquet");
        DuckSql.Exec($"COPY ({Rows}) TO '{path}' (FORMAT parquet, ROW_GROUP_SIZE 2048)");

        var table = await TableReader.ReadAllAsync([path], [.. Columns.Select(c => new ColumnRequest(c, ColumnType.Text))]);
        var batches = new List<DataTable>();
        await foreach (var b in TableReader.ReadBatchesAsync(path, [.. Columns.Select(c => new ColumnRequest(c, ColumnType.Text))])) batches.Add(b);

        Assert.True(batches.Count > 1, "the file has several row groups");
        foreach (var c in Columns)
        {
            var expected = ExpectedTicks(path, c);
            var column = Assert.IsType<TimestampColumn>(table[c]);
            Assert.Equal(expected, column.Ticks);
            // The streaming read (batch, monitor windows) gives the same values row group by row group.
            Assert.Equal(expected, batches.SelectMany(b => ((TimestampColumn)b[c]).Ticks).ToArray());
            Assert.Contains(TimestampColumn.Missing, column.Ticks);
        }
        Assert.True(((TimestampColumn)table["tstz"]).Utc);
        Assert.All(Columns.Where(c => c != "tstz"), c => Assert.False(((TimestampColumn)table[c]).Utc));
        // Values before 1970 and nanoseconds below 100 ns are there to be rounded down, not toward 1970.
        Assert.Contains(((TimestampColumn)table["ts"]).Ticks, t => t != TimestampColumn.Missing && t < UnixEpochTicks);
        Assert.Contains(ExpectedNanos(path, "ts_ns"), ns => ns is { } v && v < 0 && v % 100 != 0);

        // Where text is wanted it is the ISO 8601 text Kiln has always given: 'Z' for an instant, none for a wall-clock time.
        Assert.Equal("1969-12-31T21:00:00.0001230", table.Text("ts").Values[1]);
        Assert.Equal("1950-06-02T12:00:00.1234570Z", table.Text("tstz").Values[1]);
        Assert.Null(table.Text("ts").Values[7]);
        Assert.Equal(table.Text("ts_ms").Values[1], table.Cell("ts_ms", 1));
        Assert.Equal(new DateTime(2026, 3, 1, 10, 0, 1, 234), ((TimestampColumn)table["ts_ms"])[1]);
        Assert.Null(((TimestampColumn)table["ts_ms"])[13]);
    }

    [Fact]
    public async Task A_table_with_timestamps_writes_back_timestamps_that_DuckDB_reads_as_the_same_instants()
    {
        using var dir = new TempDir();
        var source = dir.File("times.parquet");
        DuckSql.Exec($"COPY ({Rows}) TO '{source}' (FORMAT parquet)");
        var table = await TableReader.ReadAllAsync([source], [.. Columns.Select(c => new ColumnRequest(c, ColumnType.Text)), new("i", ColumnType.Numeric)]);
        var written = dir.File("back.parquet");

        await ParquetTable.WriteAsync(table, written);

        var types = DuckSql.Rows($"SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM '{written}')").ToDictionary(r => (string)r[0]!, r => (string)r[1]!);
        Assert.Equal("TIMESTAMP WITH TIME ZONE", types["tstz"]);
        Assert.All(Columns.Where(c => c != "tstz"), c => Assert.Equal("TIMESTAMP", types[c]));
        foreach (var c in Columns)
        {
            // Kiln writes microseconds: DuckDB's epoch_us of what Kiln wrote is the source's, rounded down to the microsecond.
            var sourceNanos = ExpectedNanos(source, c);
            Assert.Equal(sourceNanos.Select(ns => ns is { } v ? FloorDiv(v, 1000) : (long?)null),
                DuckSql.Rows($"SELECT epoch_us(\"{c}\") FROM read_parquet('{written}', file_row_number = true) ORDER BY file_row_number").Select(r => (long?)r[0]));
        }
        // And Kiln reads back what it wrote: the same ticks, to the microsecond.
        var back = await TableReader.ReadAllAsync([written], [.. Columns.Select(c => new ColumnRequest(c, ColumnType.Text))]);
        foreach (var c in Columns)
            Assert.Equal(((TimestampColumn)table[c]).Ticks.Select(t => t == TimestampColumn.Missing ? t : UnixEpochTicks + FloorDiv(t - UnixEpochTicks, 10) * 10),
                ((TimestampColumn)back[c]).Ticks);
    }

    [Fact]
    public async Task Tables_keep_timestamps_through_take_and_concat_and_become_text_beside_text()
    {
        using var dir = new TempDir();
        var parquet = dir.File("a.parquet");
        DuckSql.Exec($"COPY (SELECT TIMESTAMP '2026-01-02 03:04:05.25' + INTERVAL (i) HOUR AS t FROM range(3) r(i)) TO '{parquet}' (FORMAT parquet)");
        var csv = dir.File("b.csv");
        await File.WriteAllTextAsync(csv, "t\n2026-05-05T00:00:00.0000000\n");

        var twice = await TableReader.ReadAllAsync([parquet, parquet], [new("t", ColumnType.Text)]);
        var mixed = await TableReader.ReadAllAsync([parquet, csv], [new("t", ColumnType.Text)]);

        var t = Assert.IsType<TimestampColumn>(twice["t"]);
        Assert.Equal(6, twice.RowCount);
        Assert.Equal(new DateTime(2026, 1, 2, 5, 4, 5, 250), ((TimestampColumn)twice.Take([5, 0])["t"])[0]);
        Assert.Equal(t.Ticks[0], ((TimestampColumn)twice.Take([5, 0])["t"]).Ticks[1]);
        // A CSV file's text beside a Parquet file's timestamps: the column is text, the timestamps spelled as before.
        string?[] expected = ["2026-01-02T03:04:05.2500000", "2026-01-02T04:04:05.2500000", "2026-01-02T05:04:05.2500000", "2026-05-05T00:00:00.0000000"];
        Assert.Equal(expected, Assert.IsType<TextColumn>(mixed["t"]).Values.AsEnumerable());
    }

    [Fact]
    public async Task A_timestamp_outside_the_years_1_to_9999_is_refused_in_one_line_naming_file_row_and_column()
    {
        using var dir = new TempDir();
        var path = dir.File("far.parquet");
        DuckSql.Exec($"COPY (SELECT CASE WHEN i = 4 THEN TIMESTAMP '12000-01-01 00:00:00' ELSE TIMESTAMP '2026-01-01' END AS t FROM range(6) r(i)) TO '{path}' (FORMAT parquet)");

        var e = await Assert.ThrowsAsync<KilnException>(() => TableReader.ReadAllAsync([path], [new("t", ColumnType.Text)]));

        Assert.StartsWith($"{path}: row 5, column 't': the timestamp ", e.Message, StringComparison.Ordinal);
        Assert.EndsWith("is outside the years 1 to 9999", e.Message, StringComparison.Ordinal);
    }

    /// <summary>DuckDB's nanoseconds from 1970 of each cell, in file order.</summary>
    private static List<long?> ExpectedNanos(string path, string column) =>
        DuckSql.Rows($"SELECT epoch_ns(\"{column}\") FROM read_parquet('{path}', file_row_number = true) ORDER BY file_row_number").Select(r => (long?)r[0]).ToList();

    private static long[] ExpectedTicks(string path, string column) =>
        [.. ExpectedNanos(path, column).Select(ns => ns is { } v ? UnixEpochTicks + FloorDiv(v, 100) : TimestampColumn.Missing)];

    private static long FloorDiv(long a, long b) => a / b - (a % b < 0 ? 1 : 0);
}
