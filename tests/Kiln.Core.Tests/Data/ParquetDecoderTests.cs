using DuckDB.NET.Data;
using Kiln.Core.Data;
using Kiln.Testing;
using Parquet;
using Parquet.Schema;

namespace Kiln.Core.Tests.Data;

/// <summary>
/// Kiln's own Parquet decoder for flat text and double columns (ParquetColumnDecoder) against two independent
/// readers, Parquet.Net and DuckDB, on files written by DuckDB (every codec, V1 and V2 pages, several row groups),
/// by Parquet.Net (required and optional columns) and by hand (a dictionary that falls back to PLAIN mid-chunk,
/// V1 and V2 pages in one chunk, corrupt pages). pandas cannot be the oracle here: this machine's python3 has no
/// pyarrow or fastparquet.
/// </summary>
public sealed class ParquetDecoderTests
{
    private static readonly string[] TextColumns = ["label", "many", "plenty"];
    private static readonly string[] DoubleColumns = ["amount", "level"];

    // nulls, empty strings, non-ASCII UTF-8, long strings (330 bytes), many distinct values, a required-looking column.
    private const string Rows = """
        SELECT
          CASE WHEN i % 7 = 0 THEN NULL ELSE ['alpha', 'beta', 'γάμμα δέλτα', '', 'naïve café 🚀', repeat('long label ', 30)][1 + i % 6] END AS label,
          CASE WHEN i % 11 = 0 THEN NULL ELSE 'id-' || (i * 7919 % 100003)::VARCHAR || '-ü' END AS many,
          ['x', 'y', 'z'][1 + i % 3] AS plenty,
          CASE WHEN i % 13 = 0 THEN NULL ELSE (i * 0.37 - 1000)::DOUBLE END AS amount,
          (i % 5)::DOUBLE / 4 AS level
        FROM range(25000) r(i)
        """;

    [Theory]
    [InlineData("uncompressed", "V1")]
    [InlineData("snappy", "V1")]
    [InlineData("gzip", "V1")]
    [InlineData("zstd", "V1")]
    [InlineData("brotli", "V1")]
    [InlineData("lz4", "V1")]
    [InlineData("uncompressed", "V2")]
    [InlineData("snappy", "V2")]
    [InlineData("zstd", "V2")]
    public async Task DuckDB_files_decode_as_Parquet_Net_and_DuckDB_read_them(string codec, string version)
    {
        using var dir = new TempDir();
        var path = dir.File($"{codec}-{version}.parquet");
        Duck($"COPY ({Rows}) TO '{path}' (FORMAT parquet, COMPRESSION {codec}, ROW_GROUP_SIZE 10000, PARQUET_VERSION {version})");

        var handled = await CompareChunksWithParquetNetAsync(path, [.. TextColumns, .. DoubleColumns]);

        // LZ4_RAW is left to Parquet.Net; V2 files hold DELTA_LENGTH_BYTE_ARRAY text, which is left to it too, but
        // their dictionary-encoded columns are ours.
        if (codec == "lz4") Assert.Empty(handled);
        else if (version == "V1") Assert.Equal(3 * 5, handled.Count);
        else Assert.Equal(3, handled.Count(h => h == "label"));
        await AssertTableReaderMatchesDuckDbAsync(path);
    }

    [Fact]
    public async Task Parquet_Net_files_with_required_and_optional_columns_over_several_row_groups_decode_exactly()
    {
        using var dir = new TempDir();
        var path = dir.File("parquetnet.parquet");
        var required = new DataField<string>("required_text", false);
        var optional = new DataField<string>("optional_text", true);
        var requiredNumber = new DataField<double>("required_number");
        var optionalNumber = new DataField<double?>("optional_number");
        var rng = new Random(7);
        string[] labels = ["north", "south", "ост", "", "西"];
        await using (var stream = File.Create(path))
        {
            await using var writer = await ParquetWriter.CreateAsync(new ParquetSchema(required, optional, requiredNumber, optionalNumber), stream);
            foreach (var rows in new[] { 5000, 1, 3000 })
            {
                using var rg = writer.CreateRowGroup();
                await rg.WriteAsync(required, new ArraySegment<string>([.. Enumerable.Range(0, rows).Select(_ => labels[rng.Next(labels.Length)])]), null);
                // Mostly distinct values: PLAIN rather than a dictionary.
                await rg.WriteAsync(optional, new ArraySegment<string>([.. Enumerable.Range(0, rows).Select(i => i % 9 == 4 ? null! : $"v{rng.Next()}")]), null);
                await rg.WriteAsync<double>(requiredNumber, Enumerable.Range(0, rows).Select(_ => rng.NextDouble() * 100 - 50).ToArray().AsMemory(), null, null);
                await rg.WriteAsync<double>(optionalNumber, Enumerable.Range(0, rows).Select(i => i % 5 == 0 ? (double?)null : i % 4).ToArray().AsMemory(), null, null);
            }
        }

        var handled = await CompareChunksWithParquetNetAsync(path, ["required_text", "optional_text", "required_number", "optional_number"]);

        Assert.Equal(3 * 4, handled.Count);
    }

    [Fact]
    public async Task A_dictionary_that_falls_back_to_PLAIN_mid_chunk_with_V1_and_V2_pages_reads_as_Parquet_Net_and_DuckDB_read_it()
    {
        using var dir = new TempDir();
        var path = dir.File("fallback.parquet");
        string[] dictionary = ["alpha", "β-beta", "", "long " + new string('x', 200)];
        int?[] first = [0, 1, null, 2, 3, 3, 0, null, null, 1, 2, 0, 3, 1, 0, 0, null, 2];
        string?[] plain = ["ü-plain", null, "", "ü-plain", "zeta", "ü-plain", null, new string('q', 90), "ü-plain"];
        int?[] second = [3, null, 0, 1, 2, 2, 1, 0, 3, null, 0, 0, 1, 2, 3, 3, 2, 1, 0, null, 3];
        new HandBuiltParquet().Dictionary(dictionary).DictionaryPageV1(first).PlainPageV1(plain).DictionaryPageV2(second).Save(path);
        var expected = first.Select(i => i is { } v ? dictionary[v] : null).Concat(plain).Concat(second.Select(i => i is { } v ? dictionary[v] : null)).ToArray();

        var handled = await CompareChunksWithParquetNetAsync(path, ["s"]);
        var read = await TableReader.ReadAllAsync([path], [new("s", ColumnType.Text)]);

        Assert.Single(handled);
        Assert.Equal(expected, read.Text("s").Values);
        Assert.Equal(expected, DuckColumn(path, "s").Cast<string?>());
        // One string per distinct label, also for PLAIN values.
        var plainRead = read.Text("s").Values.Skip(first.Length).Take(plain.Length).Where(v => v == "ü-plain").ToArray();
        Assert.All(plainRead, v => Assert.Same(plainRead[0], v));
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
    }

    [Theory]
    [InlineData("uncompressed")]
    [InlineData("snappy")]
    [InlineData("gzip")]
    [InlineData("zstd")]
    [InlineData("brotli")]
    public async Task Random_byte_damage_in_a_column_chunk_never_crashes_the_reader(string codec)
    {
        // Without page checksums damage can go unnoticed (a different label), but it must never surface as anything
        // other than a KilnException: no IndexOutOfRange, no overflow, no runaway allocation.
        using var dir = new TempDir();
        var clean = dir.File("clean.parquet");
        Duck($"COPY (SELECT * FROM ({Rows}) LIMIT 3000) TO '{clean}' (FORMAT parquet, COMPRESSION {codec}, ROW_GROUP_SIZE 3000)");
        var bytes = await File.ReadAllBytesAsync(clean);
        var chunks = new List<(string Column, long Start, long Length)>();
        await using (var reader = await ParquetReader.CreateAsync(clean))
        {
            using var rg = reader.OpenRowGroupReader(0);
            foreach (var name in new[] { "label", "many", "amount" })
            {
                var meta = rg.GetMetadata(reader.Schema.GetDataFields().Single(f => f.Name == name))!.MetaData!;
                var start = meta.DictionaryPageOffset is { } d && d > 0 ? Math.Min(d, meta.DataPageOffset) : meta.DataPageOffset;
                chunks.Add((name, start, meta.TotalCompressedSize));
            }
        }
        var rng = new Random(codec.Length);
        var damaged = dir.File("damaged.parquet");
        var errors = 0;
        for (var trial = 0; trial < 150; trial++)
        {
            var (column, start, length) = chunks[trial % chunks.Count];
            var copy = (byte[])bytes.Clone();
            for (var flips = 1 + rng.Next(3); flips > 0; flips--) copy[start + rng.NextInt64(length)] ^= (byte)(1 << rng.Next(8));
            await File.WriteAllBytesAsync(damaged, copy);
            await using var reader = await ParquetReader.CreateAsync(damaged);
            using var rg = reader.OpenRowGroupReader(0);
            using var handle = File.OpenHandle(damaged);
            var field = reader.Schema.GetDataFields().Single(f => f.Name == column);
            try
            {
                var read = column == "amount"
                    ? ParquetColumnDecoder.TryReadDoubles(handle, damaged, 0, rg.GetMetadata(field)!, field, 3000, default)?.Length
                    : ParquetColumnDecoder.TryReadText(handle, damaged, 0, rg.GetMetadata(field)!, field, 3000, default)?.Length;
                Assert.True(read is null or 3000);
            }
            catch (KilnException e)
            {
                Assert.StartsWith($"{damaged}: column '{column}', row group 0: ", e.Message, StringComparison.Ordinal);
                errors++;
            }
            // The whole reader, with Parquet.Net taking the chunks Kiln's decoder leaves: a table or a KilnException.
            try
            {
                Assert.Equal(3000, (await TableReader.ReadAllAsync([damaged], [new(column, column == "amount" ? ColumnType.Numeric : ColumnType.Text)])).RowCount);
            }
            catch (KilnException e)
            {
                Assert.StartsWith($"{damaged}: ", e.Message, StringComparison.Ordinal);
            }
        }
        Assert.True(errors > 0, "no damage was detected at all");
    }

    /// <summary>
    /// Decodes every chunk of <paramref name="columns"/> with Kiln's decoder and with Parquet.Net; where Kiln's
    /// decoder handles a chunk the two must agree value for value. Returns the columns of the handled chunks.
    /// </summary>
    private static async Task<List<string>> CompareChunksWithParquetNetAsync(string path, string[] columns)
    {
        var handled = new List<string>();
        using var handle = File.OpenHandle(path);
        await using var reader = await ParquetReader.CreateAsync(path);
        for (var g = 0; g < reader.RowGroupCount; g++)
        {
            using var rg = reader.OpenRowGroupReader(g);
            var rows = (int)rg.RowCount;
            foreach (var name in columns)
            {
                var field = reader.Schema.GetDataFields().Single(f => f.Name == name);
                var chunk = rg.GetMetadata(field)!;
                if (field.ClrType == typeof(double))
                {
                    var ours = ParquetColumnDecoder.TryReadDoubles(handle, path, g, chunk, field, rows, default);
                    if (ours is null) continue;
                    handled.Add(name);
                    double[] theirs;
                    if (field.IsNullable)
                    {
                        var nullable = new double?[rows];
                        await rg.ReadAsync<double>(field, nullable.AsMemory(), null);
                        theirs = [.. nullable.Select(v => v ?? double.NaN)];
                    }
                    else
                    {
                        theirs = new double[rows];
                        await rg.ReadAsync(field, theirs.AsMemory(), null);
                    }
                    Assert.Equal(theirs, ours);
                }
                else
                {
                    var ours = ParquetColumnDecoder.TryReadText(handle, path, g, chunk, field, rows, default);
                    if (ours is null) continue;
                    handled.Add(name);
                    var theirs = new string?[rows];
                    await rg.ReadAsync(field, theirs.AsMemory(), null);
                    Assert.Equal(theirs, ours);
                }
            }
        }
        return handled;
    }

    private static async Task AssertTableReaderMatchesDuckDbAsync(string path)
    {
        var requests = TextColumns.Select(c => new ColumnRequest(c, ColumnType.Text)).Concat(DoubleColumns.Select(c => new ColumnRequest(c, ColumnType.Numeric))).ToArray();
        var table = await TableReader.ReadAllAsync([path], requests);
        Assert.Equal(25000, table.RowCount);
        foreach (var c in TextColumns) Assert.Equal(DuckColumn(path, c).Cast<string?>(), table.Text(c).Values);
        foreach (var c in DoubleColumns) Assert.Equal(DuckColumn(path, c).Select(v => v is double d ? d : double.NaN), table.Numeric(c).Values);
    }

    /// <summary>One column as DuckDB reads it, in file order (null for missing).</summary>
    internal static List<object?> DuckColumn(string path, string column)
    {
        using var connection = new DuckDBConnection("DataSource=:memory:");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = $"SELECT \"{column}\" FROM read_parquet('{path}', file_row_number = true) ORDER BY file_row_number";
        using var reader = command.ExecuteReader();
        var values = new List<object?>();
        while (reader.Read()) values.Add(reader.IsDBNull(0) ? null : reader.GetValue(0));
        return values;
    }

    private static void Duck(string sql)
    {
        using var connection = new DuckDBConnection("DataSource=:memory:");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }
}
