using System.Text.Json.Nodes;
using Kiln.Testing;
using Kiln.Vectors.Filtering;

namespace Kiln.Vectors.Tests;

public sealed class DurabilityTests : IDisposable
{
    private readonly TempDir _dir = new("kiln-vectors");

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task Reopening_replays_the_log_on_top_of_the_snapshot()
    {
        var vectors = TestData.Latent(3000, 8, 4, seed: 1);
        await using (var store = await Stores.OpenAsync(_dir.Path))
        {
            var c = await store.CreateAsync("v", new CollectionConfig { Dimension = 8, Distance = Distance.Euclid });
            c.SnapshotEvery = 0;
            c.Upsert(TestData.Points(vectors[..2000]));
            c.Delete([PointId.Of(5), PointId.Of(6)]);
            c.Snapshot();
            c.Upsert(TestData.Points(vectors)[2000..]);
            c.Upsert([new PointInput(PointId.Of(7), vectors[0], new JsonObject { ["replaced"] = true })]);
            c.Delete(PointFilter.Parse(JsonNode.Parse("""{"must":[{"key":"group","match":{"value":99}}]}"""))!);
        }
        await using (var store = await Stores.OpenAsync(_dir.Path))
        {
            var c = store.Get("v");
            Assert.Equal(3000 - 2 - 30, c.Count);
            Assert.Empty(c.Get([PointId.Of(5), PointId.Of(6), PointId.Of(99), PointId.Of(2999)]));
            var p7 = Assert.Single(c.Get([PointId.Of(7)]));
            Assert.Equal(vectors[0], p7.Vector);
            Assert.True(p7.Payload!["replaced"]!.GetValue<bool>());
            var hit = c.Search(new SearchRequest(vectors[2500], 1))[0];
            Assert.Equal(2500UL, hit.Point.Id.Number);
        }
    }

    [Theory]
    [InlineData(VectorDatatype.Float32, 1)]
    [InlineData(VectorDatatype.Float32, 2)]
    [InlineData(VectorDatatype.Float16, 2)]
    [InlineData(VectorDatatype.BFloat16, 1)]
    [InlineData(VectorDatatype.BFloat16, 2)]
    public async Task Vectors_read_back_from_the_graph_are_the_last_ones_written(VectorDatatype datatype, int threads)
    {
        // The graph holds the only copy of each vector. float32 gives back the exact components; float16 gives
        // back each component rounded to half precision ((float)(Half)x, the conversion USearch stores), bfloat16
        // each rounded to bfloat16 (to nearest, ties to even).
        var vectors = TestData.Latent(600, 16, 4, seed: 9);
        float[] Expected(float[] v) => datatype switch
        {
            VectorDatatype.Float32 => v,
            VectorDatatype.Float16 => [.. v.Select(x => (float)(Half)x)],
            _ => [.. v.Select(TestData.BFloat16)],
        };
        await using (var store = await Stores.OpenAsync(_dir.Path))
        {
            var c = await store.CreateAsync("v", new CollectionConfig { Dimension = 16, Distance = Distance.Euclid, Datatype = datatype });
            c.BuildThreads = threads;
            c.SnapshotEvery = 0;
            var batch = TestData.Points(vectors[..500]);
            // Point 3 twice in one batch: the later version wins and the earlier never takes a place in answers.
            batch.Add(new PointInput(PointId.Of(3), vectors[550], new JsonObject { ["second"] = true }));
            c.Upsert(batch);
            c.Snapshot();
            // Point 4 replaced in a later batch, after the snapshot (so from the log on reopen).
            c.Upsert([new PointInput(PointId.Of(4), vectors[551], null), .. TestData.Points(vectors)[500..550]]);
            Assert.Equal(550, c.Count);
            Assert.Equal(2, c.DeletedSlots);
        }
        await using (var store = await Stores.OpenAsync(_dir.Path))
        {
            var c = store.Get("v");
            Assert.Equal(550, c.Count);
            foreach (var i in new[] { 0, 1, 250, 499, 520, 549 })
            {
                Assert.Equal(Expected(vectors[i]), Assert.Single(c.Get([PointId.Of((ulong)i)])).Vector);
            }
            var p3 = Assert.Single(c.Get([PointId.Of(3)]));
            Assert.Equal(Expected(vectors[550]), p3.Vector);
            Assert.True(p3.Payload!["second"]!.GetValue<bool>());
            Assert.Equal(Expected(vectors[551]), Assert.Single(c.Get([PointId.Of(4)])).Vector);
            // Searching for the replaced vectors finds the points under their new vectors, and exactly once.
            var hits = c.Search(new SearchRequest(vectors[550], 3) { Exact = true });
            Assert.Equal(3UL, hits[0].Point.Id.Number);
            Assert.Equal(hits.Count, hits.Select(h => h.Point.Id).Distinct().Count());
            // The score is the distance from the float32 query to the stored, rounded vector (0 for float32).
            var rounded = Expected(vectors[550]);
            var own = Math.Sqrt(vectors[550].Select((x, j) => ((double)x - rounded[j]) * ((double)x - rounded[j])).Sum());
            Assert.True(Math.Abs(hits[0].Score - own) < 1e-5, $"distance to its own vector {hits[0].Score}, expected {own} (rounding only)");
            Assert.True(hits[0].Score < (datatype == VectorDatatype.BFloat16 ? 0.05 : 0.01), $"distance to its own vector {hits[0].Score}");
            c.Compact();
            Assert.Equal(0, c.DeletedSlots);
            Assert.Equal(Expected(vectors[551]), Assert.Single(c.Get([PointId.Of(4)])).Vector);
            Assert.Equal(550, c.All().Count());
        }
    }

    [Fact]
    public async Task Writes_after_a_snapshot_and_a_reopen_survive_the_next_reopen()
    {
        await using (var store = await Stores.OpenAsync(_dir.Path))
        {
            var c = await store.CreateAsync("v", new CollectionConfig { Dimension = 2 });
            c.Upsert([new PointInput(PointId.Of(1), [1, 0], null)]);
            c.Snapshot();
        }
        await using (var store = await Stores.OpenAsync(_dir.Path))
        {
            store.Get("v").Upsert([new PointInput(PointId.Of(2), [0, 1], null)]);
            store.Get("v").Delete([PointId.Of(1)]);
        }
        await using (var store = await Stores.OpenAsync(_dir.Path))
        {
            Assert.Equal([2UL], store.Get("v").Scroll(null, null, 10).Points.Select(p => p.Id.Number));
        }
    }

    [Fact]
    public async Task Opening_a_store_removes_only_the_leftovers_of_an_interrupted_create_or_delete()
    {
        Directory.CreateDirectory(Path.Combine(_dir.Path, ".git"));
        Directory.CreateDirectory(Path.Combine(_dir.Path, ".half.creating"));
        Directory.CreateDirectory(Path.Combine(_dir.Path, ".gone.deleting"));
        await using var store = await Stores.OpenAsync(_dir.Path);
        Assert.True(Directory.Exists(Path.Combine(_dir.Path, ".git")));
        Assert.False(Directory.Exists(Path.Combine(_dir.Path, ".half.creating")));
        Assert.False(Directory.Exists(Path.Combine(_dir.Path, ".gone.deleting")));
        Assert.Empty(store.Names);
    }

    [Fact]
    public async Task A_torn_record_at_the_end_of_the_log_is_cut_off_and_the_rest_kept()
    {
        await using (var store = await Stores.OpenAsync(_dir.Path))
        {
            var c = await store.CreateAsync("v", new CollectionConfig { Dimension = 2 });
            c.Upsert([new PointInput(PointId.Of(1), [1, 0], null)]);
            c.Upsert([new PointInput(PointId.Of(2), [0, 1], null)]);
        }
        var log = Directory.GetFiles(Path.Combine(_dir.Path, "v", "wal"), "*.log").Single();
        var bytes = File.ReadAllBytes(log);
        File.WriteAllBytes(log, bytes[..^5]); // a crash in the middle of the second append
        await using (var store = await Stores.OpenAsync(_dir.Path))
        {
            var c = store.Get("v");
            Assert.Equal(1, c.Count);
            c.Upsert([new PointInput(PointId.Of(3), [1, 1], null)]);
        }
        await using (var store = await Stores.OpenAsync(_dir.Path))
        {
            Assert.Equal([1UL, 3UL], store.Get("v").Scroll(null, null, 10).Points.Select(p => p.Id.Number));
        }
    }

    [Fact]
    public async Task Compaction_reclaims_deleted_slots_and_search_still_finds_the_live_points()
    {
        var vectors = TestData.Latent(4000, 8, 4, seed: 2);
        await using var store = await Stores.OpenAsync(_dir.Path);
        var c = await store.CreateAsync("v", new CollectionConfig { Dimension = 8, Distance = Distance.Euclid });
        c.Upsert(TestData.Points(vectors));
        c.Delete([.. Enumerable.Range(0, 2000).Select(i => PointId.Of((ulong)i))]);
        Assert.Equal(2000, c.DeletedSlots);
        Assert.DoesNotContain(c.Search(new SearchRequest(vectors[10], 5)), h => h.Point.Id.Number < 2000);
        c.Compact();
        Assert.Equal(0, c.DeletedSlots);
        Assert.Equal(3000UL, c.Search(new SearchRequest(vectors[3000], 1))[0].Point.Id.Number);
        await store.DisposeAsync();
        await using var reopened = await Stores.OpenAsync(_dir.Path);
        Assert.Equal(2000, reopened.Get("v").Count);
        Assert.Equal(3000UL, reopened.Get("v").Search(new SearchRequest(vectors[3000], 1))[0].Point.Id.Number);
    }

    [Fact]
    public async Task Scroll_pages_in_id_order_with_uuids_after_numbers()
    {
        await using var store = await Stores.OpenAsync(_dir.Path);
        var c = await store.CreateAsync("v", new CollectionConfig { Dimension = 2 });
        var uuid = Guid.Parse("5c56c793-69f3-4fbf-87e6-c4bf54c28c26");
        c.Upsert([new PointInput(PointId.Of(uuid), [1, 1], null), .. Enumerable.Range(0, 5).Select(i => new PointInput(PointId.Of((ulong)(10 - i)), [1, 0], null))]);
        var (first, next) = c.Scroll(null, null, 4);
        Assert.Equal(["6", "7", "8", "9"], first.Select(p => p.Id.ToString()));
        var (second, end) = c.Scroll(null, next, 4);
        Assert.Equal(["10", uuid.ToString()], second.Select(p => p.Id.ToString()));
        Assert.Null(end);
    }
}
