using System.Globalization;
using Kiln.Testing;
using Kiln.Vectors.Http;
using Kiln.Vectors.VectorData;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.VectorData;

namespace Kiln.Vectors.Tests;

/// <summary>A record as a .NET RAG application declares it for any VectorData connector.</summary>
public sealed class DocChunk
{
    [VectorStoreKey]
    public ulong Id { get; set; }

    [VectorStoreData(IsIndexed = true)]
    public string Category { get; set; } = "";

    [VectorStoreData(IsIndexed = true)]
    public int Year { get; set; }

    [VectorStoreData]
    public string Text { get; set; } = "";

    [VectorStoreData]
    public string[] Tags { get; set; } = [];

    [VectorStoreVector(8, DistanceFunction = DistanceFunction.CosineSimilarity)]
    public ReadOnlyMemory<float> Embedding { get; set; }
}

/// <summary>The same application code over Kiln in this process and over kiln's REST API on real Kestrel.</summary>
public sealed class VectorDataTests : IDisposable
{
    private readonly TempDir _dir = new("kiln-vectordata");

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task A_rag_application_runs_on_the_in_process_store()
    {
        await using var kiln = await Stores.OpenAsync(_dir.File("local"));
        using Microsoft.Extensions.VectorData.VectorStore store = new KilnVectorStore(kiln);
        await RunApplication(store, created: () =>
        {
            // The collection is a Kiln collection with the declared size, distance and payload indexes.
            var c = kiln.Get("chunks");
            Assert.Equal(8, c.Config.Dimension);
            Assert.Equal(Distance.Cosine, c.Config.Distance);
            Assert.Equal(PayloadSchemaType.Keyword, c.Config.PayloadIndexes["Category"]);
            Assert.Equal(PayloadSchemaType.Integer, c.Config.PayloadIndexes["Year"]);
        });
    }

    [Fact]
    public async Task The_same_application_runs_over_kiln_servers_rest_api()
    {
        var port = TestEnvironment.FreePort();
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls($"http://127.0.0.1:{port}");
        builder.Services.AddKilnVectors(o => { o.Directory = _dir.File("served"); o.Database = _dir.File("kiln.db"); });
        await using var app = builder.Build();
        app.MapKilnVectorEndpoints();
        await app.StartAsync();
        // The one line that differs from the in-process application.
        using Microsoft.Extensions.VectorData.VectorStore store = new KilnVectorStore(new Uri($"http://127.0.0.1:{port}/"));
        await RunApplication(store);
    }

    private static List<DocChunk> Chunks()
    {
        var vectors = TestData.Latent(200, 8, 3, seed: 21);
        return [.. vectors.Select((v, i) => new DocChunk
        {
            Id = (ulong)i,
            Category = (i % 3) switch { 0 => "serving", 1 => "training", _ => "vectors" },
            Year = 2000 + i % 10,
            Text = $"chunk {i}",
            Tags = i % 4 == 0 ? ["howto", "ops"] : ["reference"],
            Embedding = v,
        })];
    }

    /// <summary>What a RAG application does through the abstraction alone.</summary>
    private static async Task RunApplication(Microsoft.Extensions.VectorData.VectorStore store, Action? created = null)
    {
        var collection = store.GetCollection<ulong, DocChunk>("chunks");
        await collection.EnsureCollectionExistsAsync();
        created?.Invoke();
        Assert.True(await store.CollectionExistsAsync("chunks"));
        Assert.Contains("chunks", await store.ListCollectionNamesAsync().ToListAsync());
        var chunks = Chunks();
        await collection.UpsertAsync(chunks);

        var query = TestData.Latent(1, 8, 3, seed: 22)[0];
        var hits = await collection.SearchAsync(new ReadOnlyMemory<float>(query), 5, new VectorSearchOptions<DocChunk>
        {
            Filter = c => c.Category == "training" && c.Year >= 2005,
        }).ToListAsync();

        // Oracle: numpy's cosine ranking over the chunks that match the filter (i % 3 == 1 and i % 10 >= 5).
        var expected = await NumpyTop(chunks.Where(c => c.Category == "training" && c.Year >= 2005).ToList(), query, 5);
        Assert.Equal(expected.Select(e => e.Id), hits.Select(h => h.Record.Id));
        for (var i = 0; i < 5; i++)
        {
            Assert.True(Math.Abs(hits[i].Score!.Value - expected[i].Score) < 1e-4, $"score {i}: {hits[i].Score} vs {expected[i].Score}");
            Assert.Equal("training", hits[i].Record.Category);
            Assert.Equal($"chunk {hits[i].Record.Id}", hits[i].Record.Text);
            Assert.True(hits[i].Record.Embedding.IsEmpty, "vectors are not returned unless asked for");
        }

        // Tags.Contains, negation and a captured variable; IncludeVectors gives the stored (normalised) vector.
        var since = 2008;
        var tagged = await collection.SearchAsync(query, 3, new VectorSearchOptions<DocChunk>
        {
            Filter = c => c.Tags.Contains("howto") && !(c.Category == "serving") && c.Year < since,
            IncludeVectors = true,
        }).ToListAsync();
        Assert.Equal(3, tagged.Count);
        Assert.All(tagged, h => Assert.True(h.Record.Id % 4 == 0 && h.Record.Id % 3 != 0 && 2000 + (int)(h.Record.Id % 10) < since, $"id {h.Record.Id}"));
        var norm = Math.Sqrt(tagged[0].Record.Embedding.ToArray().Sum(x => (double)x * x));
        Assert.True(Math.Abs(norm - 1) < 1e-5, $"norm {norm}");

        var one = await collection.GetAsync(44UL);
        Assert.NotNull(one);
        Assert.Equal(["howto", "ops"], one!.Tags);
        Assert.Equal(2004, one.Year);
        Assert.Equal("vectors", one.Category);
        Assert.Null(await collection.GetAsync(999UL));

        var recent = await collection.GetAsync(c => c.Year == 2009 && c.Category == "vectors", 100).ToListAsync();
        Assert.Equal(chunks.Where(c => c.Year == 2009 && c.Category == "vectors").Select(c => c.Id), recent.Select(r => r.Id).Order());

        await collection.DeleteAsync([42UL, 43UL]);
        Assert.Null(await collection.GetAsync(42UL));
        Assert.Equal(198, (await collection.GetAsync(c => c.Year >= 0, 1000).ToListAsync()).Count);

        // A wrong dimension is refused through the abstraction's exception, naming the field.
        var bad = new DocChunk { Id = 500, Embedding = new float[3] };
        var e = await Assert.ThrowsAsync<VectorStoreException>(() => collection.UpsertAsync(bad));
        Assert.Contains("expected dim: 8, got 3", e.Message, StringComparison.Ordinal);
        Assert.Equal("chunks", e.CollectionName);

        await store.EnsureCollectionDeletedAsync("chunks");
        Assert.False(await collection.CollectionExistsAsync());
    }

    private static async Task<List<(ulong Id, double Score)>> NumpyTop(List<DocChunk> rows, float[] query, int k)
    {
        var x = string.Join(";", rows.Select(r => string.Join(",", r.Embedding.ToArray().Select(v => v.ToString("R", CultureInfo.InvariantCulture)))));
        var ids = string.Join(",", rows.Select(r => r.Id));
        var q = string.Join(",", query.Select(v => v.ToString("R", CultureInfo.InvariantCulture)));
        var script = $$"""
import numpy as np
x = np.array([[float(v) for v in r.split(',')] for r in '{{x}}'.split(';')], dtype=np.float64)
ids = [int(i) for i in '{{ids}}'.split(',')]
q = np.array([float(v) for v in '{{q}}'.split(',')])
s = (x / np.linalg.norm(x, axis=1, keepdims=True)) @ (q / np.linalg.norm(q))
order = np.argsort(-s, kind='stable')[:{{k}}]
print(' '.join(f'{ids[i]}:{s[i]:.7f}' for i in order))
""";
        var result = await Proc.PythonAsync(script);
        Assert.True(result.ExitCode == 0, result.ToString());
        return [.. result.StdOut.Trim().Split(' ').Select(t => t.Split(':')).Select(p => (ulong.Parse(p[0], CultureInfo.InvariantCulture), double.Parse(p[1], CultureInfo.InvariantCulture)))];
    }
}
