using System.Globalization;
using System.Text;
using Kiln.Core.Data;
using Kiln.Testing;

namespace Kiln.Core.Tests.Data;

/// <summary>
/// The CSV reader's recycled column arrays (<see cref="CsvTableReader.Recycle"/>): chunks of different lengths read into
/// arrays that held earlier chunks give the same rows as a reader that never recycles, and past a chunk's last row an
/// array holds zeros and nulls, never an earlier chunk's values.
/// </summary>
public sealed class CsvRecycleTests
{
    private static readonly ColumnRequest[] Requests = [new("x", ColumnType.Numeric), new("id", ColumnType.Text), new("y", ColumnType.Numeric)];

    [Fact]
    public async Task Recycled_arrays_give_the_same_rows_and_never_an_earlier_chunks_values()
    {
        using var dir = new TempDir();
        var path = dir.File("d.csv");
        var random = new Random(11);
        var text = new StringBuilder("id,x,y\n");
        const int Rows = 1800;
        for (var i = 0; i < Rows; i++)
        {
            // every cell differs from the same row of the chunk before; some empty (NaN, null)
            var x = random.Next(9) == 0 ? "" : (random.NextDouble() * 1000 - 500).ToString("R", CultureInfo.InvariantCulture);
            var id = random.Next(13) == 0 ? "" : "id-" + i.ToString(CultureInfo.InvariantCulture);
            text.Append(CultureInfo.InvariantCulture, $"{id},{x},{i}\n");
        }
        await File.WriteAllTextAsync(path, text.ToString());

        // Chunk lengths that go up and down (arrays of two sizes, each reused), the last chunk short of its request. The
        // table before is still held when the next is read, and handed back twice once the next is read: no array may
        // serve two live chunks.
        int[] asks = [300, 300, 120, 300, 120, 300, 120, 300];
        using var fresh = CsvTableReader.Open(path, Requests);
        using var recycling = CsvTableReader.Open(path, Requests);
        var seen = new HashSet<object>(ReferenceEqualityComparer.Instance);
        var reused = 0;
        var rowsRead = 0;
        (DataTable Got, DataTable Expected)? previous = null;
        foreach (var ask in asks)
        {
            var expected = fresh.ReadBatch(ask);
            var got = recycling.ReadBatch(ask);
            Assert.Equal(expected.RowCount, got.RowCount);
            AssertSame(expected, got);
            // y is the row's number in the file: the rows come in order, none twice, none lost
            Assert.Equal(Enumerable.Range(rowsRead, got.RowCount).Select(i => (double)i), got.Numeric("y").Values[..got.RowCount]);
            rowsRead += got.RowCount;
            foreach (var c in got.Columns)
            {
                var array = c is NumericColumn n ? (object)n.Values : ((TextColumn)c).Values;
                if (!seen.Add(array)) reused++;
                if (previous is { } p)
                    Assert.DoesNotContain(p.Got.Columns, pc => ReferenceEquals(pc is NumericColumn pn ? pn.Values : ((TextColumn)pc).Values, array));
            }
            if (previous is { } before)
            {
                AssertSame(before.Expected, before.Got); // not overwritten by the read after it
                recycling.Recycle(before.Got);
                recycling.Recycle(before.Got);
            }
            previous = (got, expected);
        }
        Assert.Equal(240, previous!.Value.Got.RowCount); // 1,800 - 4 x 300 - 3 x 120: the last array's tail was cleared
        Assert.True(reused >= 8, $"only {reused} arrays were reused");
        Assert.Equal(0, recycling.ReadBatch(300).RowCount);
    }

    [Fact]
    public async Task An_id_column_becomes_packed_characters_with_the_same_values_and_DuckDB_reads_them_back()
    {
        // Past 100,000 distinct values, and more misses than hits after, the reader stops making a string a cell of a text
        // column: later chunks hold it as one block of characters. Values (non-ASCII, quoted with commas, empty = missing)
        // must be the same, through recycled blocks, the Parquet writer (plain, no dictionary) and DuckDB.
        using var dir = new TempDir();
        var path = dir.File("ids.csv");
        const int Rows = 300_000;
        var ids = new string?[Rows];
        var text = new StringBuilder("n,id\n");
        for (var i = 0; i < Rows; i++)
        {
            ids[i] = i % 41 == 5 ? null : i % 7 == 0 ? $"café, n°{i}" : i % 11 == 0 ? "🚀" + i.ToString(CultureInfo.InvariantCulture) : "id" + i.ToString(CultureInfo.InvariantCulture);
            var cell = ids[i] is null ? "" : ids[i]!.Contains(',', StringComparison.Ordinal) ? $"\"{ids[i]}\"" : ids[i];
            text.Append(CultureInfo.InvariantCulture, $"{i},{cell}\n");
        }
        await File.WriteAllTextAsync(path, text.ToString());

        using var reader = CsvTableReader.Open(path, [new ColumnRequest("id", ColumnType.Text), new ColumnRequest("n", ColumnType.Numeric)]);
        var parquet = dir.File("ids.parquet");
        var packedChunks = 0;
        var read = new List<string?>();
        await using (var stream = File.Create(parquet))
        {
            using var w = new ParquetTableWriter(stream, [new("id", ParquetColumnKind.Text, true), new("n", ParquetColumnKind.Double, false)]);
            DataTable? held = null;
            while (true)
            {
                var t = reader.ReadBatch(50_000);
                if (t.RowCount == 0) break;
                var column = (TextColumn)t["id"];
                if (column.Packed is not null) packedChunks++;
                w.WriteRowGroup(t);                            // from the characters, no strings made
                read.AddRange(column.Values[..t.RowCount]);    // the strings, made now from the characters
                if (held is not null) reader.Recycle(held);    // one chunk behind, so a recycled block is written over
                held = t;
            }
            w.Finish();
        }
        Assert.Equal(ids, read);
        Assert.True(packedChunks >= 3, $"{packedChunks} chunks were packed");
        Assert.Equal(ids, DuckSql.Column(parquet, "id").Cast<string?>());
        Assert.Equal(Enumerable.Range(0, Rows).Select(i => (double)i), DuckSql.Column(parquet, "n").Cast<double>());
        var encodings = DuckSql.Rows($"SELECT encodings FROM parquet_metadata('{parquet}') WHERE path_in_schema = 'id'");
        Assert.Equal(6, encodings.Count);
        Assert.All(encodings, e => Assert.DoesNotContain("DICTIONARY", e[0]!.ToString()!, StringComparison.Ordinal));
    }

    /// <summary>The same values in the whole arrays, past the last row too (zeros and nulls there).</summary>
    private static void AssertSame(DataTable expected, DataTable got)
    {
        foreach (var r in Requests)
        {
            if (got[r.Name] is NumericColumn n)
            {
                Assert.Equal(((NumericColumn)expected[r.Name]).Values, n.Values);
                Assert.All(n.Values[got.RowCount..], v => Assert.Equal(0.0, v));
            }
            else
            {
                var t = ((TextColumn)got[r.Name]).Values;
                Assert.Equal(((TextColumn)expected[r.Name]).Values, t);
                Assert.All(t[got.RowCount..], Assert.Null);
            }
        }
    }
}
