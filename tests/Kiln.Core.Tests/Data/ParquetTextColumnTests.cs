using Kiln.Core.Data;
using Kiln.Testing;

namespace Kiln.Core.Tests.Data;

/// <summary>
/// Text columns of a file Kiln wrote read back as text, and as numbers only where every cell is one
/// (bench/Kiln.Bench.Training once could not read back the Parquet file Kiln itself wrote).
/// </summary>
public sealed class ParquetTextColumnTests
{
    [Fact]
    public async Task Text_columns_written_by_kiln_read_back_with_their_values_and_missing_cells()
    {
        using var dir = new TempDir();
        var path = dir.File("mixed.parquet");
        var written = new DataTable(4)
            .Add(new NumericColumn("amount", [1.5, double.NaN, -3, 1e6]))
            .Add(new TextColumn("merchant", ["grocery", null, "fuel", "grocery"]));
        await ParquetTable.WriteAsync(written, path);

        var read = await TableReader.ReadAllAsync([path], [new("amount", ColumnType.Numeric), new("merchant", ColumnType.Text)]);

        Assert.Equal(4, read.RowCount);
        Assert.Equal(new string?[] { "grocery", null, "fuel", "grocery" }, read.Text("merchant").Values.Take(4));
        var amounts = read.Numeric("amount").Values;
        Assert.Equal(1.5, amounts[0]);
        Assert.True(double.IsNaN(amounts[1]));
        Assert.Equal(-3, amounts[2]);
        Assert.Equal(1e6, amounts[3]);
    }

    [Fact]
    public async Task A_text_column_requested_as_numeric_is_parsed_and_a_bad_cell_names_row_and_column()
    {
        using var dir = new TempDir();
        var path = dir.File("codes.parquet");
        await ParquetTable.WriteAsync(new DataTable(3).Add(new TextColumn("code", ["10", "2.5", "n/a"])), path);

        var error = await Assert.ThrowsAsync<KilnException>(() => TableReader.ReadAllAsync([path], [new("code", ColumnType.Numeric)]));

        Assert.Contains("row 3", error.Message, StringComparison.Ordinal);
        Assert.Contains("'code'", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(70000)] // one chunk: ids first, then labels, in the same chunk
    [InlineData(9000)] // many chunks: some start with ids, some with labels
    public async Task Text_read_equals_DuckDBs_values_for_ids_labels_and_a_column_that_changes_from_one_to_the_other(int rowGroup)
    {
        using var dir = new TempDir();
        var path = dir.File("text.parquet");
        // 'id': a distinct value per row (the reader stops interning after its sample); 'label': six values, nulls and
        // non-ASCII; 'switch': 20,000 distinct ids, then labels. Expected values are DuckDB's own read of the file.
        DuckSql.Exec($$"""
            COPY (SELECT
              'req-' || md5(i::VARCHAR) AS id,
              CASE WHEN i % 9 = 0 THEN NULL ELSE ['yes', 'no', 'maybe', '', 'naïve café 🚀', repeat('long ', 20)][1 + i % 6] END AS label,
              CASE WHEN i < 20000 THEN 'u-' || i::VARCHAR ELSE ['a', 'b', 'γ', NULL, 'd', 'e'][1 + i % 6] END AS switch
            FROM range(60000) r(i) ORDER BY i) TO '{{path}}' (FORMAT parquet, ROW_GROUP_SIZE {{rowGroup}})
            """);

        var read = await ParquetTable.ReadAllAsync(path, [new("id", ColumnType.Text), new("label", ColumnType.Text), new("switch", ColumnType.Text)]);

        foreach (var column in new[] { "id", "label", "switch" })
        {
            var expected = DuckSql.Column(path, column);
            Assert.Equal(expected.Count, read.RowCount);
            var actual = read.Text(column).Values;
            for (var row = 0; row < expected.Count; row++)
                Assert.True(Equals(expected[row], actual[row]), $"{column} row {row}: DuckDB '{expected[row]}', Kiln '{actual[row]}'");
        }
        // A label column holds one string per distinct short label per chunk, not one per row (a value over 64
        // characters, the long label here, is made per row).
        var labels = read.Text("label").Values.Where(v => v is { Length: <= 64 }).Distinct(ReferenceEqualityComparer.Instance).Count();
        Assert.InRange(labels, 5, 5 * (int)Math.Ceiling(60000.0 / rowGroup));
    }
}
