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
}
