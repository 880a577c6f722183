using System.Text.Json.Nodes;
using DuckDB.NET.Data;
using Kiln.Core.Data;
using Kiln.Testing;

namespace Kiln.Vectors.Tests;

/// <summary>kiln vectors import of Parquet list columns and of embedded text, and the RAG example, through the real CLI.</summary>
public sealed class ImportTests : IDisposable
{
    private readonly TempDir _dir = new("kiln-vectors-import");

    public void Dispose() => _dir.Dispose();

    private Task<Proc.Result> Kiln(params string[] args) => KilnCli.RunAsync(args, _dir.Path, timeout: TimeSpan.FromMinutes(15));

    /// <summary>Writes a Parquet file with DuckDB (a writer other than Kiln's).</summary>
    private string DuckDbParquet(string name, string select)
    {
        var path = _dir.File(name);
        using var connection = new DuckDBConnection("Data Source=:memory:");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = $"COPY ({select}) TO '{path}' (FORMAT PARQUET, ROW_GROUP_SIZE 2)";
        command.ExecuteNonQuery();
        return path;
    }

    [Fact]
    public void Parquet_lists_of_floats_and_doubles_read_as_JSON_lists()
    {
        // Five rows (row groups of two, where DuckDB honours the size): a list, a null element, an empty list, a null list, a NaN.
        var path = DuckDbParquet("lists.parquet", """
            SELECT * FROM (VALUES
              (1, [0.5, -1.25, 3.0]::FLOAT[], [0.1, 0.2]::DOUBLE[]),
              (2, [1.5, NULL, 2.0]::FLOAT[], []::DOUBLE[]),
              (3, []::FLOAT[], NULL::DOUBLE[]),
              (4, NULL::FLOAT[], [1e300]::DOUBLE[]),
              (5, ['nan'::FLOAT], [0.3]::DOUBLE[])) t(id, f, d) ORDER BY id
            """);
        using var file = ParquetFile.Open(path);
        Assert.Equal(ParquetValueType.NumberList, file.Field("f").Type);
        Assert.Equal(ParquetValueType.NumberList, file.Field("d").Type);
        var f = Enumerable.Range(0, file.RowGroupCount).SelectMany(g => file.ReadText(g, file.Field("f"))).ToArray();
        var d = Enumerable.Range(0, file.RowGroupCount).SelectMany(g => file.ReadText(g, file.Field("d"))).ToArray();
        Assert.Equal("[0.5, -1.25, 3] | [1.5, null, 2] | [] | (null) | [\"NaN\"]", string.Join(" | ", f.Select(x => x ?? "(null)")));
        Assert.Equal("[0.1, 0.2] | [] | (null) | [1E+300] | [0.3]", string.Join(" | ", d.Select(x => x ?? "(null)")));
        var error = Assert.Throws<Kiln.Core.KilnException>(() => file.ReadNumbers(0, file.Field("f")));
        Assert.Contains("column 'f' holds lists of floats, not numbers", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Import_reads_vectors_from_Parquet_list_columns_written_by_DuckDB()
    {
        DuckDbParquet("points.parquet", """
            SELECT * FROM (VALUES
              (1, [0.05, 0.61, 0.76, 0.74]::FLOAT[], 'Berlin'),
              (2, [0.19, 0.81, 0.75, 0.11]::FLOAT[], 'London'),
              (3, [0.36, 0.55, 0.47, 0.94]::FLOAT[], 'Moscow')) t(id, vector, city) ORDER BY id
            """);
        DuckDbParquet("doubles.parquet", "SELECT 4::UBIGINT AS id, [0.18, 0.01, 0.85, 0.80]::DOUBLE[] AS emb, 'New York' AS city");
        DuckDbParquet("bad.parquet", """
            SELECT * FROM (VALUES (5, [0.24, 0.18, 0.22, 0.44]::FLOAT[]), (6, [0.35, NULL, 0.11, 0.44]::FLOAT[])) t(id, vector) ORDER BY id
            """);
        var r = await Kiln("vectors", "create", "cities", "--size", "4", "--distance", "Dot");
        Assert.True(r.ExitCode == 0, r.ToString());
        r = await Kiln("vectors", "import", "cities", "points.parquet");
        Assert.True(r.ExitCode == 0, r.ToString());
        r = await Kiln("vectors", "import", "cities", "doubles.parquet", "--vector-column", "emb");
        Assert.True(r.ExitCode == 0, r.ToString());
        r = await Kiln("vectors", "import", "cities", "bad.parquet");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("error: bad.parquet: row 2: vector[1] is not a number", r.StdErr, StringComparison.Ordinal);

        // Expected: Qdrant's quickstart answer for this query (x @ q by hand: 1.362 New York, 1.273 Berlin, 1.208 Moscow).
        r = await Kiln("vectors", "search", "cities", "--vector", "[0.2, 0.1, 0.9, 0.7]", "--limit", "3", "--json");
        Assert.True(r.ExitCode == 0, r.ToString());
        var hits = JsonNode.Parse(r.StdOut)!.AsArray();
        Assert.Equal([4, 1, 3], hits.Select(h => h!["id"]!.GetValue<int>()));
        Assert.Equal(1.362, hits[0]!["score"]!.GetValue<double>(), 3);
        Assert.Equal(1.273, hits[1]!["score"]!.GetValue<double>(), 3);
        Assert.Equal("New York", hits[0]!["payload"]!["city"]!.GetValue<string>());
        r = await Kiln("vectors", "info", "cities", "--json");
        Assert.Equal(4, JsonNode.Parse(r.StdOut)!["points_count"]!.GetValue<int>());
    }

    [Fact]
    public async Task Rag_example_finds_the_rollback_section_of_Kiln_docs()
    {
        var chunk = await Proc.RunAsync(Proc.Python,
            [Path.Combine(TestEnvironment.RepoRoot, "examples", "rag", "chunk_docs.py"), Path.Combine(TestEnvironment.RepoRoot, "docs"), _dir.File("chunks.jsonl")]);
        Assert.True(chunk.ExitCode == 0, chunk.ToString());
        var r = await Kiln("vectors", "create", "docs", "--size", "384", "--distance", "Cosine");
        Assert.True(r.ExitCode == 0, r.ToString());
        r = await Kiln("vectors", "import", "docs", "chunks.jsonl", "--embed", "text");
        Assert.True(r.ExitCode == 0, r.ToString());
        r = await Kiln("vectors", "search", "docs", "--text", "how do I roll back a model", "--limit", "3", "--json");
        Assert.True(r.ExitCode == 0, r.ToString());
        var first = JsonNode.Parse(r.StdOut)!.AsArray()[0]!;
        Assert.Equal("tracking.md", first["payload"]!["file"]!.GetValue<string>());
        Assert.Equal("Registry, aliases and rollback", first["payload"]!["heading"]!.GetValue<string>());
        Assert.StartsWith("Tracking server and model registry: Registry, aliases and rollback", first["payload"]!["text"]!.GetValue<string>(), StringComparison.Ordinal);

        // The text filter and the embedding together: only the CLI reference's chunks.
        r = await Kiln("vectors", "search", "docs", "--text", "how do I roll back a model", "--limit", "2", "--json",
            "--filter", """{"must": [{"key": "file", "match": {"value": "cli.md"}}]}""");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.All(JsonNode.Parse(r.StdOut)!.AsArray(), h => Assert.Equal("cli.md", h!["payload"]!["file"]!.GetValue<string>()));

        // Refusals: one line naming the option or the row.
        r = await Kiln("vectors", "search", "docs", "--text", "rollback", "--vector", "[1, 2]");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("error: --vector or --text: give one of them", r.StdErr, StringComparison.Ordinal);
        File.WriteAllText(_dir.File("empty.jsonl"), "{\"id\": 1, \"text\": \"fine\"}\n{\"id\": 2, \"text\": \"\"}\n");
        r = await Kiln("vectors", "import", "docs", "empty.jsonl", "--embed", "text");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("error: empty.jsonl: row 2: text: no text to embed", r.StdErr, StringComparison.Ordinal);
        r = await Kiln("vectors", "create", "small", "--size", "4");
        Assert.True(r.ExitCode == 0, r.ToString());
        r = await Kiln("vectors", "import", "small", "chunks.jsonl", "--embed", "text");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("error: small: vectors of size 4, but sentence-transformers/all-MiniLM-L6-v2 embeds text in 384 dimensions", r.StdErr, StringComparison.Ordinal);
        r = await Kiln("vectors", "search", "small", "--text", "rollback");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("error: --text: collection 'small' has vectors of size 4", r.StdErr, StringComparison.Ordinal);
    }
}
