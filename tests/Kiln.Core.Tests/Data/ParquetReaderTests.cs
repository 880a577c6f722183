using Kiln.Core.Data;
using Kiln.Testing;

namespace Kiln.Core.Tests.Data;

/// <summary>
/// Kiln's one Parquet reader (ParquetFile, through ParquetTable and TableReader) and writer (ParquetTableWriter) against
/// an independent implementation, DuckDB: files DuckDB writes (every codec, data page V1 and V2, row groups of different
/// sizes, dictionary and plain encodings, nulls in every type, timestamps of every unit with and without a time zone)
/// read with the values DuckDB reads; files Kiln writes read by DuckDB with the same types and values; nested, damaged
/// and foreign files refused in one line naming the file (and the column). pandas cannot be the oracle here: this
/// machine's python3 has no pyarrow or fastparquet. Expected values come from DuckDB reading the same file.
/// </summary>
public sealed class ParquetReaderTests
{
    private static readonly string[] TextColumns = ["label", "many", "plenty"];
    private static readonly string[] NumberColumns = ["amount", "level", "i32", "i64", "f32", "flag", "small", "money"];
    private static readonly string[] TimeColumns = ["ts_us", "ts_ms", "ts_ns", "ts_tz"];

    // Nulls in every type, empty strings, non-ASCII UTF-8, long strings, many distinct values (plain) and few (dictionary).
    private const string Rows = """
        SELECT
          CASE WHEN i % 7 = 0 THEN NULL ELSE ['alpha', 'beta', 'γάμμα δέλτα', '', 'naïve café 🚀', repeat('long label ', 30)][1 + i % 6] END AS label,
          CASE WHEN i % 11 = 0 THEN NULL ELSE 'id-' || (i * 7919 % 100003)::VARCHAR || '-ü' END AS many,
          ['x', 'y', 'z'][1 + i % 3] AS plenty,
          CASE WHEN i % 13 = 0 THEN NULL ELSE (i * 0.37 - 1000)::DOUBLE END AS amount,
          (i % 5)::DOUBLE / 4 AS level,
          CASE WHEN i % 17 = 0 THEN NULL ELSE (i * 31 - 400000)::INTEGER END AS i32,
          CASE WHEN i % 19 = 0 THEN NULL ELSE (i::BIGINT * 1000003 - 9000000000) END AS i64,
          CASE WHEN i % 23 = 0 THEN NULL ELSE (i * 0.5)::FLOAT END AS f32,
          CASE WHEN i % 29 = 0 THEN NULL ELSE i % 3 = 0 END AS flag,
          CASE WHEN i % 31 = 0 THEN NULL ELSE (i % 200 - 100)::SMALLINT END AS small,
          CASE WHEN i % 37 = 0 THEN NULL ELSE (i * 0.25)::DECIMAL(12, 2) END AS money,
          CASE WHEN i % 41 = 0 THEN NULL ELSE TIMESTAMP '2026-03-01 10:00:00' + INTERVAL (i * 1234567) MICROSECONDS END AS ts_us,
          CASE WHEN i % 43 = 0 THEN NULL ELSE (TIMESTAMP '2026-03-01 10:00:00' + INTERVAL (i * 1234) MILLISECONDS)::TIMESTAMP_MS END AS ts_ms,
          CASE WHEN i % 47 = 0 THEN NULL ELSE (TIMESTAMP '2026-03-01 10:00:00' + INTERVAL (i * 1234567) MICROSECONDS)::TIMESTAMP_NS END AS ts_ns,
          CASE WHEN i % 53 = 0 THEN NULL ELSE TIMESTAMPTZ '2026-03-01 10:00:00+00' + INTERVAL (i * 999) SECONDS END AS ts_tz
        FROM range(25000) r(i)
        """;

    [Theory]
    [InlineData("uncompressed", "V1", 10000)]
    [InlineData("snappy", "V1", 10000)]
    [InlineData("gzip", "V1", 3000)]
    [InlineData("zstd", "V1", 25000)]
    [InlineData("brotli", "V1", 10000)]
    [InlineData("lz4", "V1", 10000)]
    [InlineData("uncompressed", "V2", 7000)]
    [InlineData("snappy", "V2", 10000)]
    [InlineData("gzip", "V2", 10000)]
    [InlineData("zstd", "V2", 3000)]
    public async Task DuckDB_files_read_as_DuckDB_reads_them(string codec, string version, int rowGroup)
    {
        using var dir = new TempDir();
        var path = dir.File($"{codec}-{version}.parquet");
        DuckSql.Exec($"COPY ({Rows}) TO '{path}' (FORMAT parquet, COMPRESSION {codec}, ROW_GROUP_SIZE {rowGroup}, PARQUET_VERSION {version})");

        var requests = TextColumns.Select(c => new ColumnRequest(c, ColumnType.Text))
            .Concat(NumberColumns.Select(c => new ColumnRequest(c, ColumnType.Numeric)))
            .Concat(TimeColumns.Select(c => new ColumnRequest(c, ColumnType.Text))).ToArray();
        var table = await TableReader.ReadAllAsync([path], requests);

        Assert.Equal(25000, table.RowCount);
        // DuckDB rounds its row group size to its vectors; the groups are the ones its own metadata lists.
        var groups = (await ParquetTable.ReadRowGroupSizesAsync(path)).Length;
        Assert.Equal(DuckSql.Rows($"SELECT count(DISTINCT row_group_id) FROM parquet_metadata('{path}')")[0][0], (long)groups);
        Assert.True(rowGroup >= 25000 || groups > 1, "the file has several row groups");
        foreach (var c in TextColumns) Assert.Equal(DuckSql.Column(path, c).Cast<string?>(), table.Text(c).Values);
        foreach (var c in NumberColumns)
            Assert.Equal(DuckSql.Column(path, c).Select(v => v switch { null => double.NaN, bool b => b ? 1 : 0, decimal d => (double)d, _ => Convert.ToDouble(v, System.Globalization.CultureInfo.InvariantCulture) }), table.Numeric(c).Values);
        foreach (var c in TimeColumns)
        {
            var expected = DuckSql.Column(path, c).Select(v => v switch
            {
                null => (DateTime?)null,
                DateTimeOffset o => o.UtcDateTime,
                DateTime d => d,
                _ => throw new InvalidOperationException($"DuckDB gave {v.GetType()} for {c}"),
            }).ToArray();
            var read = table.Text(c).Values.Select(s => s is null ? (DateTime?)null : DateTime.Parse(s, System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.AdjustToUniversal | System.Globalization.DateTimeStyles.AssumeUniversal)).ToArray();
            Assert.Equal(expected, read);
        }
        // An instant is written with its zone (Z); a wall-clock time without one.
        Assert.EndsWith("Z", table.Text("ts_tz").Values[1], StringComparison.Ordinal);
        Assert.DoesNotContain("Z", table.Text("ts_us").Values[1], StringComparison.Ordinal);
    }

    [Fact]
    public void The_schema_names_each_column_type_and_nullability_as_DuckDB_wrote_them()
    {
        using var dir = new TempDir();
        var path = dir.File("types.parquet");
        DuckSql.Exec($"COPY (SELECT *, 7::INTEGER AS required_looking FROM ({Rows}) LIMIT 10) TO '{path}' (FORMAT parquet)");

        using var file = ParquetFile.Open(path);

        Assert.Equal(ParquetValueType.Int32, file.Field("i32").Type);
        Assert.Equal(ParquetValueType.Int64, file.Field("i64").Type);
        Assert.Equal(ParquetValueType.Float, file.Field("f32").Type);
        Assert.Equal(ParquetValueType.Boolean, file.Field("flag").Type);
        Assert.Equal(ParquetValueType.Decimal, file.Field("money").Type);
        Assert.Equal(ParquetValueType.Text, file.Field("label").Type);
        Assert.All(TimeColumns, c => Assert.Equal(ParquetValueType.Timestamp, file.Field(c).Type));
        Assert.True(file.Field("ts_tz").Utc);
        Assert.False(file.Field("ts_us").Utc);
    }

    [Fact]
    public async Task A_file_Kiln_writes_is_read_by_DuckDB_with_the_same_types_and_values()
    {
        using var dir = new TempDir();
        var path = dir.File("kiln.parquet");
        ParquetColumn[] columns =
        [
            new("text", ParquetColumnKind.Text, true), new("required_text", ParquetColumnKind.Text, false),
            new("x", ParquetColumnKind.Double, true), new("n32", ParquetColumnKind.Int32, false), new("n64", ParquetColumnKind.Int64, true),
            new("flag", ParquetColumnKind.Boolean, true), new("at", ParquetColumnKind.Timestamp, false), new("local", ParquetColumnKind.LocalTimestamp, true),
        ];
        var t0 = new DateTime(2026, 5, 1, 12, 30, 15, DateTimeKind.Utc).AddTicks(1230);
        var table = new DataTable(5)
            .Add(new TextColumn("text", ["a", null, "ü 🚀", "", "a"]))
            .Add(new TextColumn("required_text", ["r0", "r1", "r2", "r3", "r4"]))
            .Add(new NumericColumn("x", [1.5, double.NaN, -0.25, 1e300, 0]))
            .Add(new NumericColumn("n32", [1, -2, int.MaxValue, int.MinValue, 0]))
            .Add(new NumericColumn("n64", [1L << 40, double.NaN, -5, 0, 7]))
            .Add(new NumericColumn("flag", [1, 0, double.NaN, 1, 0]))
            .Add(new TextColumn("at", [.. Enumerable.Range(0, 5).Select(i => t0.AddHours(i).ToString("O", System.Globalization.CultureInfo.InvariantCulture))]))
            .Add(new TextColumn("local", ["2026-01-02T03:04:05.0000060", null, "2026-01-02T03:04:05", null, "1999-12-31T23:59:59.9990000"]));
        await using (var stream = File.Create(path))
        {
            using var w = new ParquetTableWriter(stream, columns);
            w.WriteRowGroup(table.Take([0, 1, 2]));
            w.WriteRowGroup(table.Take([3, 4]));
            w.Finish();
        }

        var types = DuckSql.Rows($"SELECT column_name, column_type, \"null\" FROM (DESCRIBE SELECT * FROM '{path}')");
        Assert.Equal(
            ["text VARCHAR", "required_text VARCHAR", "x DOUBLE", "n32 INTEGER", "n64 BIGINT", "flag BOOLEAN", "at TIMESTAMP WITH TIME ZONE", "local TIMESTAMP"],
            types.Select(r => $"{r[0]} {r[1]}"));
        Assert.Equal(["a", null, "ü 🚀", "", "a"], DuckSql.Column(path, "text"));
        Assert.Equal([1.5, null, -0.25, 1e300, 0.0], DuckSql.Column(path, "x"));
        Assert.Equal([1, -2, int.MaxValue, int.MinValue, 0], DuckSql.Column(path, "n32").Cast<int>());
        Assert.Equal([1L << 40, null, -5L, 0L, 7L], DuckSql.Column(path, "n64"));
        Assert.Equal([true, false, null, true, false], DuckSql.Column(path, "flag"));
        Assert.Equal(Enumerable.Range(0, 5).Select(i => t0.AddHours(i)), DuckSql.Column(path, "at").Select(v => v is DateTimeOffset o ? o.UtcDateTime : DateTime.SpecifyKind((DateTime)v!, DateTimeKind.Utc)));
        Assert.Equal([new DateTime(2026, 1, 2, 3, 4, 5).AddTicks(60), null, new DateTime(2026, 1, 2, 3, 4, 5), null, new DateTime(1999, 12, 31, 23, 59, 59, 999)], DuckSql.Column(path, "local"));
        // Required columns are declared required (DuckDB's parquet_schema repetition_type).
        var repetition = DuckSql.Rows($"SELECT name, repetition_type FROM parquet_schema('{path}') WHERE name IN ('required_text', 'n32', 'at', 'text')").ToDictionary(r => (string)r[0]!, r => (string)r[1]!);
        Assert.Equal("REQUIRED", repetition["required_text"]);
        Assert.Equal("REQUIRED", repetition["n32"]);
        Assert.Equal("OPTIONAL", repetition["text"]);

        // And Kiln reads back what it wrote.
        var back = await TableReader.ReadAllAsync([path], [new("x", ColumnType.Numeric), new("n32", ColumnType.Numeric), new("at", ColumnType.Text), new("text", ColumnType.Text)]);
        Assert.Equal(table.Numeric("x").Values, back.Numeric("x").Values);
        Assert.Equal(table.Numeric("n32").Values, back.Numeric("n32").Values);
        Assert.Equal(table.Text("at").Values, back.Text("at").Values);
        Assert.Equal(table.Text("text").Values, back.Text("text").Values);
    }

    [Fact]
    public async Task A_nested_column_is_refused_in_one_line_naming_it_and_not_read_when_not_asked_for()
    {
        using var dir = new TempDir();
        var path = dir.File("nested.parquet");
        DuckSql.Exec($"COPY (SELECT i::DOUBLE AS x, [i, i + 1] AS list, {{'a': i}} AS point FROM range(100) r(i)) TO '{path}' (FORMAT parquet)");

        var table = await TableReader.ReadAllAsync([path], [new("x", ColumnType.Numeric)]);
        var e = await Assert.ThrowsAsync<KilnException>(() => TableReader.ReadAllAsync([path], [new("x", ColumnType.Numeric), new("list", ColumnType.Text)]));
        var e2 = await Assert.ThrowsAsync<KilnException>(() => TableReader.ReadAllAsync([path], [new("point", ColumnType.Numeric)]));

        Assert.Equal(100, table.RowCount);
        Assert.Equal($"{path}: column 'list' is a nested column (struct, list or map), which Kiln cannot read", e.Message);
        Assert.StartsWith($"{path}: column 'point' is a nested column", e2.Message, StringComparison.Ordinal);
        Assert.Equal(["x", "list", "point"], await TableReader.ReadColumnNamesAsync(path));
    }

    [Theory]
    [InlineData("truncated")]
    [InlineData("magic")]
    [InlineData("empty")]
    [InlineData("text")]
    public async Task A_damaged_or_foreign_file_is_refused_in_one_line_naming_it(string damage)
    {
        using var dir = new TempDir();
        var clean = dir.File("clean.parquet");
        DuckSql.Exec($"COPY (SELECT * FROM ({Rows}) LIMIT 3000) TO '{clean}' (FORMAT parquet)");
        var bytes = await File.ReadAllBytesAsync(clean);
        var path = dir.File("bad.parquet");
        byte[] content = damage switch
        {
            "truncated" => bytes[..(bytes.Length / 2)],
            "magic" => [.. bytes[..^4], .. "PAR2"u8],
            "empty" => [],
            _ => "id,x\n1,2\n"u8.ToArray(),
        };
        await File.WriteAllBytesAsync(path, content);

        var e = await Assert.ThrowsAsync<KilnException>(() => TableReader.ReadAllAsync([path], [new("amount", ColumnType.Numeric)]));

        Assert.StartsWith($"{path}: not a readable Parquet file (", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public async Task A_missing_column_and_text_where_numbers_are_needed_are_errors_naming_file_row_and_column()
    {
        using var dir = new TempDir();
        var path = dir.File("t.parquet");
        DuckSql.Exec($"COPY (SELECT 'a' || i AS code, i::DOUBLE AS x, TIMESTAMP '2026-01-01' AS at FROM range(10) r(i)) TO '{path}' (FORMAT parquet)");

        var missing = await Assert.ThrowsAsync<KilnException>(() => TableReader.ReadAllAsync([path], [new("y", ColumnType.Numeric)]));
        var text = await Assert.ThrowsAsync<KilnException>(() => TableReader.ReadAllAsync([path], [new("code", ColumnType.Numeric)]));
        var time = await Assert.ThrowsAsync<KilnException>(() => TableReader.ReadAllAsync([path], [new("at", ColumnType.Numeric)]));

        Assert.Equal($"{path}: column 'y' is missing (the file has: code, x, at)", missing.Message);
        Assert.Equal($"{path}: row 1, column 'code': 'a0' is not a number", text.Message);
        Assert.Equal($"{path}: column 'at' holds timestamps, which Kiln cannot read as numbers", time.Message);
    }

    [Fact]
    public async Task A_dictionary_that_falls_back_to_PLAIN_mid_chunk_with_V1_and_V2_pages_reads_as_DuckDB_reads_it()
    {
        using var dir = new TempDir();
        var path = dir.File("fallback.parquet");
        string[] dictionary = ["alpha", "β-beta", "", "long " + new string('x', 200)];
        int?[] first = [0, 1, null, 2, 3, 3, 0, null, null, 1, 2, 0, 3, 1, 0, 0, null, 2];
        string?[] plain = ["ü-plain", null, "", "ü-plain", "zeta", "ü-plain", null, new string('q', 90), "ü-plain"];
        int?[] second = [3, null, 0, 1, 2, 2, 1, 0, 3, null, 0, 0, 1, 2, 3, 3, 2, 1, 0, null, 3];
        new HandBuiltParquet().Dictionary(dictionary).DictionaryPageV1(first).PlainPageV1(plain).DictionaryPageV2(second).Save(path);
        var expected = first.Select(i => i is { } v ? dictionary[v] : null).Concat(plain).Concat(second.Select(i => i is { } v ? dictionary[v] : null)).ToArray();

        var read = await TableReader.ReadAllAsync([path], [new("s", ColumnType.Text)]);

        Assert.Equal(expected, read.Text("s").Values);
        Assert.Equal(expected, DuckSql.Column(path, "s").Cast<string?>());
        // One string per dictionary entry: a label repeated over many rows is one string.
        var alphas = read.Text("s").Values.Where(v => v == "alpha").ToArray();
        Assert.All(alphas, v => Assert.Same(alphas[0], v));
    }

    [Theory]
    [InlineData("index")]
    [InlineData("width")]
    [InlineData("truncated")]
    [InlineData("garbage")]
    public async Task A_corrupt_page_is_an_error_naming_the_file_and_column(string corruption)
    {
        using var dir = new TempDir();
        var path = dir.File($"corrupt-{corruption}.parquet");
        var file = new HandBuiltParquet().Dictionary("a", "b");
        switch (corruption)
        {
            case "index": file.DictionaryPageV1([0, 1, 5, 1]); break; // 5 is outside a dictionary of 2
            case "width": file.DictionaryPageV1([0, 1, 0, 1], bitWidthByte: 40); break;
            case "truncated": file.DictionaryPageV1([0, 1, 0, 1, 1, 1, 0, 0]).Truncate(3); break;
            default: file.Garbage([0x15, 0x00, 0x15, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F, 0x01, 0x02], rows: 4); break;
        }
        file.Save(path);

        var e = await Assert.ThrowsAsync<KilnException>(() => TableReader.ReadAllAsync([path], [new("s", ColumnType.Text)]));

        Assert.StartsWith($"{path}: column 's', row group 0: ", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Theory]
    [InlineData("snappy")]
    [InlineData("zstd")]
    public async Task Random_byte_damage_never_crashes_the_reader(string codec)
    {
        // Without page checksums damage can go unnoticed (a different value), but it must never surface as anything
        // other than a table or a KilnException naming the file.
        using var dir = new TempDir();
        var clean = dir.File("clean.parquet");
        DuckSql.Exec($"COPY (SELECT * FROM ({Rows}) LIMIT 3000) TO '{clean}' (FORMAT parquet, COMPRESSION {codec}, ROW_GROUP_SIZE 3000)");
        var bytes = await File.ReadAllBytesAsync(clean);
        var rng = new Random(codec.Length);
        var damaged = dir.File("damaged.parquet");
        var errors = 0;
        for (var trial = 0; trial < 100; trial++)
        {
            var copy = (byte[])bytes.Clone();
            // Damage the data, not the footer (whose damage the file-level test covers).
            for (var flips = 1 + rng.Next(3); flips > 0; flips--) copy[4 + rng.Next(bytes.Length / 2)] ^= (byte)(1 << rng.Next(8));
            await File.WriteAllBytesAsync(damaged, copy);
            try
            {
                Assert.Equal(3000, (await TableReader.ReadAllAsync([damaged], [new("label", ColumnType.Text), new("many", ColumnType.Text), new("amount", ColumnType.Numeric)])).RowCount);
            }
            catch (KilnException e)
            {
                Assert.StartsWith($"{damaged}: ", e.Message, StringComparison.Ordinal);
                errors++;
            }
        }
        Assert.True(errors > 0, "no damage was detected at all");
    }
}
