using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Kiln.Testing;
using Kiln.Vectors.Filtering;
using Kiln.Vectors.Http;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;

namespace Kiln.Vectors.Tests;

/// <summary>A collection exported as one file and restored: in code, over HTTP (real Kestrel), and by the real CLI.</summary>
public sealed class ExportTests : IDisposable
{
    private readonly TempDir _dir = new("kiln-vectors-export");

    public void Dispose() => _dir.Dispose();

    private static async Task<VectorCollection> Filled(VectorStore store, string name)
    {
        var c = await store.CreateAsync(name, new CollectionConfig { Dimension = 16, Distance = Distance.Cosine, Datatype = VectorDatatype.Float16, FullScanThreshold = 100 });
        c.SnapshotEvery = 0;
        c.Upsert(TestData.Points(TestData.Latent(3000, 16, 4, seed: 31)));
        await c.CreatePayloadIndexAsync("tag", PayloadSchemaType.Keyword);
        c.Delete([PointId.Of(10), PointId.Of(11)]);
        // Written after the last snapshot, so only the log has them until the export snapshots.
        c.Upsert([new PointInput(PointId.Of(Guid.Parse("6f1c3a52-1b7e-4b9e-9d0a-3a2f1e0c5b77")), TestData.Latent(1, 16, 4, seed: 32)[0], new JsonObject { ["tag"] = "uuid" })]);
        return c;
    }

    /// <summary>Every point (id, vector, payload) and the answers to a few searches, with and without a filter.</summary>
    private static void AssertSame(VectorCollection expected, VectorCollection actual)
    {
        Assert.Equal(expected.Count, actual.Count);
        Assert.Equal(expected.Config.ToJson().ToJsonString(), actual.Config.ToJson().ToJsonString());
        var a = expected.All().ToDictionary(p => p.Id);
        foreach (var p in actual.All())
        {
            var e = a[p.Id];
            Assert.Equal(e.Vector, p.Vector);
            Assert.Equal(e.Payload?.ToJsonString(), p.Payload?.ToJsonString());
        }
        var filter = PointFilter.Parse(JsonNode.Parse("""{"must":[{"key":"tag","match":{"value":"ten"}}]}"""));
        foreach (var q in TestData.Latent(5, 16, 4, seed: 33))
        {
            foreach (var f in new[] { null, filter })
            {
                var want = expected.Search(new SearchRequest(q, 10) { Filter = f });
                var got = actual.Search(new SearchRequest(q, 10) { Filter = f });
                Assert.Equal(want.Select(h => h.Point.Id), got.Select(h => h.Point.Id));
                Assert.Equal(want.Select(h => h.Score), got.Select(h => h.Score));
            }
        }
    }

    [Fact]
    public async Task An_exported_collection_restores_whole_under_a_new_name_and_a_bad_file_leaves_nothing()
    {
        await using var source = await Stores.OpenAsync(_dir.File("a"));
        var c = await Filled(source, "docs");
        using (var f = File.Create(_dir.File("docs.zip"))) c.Export(f);
        await using var target = await Stores.OpenAsync(_dir.File("b"));
        await using (var f = File.OpenRead(_dir.File("docs.zip"))) await target.RestoreAsync("copy", f);
        AssertSame(c, target.Get("copy"));
        Assert.Equal(2999, target.Get("copy").Count);

        // The restored collection is an ordinary one: it takes writes, and reopens with them.
        target.Get("copy").Upsert([new PointInput(PointId.Of(10), TestData.Latent(1, 16, 4, seed: 34)[0], null)]);
        await using (var reopened = await Stores.OpenAsync(_dir.File("b")))
        {
            Assert.Equal(3000, reopened.Get("copy").Count);
        }

        using (var f = File.OpenRead(_dir.File("docs.zip")))
        {
            await Assert.ThrowsAsync<VectorConflictException>(() => target.RestoreAsync("copy", f));
        }
        File.WriteAllText(_dir.File("junk.zip"), "not a zip");
        using (var f = File.OpenRead(_dir.File("junk.zip")))
        {
            var e = await Assert.ThrowsAsync<VectorInputException>(() => target.RestoreAsync("junk", f, "junk.zip"));
            Assert.StartsWith("junk.zip: not a Kiln collection export", e.Message, StringComparison.Ordinal);
        }
        Assert.Equal(["copy"], target.Names);
        Assert.Equal(["copy"], Directory.EnumerateDirectories(_dir.File("b")).Select(Path.GetFileName));
    }

    [Fact]
    public async Task Export_and_restore_over_http()
    {
        var port = TestEnvironment.FreePort();
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls($"http://127.0.0.1:{port}");
        builder.Services.AddKilnVectors(o => { o.Directory = _dir.File("served"); o.Database = _dir.File("kiln.db"); });
        await using var app = builder.Build();
        app.MapKilnVectorEndpoints();
        await app.StartAsync();
        var store = app.Services.GetRequiredService<VectorStore>();
        var c = await Filled(store, "docs");
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };

        using var export = await http.GetAsync("/collections/docs/export");
        Assert.Equal(HttpStatusCode.OK, export.StatusCode);
        Assert.Equal("application/zip", export.Content.Headers.ContentType!.MediaType);
        var bytes = await export.Content.ReadAsByteArrayAsync();

        using var restore = await http.PutAsync("/collections/copy/restore", new ByteArrayContent(bytes));
        var body = JsonNode.Parse(await restore.Content.ReadAsStringAsync())!;
        Assert.True(restore.StatusCode == HttpStatusCode.OK, body.ToJsonString());
        Assert.Equal(2999, body["result"]!["points_count"]!.GetValue<int>());
        AssertSame(c, store.Get("copy"));

        using var missing = await http.GetAsync("/collections/nope/export");
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        Assert.Contains("nope", JsonNode.Parse(await missing.Content.ReadAsStringAsync())!["status"]!["error"]!.GetValue<string>(), StringComparison.Ordinal);

        using var bad = await http.PutAsync("/collections/bad/restore", new StringContent("{}", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.StartsWith("Wrong input: body: not a Kiln collection export", JsonNode.Parse(await bad.Content.ReadAsStringAsync())!["status"]!["error"]!.GetValue<string>(), StringComparison.Ordinal);
        using var again = await http.PutAsync("/collections/copy/restore", new ByteArrayContent(bytes));
        Assert.Equal(HttpStatusCode.BadRequest, again.StatusCode);
        Assert.Equal(["copy", "docs"], store.Names);
    }

    [Fact]
    public async Task Kiln_vectors_export_and_restore()
    {
        await using (var store = await Stores.OpenAsync(_dir.File("cli"), _dir.File(".kiln")))
        {
            await Filled(store, "docs");
        }
        var r = await KilnCli.RunAsync(["vectors", "export", "docs", "docs.zip", "--dir", "cli"], _dir.Path);
        Assert.True(r.ExitCode == 0, r.ToString());
        r = await KilnCli.RunAsync(["vectors", "restore", "copy", "docs.zip", "--dir", "cli"], _dir.Path);
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("restored copy: 2,999 points", r.StdErr, StringComparison.Ordinal);
        File.WriteAllText(_dir.File("junk.zip"), "not a zip");
        r = await KilnCli.RunAsync(["vectors", "restore", "junk", "junk.zip", "--dir", "cli"], _dir.Path);
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains("junk.zip: not a Kiln collection export", r.StdErr, StringComparison.Ordinal);
        await using (var store = await Stores.OpenAsync(_dir.File("cli"), _dir.File(".kiln")))
        {
            Assert.Equal(["copy", "docs"], store.Names);
            AssertSame(store.Get("docs"), store.Get("copy"));
        }
    }
}
