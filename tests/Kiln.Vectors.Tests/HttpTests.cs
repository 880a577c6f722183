using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Kiln.Testing;
using Kiln.Vectors.Http;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;

namespace Kiln.Vectors.Tests;

/// <summary>Qdrant's REST shapes over real Kestrel on a loopback port.</summary>
public sealed class HttpTests : IAsyncLifetime
{
    private readonly TempDir _dir = new("kiln-vectors-http");
    private WebApplication? _app;
    private readonly HttpClient _http = new();

    public async Task InitializeAsync()
    {
        var port = TestEnvironment.FreePort();
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls($"http://127.0.0.1:{port}");
        builder.Services.AddKilnVectors(o => { o.Directory = _dir.Path; o.Database = _dir.File("kiln.db"); });
        _app = builder.Build();
        _app.MapKilnVectorEndpoints();
        await _app.StartAsync();
        _http.BaseAddress = new Uri($"http://127.0.0.1:{port}");
    }

    public async Task DisposeAsync()
    {
        _http.Dispose();
        if (_app is not null) await _app.DisposeAsync();
        _dir.Dispose();
    }

    private async Task<(HttpStatusCode Status, JsonNode Body)> Send(HttpMethod method, string path, string? json = null)
    {
        using var request = new HttpRequestMessage(method, path);
        if (json is not null) request.Content = new StringContent(json, Encoding.UTF8, "application/json");
        using var response = await _http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        return (response.StatusCode, JsonNode.Parse(text)!);
    }

    private const string QuickstartPoints = """
        {"points": [
          {"id": 1, "vector": [0.05, 0.61, 0.76, 0.74], "payload": {"city": "Berlin"}},
          {"id": 2, "vector": [0.19, 0.81, 0.75, 0.11], "payload": {"city": "London"}},
          {"id": 3, "vector": [0.36, 0.55, 0.47, 0.94], "payload": {"city": "Moscow"}},
          {"id": 4, "vector": [0.18, 0.01, 0.85, 0.80], "payload": {"city": "New York"}},
          {"id": 5, "vector": [0.24, 0.18, 0.22, 0.44], "payload": {"city": "Beijing"}},
          {"id": 6, "vector": [0.35, 0.08, 0.11, 0.44], "payload": {"city": "Mumbai"}}
        ]}
        """;

    [Fact]
    public async Task Qdrant_quickstart_requests_work_unchanged()
    {
        var (status, body) = await Send(HttpMethod.Put, "/collections/test_collection", """{"vectors": {"size": 4, "distance": "Dot"}}""");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.True(body["result"]!.GetValue<bool>());
        Assert.Equal("ok", body["status"]!.GetValue<string>());

        (status, body) = await Send(HttpMethod.Put, "/collections/test_collection/points?wait=true", QuickstartPoints);
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("completed", body["result"]!["status"]!.GetValue<string>());

        // Expected ids and scores: numpy, x @ q over the six vectors, sorted descending
        // (4: 1.362, 1: 1.273, 3: 1.208, 2: 0.871), the same figures as Qdrant's quickstart shows.
        (status, body) = await Send(HttpMethod.Post, "/collections/test_collection/points/search",
            """{"vector": [0.2, 0.1, 0.9, 0.7], "limit": 3, "with_payload": true}""");
        Assert.Equal(HttpStatusCode.OK, status);
        var hits = body["result"]!.AsArray();
        Assert.Equal([4, 1, 3], hits.Select(h => h!["id"]!.GetValue<int>()));
        Assert.Equal([1.362, 1.273, 1.208], hits.Select(h => Math.Round(h!["score"]!.GetValue<double>(), 3)));
        Assert.Equal("New York", hits[0]!["payload"]!["city"]!.GetValue<string>());

        (status, body) = await Send(HttpMethod.Post, "/collections/test_collection/points/query",
            """{"query": [0.2, 0.1, 0.9, 0.7], "filter": {"must": [{"key": "city", "match": {"value": "London"}}]}, "with_payload": true, "limit": 3}""");
        Assert.Equal(HttpStatusCode.OK, status);
        var point = Assert.Single(body["result"]!["points"]!.AsArray());
        Assert.Equal(2, point!["id"]!.GetValue<int>());
        Assert.Equal(0.871, Math.Round(point["score"]!.GetValue<double>(), 3));

        (_, body) = await Send(HttpMethod.Post, "/collections/test_collection/points/search",
            """{"vector": [0.2, 0.1, 0.9, 0.7], "limit": 10, "score_threshold": 1.0, "with_vector": true}""");
        Assert.Equal(3, body["result"]!.AsArray().Count);
        Assert.Equal(4, body["result"]![0]!["vector"]!.AsArray().Count);
        Assert.Null(body["result"]![0]!["payload"]);

        (_, body) = await Send(HttpMethod.Get, "/collections/test_collection");
        Assert.Equal(6, body["result"]!["points_count"]!.GetValue<int>());
        Assert.Equal("Dot", body["result"]!["config"]!["params"]!["vectors"]!["distance"]!.GetValue<string>());

        (_, body) = await Send(HttpMethod.Get, "/collections");
        Assert.Equal("test_collection", body["result"]!["collections"]![0]!["name"]!.GetValue<string>());
    }

    [Fact]
    public async Task Search_batch_answers_each_search_as_its_own_request_would()
    {
        await Send(HttpMethod.Put, "/collections/test_collection", """{"vectors": {"size": 4, "distance": "Dot"}}""");
        await Send(HttpMethod.Put, "/collections/test_collection/points?wait=true", QuickstartPoints);

        // Qdrant's search/batch body. Expected ids and scores: numpy, x @ q over the six quickstart vectors sorted
        // descending (4: 1.362, 1: 1.273, 3: 1.208; the only London point, 2: 0.871).
        const string Searches = """
            [{"vector": [0.2, 0.1, 0.9, 0.7], "limit": 3, "with_payload": true},
             {"vector": [0.2, 0.1, 0.9, 0.7], "filter": {"must": [{"key": "city", "match": {"value": "London"}}]}, "limit": 3, "with_vector": true},
             {"vector": [0.2, 0.1, 0.9, 0.7], "limit": 2, "offset": 1}]
            """;
        var (status, body) = await Send(HttpMethod.Post, "/collections/test_collection/points/search/batch", $$"""{"searches": {{Searches}}}""");
        Assert.Equal(HttpStatusCode.OK, status);
        var lists = body["result"]!.AsArray();
        Assert.Equal(3, lists.Count);
        Assert.Equal([4, 1, 3], lists[0]!.AsArray().Select(h => h!["id"]!.GetValue<int>()));
        Assert.Equal([1.362, 1.273, 1.208], lists[0]!.AsArray().Select(h => Math.Round(h!["score"]!.GetValue<double>(), 3)));
        Assert.Equal("New York", lists[0]![0]!["payload"]!["city"]!.GetValue<string>());
        Assert.Null(lists[0]![0]!["vector"]);
        Assert.Equal([2], lists[1]!.AsArray().Select(h => h!["id"]!.GetValue<int>()));
        Assert.Equal(0.871, Math.Round(lists[1]![0]!["score"]!.GetValue<double>(), 3));
        Assert.Equal([0.19, 0.81, 0.75, 0.11], lists[1]![0]!["vector"]!.AsArray().Select(x => Math.Round(x!.GetValue<double>(), 2)));
        Assert.Null(lists[1]![0]!["payload"]);
        Assert.Equal([1, 3], lists[2]!.AsArray().Select(h => h!["id"]!.GetValue<int>()));

        // Each list is what the same search sent alone answers.
        var each = JsonNode.Parse(Searches)!.AsArray();
        for (var i = 0; i < each.Count; i++)
        {
            var (s, alone) = await Send(HttpMethod.Post, "/collections/test_collection/points/search", each[i]!.ToJsonString());
            Assert.Equal(HttpStatusCode.OK, s);
            Assert.Equal(alone["result"]!.ToJsonString(), lists[i]!.ToJsonString());
        }
    }

    [Fact]
    public async Task Points_get_scroll_count_and_delete_by_ids_and_by_filter()
    {
        await Send(HttpMethod.Put, "/collections/c", """{"vectors": {"size": 4, "distance": "Cosine"}}""");
        await Send(HttpMethod.Put, "/collections/c/points", QuickstartPoints);

        var (status, body) = await Send(HttpMethod.Get, "/collections/c/points/2");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("London", body["result"]!["payload"]!["city"]!.GetValue<string>());
        (status, _) = await Send(HttpMethod.Get, "/collections/c/points/77");
        Assert.Equal(HttpStatusCode.NotFound, status);

        (_, body) = await Send(HttpMethod.Post, "/collections/c/points", """{"ids": [1, 5, 99], "with_payload": ["city"]}""");
        Assert.Equal([1, 5], body["result"]!.AsArray().Select(p => p!["id"]!.GetValue<int>()));

        (_, body) = await Send(HttpMethod.Post, "/collections/c/points/scroll", """{"limit": 4}""");
        Assert.Equal([1, 2, 3, 4], body["result"]!["points"]!.AsArray().Select(p => p!["id"]!.GetValue<int>()));
        Assert.Equal(5, body["result"]!["next_page_offset"]!.GetValue<int>());
        (_, body) = await Send(HttpMethod.Post, "/collections/c/points/scroll", """{"limit": 4, "offset": 5}""");
        Assert.Equal([5, 6], body["result"]!["points"]!.AsArray().Select(p => p!["id"]!.GetValue<int>()));
        Assert.Null(body["result"]!["next_page_offset"]);

        (_, body) = await Send(HttpMethod.Post, "/collections/c/points/count",
            """{"filter": {"should": [{"key": "city", "match": {"any": ["Berlin", "London"]}}]}, "exact": true}""");
        Assert.Equal(2, body["result"]!["count"]!.GetValue<int>());

        await Send(HttpMethod.Post, "/collections/c/points/delete", """{"points": [1]}""");
        await Send(HttpMethod.Post, "/collections/c/points/delete", """{"filter": {"must": [{"key": "city", "match": {"value": "London"}}]}}""");
        (_, body) = await Send(HttpMethod.Post, "/collections/c/points/count", "{}");
        Assert.Equal(4, body["result"]!["count"]!.GetValue<int>());
        (_, body) = await Send(HttpMethod.Post, "/collections/c/points/search", """{"vector": [0.05, 0.61, 0.76, 0.74], "limit": 6}""");
        Assert.DoesNotContain(body["result"]!.AsArray(), h => h!["id"]!.GetValue<int>() is 1 or 2);

        (status, body) = await Send(HttpMethod.Delete, "/collections/c");
        Assert.Equal(HttpStatusCode.OK, status);
        (status, _) = await Send(HttpMethod.Post, "/collections/c/points/count", "{}");
        Assert.Equal(HttpStatusCode.NotFound, status);
    }

    [Fact]
    public async Task Full_text_index_in_qdrant_shape_changes_a_text_match_from_substring_to_words()
    {
        await Send(HttpMethod.Put, "/collections/t", """{"vectors": {"size": 2, "distance": "Dot"}}""");
        await Send(HttpMethod.Put, "/collections/t/points", """
            {"points": [{"id": 1, "vector": [1, 0], "payload": {"d": "Red apples and green pears"}},
                        {"id": 2, "vector": [0, 1], "payload": {"d": "a redapple"}},
                        {"id": 3, "vector": [1, 1], "payload": {"d": ["pears", "APPLES, red ones"]}},
                        {"id": 4, "vector": [1, 2], "payload": {"d": 12}}]}
            """);
        const string Filter = """{"filter": {"must": [{"key": "d", "match": {"text": "red apple"}}]}, "limit": 10}""";
        // No full-text index: a substring match, and no value holds "red apple" (point 2 has "redapple", no space).
        var (_, body) = await Send(HttpMethod.Post, "/collections/t/points/scroll", Filter);
        Assert.Empty(body["result"]!["points"]!.AsArray());
        (_, body) = await Send(HttpMethod.Post, "/collections/t/points/scroll", """{"filter": {"must": [{"key": "d", "match": {"text": "red"}}]}, "limit": 10}""");
        Assert.Equal([2, 3], body["result"]!["points"]!.AsArray().Select(p => p!["id"]!.GetValue<int>())); // "Red" is not "red"

        // Qdrant's full-text schema object: now every word of the query must be a word of one value, in any case.
        var (status, _) = await Send(HttpMethod.Put, "/collections/t/index",
            """{"field_name": "d", "field_schema": {"type": "text", "tokenizer": "word", "lowercase": true}}""");
        Assert.Equal(HttpStatusCode.OK, status);
        (_, body) = await Send(HttpMethod.Get, "/collections/t");
        Assert.Equal("text", body["result"]!["payload_schema"]!["d"]!["data_type"]!.GetValue<string>());
        (_, body) = await Send(HttpMethod.Post, "/collections/t/points/scroll", """{"filter": {"must": [{"key": "d", "match": {"text": "RED apples"}}]}, "limit": 10}""");
        Assert.Equal([1, 3], body["result"]!["points"]!.AsArray().Select(p => p!["id"]!.GetValue<int>()));
        (_, body) = await Send(HttpMethod.Post, "/collections/t/points/count", """{"filter": {"must": [{"key": "d", "match": {"text": "red"}}]}}""");
        Assert.Equal(2, body["result"]!["count"]!.GetValue<int>());
        (_, body) = await Send(HttpMethod.Post, "/collections/t/points/search",
            """{"vector": [0, 1], "filter": {"must_not": [{"key": "d", "match": {"text": "pears"}}]}, "limit": 10}""");
        Assert.Equal([4, 2], body["result"]!.AsArray().Select(p => p!["id"]!.GetValue<int>()));
    }

    [Fact]
    public async Task A_bfloat16_collection_stores_rounded_vectors_and_scores_hits_from_the_float32_query()
    {
        // bfloat16 is Kiln's extension of Qdrant's datatypes; full_scan_threshold 0 makes the search walk the graph.
        var (status, body) = await Send(HttpMethod.Put, "/collections/b",
            """{"vectors": {"size": 4, "distance": "Euclid", "datatype": "bfloat16"}, "hnsw_config": {"full_scan_threshold": 0}}""");
        Assert.Equal(HttpStatusCode.OK, status);
        (_, body) = await Send(HttpMethod.Get, "/collections/b");
        Assert.Equal("bfloat16", body["result"]!["config"]!["params"]!["vectors"]!["datatype"]!.GetValue<string>());
        (status, _) = await Send(HttpMethod.Put, "/collections/b/points?wait=true", QuickstartPoints);
        Assert.Equal(HttpStatusCode.OK, status);

        // Expected: each stored vector rounded to bfloat16 (to nearest, ties to even), each score the Euclidean distance
        // from the float32 query to it, in double precision here.
        var points = JsonNode.Parse(QuickstartPoints)!["points"]!.AsArray()
            .ToDictionary(p => p!["id"]!.GetValue<int>(), p => p!["vector"]!.AsArray().Select(x => TestData.BFloat16(x!.GetValue<float>())).ToArray());
        float[] query = [0.2f, 0.1f, 0.9f, 0.7f];
        var expected = points.Select(p => (Id: p.Key, Vector: p.Value, Distance: Math.Sqrt(p.Value.Select((x, j) => ((double)x - query[j]) * ((double)x - query[j])).Sum())))
            .OrderBy(p => p.Distance).Take(3).ToList();
        (status, body) = await Send(HttpMethod.Post, "/collections/b/points/search", """{"vector": [0.2, 0.1, 0.9, 0.7], "limit": 3, "with_vector": true}""");
        Assert.Equal(HttpStatusCode.OK, status);
        var hits = body["result"]!.AsArray();
        Assert.Equal(expected.Select(e => e.Id), hits.Select(h => h!["id"]!.GetValue<int>()));
        for (var i = 0; i < 3; i++)
        {
            Assert.Equal(expected[i].Distance, hits[i]!["score"]!.GetValue<double>(), 1e-5);
            Assert.Equal(expected[i].Vector, hits[i]!["vector"]!.AsArray().Select(x => x!.GetValue<float>()));
        }
        // The rounding is visible: 0.61 is not a bfloat16 value, its nearest is 0.609375.
        Assert.Equal(0.609375f, points[1][1]);

        // A component past bfloat16's largest finite value would be stored as infinity: refused, naming it.
        (status, body) = await Send(HttpMethod.Put, "/collections/b/points", """{"points": [{"id": 9, "vector": [1, 3.4e38, 0, 0]}]}""");
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Contains("points[0].vector[1]: a bfloat16 collection holds components within", body["status"]!["error"]!.GetValue<string>(), StringComparison.Ordinal);
        (status, _) = await Send(HttpMethod.Post, "/collections/b/points/search", """{"vector": [-3.4e38, 0, 0, 0], "limit": 3}""");
        Assert.Equal(HttpStatusCode.BadRequest, status);
        (_, body) = await Send(HttpMethod.Post, "/collections/b/points/count", "{}");
        Assert.Equal(6, body["result"]!["count"]!.GetValue<int>());
    }

    [Theory]
    [InlineData("PUT", "/collections/e/points", """{"points": [{"id": 1, "vector": [1, 2, 3]}]}""", 400, "points[0].vector: expected dim: 4, got 3")]
    [InlineData("PUT", "/collections/e/points", """{"points": [{"id": -1, "vector": [1, 2, 3, 4]}]}""", 400, "points[0].id")]
    [InlineData("PUT", "/collections/e/points", """{"points": [{"id": "not-a-uuid", "vector": [1, 2, 3, 4]}]}""", 400, "points[0].id")]
    [InlineData("PUT", "/collections/e/points", """{"points": [{"id": 1, "vector": [1, "x", 3, 4]}]}""", 400, "points[0].vector[1]")]
    [InlineData("PUT", "/collections/e/points", """{"points": [{"id": 1, "vector": [1, 1e39, 3, 4]}]}""", 400, "points[0].vector[1]")]
    [InlineData("PUT", "/collections/e/points", """{"points": [{"id": 1, "vector": [1, 2""", 400, "Format error in JSON body")]
    [InlineData("PUT", "/collections/nope/points", """{"points": []}""", 404, "Collection `nope` doesn't exist!")]
    [InlineData("POST", "/collections/e/points/search", """{"vector": [1, 2, 3, 4], "filter": {"must": [{"key": "a", "range": {"gt": "x"}}]}}""", 400, "filter.must[0].range.gt")]
    [InlineData("POST", "/collections/e/points/search", """{"vector": [1, 2, 3, 4], "filter": {"must_not": [{"key": "a", "match": {"except": "x"}}]}}""", 400, "filter.must_not[0].match.except: a list")]
    [InlineData("POST", "/collections/e/points/search", """{"vector": [1, 2, 3, 4], "filter": {"must": [{"key": "a", "match": {"text": ["x"]}}]}}""", 400, "filter.must[0].match.text: a string")]
    [InlineData("POST", "/collections/e/points/count", """{"filter": {"should": [{"key": "a", "match": {"any": [1.5, null]}}]}}""", 400, "filter.should[0].match.any[1]")]
    [InlineData("PUT", "/collections/e/index", """{"field_name": "a", "field_schema": "fulltext"}""", 400, "field_schema: unknown field schema 'fulltext'")]
    [InlineData("POST", "/collections/e/points/search", """{"vector": [1, 2, 3, 4], "limit": 0}""", 400, "limit")]
    [InlineData("POST", "/collections/e/points/search", """{"vector": [1, 2, 3, 4], "limit": "ten"}""", 400, "limit")]
    [InlineData("PUT", "/collections/e", """{"vectors": {"size": 4, "distance": "Dot"}}""", 400, "already exists")]
    [InlineData("POST", "/collections/e/points/search/batch", """{"searches": [{"vector": [1, 2, 3, 4]}, {"vector": [1, 2]}]}""", 400, "searches[1].vector: expected dim: 4, got 2")]
    [InlineData("POST", "/collections/e/points/search/batch", """{"searches": [{"vector": [1, 2, 3, 4], "limit": 0}]}""", 400, "searches[0].limit: must be at least 1")]
    [InlineData("POST", "/collections/e/points/search/batch", """{"searches": [{"vector": [1, 2, 3, 4], "filter": {"must": [{"key": "a", "range": {"gt": "soon"}}]}}]}""", 400, "searches[0].filter.must[0].range.gt")]
    [InlineData("POST", "/collections/e/points/search/batch", """{"searches": {"vector": [1, 2, 3, 4]}}""", 400, "searches: a list of searches")]
    [InlineData("POST", "/collections/nope/points/search/batch", """{"searches": [{"vector": [1, 2, 3, 4]}]}""", 404, "nope")]
    [InlineData("PUT", "/collections/f", """{"vectors": {"size": 4, "distance": "Manhattan2"}}""", 400, "vectors.distance")]
    [InlineData("PUT", "/collections/f", """{"vectors": {"size": 0, "distance": "Dot"}}""", 400, "vectors.size")]
    [InlineData("PUT", "/collections/f", """{"vectors": {"distance": "Dot"}}""", 400, "vectors.size")]
    [InlineData("PUT", "/collections/f", """{"vectors": {"size": 4, "distance": "Dot", "datatype": "bf16"}}""", 400, "vectors.datatype: unknown datatype 'bf16' (expected float32, float16 or bfloat16)")]
    public async Task Bad_input_gets_a_qdrant_error_naming_the_field_and_the_next_request_is_unaffected(
        string method, string path, string json, int expectedStatus, string expectedText)
    {
        await Send(HttpMethod.Put, "/collections/e", """{"vectors": {"size": 4, "distance": "Dot"}}""");
        await Send(HttpMethod.Put, "/collections/e/points", """{"points": [{"id": 7, "vector": [1, 2, 3, 4]}]}""");
        var (status, body) = await Send(new HttpMethod(method), path, json);
        Assert.Equal(expectedStatus, (int)status);
        Assert.Contains(expectedText, body["status"]!["error"]!.GetValue<string>(), StringComparison.Ordinal);

        (status, body) = await Send(HttpMethod.Post, "/collections/e/points/count", "{}");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(1, body["result"]!["count"]!.GetValue<int>());
        (status, _) = await Send(HttpMethod.Get, "/collections/f");
        Assert.Equal(HttpStatusCode.NotFound, status);
    }
}
