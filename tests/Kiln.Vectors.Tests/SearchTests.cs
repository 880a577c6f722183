using System.Globalization;
using System.Text.Json.Nodes;
using Kiln.Testing;
using Kiln.Vectors.Filtering;
using Xunit.Abstractions;

namespace Kiln.Vectors.Tests;

public sealed class SearchTests(ITestOutputHelper output) : IDisposable
{
    private readonly TempDir _dir = new("kiln-vectors");

    public void Dispose() => _dir.Dispose();

    [Theory]
    [InlineData(Distance.Euclid, true)]
    [InlineData(Distance.Cosine, true)]
    [InlineData(Distance.Dot, true)]
    [InlineData(Distance.Euclid, false)]
    [InlineData(Distance.Cosine, false)]
    [InlineData(Distance.Dot, false)]
    public async Task Exact_scan_and_graph_rank_and_score_as_numpy_does(Distance distance, bool exact)
    {
        var vectors = TestData.Latent(500, 12, 4, seed: 5);
        var query = TestData.Latent(1, 12, 4, seed: 6)[0];
        await using var store = await Stores.OpenAsync(_dir.Path);
        // Without a full-scan threshold the 500 points are searched through the graph, whose scores come from USearch's
        // distances (float32): they must match numpy's and the exact scan's.
        var c = await store.CreateAsync("v", new CollectionConfig { Dimension = 12, Distance = distance, FullScanThreshold = exact ? 1000 : 0 });
        c.Upsert(TestData.Points(vectors));
        var hits = c.Search(new SearchRequest(query, 5) { Exact = exact });
        Assert.Equal(exact ? SearchPath.ExactScan : SearchPath.Graph, c.LastSearchPath);
        if (!exact)
        {
            var scanned = c.Search(new SearchRequest(query, 5) { Exact = true });
            Assert.Equal(scanned.Select(h => h.Point.Id), hits.Select(h => h.Point.Id));
            for (var i = 0; i < 5; i++)
            {
                Assert.True(Math.Abs(hits[i].Score - scanned[i].Score) <= 1e-5 * Math.Max(1, Math.Abs(scanned[i].Score)),
                    $"score {i}: graph {hits[i].Score} vs exact scan {scanned[i].Score}");
                Assert.Equal(scanned[i].Point.Vector, hits[i].Point.Vector);
            }
        }

        // Oracle: numpy over the same vectors; cosine normalises both sides, Euclid is the L2 distance (ascending).
        File.WriteAllText(_dir.File("x.csv"), TestData.Csv(vectors));
        File.WriteAllText(_dir.File("q.csv"), TestData.Csv([query]));
        var script = $$"""
import numpy as np
x = np.loadtxt('{{_dir.File("x.csv")}}', delimiter=',', dtype=np.float32)
q = np.loadtxt('{{_dir.File("q.csv")}}', delimiter=',', dtype=np.float32)
kind = '{{distance}}'
if kind == 'Cosine':
    s = (x / np.linalg.norm(x, axis=1, keepdims=True)) @ (q / np.linalg.norm(q))
    order = np.argsort(-s)
elif kind == 'Dot':
    s = x @ q
    order = np.argsort(-s)
else:
    s = np.linalg.norm(x - q, axis=1)
    order = np.argsort(s)
print(' '.join(f'{i}:{s[i]:.6f}' for i in order[:5]))
""";
        var result = await Proc.PythonAsync(script);
        Assert.True(result.ExitCode == 0, result.ToString());
        var expected = result.StdOut.Trim().Split(' ').Select(t => t.Split(':')).ToList();
        Assert.Equal(expected.Select(e => ulong.Parse(e[0], CultureInfo.InvariantCulture)), hits.Select(h => h.Point.Id.Number));
        for (var i = 0; i < 5; i++)
        {
            var want = double.Parse(expected[i][1], CultureInfo.InvariantCulture);
            Assert.True(Math.Abs(hits[i].Score - want) <= 1e-3 * Math.Max(1, Math.Abs(want)), $"score {i}: {hits[i].Score} vs {want}");
        }
    }

    [Theory]
    [InlineData(VectorDatatype.Float32, Distance.Euclid)]
    [InlineData(VectorDatatype.Float16, Distance.Euclid)]
    [InlineData(VectorDatatype.Float16, Distance.Cosine)]
    [InlineData(VectorDatatype.BFloat16, Distance.Euclid)]
    [InlineData(VectorDatatype.BFloat16, Distance.Cosine)]
    [InlineData(VectorDatatype.BFloat16, Distance.Dot)]
    public async Task Graph_search_recall_at_10_against_the_exact_scan(VectorDatatype datatype, Distance distance)
    {
        var vectors = TestData.Latent(20_000, 32, 8, seed: 3);
        var queries = TestData.Latent(100, 32, 8, seed: 4);
        await using var store = await Stores.OpenAsync(_dir.Path);
        var c = await store.CreateAsync("v", new CollectionConfig { Dimension = 32, Distance = distance, Datatype = datatype, Hnsw = new HnswParameters(16, 100, 64) });
        c.Upsert(TestData.Points(vectors));
        var recall = Recall(c, queries, filter: null, SearchPath.Graph);
        output.WriteLine($"{datatype} {distance}: recall@10 = {recall:F4}");
        Assert.True(recall >= 0.95, $"recall@10 {recall}");
    }

    [Theory]
    [InlineData(VectorDatatype.Float16)]
    [InlineData(VectorDatatype.BFloat16)]
    public async Task A_compact_graph_whose_walk_reaches_the_neighbours_answers_what_the_exact_scan_answers(VectorDatatype datatype)
    {
        // The walk ranks by distances between rounded vectors; the hits are scored from the float32 query. With a candidate
        // list far longer than k (ef 256 on 5,000 points) the walk reaches the true neighbours, and the answer is the exact
        // scan's (same ids, same scores) even where the rounding alone would put the k-th and the next in the wrong order.
        await using var store = await Stores.OpenAsync(_dir.Path);
        var c = await store.CreateAsync("v", new CollectionConfig { Dimension = 32, Distance = Distance.Euclid, Datatype = datatype, FullScanThreshold = 0 });
        c.Upsert(TestData.Points(TestData.Latent(5_000, 32, 8, seed: 3)));
        c.SetSearchExpansion(256);
        var same = 0;
        var queries = TestData.Latent(100, 32, 8, seed: 4);
        foreach (var q in queries)
        {
            var graph = c.Search(new SearchRequest(q, 10) { WithVector = false });
            Assert.Equal(SearchPath.Graph, c.LastSearchPath);
            var exact = c.Search(new SearchRequest(q, 10) { WithVector = false, Exact = true });
            same += graph.Select(h => h.Point.Id).Intersect(exact.Select(h => h.Point.Id)).Count();
            foreach (var h in graph.Where(h => exact.Any(e => e.Point.Id == h.Point.Id)))
            {
                Assert.Equal(exact.First(e => e.Point.Id == h.Point.Id).Score, h.Score);
            }
        }
        output.WriteLine($"{datatype}: {same} of {10 * queries.Length} hits are the exact scan's");
        Assert.True(same >= 0.998 * 10 * queries.Length, $"{same} of {10 * queries.Length}");
    }

    [Theory]
    [InlineData(VectorDatatype.Float16)]
    [InlineData(VectorDatatype.BFloat16)]
    public async Task A_compact_graph_gives_back_each_component_rounded_and_scores_hits_from_those_values(VectorDatatype datatype)
    {
        // 37 components (16-wide blocks and a tail when the stored 2-byte values are widened) mixing signs, zeros, the
        // datatype's extremes and values far below 1; the oracle is .NET's own rounding: (float)(Half)x for float16,
        // round to nearest even on the upper 16 bits for bfloat16 (TestData.BFloat16).
        var largest = datatype == VectorDatatype.Float16 ? 65504f : 3.3895313892515355e38f;
        var rng = new Random(11);
        var vectors = Enumerable.Range(0, 40).Select(i => Enumerable.Range(0, 37).Select(j => (i + j) switch
        {
            0 => largest,
            1 => -largest,
            2 => 0f,
            3 => -0f,
            4 => 3.1e-5f,
            _ => (float)(TestData.Gaussian(rng) * Math.Pow(10, rng.Next(-3, 4))),
        }).ToArray()).ToArray();
        float Rounded(float x) => datatype == VectorDatatype.Float16 ? (float)(Half)x : TestData.BFloat16(x);
        await using var store = await Stores.OpenAsync(_dir.Path);
        var c = await store.CreateAsync("v", new CollectionConfig { Dimension = 37, Distance = Distance.Dot, Datatype = datatype, FullScanThreshold = 0 });
        c.Upsert(TestData.Points(vectors));
        var back = c.Get(Enumerable.Range(0, vectors.Length).Select(i => PointId.Of((ulong)i))).ToDictionary(p => p.Id.Number);
        for (var i = 0; i < vectors.Length; i++)
        {
            Assert.Equal([.. vectors[i].Select(Rounded)], back[(ulong)i].Vector);
        }
        // A graph search's scores are the float32 query's dot products with the rounded vectors (double precision here);
        // bfloat16's query is scaled down so that no product with its largest value overflows float32.
        var query = vectors[7].Select(x => datatype == VectorDatatype.BFloat16 ? x / 1e30f : x).ToArray();
        c.SetSearchExpansion(64);
        var hits = c.Search(new SearchRequest(query, 10) { WithVector = false });
        Assert.Equal(SearchPath.Graph, c.LastSearchPath);
        Assert.Equal(10, hits.Count);
        foreach (var h in hits)
        {
            var expected = vectors[h.Point.Id.Number].Select((x, j) => (double)Rounded(x) * query[j]).Sum();
            Assert.True(Math.Abs(h.Score - expected) <= 1e-4 * Math.Max(1, Math.Abs(expected)), $"point {h.Point.Id}: score {h.Score}, expected {expected}");
        }
    }

    [Theory]
    [InlineData(VectorDatatype.Float32, 1e38f, null)]
    [InlineData(VectorDatatype.Float16, 65504f, null)]
    [InlineData(VectorDatatype.Float16, 70000f, "v[1]: a float16 collection holds components within ±65504, got 70000")]
    [InlineData(VectorDatatype.BFloat16, 3.3895313892515355e38f, null)]
    [InlineData(VectorDatatype.BFloat16, -3.4e38f, "v[1]: a bfloat16 collection holds components within ±3.38953139E+38, got -3.4E+38")]
    public async Task A_component_past_the_datatypes_largest_value_is_refused_not_stored_as_infinity(VectorDatatype datatype, float component, string? error)
    {
        await using var store = await Stores.OpenAsync(_dir.Path);
        var c = await store.CreateAsync("v", new CollectionConfig { Dimension = 2, Distance = Distance.Euclid, Datatype = datatype });
        if (error is null)
        {
            c.Upsert([new PointInput(PointId.Of(1), [0, component], null)]);
            Assert.Equal(component, Assert.Single(c.Get([PointId.Of(1)])).Vector[1]);
            return;
        }
        var e = Assert.Throws<VectorInputException>(() => c.PrepareVector([0, component], "v"));
        Assert.Equal(error, e.Message);
        Assert.Throws<VectorInputException>(() => c.Upsert([new PointInput(PointId.Of(1), [0, component], null)]));
        Assert.Throws<VectorInputException>(() => c.Search(new SearchRequest([component, 0], 1)));
        Assert.Equal(0, c.Count);
    }

    [Fact]
    public async Task A_filter_matching_ten_percent_walks_the_graph_with_the_predicate_and_keeps_recall()
    {
        await using var store = await Stores.OpenAsync(_dir.Path);
        var c = await Filled(store, 20_000);
        var filter = PointFilter.Parse(JsonNode.Parse("""{"must":[{"key":"tag","match":{"value":"ten"}}]}"""))!;
        var recall = Recall(c, TestData.Latent(50, 32, 8, seed: 4), filter, SearchPath.FilteredGraph);
        output.WriteLine($"10% filter: recall@10 = {recall:F4}");
        Assert.True(recall >= 0.95, $"recall@10 {recall}");
    }

    [Fact]
    public async Task A_filter_matching_one_percent_scans_exactly_and_returns_k_results()
    {
        await using var store = await Stores.OpenAsync(_dir.Path);
        var c = await Filled(store, 20_000);
        var filter = PointFilter.Parse(JsonNode.Parse("""{"must":[{"key":"group","match":{"value":7}}]}"""))!;
        var recall = Recall(c, TestData.Latent(20, 32, 8, seed: 4), filter, SearchPath.ExactScan);
        Assert.Equal(1.0, recall);
        // Only 3 points match group 7 among ids < 300: k = 10 asks for more than exist, all 3 come back.
        var few = PointFilter.Parse(JsonNode.Parse("""{"must":[{"key":"group","match":{"value":7}},{"key":"price","range":{"lt":150}}]}"""))!;
        var hits = c.Search(new SearchRequest(new float[32], 10) { Filter = few });
        Assert.Equal([7UL, 107UL, 207UL], hits.Select(h => h.Point.Id.Number).Order());
    }

    [Theory]
    [InlineData(VectorDatatype.Float32)]
    [InlineData(VectorDatatype.Float16)]
    [InlineData(VectorDatatype.BFloat16)]
    public async Task A_batch_answers_each_search_as_a_call_of_its_own_would(VectorDatatype datatype)
    {
        await using var store = await Stores.OpenAsync(_dir.Path);
        var c = await store.CreateAsync("v", new CollectionConfig { Dimension = 32, Distance = Distance.Euclid, Datatype = datatype });
        c.Upsert(TestData.Points(TestData.Latent(5_000, 32, 8, seed: 3)));
        var queries = TestData.Latent(20, 32, 8, seed: 4);
        var tag = PointFilter.Parse(JsonNode.Parse("""{"must":[{"key":"tag","match":{"value":"ten"}}]}"""))!;
        var requests = queries.Select((q, i) => new SearchRequest(q, 5 + i % 3)
        {
            Filter = i % 4 == 1 ? tag : null,
            Offset = i % 5 == 2 ? 2 : 0,
            Exact = i % 7 == 3,
            WithVector = i % 2 == 0,
        }).ToList();
        var batch = c.SearchBatch(requests);
        Assert.Equal(requests.Count, batch.Count);
        for (var i = 0; i < requests.Count; i++)
        {
            var alone = c.Search(requests[i]);
            Assert.Equal(alone.Select(h => (h.Point.Id, h.Score)), batch[i].Select(h => (h.Point.Id, h.Score)));
            Assert.All(batch[i], h => Assert.Equal(requests[i].WithVector ? 32 : 0, h.Point.Vector.Length));
            Assert.Equal(requests[i].Limit, batch[i].Count);
        }
        // One bad search refuses the batch, naming it.
        var e = Assert.Throws<VectorInputException>(() => c.SearchBatch([requests[0], new SearchRequest(new float[3], 5)]));
        Assert.Equal("searches[1].vector: expected dim: 32, got 3", e.Message);
        e = Assert.Throws<VectorInputException>(() => c.SearchBatch([new SearchRequest(queries[0], 0)]));
        Assert.Equal("searches[0].limit: must be at least 1", e.Message);
    }

    [Fact]
    public async Task Sixteen_threads_searching_at_once_each_get_the_answer_a_lone_search_gets()
    {
        // USearch has one search context per core; more callers than that at once (as Kestrel makes them) must wait for
        // one, not fail or share it. Sixteen OS threads on this machine's cores are preempted in the middle of searches.
        await using var store = await Stores.OpenAsync(_dir.Path);
        var c = await store.CreateAsync("v", new CollectionConfig { Dimension = 32, Distance = Distance.Euclid, FullScanThreshold = 0 });
        c.Upsert(TestData.Points(TestData.Latent(5_000, 32, 8, seed: 3)));
        var queries = TestData.Latent(64, 32, 8, seed: 4);
        var expected = queries.Select(q => c.Search(new SearchRequest(q, 10)).Select(h => (h.Point.Id, h.Score)).ToList()).ToList();
        var failures = new System.Collections.Concurrent.ConcurrentQueue<string>();
        using var start = new Barrier(16);
        var threads = Enumerable.Range(0, 16).Select(t => new Thread(() =>
        {
            start.SignalAndWait();
            for (var round = 0; round < 10; round++)
            {
                for (var i = t % queries.Length; i < queries.Length; i += 4)
                {
                    try
                    {
                        var got = c.Search(new SearchRequest(queries[i], 10) { WithVector = false }).Select(h => (h.Point.Id, h.Score)).ToList();
                        if (!got.SequenceEqual(expected[i])) failures.Enqueue($"thread {t}, query {i}: other hits");
                    }
                    catch (Exception e)
                    {
                        failures.Enqueue($"thread {t}, query {i}: {e.Message}");
                    }
                }
            }
        })).ToList();
        threads.ForEach(th => th.Start());
        threads.ForEach(th => th.Join());
        Assert.Empty(failures);
        Assert.Equal(SearchPath.Graph, c.LastSearchPath);
    }

    [Fact]
    public async Task Score_threshold_and_offset_page_through_results()
    {
        await using var store = await Stores.OpenAsync(_dir.Path);
        var c = await store.CreateAsync("v", new CollectionConfig { Dimension = 2, Distance = Distance.Euclid });
        c.Upsert([.. Enumerable.Range(0, 10).Select(i => new PointInput(PointId.Of((ulong)i), [i, 0], null))]);
        var all = c.Search(new SearchRequest([0, 0], 10));
        Assert.Equal(Enumerable.Range(0, 10).Select(i => (ulong)i), all.Select(h => h.Point.Id.Number));
        var page = c.Search(new SearchRequest([0, 0], 3) { Offset = 3 });
        Assert.Equal([3UL, 4UL, 5UL], page.Select(h => h.Point.Id.Number));
        var near = c.Search(new SearchRequest([0, 0], 10) { ScoreThreshold = 2.5f });
        Assert.Equal([0UL, 1UL, 2UL], near.Select(h => h.Point.Id.Number));
    }

    [Fact]
    public async Task Bad_vectors_are_refused_naming_the_field_and_nothing_is_written()
    {
        await using var store = await Stores.OpenAsync(_dir.Path);
        var c = await store.CreateAsync("v", new CollectionConfig { Dimension = 3 });
        c.Upsert([new PointInput(PointId.Of(1), [1, 2, 3], null)]);
        var e = Assert.Throws<VectorInputException>(() => c.Upsert([new PointInput(PointId.Of(2), [1, 2, 3], null), new PointInput(PointId.Of(3), [1, 2], null)]));
        Assert.Contains("points[1].vector", e.Message, StringComparison.Ordinal);
        Assert.Contains("expected dim: 3, got 2", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<VectorInputException>(() => c.Upsert([new PointInput(PointId.Of(4), [1, float.NaN, 3], null)]));
        Assert.Contains("points[0].vector[1]", e.Message, StringComparison.Ordinal);
        Assert.Equal(1, c.Count);
        Assert.Throws<VectorInputException>(() => c.Search(new SearchRequest([1, 2], 3)));
        Assert.Single(c.Search(new SearchRequest([1, 2, 3], 3)));
        await Assert.ThrowsAsync<VectorConflictException>(() => store.CreateAsync("v", new CollectionConfig { Dimension = 3 }));
        Assert.Throws<VectorNotFoundException>(() => store.Get("nope"));
        await Assert.ThrowsAsync<VectorInputException>(() => store.CreateAsync("../x", new CollectionConfig { Dimension = 3 }));
    }

    [Fact]
    public async Task Payload_indexes_estimate_selectivity_and_both_paths_agree_with_a_brute_force_oracle()
    {
        await using (var store = await Stores.OpenAsync(_dir.Path))
        {
            var c = await Filled(store, 20_000);
            await c.CreatePayloadIndexAsync("tag", PayloadSchemaType.Keyword);
            await c.CreatePayloadIndexAsync("group", PayloadSchemaType.Integer);
            // Point 7 moves from group 7 to group 8, point 107 goes: the index follows both.
            c.Upsert([new PointInput(PointId.Of(7), TestData.Latent(1, 32, 8, seed: 40)[0], new JsonObject { ["group"] = 8, ["tag"] = "other" })]);
            c.Delete([PointId.Of(107)]);
        }
        await using (var store = await Stores.OpenAsync(_dir.Path))
        {
            // Reopened: the index is rebuilt from the snapshot and the log.
            var c = store.Get("v");
            var queries = TestData.Latent(20, 32, 8, seed: 4);
            var ten = PointFilter.Parse(JsonNode.Parse("""{"must":[{"key":"tag","match":{"value":"ten"}}]}"""))!;
            var one = PointFilter.Parse(JsonNode.Parse("""{"must":[{"key":"group","match":{"any":[7, 9]}}, {"key":"price","range":{"gte":100}}]}"""))!;
            var all = c.All().ToList();
            foreach (var (filter, path, minRecall) in new[] { (ten, SearchPath.FilteredGraph, 0.95), (one, SearchPath.ExactScan, 1.0) })
            {
                Assert.Equal(all.Count(p => filter.Matches(p.Id, p.Payload)), c.CountMatching(filter));
                double total = 0;
                foreach (var q in queries)
                {
                    var hits = c.Search(new SearchRequest(q, 10) { Filter = filter });
                    Assert.Equal(path, c.LastSearchPath);
                    Assert.Equal(SelectivityEstimate.PayloadIndex, c.LastEstimate);
                    Assert.All(hits, h => Assert.True(filter.Matches(h.Point.Id, h.Point.Payload)));
                    Assert.DoesNotContain(hits, h => h.Point.Id.Number is 7 or 107 && filter == one);
                    // Oracle: every matching point's Euclidean distance in double precision, best ten.
                    var exact = all.Where(p => filter.Matches(p.Id, p.Payload))
                        .OrderBy(p => Math.Sqrt(p.Vector.Select((x, i) => ((double)x - q[i]) * ((double)x - q[i])).Sum()))
                        .Take(10).Select(p => p.Id).ToHashSet();
                    Assert.Equal(10, hits.Count);
                    total += hits.Count(h => exact.Contains(h.Point.Id)) / 10.0;
                }
                output.WriteLine($"{path}: recall@10 = {total / queries.Length:F4}");
                Assert.True(total / queries.Length >= minRecall, $"{path}: recall@10 {total / queries.Length}");
            }
            // Without an index on the key the estimate falls back to sampling.
            var city = PointFilter.Parse(JsonNode.Parse("""{"must":[{"key":"address.city","match":{"value":"Berlin"}}]}"""))!;
            c.Search(new SearchRequest(queries[0], 10) { Filter = city });
            Assert.Equal(SelectivityEstimate.Sample, c.LastEstimate);
        }
    }

    private static async Task<VectorCollection> Filled(VectorStore store, int n)
    {
        var c = await store.CreateAsync("v", new CollectionConfig { Dimension = 32, Distance = Distance.Euclid });
        c.Upsert(TestData.Points(TestData.Latent(n, 32, 8, seed: 3)));
        return c;
    }

    /// <summary>Mean recall@10 of the default search against the exact scan (the oracle, itself checked against numpy above).</summary>
    private static double Recall(VectorCollection c, float[][] queries, PointFilter? filter, SearchPath expectedPath)
    {
        double total = 0;
        foreach (var q in queries)
        {
            var approx = c.Search(new SearchRequest(q, 10) { Filter = filter });
            Assert.Equal(expectedPath, c.LastSearchPath);
            Assert.Equal(10, approx.Count);
            if (filter is not null) Assert.All(approx, h => Assert.True(filter.Matches(h.Point.Id, h.Point.Payload)));
            var exact = c.Search(new SearchRequest(q, 10) { Filter = filter, Exact = true }).Select(h => h.Point.Id).ToHashSet();
            total += approx.Count(h => exact.Contains(h.Point.Id)) / 10.0;
        }
        return total / queries.Length;
    }
}
