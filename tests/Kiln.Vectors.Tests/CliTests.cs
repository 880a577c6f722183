using System.Text.Json.Nodes;
using Kiln.Testing;

namespace Kiln.Vectors.Tests;

/// <summary>kiln vectors through the real CLI binary.</summary>
public sealed class CliTests : IDisposable
{
    private readonly TempDir _dir = new("kiln-vectors-cli");

    public void Dispose() => _dir.Dispose();

    private Task<Proc.Result> Kiln(params string[] args) => KilnCli.RunAsync(args, _dir.Path);

    [Fact]
    public async Task Create_import_search_info_snapshot_delete()
    {
        File.WriteAllText(_dir.File("a.jsonl"), """
            {"id": 1, "vector": [0.05, 0.61, 0.76, 0.74], "city": "Berlin"}
            {"id": 2, "vector": [0.19, 0.81, 0.75, 0.11], "city": "London"}
            {"id": 3, "vector": [0.36, 0.55, 0.47, 0.94], "city": "Moscow"}

            """);
        File.WriteAllText(_dir.File("b.csv"), "id,vector,city,pop\n4,\"[0.18, 0.01, 0.85, 0.80]\",New York,8.3\n5,\"[0.24, 0.18, 0.22, 0.44]\",Beijing,21\n");
        File.WriteAllText(_dir.File("bad.csv"), "id,vector,city\n6,\"[0.35, 0.08, 0.11, 0.44]\",Mumbai\n7,\"[0.35, 0.08]\",Delhi\n");

        var r = await Kiln("vectors", "create", "demo", "--size", "4", "--distance", "Dot");
        Assert.True(r.ExitCode == 0, r.ToString());
        r = await Kiln("vectors", "import", "demo", "a.jsonl");
        Assert.True(r.ExitCode == 0, r.ToString());
        r = await Kiln("vectors", "import", "demo", "b.csv");
        Assert.True(r.ExitCode == 0, r.ToString());

        // Expected order and scores: numpy, x @ q (see HttpTests); pop > 10 leaves Beijing only (0.572).
        r = await Kiln("vectors", "search", "demo", "--vector", "[0.2, 0.1, 0.9, 0.7]", "--limit", "3", "--json");
        Assert.True(r.ExitCode == 0, r.ToString());
        var hits = JsonNode.Parse(r.StdOut)!.AsArray();
        Assert.Equal([4, 1, 3], hits.Select(h => h!["id"]!.GetValue<int>()));
        Assert.Equal("New York", hits[0]!["payload"]!["city"]!.GetValue<string>());
        r = await Kiln("vectors", "search", "demo", "--vector", "[0.2, 0.1, 0.9, 0.7]", "--filter", """{"must":[{"key":"pop","range":{"gt":10}}]}""", "--json");
        Assert.Equal([5], JsonNode.Parse(r.StdOut)!.AsArray().Select(h => h!["id"]!.GetValue<int>()));

        // A bad row names the file and row; the collection is unchanged because the batch is checked first.
        r = await Kiln("vectors", "import", "demo", "bad.csv");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("error: bad.csv: row 2: vector: expected dim: 4, got 2", r.StdErr, StringComparison.Ordinal);

        r = await Kiln("vectors", "info", "demo", "--json");
        Assert.Equal(5, JsonNode.Parse(r.StdOut)!["points_count"]!.GetValue<int>());
        r = await Kiln("vectors", "snapshot", "demo", "--compact");
        Assert.True(r.ExitCode == 0, r.ToString());
        r = await Kiln("vectors", "search", "demo", "--vector", "[1, 2]");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("error: --vector: expected dim: 4, got 2", r.StdErr, StringComparison.Ordinal);
        r = await Kiln("vectors", "create", "demo", "--size", "4");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("already exists", r.StdErr, StringComparison.Ordinal);
        r = await Kiln("vectors", "delete", "demo");
        Assert.True(r.ExitCode == 0, r.ToString());
        r = await Kiln("vectors", "info", "demo");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("error: Collection `demo` doesn't exist!", r.StdErr, StringComparison.Ordinal);
    }
}
