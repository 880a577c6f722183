using Kiln.Core.Data;
using Kiln.Testing;
using ParquetSharp;

namespace Kiln.Core.Tests.Data;

/// <summary>
/// Text columns counted straight from the file's bytes (<see cref="ParquetFile.CountText"/>, what kiln drift uses for a
/// categorical column) give the counts DuckDB's own GROUP BY gives for the same file: dictionary-encoded and plain
/// pages, many small pages (a plain page's buffer is reused at the same address for the next page), nulls, empty and
/// non-ASCII strings, values longer than the address table keeps, and many row groups.
/// </summary>
public sealed class ParquetTextCountTests
{
    // Few labels (dictionary pages), a million-ish distinct ids (DuckDB falls back to plain pages), long values, nulls.
    private const string Rows = """
        SELECT
          CASE WHEN i % 7 = 0 THEN NULL ELSE ['alpha', 'beta', 'γάμμα δέλτα', '', 'naïve café 🚀', repeat('long label ', 30)][1 + i % 6] END AS label,
          CASE WHEN i % 11 = 0 THEN NULL ELSE 'id-' || (i * 7919 % 100003)::VARCHAR || '-ü' END AS many,
          ['x', 'y', 'z'][1 + (i * i) % 3] AS plenty
        FROM range(60000) r(i)
        """;

    [Theory]
    [InlineData("snappy", "V1", 10000)]
    [InlineData("zstd", "V2", 7000)]
    [InlineData("uncompressed", "V1", 60000)]
    public void Counts_of_a_DuckDB_file_equal_DuckDBs_group_by(string codec, string version, int rowGroup)
    {
        using var dir = new TempDir();
        var path = dir.File($"{codec}-{version}.parquet");
        DuckSql.Exec($"COPY ({Rows}) TO '{path}' (FORMAT parquet, COMPRESSION {codec}, ROW_GROUP_SIZE {rowGroup}, PARQUET_VERSION {version})");

        foreach (var column in new[] { "label", "many", "plenty" }) AssertCountsEqualDuckDb(path, column);
    }

    [Fact]
    public void Counts_of_plain_pages_reused_at_the_same_address_equal_DuckDBs_group_by()
    {
        using var dir = new TempDir();
        var path = dir.File("plain.parquet");
        // Dictionary off and 1 KiB pages: hundreds of plain pages per chunk, decoded one after another into the same buffer.
        string[] labels = ["red", "green", "blue", "teal", "cyan", "rose", "", "ochre-ochre-ochre"];
        var rng = new Random(5);
        using (var properties = new WriterPropertiesBuilder().DisableDictionary().DataPagesize(1024).Compression(Compression.Snappy).Build())
        using (var writer = new ParquetFileWriter(path, [new Column<string?>("color")], properties))
        {
            for (var group = 0; group < 3; group++)
            {
                using var rowGroup = writer.AppendRowGroup();
                using var column = rowGroup.NextColumn().LogicalWriter<string?>();
                var values = new string?[20_000];
                for (var i = 0; i < values.Length; i++) values[i] = rng.Next(9) == 0 ? null : labels[rng.Next(labels.Length)];
                column.WriteBatch(values);
            }
            writer.Close();
        }

        AssertCountsEqualDuckDb(path, "color");
    }

    [Fact]
    public async Task A_column_that_is_not_text_is_refused_naming_file_and_column()
    {
        using var dir = new TempDir();
        var path = dir.File("numbers.parquet");
        await ParquetTable.WriteAsync(new DataTable(2).Add(new NumericColumn("amount", [1, 2])), path);
        using var file = ParquetFile.Open(path);

        var error = Assert.Throws<KilnException>(() => file.CountText(0, file.Field("amount"), new TextCounts()));

        Assert.Contains(path, error.Message, StringComparison.Ordinal);
        Assert.Contains("'amount'", error.Message, StringComparison.Ordinal);
    }

    /// <summary>Counts every row group of the column and compares with DuckDB's counts per value and of nulls.</summary>
    private static void AssertCountsEqualDuckDb(string path, string column)
    {
        var counts = new TextCounts();
        using (var file = ParquetFile.Open(path))
        {
            var field = file.Field(column);
            for (var g = 0; g < file.RowGroupCount; g++) file.CountText(g, field, counts);
        }
        var expected = DuckSql.Rows($"SELECT \"{column}\", count(*) FROM read_parquet('{path}') GROUP BY ALL")
            .ToDictionary(r => r[0] as string ?? "\0null", r => Convert.ToInt64(r[1], System.Globalization.CultureInfo.InvariantCulture));
        var missing = expected.Remove("\0null", out var nulls) ? nulls : 0;

        Assert.Equal(missing, counts.Missing);
        Assert.Equal(expected.Values.Sum(), counts.Present);
        Assert.Equal(expected.OrderBy(p => p.Key, StringComparer.Ordinal), counts.ToDictionary().OrderBy(p => p.Key, StringComparer.Ordinal));
    }
}
