using Kiln.Core.Data;
using Kiln.Testing;

namespace Kiln.Core.Tests;

public class DataReaderTests
{
    private static readonly ColumnRequest[] Requests = [new("amount", ColumnType.Numeric), new("city", ColumnType.Text)];

    [Fact]
    public async Task Csv_reads_quoted_fields_embedded_newlines_and_missing_values()
    {
        using var dir = new TempDir();
        var path = dir.File("d.csv");
        await File.WriteAllTextAsync(path, "id,amount,city\r\n1,3.5,\"New York, NY\"\r\n2,,\"say \"\"hi\"\"\"\n3,-1e3,\"two\nlines\"\n4,7,\n");
        var t = await TableReader.ReadAllAsync([path], Requests);
        Assert.Equal(4, t.RowCount);
        Assert.Equal(3.5, t.Numeric("amount").Values[0]);
        Assert.True(double.IsNaN(t.Numeric("amount").Values[1]));
        Assert.Equal(-1000, t.Numeric("amount").Values[2]);
        Assert.Equal(new string?[] { "New York, NY", "say \"hi\"", "two\nlines", null }, t.Text("city").Values.Take(4));
    }

    [Fact]
    public async Task Csv_text_in_a_numeric_column_names_file_line_and_column()
    {
        using var dir = new TempDir();
        var path = dir.File("bad.csv");
        await File.WriteAllTextAsync(path, "amount,city\n1,a\n2,b\nabc,c\n");
        var e = await Assert.ThrowsAsync<KilnException>(() => TableReader.ReadAllAsync([path], Requests));
        Assert.Equal($"{path}: line 4, column 'amount': 'abc' is not a number", e.Message);
    }

    [Fact]
    public async Task Csv_missing_column_and_ragged_rows_are_named()
    {
        using var dir = new TempDir();
        var path = dir.File("m.csv");
        await File.WriteAllTextAsync(path, "amount,town\n1,a\n");
        var e = await Assert.ThrowsAsync<KilnException>(() => TableReader.ReadAllAsync([path], Requests));
        Assert.Contains("column 'city' is missing", e.Message, StringComparison.Ordinal);

        await File.WriteAllTextAsync(path, "amount,city\n1,a\n2,b,extra\n");
        e = await Assert.ThrowsAsync<KilnException>(() => TableReader.ReadAllAsync([path], Requests));
        Assert.Contains("line 3 has 3 fields, the header has 2", e.Message, StringComparison.Ordinal);

        await File.WriteAllTextAsync(path, "");
        e = await Assert.ThrowsAsync<KilnException>(() => TableReader.ReadAllAsync([path], Requests));
        Assert.Contains("the file is empty", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Parquet_round_trips_numbers_text_and_nulls()
    {
        using var dir = new TempDir();
        var path = dir.File("d.parquet");
        var t = new DataTable(3).Add(new NumericColumn("amount", [1.5, double.NaN, -2])).Add(new TextColumn("city", ["a", null, "c"]));
        await ParquetTable.WriteAsync(t, path);
        var back = await TableReader.ReadAllAsync([path], Requests);
        Assert.Equal(3, back.RowCount);
        Assert.Equal(1.5, back.Numeric("amount").Values[0]);
        Assert.True(double.IsNaN(back.Numeric("amount").Values[1]));
        Assert.Equal(new string?[] { "a", null, "c" }, back.Text("city").Values.AsEnumerable());
        Assert.Equal(["amount", "city"], await TableReader.ReadColumnNamesAsync(path));
    }

    [Fact]
    public async Task Pandas_reads_what_kiln_writes_as_parquet_and_kiln_reads_pandas_csv()
    {
        // Independent reader: pandas (Debian's python3-pandas) parses the CSV Kiln reads, and both agree.
        using var dir = new TempDir();
        var csv = dir.File("p.csv");
        var py = await Proc.PythonAsync($$"""
            import pandas as pd, numpy as np
            rng = np.random.default_rng(3)
            df = pd.DataFrame({'amount': rng.normal(size=500), 'city': rng.choice(['x', 'y', 'z, w'], size=500)})
            df.loc[::50, 'amount'] = np.nan
            df.to_csv('{{csv}}', index=False)
            print(repr(df['amount'].sum()), df['amount'].isna().sum(), (df['city'] == 'z, w').sum())
            """);
        Assert.True(py.ExitCode == 0, py.ToString());
        var expected = py.StdOut.Split(' ');
        var t = await TableReader.ReadAllAsync([csv], Requests);
        var amounts = t.Numeric("amount").Values.Take(t.RowCount).ToArray();
        Assert.Equal(double.Parse(expected[0], System.Globalization.CultureInfo.InvariantCulture), amounts.Where(v => !double.IsNaN(v)).Sum(), 1e-9);
        Assert.Equal(int.Parse(expected[1], System.Globalization.CultureInfo.InvariantCulture), amounts.Count(double.IsNaN));
        Assert.Equal(int.Parse(expected[2], System.Globalization.CultureInfo.InvariantCulture), t.Text("city").Values.Count(v => v == "z, w"));
    }

    [Fact]
    public void Data_sources_resolve_files_directories_and_globs_in_path_order()
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir.File("part"));
        foreach (var f in new[] { "part/b.csv", "part/a.csv", "part/c.parquet", "part/notes.txt" }) File.WriteAllText(dir.File(f), "x\n1\n");
        Assert.Equal([dir.File("part/a.csv"), dir.File("part/b.csv"), dir.File("part/c.parquet")], DataSources.Resolve(dir.File("part")));
        Assert.Equal([dir.File("part/a.csv"), dir.File("part/b.csv")], DataSources.Resolve("part/*.csv", dir.Path));
        Assert.Equal([dir.File("part/a.csv")], DataSources.Resolve("part/a.csv", dir.Path));
        var e = Assert.Throws<KilnException>(() => DataSources.Resolve("nope/*.csv", dir.Path));
        Assert.Contains("does not exist", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<KilnException>(() => DataSources.Resolve("missing.csv", dir.Path));
        Assert.Equal("missing.csv: no such file or directory", e.Message);
    }
}
