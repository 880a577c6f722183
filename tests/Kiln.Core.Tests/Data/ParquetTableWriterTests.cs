using Kiln.Core.Data;
using Kiln.Testing;

namespace Kiln.Core.Tests.Data;

/// <summary>
/// Kiln's Parquet writer (ParquetTableWriter, the prediction log's and every other) checked by an independent reader,
/// DuckDB, and by Kiln's own reader: the log's column kinds, required and nullable, text with few and many distinct
/// values, packed text, several row groups, an empty row group, and the timestamp statistics that monitoring uses to
/// skip row groups.
/// </summary>
public sealed class ParquetTableWriterTests
{
    private static readonly ParquetColumn[] Columns =
    [
        new("id", ParquetColumnKind.Text, true),
        new("at", ParquetColumnKind.Timestamp, false),
        new("label", ParquetColumnKind.Text, true),
        new("many", ParquetColumnKind.Text, false),
        new("row", ParquetColumnKind.Int32, false),
        new("x", ParquetColumnKind.Double, true),
        new("value", ParquetColumnKind.Double, false),
    ];

    private static readonly string?[] Labels = ["alpha", "γάμμα δέλτα", "", "naïve café 🚀", null, new string('l', 300)];

    /// <summary>The rows of one row group, made from a seed so each group differs.</summary>
    private sealed record Group(string[] Ids, DateTime[] At, string?[] Label, string[] Many, int[] Row, double[] X, double[] Value);

    private static Group MakeGroup(int rows, int seed, int distinctMany)
    {
        var random = new Random(seed);
        var start = new DateTime(2026, 11, 26, 10, 0, 0, DateTimeKind.Utc).AddHours(seed);
        var g = new Group(new string[rows], new DateTime[rows], new string?[rows], new string[rows], new int[rows], new double[rows], new double[rows]);
        for (var i = 0; i < rows; i++)
        {
            g.Ids[i] = $"{seed:x4}{i:x28}";
            g.At[i] = start.AddTicks(random.NextInt64(0, TimeSpan.TicksPerHour) / 10 * 10); // whole microseconds
            // long equal runs (RLE) and short alternations (bit-packing) of labels and nulls
            g.Label[i] = i % 1000 < 300 ? Labels[0] : Labels[random.Next(Labels.Length)];
            g.Many[i] = "m" + random.Next(distinctMany);
            g.Row[i] = i - rows / 2;
            g.X[i] = random.Next(10) == 0 ? double.NaN : random.NextDouble() * 200 - 100;
            g.Value[i] = i == 7 ? double.NaN : random.NextDouble(); // NaN in a required column stays NaN
        }
        return g;
    }

    private static void WriteGroup(ParquetTableWriter w, Group g)
    {
        // The ids packed as the prediction log keeps them, after two values of an earlier row group (one missing) that
        // are not written, so the range starts past the characters' start; and one value more than is written.
        string?[] packed = ["earlier-ü", null, .. g.Ids, "later"];
        var ends = new int[packed.Length];
        for (int i = 0, end = 0; i < ends.Length; i++) ends[i] = packed[i] is { } v ? end += v.Length : ~end;
        var ids = new PackedText(string.Concat(packed).ToCharArray(), ends, packed.Length);
        w.BeginRowGroup(g.Ids.Length);
        w.WriteText(ids, 2, g.Ids.Length);
        w.WriteTimestamp(g.At);
        w.WriteText(g.Label);
        w.WriteText(g.Many!);
        w.WriteInt32(g.Row);
        w.WriteDouble(g.X);
        w.WriteDouble(g.Value);
        w.EndRowGroup();
    }

    [Fact]
    public async Task Files_read_back_the_same_in_DuckDB_and_Kiln()
    {
        using var dir = new TempDir();
        var path = Path.Combine(dir.Path, "flat.parquet");
        // 3 row groups: a dictionary for "many" (100 distinct), PLAIN for it (> 4,096 distinct), and a small one.
        Group[] groups = [MakeGroup(20_000, 1, 100), MakeGroup(15_000, 2, 10_000), MakeGroup(37, 3, 5), MakeGroup(0, 4, 1)];
        await using (var stream = File.Create(path))
        {
            using var w = new ParquetTableWriter(stream, Columns);
            foreach (var g in groups) WriteGroup(w, g);
            w.Finish();
            Assert.Equal(35_037, w.Rows);
        }
        var all = new Group(
            [.. groups.SelectMany(g => g.Ids)], [.. groups.SelectMany(g => g.At)], [.. groups.SelectMany(g => g.Label)],
            [.. groups.SelectMany(g => g.Many)], [.. groups.SelectMany(g => g.Row)], [.. groups.SelectMany(g => g.X)],
            [.. groups.SelectMany(g => g.Value)]);

        // DuckDB
        Assert.Equal(all.Ids, DuckSql.Column(path, "id").Cast<string>());
        Assert.Equal(all.At, DuckSql.Column(path, "at").Select(v => DateTime.SpecifyKind((DateTime)v!, DateTimeKind.Utc)));
        Assert.Equal(all.Label, DuckSql.Column(path, "label").Cast<string?>());
        Assert.Equal(all.Many, DuckSql.Column(path, "many").Cast<string>());
        Assert.Equal(all.Row, DuckSql.Column(path, "row").Cast<int>());
        Assert.Equal(all.X.Select(v => double.IsNaN(v) ? (double?)null : v), DuckSql.Column(path, "x").Cast<double?>());
        Assert.Equal(all.Value, DuckSql.Column(path, "value").Cast<double>());
        Assert.Equal("TIMESTAMP WITH TIME ZONE", DuckSql.Scalar($"SELECT typeof(\"at\") FROM read_parquet('{path}') LIMIT 1"));

        // Kiln's reader, row group by row group, with the timestamp statistics.
        using (var file = ParquetFile.Open(path))
        {
            Assert.Equal(groups.Length, file.RowGroupCount);
            Assert.Equal(Columns.Select(c => c.Name), file.Fields.Select(f => f.Name));
            for (var i = 0; i < groups.Length; i++)
            {
                var g = groups[i];
                Assert.Equal(g.Ids.Length, file.RowGroupRows[i]);
                Assert.Equal(g.Ids, file.ReadText(i, file.Field("id")));
                Assert.Equal(g.At, file.ReadTimestamps(i, file.Field("at")));
                Assert.Equal(g.Row.Select(v => (double)v), file.ReadNumbers(i, file.Field("row")));
                if (g.Ids.Length == 0) continue;
                Assert.Equal((g.At.Min(), g.At.Max()), file.TimestampRange(i, file.Field("at")));
            }
        }

        // Kiln's table reader.
        var table = await TableReader.ReadAllAsync([path],
            [new ColumnRequest("label", ColumnType.Text), new ColumnRequest("many", ColumnType.Text), new ColumnRequest("x", ColumnType.Numeric)]);
        Assert.Equal(all.Label, table.Text("label").Values);
        Assert.Equal(all.Many, table.Text("many").Values);
        Assert.Equal(all.X, table.Numeric("x").Values);
    }

    [Fact]
    public void Misuse_is_an_error_naming_the_column()
    {
        using var stream = new MemoryStream();
        using var w = new ParquetTableWriter(stream, Columns);
        Assert.Contains("no row group", Assert.Throws<InvalidOperationException>(() => w.WriteInt32([1])).Message);
        w.BeginRowGroup(2);
        Assert.Contains("'id' is Text, not Int32", Assert.Throws<InvalidOperationException>(() => w.WriteInt32([1, 2])).Message);
        Assert.Contains("'id' has 1 values for a row group of 2 rows", Assert.Throws<InvalidOperationException>(() => w.WriteText(["a"])).Message);
        var packed = new PackedText("ab".ToCharArray(), [1, ~1, 2], 3); // "a", missing, "b"
        Assert.Throws<ArgumentOutOfRangeException>(() => w.WriteText(packed, 2, 2)); // past the packed values
        w.WriteText(packed, 0, 2);
        w.WriteTimestamp([DateTime.UtcNow, DateTime.UtcNow]);
        w.WriteText(["a", "b"]);
        Assert.Contains("'many' is required but row 1 is missing", Assert.Throws<InvalidOperationException>(() => w.WriteText(["a", null])).Message);
    }
}

/// <summary>
/// A text column whose values barely repeat (a batch job's kept id) is written without a dictionary, decided from the
/// file's first row group; the values DuckDB and Kiln read back are the same either way, and a category column keeps
/// its dictionary.
/// </summary>
public sealed class ParquetPlainTextTests
{
    [Fact]
    public async Task Mostly_distinct_text_is_written_plain_and_reads_back_the_same()
    {
        using var dir = new TempDir();
        var path = Path.Combine(dir.Path, "ids.parquet");
        var random = new Random(5);
        string?[] Ids(int rows, int from) => [.. Enumerable.Range(from, rows).Select(i => i % 97 == 3 ? null : "row-" + i.ToString(System.Globalization.CultureInfo.InvariantCulture) + (i % 5 == 0 ? "é" : ""))];
        string?[] Kinds(int rows) => [.. Enumerable.Range(0, rows).Select(_ => random.Next(4) == 0 ? null : "kind " + random.Next(7))];
        // three row groups: the first decides; the second repeats a few ids (still written plain), the third is small
        var groups = new[] { (Ids(30_000, 0), Kinds(30_000)), ([.. Ids(5_000, 30_000), .. Ids(5_000, 0)], Kinds(10_000)), (Ids(3, 99), Kinds(3)) };
        await using (var stream = File.Create(path))
        {
            using var w = new ParquetTableWriter(stream, [new("id", ParquetColumnKind.Text, true), new("kind", ParquetColumnKind.Text, true)]);
            foreach (var (ids, kinds) in groups)
            {
                var t = new DataTable(ids.Length).Add(new TextColumn("id", [.. ids, "past the end"])).Add(new TextColumn("kind", [.. kinds, "past"]));
                w.WriteRowGroup(t);
            }
            w.Finish();
            Assert.Equal(["id"], w.PlainTextColumns);
        }
        var allIds = groups.SelectMany(g => g.Item1).ToArray();
        var allKinds = groups.SelectMany(g => g.Item2).ToArray();
        Assert.Equal(allIds, DuckSql.Column(path, "id").Cast<string?>());
        Assert.Equal(allKinds, DuckSql.Column(path, "kind").Cast<string?>());
        Assert.Equal("VARCHAR", DuckSql.Scalar($"SELECT typeof(\"id\") FROM read_parquet('{path}') LIMIT 1"));
        var encodings = DuckSql.Rows($"SELECT path_in_schema, encodings FROM parquet_metadata('{path}')")
            .Select(r => ((string)r[0]!, r[1]!.ToString()!)).ToList();
        Assert.Equal(6, encodings.Count);
        Assert.All(encodings.Where(e => e.Item1 == "id"), e => Assert.DoesNotContain("DICTIONARY", e.Item2, StringComparison.Ordinal));
        Assert.All(encodings.Where(e => e.Item1 == "kind"), e => Assert.Contains("DICTIONARY", e.Item2, StringComparison.Ordinal));
        var table = await TableReader.ReadAllAsync([path], [new ColumnRequest("id", ColumnType.Text), new ColumnRequest("kind", ColumnType.Text)]);
        Assert.Equal(allIds, table.Text("id").Values);
        Assert.Equal(allKinds, table.Text("kind").Values);
    }

    [Fact]
    public void The_decision_needs_enough_values_and_nine_in_ten_distinct()
    {
        string?[] Distinct(int n) => [.. Enumerable.Range(0, n).Select(i => "v" + i.ToString(System.Globalization.CultureInfo.InvariantCulture))];
        Assert.True(ParquetTableWriter.MostlyDistinct(Distinct(5000)));
        Assert.False(ParquetTableWriter.MostlyDistinct(Distinct(1000)));                       // too few to tell
        Assert.False(ParquetTableWriter.MostlyDistinct([.. Distinct(3500), .. Distinct(596)])); // the first 4,096: 85 % distinct
        Assert.True(ParquetTableWriter.MostlyDistinct([.. Distinct(3800), .. Distinct(296)]));  // 93 %
        Assert.False(ParquetTableWriter.MostlyDistinct([.. Distinct(900), .. new string?[4000]]));
    }
}
