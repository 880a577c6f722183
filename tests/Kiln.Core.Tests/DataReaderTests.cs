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

    [Theory]
    [InlineData(0.0)]
    [InlineData(0.3)]
    [InlineData(1.0)]
    public async Task Parquet_reads_large_tables_exactly_with_missing_values_anywhere(double missingShare)
    {
        // Big enough for the parallel, raw-levels path: nulls at the first and last rows, runs of
        // nulls, all-missing columns, and repeated labels that the reader shares.
        using var dir = new TempDir();
        var path = dir.File("big.parquet");
        const int rows = 120_000;
        var rng = new Random(11);
        string[] labels = ["north", "south", "east", "west"];
        var t = new DataTable(rows);
        for (var c = 0; c < 3; c++)
        {
            var v = new double[rows];
            for (var i = 0; i < rows; i++) v[i] = rng.NextDouble() < missingShare || (missingShare > 0 && (i == 0 || i == rows - 1)) ? double.NaN : rng.NextDouble() * 100 - 50;
            t.Add(new NumericColumn($"n{c}", v));
        }
        var text = new string?[rows];
        for (var i = 0; i < rows; i++) text[i] = rng.NextDouble() < missingShare ? null : i % 1000 == 0 ? $"rare-{i}" : labels[rng.Next(labels.Length)];
        t.Add(new TextColumn("region", text));
        await ParquetTable.WriteAsync(t, path);

        var back = await TableReader.ReadAllAsync([path], [new("n0", ColumnType.Numeric), new("region", ColumnType.Text), new("n1", ColumnType.Numeric), new("n2", ColumnType.Numeric)]);
        Assert.Equal(rows, back.RowCount);
        for (var c = 0; c < 3; c++)
        {
            var expected = t.Numeric($"n{c}").Values;
            var got = back.Numeric($"n{c}").Values;
            for (var i = 0; i < rows; i++) Assert.True(expected[i].Equals(got[i]), $"n{c} row {i}: expected {expected[i]}, got {got[i]}");
        }
        Assert.Equal(text, back.Text("region").Values.AsEnumerable());
    }

    [Fact]
    public async Task Parquet_reads_required_and_integer_columns_over_several_row_groups()
    {
        using var dir = new TempDir();
        var path = dir.File("groups.parquet");
        await using (var stream = File.Create(path))
        {
            using var writer = new ParquetTableWriter(stream, [new("x", ParquetColumnKind.Double, false), new("k", ParquetColumnKind.Int32, true), new("s", ParquetColumnKind.Text, true)]);
            for (var g = 0; g < 3; g++)
            {
                var n = 100_000 + g;
                writer.WriteRowGroup(new DataTable(n)
                    .Add(new NumericColumn("x", [.. Enumerable.Range(0, n).Select(i => g * 1e6 + i + 0.5)]))
                    .Add(new NumericColumn("k", [.. Enumerable.Range(0, n).Select(i => i % 7 == 0 ? double.NaN : i - g)]))
                    .Add(new TextColumn("s", [.. Enumerable.Range(0, n).Select(i => i % 5 == 0 ? null : $"s{i % 3}")])));
            }
            writer.Finish();
        }
        var back = await TableReader.ReadAllAsync([path], [new("x", ColumnType.Numeric), new("k", ColumnType.Numeric), new("s", ColumnType.Text)]);
        Assert.Equal(300_003, back.RowCount);
        var offset = 0;
        for (var g = 0; g < 3; g++)
        {
            var n = 100_000 + g;
            for (var i = 0; i < n; i++)
            {
                Assert.Equal(g * 1e6 + i + 0.5, back.Numeric("x").Values[offset + i]);
                var k = back.Numeric("k").Values[offset + i];
                if (i % 7 == 0) Assert.True(double.IsNaN(k), $"group {g} row {i}");
                else Assert.Equal(i - g, k);
                Assert.Equal(i % 5 == 0 ? null : $"s{i % 3}", back.Text("s").Values[offset + i]);
            }
            offset += n;
        }
    }

    [Fact]
    public async Task Csv_numbers_get_the_bits_python_parses_them_to()
    {
        // The oracle: python3's float() (correctly rounded) on the same cells, compared as IEEE bit patterns. The cells
        // mix what the fast number path takes (plain decimals, exponents, 17 digits, subnormals, overflow, the classic
        // hard-to-round cases) with what Kiln's own rule takes (spaces, NaN, Infinity, a leading '+', '.5', '5.').
        using var dir = new TempDir();
        var path = dir.File("n.csv");
        var rng = new Random(11);
        var inv = System.Globalization.CultureInfo.InvariantCulture;
        var cells = new List<string> { "0", "-0", "+1.5", ".5", "5.", " 2.25 ", "1e23", "9007199254740993", "2.2250738585072011e-308",
            "4.9e-324", "2e-324", "1.7976931348623157e308", "1e400", "-1e400", "NaN", "Infinity", "-Infinity", "0.1", "3.0257537", "1E-5" };
        for (var i = 0; i < 400; i++)
        {
            var v = BitConverter.Int64BitsToDouble(rng.NextInt64());
            if (!double.IsFinite(v)) continue;
            cells.Add(v.ToString(i % 3 == 0 ? "R" : i % 3 == 1 ? "E12" : "G9", inv));
            cells.Add((rng.NextDouble() * 1000).ToString(i % 2 == 0 ? "F7" : "R", inv));
        }
        await File.WriteAllTextAsync(path, "amount,city\n" + string.Concat(cells.Select(c => $"{c},x\n")));
        var py = await Proc.PythonAsync($$"""
            import csv, struct
            with open('{{path}}', newline='') as f:
                rows = list(csv.reader(f))[1:]
            print(' '.join(struct.pack('<d', float(r[0].strip())).hex() for r in rows))
            """);
        Assert.True(py.ExitCode == 0, py.ToString());
        var expected = py.StdOut.Trim().Split(' ');
        var t = await TableReader.ReadAllAsync([path], Requests);
        Assert.Equal(cells.Count, t.RowCount);
        for (var i = 0; i < cells.Count; i++)
        {
            var value = t.Numeric("amount").Values[i];
            if (cells[i] == "NaN")
            {
                Assert.True(double.IsNaN(value)); // NaN's sign bit is not a number's: .NET's NaN is negative, python's positive
                continue;
            }
            var bits = Convert.ToHexStringLower(BitConverter.GetBytes(value));
            Assert.True(expected[i] == bits, $"'{cells[i]}': python {expected[i]}, kiln {bits}");
        }
    }

    [Fact]
    public async Task Csv_text_columns_read_the_same_whether_their_values_repeat_or_are_all_different()
    {
        // 150,000 rows: an id column whose values never repeat (past the 100,000 shared values the reader stops looking
        // them up) and a city column of three values (still shared); every cell must read back as written.
        using var dir = new TempDir();
        var path = dir.File("ids.csv");
        const int Rows = 150_000;
        string[] cities = ["Oslo", "Lima", "Pune"];
        var text = new System.Text.StringBuilder("amount,id,city\n");
        for (var i = 0; i < Rows; i++) text.Append(i % 7).Append(",id-").Append(i).Append(',').Append(cities[i % 3]).Append('\n');
        await File.WriteAllTextAsync(path, text.ToString());
        var t = await TableReader.ReadAllAsync([path], [new("id", ColumnType.Text), new("city", ColumnType.Text), new("amount", ColumnType.Numeric)]);
        Assert.Equal(Rows, t.RowCount);
        var ids = t.Text("id").Values;
        var city = t.Text("city").Values;
        for (var i = 0; i < Rows; i++)
        {
            Assert.Equal($"id-{i}", ids[i]);
            Assert.Equal(cities[i % 3], city[i]);
            Assert.Equal(i % 7, t.Numeric("amount").Values[i]);
        }
        Assert.Same(city[0], city[Rows - 3]); // a repeating column's cells still share one string per value
    }

    [Fact]
    public async Task Csv_skips_a_BOM_and_blank_lines_and_names_an_unclosed_quote()
    {
        using var dir = new TempDir();
        var path = dir.File("b.csv");
        await File.WriteAllTextAsync(path, "amount,city\r\n1,a\r\n\r\n2,\"b\"\n\n3,c", new System.Text.UTF8Encoding(true));
        var t = await TableReader.ReadAllAsync([path], Requests);
        Assert.Equal([1.0, 2, 3], t.Numeric("amount").Values.Take(t.RowCount));
        Assert.Equal(["a", "b", "c"], t.Text("city").Values.Take(t.RowCount));
        Assert.Equal(["amount", "city"], CsvTableReader.ReadHeader(path));

        // A ragged row after blank lines is named by its line in the file.
        await File.WriteAllTextAsync(path, "amount,city\n1,a\n\n\n2\n");
        var e = await Assert.ThrowsAsync<KilnException>(() => TableReader.ReadAllAsync([path], Requests));
        Assert.Equal($"{path}: line 5 has 1 fields, the header has 2", e.Message);

        await File.WriteAllTextAsync(path, "amount,city\n1,a\n2,\"never closed\n3,c\n");
        e = await Assert.ThrowsAsync<KilnException>(() => TableReader.ReadAllAsync([path], Requests));
        Assert.Equal($"{path}: line 3: a quoted field is never closed", e.Message);
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
