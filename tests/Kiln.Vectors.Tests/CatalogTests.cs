using System.Text.Json.Nodes;
using Kiln.Core;
using Kiln.Storage;
using Kiln.Testing;
using Kiln.Vectors.Storage;

namespace Kiln.Vectors.Tests;

/// <summary>
/// The collections' catalog in the metadata database, on SQLite and on PostgreSQL: what a row holds, that the store
/// opens from it, that create, restore and delete leave a row and a directory together or neither, and that a store
/// directory written before the catalog (collection.json in each collection) is taken in on first open.
/// </summary>
public abstract class CatalogContract : IAsyncLifetime
{
    private readonly TempDir _dir = new("kiln-vectors-catalog");
    private MetadataDatabase _db = null!;

    protected string Store => _dir.File("store");

    protected abstract Task<string> FreshLocationAsync();

    protected abstract Task DropAsync();

    public async Task InitializeAsync() => _db = MetadataDatabase.Open(await FreshLocationAsync());

    public async Task DisposeAsync()
    {
        await _db.DisposeAsync();
        await DropAsync();
        _dir.Dispose();
    }

    private Task<VectorStore> OpenAsync(string? directory = null) => VectorStore.OpenAsync(directory ?? Store, _db);

    /// <summary>The catalog rows as the database holds them, by name.</summary>
    private Task<Dictionary<string, Dictionary<string, object?>>> RowsAsync() => _db.ReadAsync(async c =>
    {
        var rows = new Dictionary<string, Dictionary<string, object?>>(StringComparer.Ordinal);
        using var cmd = c.Command(null, "SELECT * FROM vector_collections");
        using var r = await cmd.ExecuteReaderAsync();
        while (await r.ReadAsync())
        {
            var row = new Dictionary<string, object?>(StringComparer.Ordinal);
            for (var i = 0; i < r.FieldCount; i++) row[r.GetName(i)] = r.IsDBNull(i) ? null : r.GetValue(i);
            rows[(string)row["name"]!] = row;
        }
        return rows;
    }, default);

    private static long Int(object? v) => Convert.ToInt64(v, System.Globalization.CultureInfo.InvariantCulture);

    [Fact]
    public async Task A_collection_is_a_catalog_row_and_a_directory_without_collection_json()
    {
        var config = new CollectionConfig
        {
            Dimension = 3, Distance = Distance.Dot, Datatype = VectorDatatype.Float16, Hnsw = new HnswParameters(8, 40, 32),
            FullScanThreshold = 10, WalFsync = false,
        };
        await using (var store = await OpenAsync())
        {
            var c = await store.CreateAsync("docs", config);
            c.Upsert([new PointInput(PointId.Of(1), [1, 0, 0], new JsonObject { ["city"] = "Berlin", ["n"] = 4 })]);
            await c.CreatePayloadIndexAsync("city", PayloadSchemaType.Keyword);
            await c.CreatePayloadIndexAsync("n", PayloadSchemaType.Integer);
        }
        var row = (await RowsAsync())["docs"];
        Assert.Equal(Path.GetFullPath(Store), row["store"]);
        Assert.Equal(Path.Combine(Path.GetFullPath(Store), "docs"), row["directory"]);
        Assert.Equal(3, Int(row["size"]));
        Assert.Equal("Dot", row["distance"]);
        Assert.Equal("float16", row["datatype"]);
        Assert.Equal([8L, 40L, 32L], new[] { Int(row["hnsw_m"]), Int(row["hnsw_ef_construct"]), Int(row["hnsw_ef"]) });
        Assert.Equal(10, Int(row["full_scan_threshold"]));
        Assert.Equal(0, Int(row["wal_fsync"]));
        Assert.Equal("""{"city":"keyword","n":"integer"}""", row["payload_indexes"]);
        var created = DateTimeOffset.Parse((string)row["created_at"]!, System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(created, DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddMinutes(1));
        Assert.False(File.Exists(Path.Combine(Store, "docs", "collection.json")));
        Assert.Equal(1, await _db.SchemaVersionAsync("vectors", default));

        // Reopened from the row: the same configuration, and the indexes answer a filtered search.
        await using (var store = await OpenAsync())
        {
            var c = store.Get("docs");
            Assert.Equal(config with { PayloadIndexes = c.Config.PayloadIndexes }, c.Config);
            Assert.Equal(["city", "n"], c.Config.PayloadIndexes.Keys.Order(StringComparer.Ordinal));
            var filter = Filtering.PointFilter.Parse(JsonNode.Parse("""{"must":[{"key":"city","match":{"value":"Berlin"}}]}"""));
            Assert.Equal(1UL, Assert.Single(c.Search(new SearchRequest([1, 0, 0], 5) { Filter = filter })).Point.Id.Number);
            await c.DeletePayloadIndexAsync("n");
            await Assert.ThrowsAsync<VectorNotFoundException>(() => c.DeletePayloadIndexAsync("n"));
        }
        Assert.Equal("""{"city":"keyword"}""", (await RowsAsync())["docs"]["payload_indexes"]);

        await using (var store = await OpenAsync())
        {
            Assert.Equal(["city"], store.Get("docs").Config.PayloadIndexes.Keys);
            Assert.True(await store.DeleteAsync("docs"));
            Assert.False(await store.DeleteAsync("docs"));
        }
        Assert.Empty(await RowsAsync());
        Assert.Empty(Directory.EnumerateFileSystemEntries(Store));
    }

    [Fact]
    public async Task A_bfloat16_collection_keeps_its_datatype_in_the_catalog_and_its_rounded_vectors_across_a_reopen()
    {
        var config = new CollectionConfig { Dimension = 3, Distance = Distance.Euclid, Datatype = VectorDatatype.BFloat16, WalFsync = false };
        float[] vector = [0.61f, -1234.567f, 3e-3f];
        await using (var store = await OpenAsync())
        {
            var c = await store.CreateAsync("bf", config);
            c.Upsert([new PointInput(PointId.Of(1), vector, null)]);
        }
        Assert.Equal("bfloat16", (await RowsAsync())["bf"]["datatype"]);
        await using (var store = await OpenAsync())
        {
            var c = store.Get("bf");
            Assert.Equal(config, c.Config with { PayloadIndexes = config.PayloadIndexes });
            Assert.Equal("bfloat16", c.Config.ToJson()["datatype"]!.GetValue<string>());
            // From the log: the components rounded to bfloat16 (0.609375, -1232, 0.0030059814).
            Assert.Equal([.. vector.Select(TestData.BFloat16)], Assert.Single(c.Get([PointId.Of(1)])).Vector);
            Assert.Equal([0.609375f, -1232f], Assert.Single(c.Get([PointId.Of(1)])).Vector[..2]);
        }
    }

    [Fact]
    public async Task A_refused_insert_leaves_no_directory_and_a_refused_restore_no_row()
    {
        await using var store = await OpenAsync();
        // Another process made "docs" in the catalog after this store opened: the insert is refused, nothing is left.
        await new VectorCatalog(_db).InsertAsync(store.Directory, "docs", Path.Combine(store.Directory, "docs"), new CollectionConfig { Dimension = 2 });
        var e = await Assert.ThrowsAsync<VectorConflictException>(() => store.CreateAsync("docs", new CollectionConfig { Dimension = 4 }));
        Assert.Equal("Collection `docs` already exists!", e.Message);
        Assert.Empty(Directory.EnumerateFileSystemEntries(store.Directory));
        Assert.Equal(2, Int((await RowsAsync())["docs"]["size"]));

        // A file that is not an export: refused before the catalog is touched.
        File.WriteAllText(_dir.File("junk.zip"), "not a zip");
        await using (var f = File.OpenRead(_dir.File("junk.zip")))
        {
            await Assert.ThrowsAsync<VectorInputException>(() => store.RestoreAsync("junk", f, "junk.zip"));
        }
        Assert.Equal(["docs"], (await RowsAsync()).Keys);
        Assert.Empty(Directory.EnumerateFileSystemEntries(store.Directory));

        // A directory in the way that is no collection is named, and neither it nor the catalog changes.
        Directory.CreateDirectory(Path.Combine(store.Directory, "other"));
        var taken = await Assert.ThrowsAsync<VectorConflictException>(() => store.CreateAsync("other", new CollectionConfig { Dimension = 2 }));
        Assert.Contains("exists but is no collection", taken.Message, StringComparison.Ordinal);
        Assert.Equal(["docs"], (await RowsAsync()).Keys);
    }

    [Fact]
    public async Task A_payload_index_whose_row_cannot_be_updated_is_not_made()
    {
        await using var store = await OpenAsync();
        var c = await store.CreateAsync("docs", new CollectionConfig { Dimension = 2 });
        // The row went away under the open store (another process deleted the collection): the index is refused, not half-made.
        Assert.True(await new VectorCatalog(_db).DeleteAsync(store.Directory, "docs"));
        var e = await Assert.ThrowsAsync<VectorNotFoundException>(() => c.CreatePayloadIndexAsync("city", PayloadSchemaType.Keyword));
        Assert.Equal("Collection `docs` doesn't exist!", e.Message);
        Assert.Empty(c.Config.PayloadIndexes);
    }

    [Fact]
    public async Task An_interrupted_create_or_delete_is_settled_by_the_catalog_row_on_open()
    {
        await using (var store = await OpenAsync())
        {
            foreach (var name in new[] { "made", "kept" })
            {
                var c = await store.CreateAsync(name, new CollectionConfig { Dimension = 2 });
                c.Upsert([new PointInput(PointId.Of(7), [1, 2], null)]);
            }
        }
        // As a crash leaves them: "made" committed its row but was not yet renamed; "kept" was moved aside for a delete
        // whose row delete never ran; "lost" was being built and never reached the catalog.
        Directory.Move(Path.Combine(Store, "made"), Path.Combine(Store, ".made.creating"));
        Directory.Move(Path.Combine(Store, "kept"), Path.Combine(Store, ".kept.deleting"));
        Directory.CreateDirectory(Path.Combine(Store, ".lost.creating", "wal"));
        await using (var store = await OpenAsync())
        {
            Assert.Equal(["kept", "made"], store.Names);
            Assert.Equal(1, store.Get("made").Count);
            Assert.Equal(1, store.Get("kept").Count);
        }
        Assert.Equal(["kept", "made"], Directory.EnumerateDirectories(Store).Select(Path.GetFileName).Order(StringComparer.Ordinal));

        // A row whose directory is gone stops the open with one line naming it.
        Directory.Delete(Path.Combine(Store, "made"), true);
        var e = await Assert.ThrowsAsync<KilnException>(() => OpenAsync());
        Assert.Contains("vector collection 'made' is in the catalog but its directory", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public async Task Two_store_directories_on_one_database_keep_their_own_collections()
    {
        await using var a = await OpenAsync(_dir.File("a"));
        await using var b = await OpenAsync(_dir.File("b"));
        await a.CreateAsync("docs", new CollectionConfig { Dimension = 2 });
        await b.CreateAsync("docs", new CollectionConfig { Dimension = 5 });
        await using var again = await OpenAsync(_dir.File("a") + "/");
        Assert.Equal(2, again.Get("docs").Config.Dimension);
        await using var other = await OpenAsync(_dir.File("b"));
        Assert.Equal(5, other.Get("docs").Config.Dimension);
    }

    [Fact]
    public async Task A_store_written_before_the_catalog_is_taken_in_on_first_open()
    {
        // Fixtures/legacy-store was written by kiln built from bc6b997 (before the catalog), as a user's directory is:
        //   kiln vectors create docs --size 4 --distance Dot --m 8 --ef-construct 50; import a.jsonl (ids 1-3);
        //   kiln vectors snapshot docs; import b.jsonl (ids 4-6, in the log only);
        //   PUT /collections/docs/index city:keyword and price:integer (through kiln server --vectors);
        //   kiln vectors create half --size 3 --distance Euclid --datatype float16 --no-fsync
        CopyDirectory(Path.Combine(TestEnvironment.RepoRoot, "tests", "Kiln.Vectors.Tests", "Fixtures", "legacy-store"), Store);
        var expected = JsonNode.Parse(File.ReadAllText(Path.Combine(Store, "docs", "collection.json")))!.AsObject();
        await using (var store = await OpenAsync())
        {
            Assert.Equal(["docs", "half"], store.Names);
            var docs = store.Get("docs");
            Assert.Equal(6, docs.Count);
            Assert.Equal(expected.ToJsonString(), docs.Config.ToJson().ToJsonString());
            Assert.Equal(new HnswParameters(8, 50, 64), docs.Config.Hnsw);
            // The points' vectors and payloads as a.jsonl and b.jsonl hold them (Dot: stored as given).
            var p4 = Assert.Single(docs.Get([PointId.Of(4)]));
            Assert.Equal([0.18f, 0.01f, 0.85f, 0.80f], p4.Vector);
            Assert.Equal("New York", p4.Payload!["city"]!.GetValue<string>());
            var filter = Filtering.PointFilter.Parse(JsonNode.Parse("""{"must":[{"key":"price","range":{"gte":20,"lte":40}}]}"""));
            Assert.Equal([2UL, 3UL, 4UL], docs.Search(new SearchRequest([1, 1, 1, 1], 10) { Filter = filter, Exact = true }).Select(h => h.Point.Id.Number).Order());
            var half = store.Get("half").Config;
            Assert.Equal((3, Distance.Euclid, VectorDatatype.Float16, false), (half.Dimension, half.Distance, half.Datatype, half.WalFsync));
            docs.Upsert([new PointInput(PointId.Of(7), [0, 0, 0, 1], null)]);
        }
        Assert.False(File.Exists(Path.Combine(Store, "docs", "collection.json")));
        Assert.False(File.Exists(Path.Combine(Store, "half", "collection.json")));
        var rows = await RowsAsync();
        Assert.Equal(["docs", "half"], rows.Keys.Order(StringComparer.Ordinal));
        Assert.Equal("""{"city":"keyword","price":"integer"}""", rows["docs"]["payload_indexes"]);
        await using (var store = await OpenAsync())
        {
            Assert.Equal(7, store.Get("docs").Count);
            Assert.Equal(expected.ToJsonString(), store.Get("docs").Config.ToJson().ToJsonString());
        }
    }

    [Fact]
    public async Task A_collection_json_that_is_not_a_configuration_is_named_and_nothing_is_imported()
    {
        Directory.CreateDirectory(Path.Combine(Store, "bad"));
        File.WriteAllText(Path.Combine(Store, "bad", "collection.json"), """{"size": 4}""");
        var e = await Assert.ThrowsAsync<KilnException>(() => OpenAsync());
        Assert.StartsWith(Path.Combine(Path.GetFullPath(Store), "bad", "collection.json") + ": not a collection configuration", e.Message, StringComparison.Ordinal);
        Assert.True(File.Exists(Path.Combine(Store, "bad", "collection.json")));
        Assert.Empty(await RowsAsync());
    }

    private static void CopyDirectory(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var dir in Directory.EnumerateDirectories(from, "*", SearchOption.AllDirectories)) Directory.CreateDirectory(dir.Replace(from, to, StringComparison.Ordinal));
        foreach (var file in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories)) File.Copy(file, file.Replace(from, to, StringComparison.Ordinal));
    }
}

public sealed class SqliteCatalogTests : CatalogContract
{
    private readonly TempDir _db = new("kiln-vectors-catalog-db");

    protected override Task<string> FreshLocationAsync() => Task.FromResult(_db.Path);

    protected override Task DropAsync()
    {
        _db.Dispose();
        return Task.CompletedTask;
    }
}

public sealed class PostgresCatalogTests : CatalogContract
{
    private TestDatabase? _database;

    protected override async Task<string> FreshLocationAsync()
    {
        _database = await TestDatabase.CreateAsync("kiln_vectors");
        return _database.ConnectionString;
    }

    protected override async Task DropAsync()
    {
        if (_database is not null) await _database.DisposeAsync();
    }
}

/// <summary>The real kiln server and kiln vectors keep the catalog in the one database they are given: PostgreSQL with
/// a postgresql --db, the default SQLite kiln.db otherwise.</summary>
public sealed class CatalogProcessTests : IDisposable
{
    private readonly TempDir _dir = new("kiln-vectors-catalog-proc");

    public void Dispose() => _dir.Dispose();

    private static async Task<List<string>> CatalogAsync(string location)
    {
        await using var db = MetadataDatabase.Open(location);
        return await db.ReadAsync(c => c.QueryAsync(null, "SELECT name, size, payload_indexes FROM vector_collections ORDER BY name",
            r => $"{r.GetString(0)} {r.Int32(1)} {r.GetString(2)}", default), default);
    }

    [Fact]
    public async Task Kiln_server_on_postgresql_keeps_the_catalog_there_and_kiln_vectors_reads_it()
    {
        await using var database = await TestDatabase.CreateAsync("kiln_vectors_srv");
        var location = database.UnpooledConnectionString;
        var port = TestEnvironment.FreePort();
        var server = KilnCli.Start(["server", "--db", location, "--vectors", "vectors", "--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture)], _dir.Path);
        try
        {
            using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(30) };
            var clock = System.Diagnostics.Stopwatch.StartNew();
            while (true)
            {
                try
                {
                    using var ready = await http.GetAsync("/collections");
                    if (ready.IsSuccessStatusCode) break;
                }
                catch (HttpRequestException) { }
                Assert.False(server.HasExited || clock.Elapsed > TimeSpan.FromSeconds(120), "kiln server did not start");
                await Task.Delay(250);
            }
            using var create = await http.PutAsync("/collections/docs", new StringContent("""{"vectors": {"size": 4, "distance": "Dot"}}""", System.Text.Encoding.UTF8, "application/json"));
            Assert.True(create.IsSuccessStatusCode, await create.Content.ReadAsStringAsync());
            using var index = await http.PutAsync("/collections/docs/index", new StringContent("""{"field_name": "city", "field_schema": "keyword"}""", System.Text.Encoding.UTF8, "application/json"));
            Assert.True(index.IsSuccessStatusCode, await index.Content.ReadAsStringAsync());
            using var points = await http.PutAsync("/collections/docs/points?wait=true", new StringContent("""{"points": [{"id": 1, "vector": [0.05, 0.61, 0.76, 0.74], "payload": {"city": "Berlin"}}]}""", System.Text.Encoding.UTF8, "application/json"));
            Assert.True(points.IsSuccessStatusCode, await points.Content.ReadAsStringAsync());
            Assert.Equal(["docs 4 {\"city\":\"keyword\"}"], await CatalogAsync(location));
        }
        finally
        {
            server.Kill(entireProcessTree: true);
            await server.WaitForExitAsync();
        }
        Assert.Empty(Directory.EnumerateFiles(_dir.Path, "*.db", SearchOption.AllDirectories));
        Assert.False(File.Exists(_dir.File("vectors/docs/collection.json")));

        // kiln vectors on the same database and directory sees the collection, and its deletion reaches the catalog.
        var info = await KilnCli.RunAsync(["vectors", "info", "docs", "--json", "--dir", "vectors", "--db", location], _dir.Path);
        Assert.True(info.ExitCode == 0, info.ToString());
        var o = JsonNode.Parse(info.StdOut)!;
        Assert.Equal(1, o["points_count"]!.GetValue<int>());
        Assert.Equal("keyword", o["payload_indexes"]!["city"]!.GetValue<string>());
        var delete = await KilnCli.RunAsync(["vectors", "delete", "docs", "--dir", "vectors", "--db", location], _dir.Path);
        Assert.True(delete.ExitCode == 0, delete.ToString());
        Assert.Empty(await CatalogAsync(location));
        Assert.False(Directory.Exists(_dir.File("vectors/docs")));
    }

    [Fact]
    public async Task Kiln_server_with_vectors_refuses_another_server_as_its_database()
    {
        var r = await KilnCli.RunAsync(["server", "--db", "http://127.0.0.1:9", "--vectors", "vectors", "--port", "0"], _dir.Path, timeout: TimeSpan.FromMinutes(2));
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("--vectors: the collections' catalog lives in the metadata database", r.StdErr, StringComparison.Ordinal);
        Assert.False(Directory.Exists(_dir.File("vectors")));
    }

    [Fact]
    public async Task Kiln_vectors_keeps_the_catalog_in_the_default_kiln_db()
    {
        var r = await KilnCli.RunAsync(["vectors", "create", "docs", "--size", "3", "--distance", "Euclid"], _dir.Path, env: new Dictionary<string, string> { ["KILN_TRACKING_URI"] = "" });
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal(["docs 3 {}"], await CatalogAsync(_dir.File(".kiln")));
        Assert.True(Directory.Exists(_dir.File(".kiln/vectors/docs/wal")));
        Assert.False(File.Exists(_dir.File(".kiln/vectors/docs/collection.json")));

        // A --db that is a server is refused in one line, and nothing is made.
        r = await KilnCli.RunAsync(["vectors", "create", "other", "--size", "3", "--db", "http://127.0.0.1:9"], _dir.Path);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("a server URL is not a database", r.StdErr, StringComparison.Ordinal);
        Assert.Single(r.StdErr.Trim().Split('\n'));
        Assert.Equal(["docs 3 {}"], await CatalogAsync(_dir.File(".kiln")));
    }
}
