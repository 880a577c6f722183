using DuckDB.NET.Data;
using Kiln.Core.Data;
using Kiln.Testing;
using Parquet;

namespace Kiln.Core.Tests.Data;

/// <summary>
/// Kiln's Parquet writer (ParquetFlatWriter, the prediction log's) checked by two independent readers, DuckDB and
/// Parquet.Net, and by Kiln's own table reader: every column kind, required and nullable, dictionary and PLAIN
/// text (a chunk with more distinct values than the dictionary takes), packed text, several row groups, an empty
/// row group, and the timestamp statistics that monitoring uses to skip row groups.
/// </summary>
public sealed class ParquetFlatWriterTests
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

    private static void WriteGroup(ParquetFlatWriter w, Group g)
    {
        var chars = string.Concat(g.Ids).AsSpan();
        var ends = new int[g.Ids.Length];
        for (int i = 0, end = 0; i < ends.Length; i++) ends[i] = end += g.Ids[i].Length;
        w.BeginRowGroup(g.Ids.Length);
        w.WriteText(chars, ends);
        w.WriteTimestamp(g.At);
        w.WriteText(g.Label);
        w.WriteText(g.Many!);
        w.WriteInt32(g.Row);
        w.WriteDouble(g.X);
        w.WriteDouble(g.Value);
        w.EndRowGroup();
    }

    [Fact]
    public async Task Files_read_back_the_same_in_DuckDB_Parquet_Net_and_Kiln()
    {
        using var dir = new TempDir();
        var path = Path.Combine(dir.Path, "flat.parquet");
        // 3 row groups: a dictionary for "many" (100 distinct), PLAIN for it (> 4,096 distinct), and a small one.
        Group[] groups = [MakeGroup(20_000, 1, 100), MakeGroup(15_000, 2, 10_000), MakeGroup(37, 3, 5), MakeGroup(0, 4, 1)];
        await using (var stream = File.Create(path))
        {
            var w = new ParquetFlatWriter(stream, Columns);
            foreach (var g in groups) WriteGroup(w, g);
            w.Finish();
            Assert.Equal(35_037, w.Rows);
        }
        var all = new Group(
            [.. groups.SelectMany(g => g.Ids)], [.. groups.SelectMany(g => g.At)], [.. groups.SelectMany(g => g.Label)],
            [.. groups.SelectMany(g => g.Many)], [.. groups.SelectMany(g => g.Row)], [.. groups.SelectMany(g => g.X)],
            [.. groups.SelectMany(g => g.Value)]);

        // DuckDB
        Assert.Equal(all.Ids, Duck(path, "id").Cast<string>());
        Assert.Equal(all.At, Duck(path, "at").Select(v => DateTime.SpecifyKind((DateTime)v!, DateTimeKind.Utc)));
        Assert.Equal(all.Label, Duck(path, "label").Cast<string?>());
        Assert.Equal(all.Many, Duck(path, "many").Cast<string>());
        Assert.Equal(all.Row, Duck(path, "row").Cast<int>());
        Assert.Equal(all.X.Select(v => double.IsNaN(v) ? (double?)null : v), Duck(path, "x").Cast<double?>());
        Assert.Equal(all.Value, Duck(path, "value").Cast<double>());
        Assert.Equal("TIMESTAMP WITH TIME ZONE", DuckScalar($"SELECT typeof(\"at\") FROM read_parquet('{path}') LIMIT 1"));

        // Parquet.Net, row group by row group, with the timestamp statistics.
        await using (var reader = await ParquetReader.CreateAsync(path))
        {
            Assert.Equal(groups.Length, reader.RowGroupCount);
            var fields = reader.Schema.GetDataFields();
            Assert.Equal(Columns.Select(c => c.Name), fields.Select(f => f.Name));
            for (var i = 0; i < groups.Length; i++)
            {
                var g = groups[i];
                using var rg = reader.OpenRowGroupReader(i);
                Assert.Equal(g.Ids.Length, rg.RowCount);
                var rows = g.Ids.Length;
                var ids = new string?[rows];
                await rg.ReadAsync(fields[0], ids.AsMemory(), null);
                Assert.Equal(g.Ids, ids);
                var at = new DateTime[rows];
                await rg.ReadAsync(fields[1], at.AsMemory(), null);
                Assert.Equal(g.At, at.Select(t => t.Kind == DateTimeKind.Local ? t.ToUniversalTime() : DateTime.SpecifyKind(t, DateTimeKind.Utc)));
                var labels = new string?[rows];
                await rg.ReadAsync(fields[2], labels.AsMemory(), null);
                Assert.Equal(g.Label, labels);
                var row = new int[rows];
                await rg.ReadAsync(fields[4], row.AsMemory(), null);
                Assert.Equal(g.Row, row);
                var x = new double?[rows];
                await rg.ReadAsync(fields[5], x.AsMemory(), null);
                Assert.Equal(g.X.Select(v => double.IsNaN(v) ? (double?)null : v), x);
                if (g.Ids.Length == 0) continue;
                var stats = rg.GetStatistics(fields[1]);
                // Parquet.Net hands INT64 timestamp statistics back as the raw number: microseconds here.
                Assert.Equal(g.At.Min(), DateTime.UnixEpoch.AddTicks((long)stats!.MinValue! * 10));
                Assert.Equal(g.At.Max(), DateTime.UnixEpoch.AddTicks((long)stats.MaxValue! * 10));
                Assert.Equal(g.X.Count(double.IsNaN), rg.GetStatistics(fields[5])!.NullCount);
            }
        }

        // Kiln's own reader (its decoder for text and doubles).
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
        var w = new ParquetFlatWriter(stream, Columns);
        Assert.Contains("no row group", Assert.Throws<InvalidOperationException>(() => w.WriteInt32([1])).Message);
        w.BeginRowGroup(2);
        Assert.Contains("'id' holds Text, not Int32", Assert.Throws<InvalidOperationException>(() => w.WriteInt32([1, 2])).Message);
        Assert.Contains("'id' got 1 values for a row group of 2 rows", Assert.Throws<ArgumentException>(() => w.WriteText(["a"])).Message);
        w.WriteText(["a", null]);
        w.WriteTimestamp([DateTime.UtcNow, DateTime.UtcNow]);
        w.WriteText(["a", "b"]);
        Assert.Contains("'many' is not nullable", Assert.Throws<ArgumentException>(() => w.WriteText(["a", null])).Message);
        Assert.Contains("after 3 of 7 columns", Assert.Throws<InvalidOperationException>(w.EndRowGroup).Message);
    }

    [Fact]
    public void The_hybrid_encoding_reads_back_through_the_decoder_for_every_run_shape()
    {
        var random = new Random(5);
        foreach (var width in new[] { 1, 2, 3, 7, 8, 9, 13 })
        {
            foreach (var length in new[] { 0, 1, 7, 8, 9, 63 * 8, 63 * 8 + 1, 5000 })
            {
                var values = new int[length];
                for (var i = 0; i < length;)
                {
                    // alternate long runs and noise
                    var run = random.Next(2) == 0 ? random.Next(1, 40) : 1;
                    var v = random.Next(1 << width);
                    for (var k = 0; k < run && i < length; k++, i++) values[i] = run == 1 ? random.Next(1 << width) : v;
                }
                var buffer = new System.Buffers.ArrayBufferWriter<byte>();
                RleHybridEncoder.Encode(buffer, values, width);
                var back = new int[length];
                RleHybrid.Decode(buffer.WrittenSpan, width, back);
                Assert.Equal(values, back);
            }
        }
    }

    private static List<object?> Duck(string path, string column) => ParquetDecoderTests.DuckColumn(path, column);

    private static object? DuckScalar(string sql)
    {
        using var connection = new DuckDBConnection("DataSource=:memory:");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        return command.ExecuteScalar();
    }
}
