using System.Net;
using System.Text.Json.Nodes;
using Kiln.Features.Http;
using Kiln.Features.Offline;
using Kiln.Features.Online;
using Kiln.Features.Registry;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using static Kiln.Features.Tests.TestData;

namespace Kiln.Features.Tests;

/// <summary>Feast's HTTP surface on a real Kestrel socket, over applied definitions and a materialized SQLite online store.</summary>
public sealed class FeatureEndpointTests : IAsyncLifetime
{
    private readonly DriverRepo _repo = new(ttl: "0", extraYaml: """
        push_sources:
          - name: driver_push
            batch_source: driver_stats_source
        feature_views:
          - name: driver_live
            entities: [driver]
            source: driver_push
            ttl: 0
            schema:
              - {name: conv_rate, dtype: float64}
              - {name: trips, dtype: int64}
        """);
    private WebApplication _app = null!;
    private HttpClient _http = null!;

    public async Task InitializeAsync()
    {
        _repo.Stats("a.parquet", [1001L, T(0), null, 0.5, 7L], [1002L, T(5), null, null, 3L]);
        var registryPath = _repo.Dir.File(".kiln/kiln.db");
        var onlinePath = _repo.Dir.File(".kiln/online.db");
        var repo = _repo.Load();
        await using (var registry = await FeatureRegistry.OpenAsync(registryPath))
        {
            await registry.ApplyAsync(repo, _repo.Dir.Path);
            await using var store = await OnlineStores.OpenAsync(onlinePath);
            await Materializer.MaterializeAsync(repo, store, registry, ["driver_stats"], T(-60), T(60));
        }

        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Services.AddKilnFeatures(o =>
        {
            o.Registry = registryPath;
            o.OnlineStore = onlinePath;
        });
        _app = builder.Build();
        _app.MapKilnFeatureEndpoints();
        await _app.StartAsync();
        var address = _app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        _http = new HttpClient { BaseAddress = new Uri(address) };
    }

    public async Task DisposeAsync()
    {
        _http.Dispose();
        await _app.DisposeAsync();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        _repo.Dispose();
    }

    private async Task<(HttpStatusCode, JsonNode)> Post(string path, string json)
    {
        using var response = await _http.PostAsync(path, new StringContent(json, System.Text.Encoding.UTF8, "application/json"));
        var body = await response.Content.ReadAsStringAsync();
        return (response.StatusCode, JsonNode.Parse(body)!);
    }

    [Fact]
    public async Task Get_online_features_answers_in_feasts_column_major_shape()
    {
        var (status, body) = await Post("/get-online-features",
            """{"features": ["driver_stats:conv_rate", "driver_stats:trips"], "entities": {"driver_id": [1001, 1002, 9999]}}""");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("""["driver_id","conv_rate","trips"]""", body["metadata"]!["feature_names"]!.ToJsonString());
        var results = body["results"]!.AsArray();
        Assert.Equal("[1001,1002,9999]", results[0]!["values"]!.ToJsonString());
        Assert.Equal("""["PRESENT","PRESENT","PRESENT"]""", results[0]!["statuses"]!.ToJsonString());
        Assert.Equal("[0.5,null,null]", results[1]!["values"]!.ToJsonString());
        Assert.Equal("""["PRESENT","NULL_VALUE","NOT_FOUND"]""", results[1]!["statuses"]!.ToJsonString());
        Assert.Equal("""["2024-01-01T00:00:00Z","2024-01-01T00:05:00Z","1970-01-01T00:00:00Z"]""", results[1]!["event_timestamps"]!.ToJsonString());
        Assert.Equal("[7,3,null]", results[2]!["values"]!.ToJsonString());
    }

    [Fact]
    public async Task A_feature_service_and_full_names()
    {
        var (status, body) = await Post("/get-online-features",
            """{"feature_service": "driver_model", "entities": {"driver_id": [1001]}, "full_feature_names": true}""");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("""["driver_id","driver_stats__conv_rate","driver_stats__trips"]""", body["metadata"]!["feature_names"]!.ToJsonString());
    }

    [Fact]
    public async Task Client_mistakes_are_400_problem_details_naming_the_field()
    {
        var cases = new (string Body, string Expected)[]
        {
            ("""{"features": ["nope:x"], "entities": {"driver_id": [1]}}""", "unknown feature view 'nope'"),
            ("""{"features": ["driver_stats:speed"], "entities": {"driver_id": [1]}}""", "no feature 'speed'"),
            ("""{"features": ["driver_stats:trips"], "entities": {"rider_id": [1]}}""", "missing join key 'driver_id'"),
            ("""{"features": ["driver_stats:trips"], "entities": {"driver_id": ["abc"]}}""", "type mismatch for join key 'driver_id'"),
            ("""{"features": ["driver_stats:trips"]}""", "entities"),
            ("""{"features": ["driver_stats:trips"], "entities": {"driver_id": [1, 2], "x": [1]}}""", "has 1 values"),
            ("""{"feature_service": "nope", "entities": {"driver_id": [1]}}""", "unknown feature service 'nope'"),
            ("""{"features": [""", "request body"),
        };
        foreach (var (json, expected) in cases)
        {
            using var response = await _http.PostAsync("/get-online-features", new StringContent(json, System.Text.Encoding.UTF8, "application/json"));
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
            var problem = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
            Assert.Contains(expected, problem["detail"]!.GetValue<string>());
        }
    }

    [Fact]
    public async Task Push_writes_online_and_offline_and_older_pushes_do_not_overwrite()
    {
        var (status, body) = await Post("/push", """
            {"push_source_name": "driver_push", "to": "online_and_offline",
             "df": {"driver_id": [1001, 1003], "event_timestamp": ["2024-01-01T01:00:00Z", "2024-01-01T01:00:00"],
                    "conv_rate": [0.9, 0.1], "trips": [70, 1]}}
            """);
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(2, body["rows"]!.GetValue<int>());

        // An older push for 1001 is ignored online.
        (status, _) = await Post("/push", """
            {"feature_view": "driver_live", "to": "online",
             "df": {"driver_id": [1001], "event_timestamp": ["2024-01-01T00:30:00Z"], "conv_rate": [0.0], "trips": [0]}}
            """);
        Assert.Equal(HttpStatusCode.OK, status);
        (_, body) = await Post("/get-online-features", """{"features": ["driver_live:conv_rate"], "entities": {"driver_id": [1001, 1003]}}""");
        Assert.Equal("[0.9,0.1]", body["results"]![1]!["values"]!.ToJsonString());

        // The offline store sees the pushed rows too: a training set at 01:30 picks them up.
        var repo = _repo.Load();
        var frame = await HistoricalRetrieval.ToFrameAsync(repo, _repo.Entities((1001, T(90)), (1003, T(90))), repo.ResolveFeatures(["driver_stats:trips"], "test"));
        Assert.Equal(new object?[] { 70L, 1L }, frame.Rows.Select(r => r[2]));
    }

    [Fact]
    public async Task A_bad_push_writes_nothing()
    {
        var (status, body) = await Post("/push", """
            {"push_source_name": "driver_push", "to": "online_and_offline",
             "df": {"driver_id": [1005, 1006], "event_timestamp": ["2024-01-01T01:00:00Z", "2024-01-01T01:00:00Z"],
                    "conv_rate": [0.9, "high"], "trips": [70, 1]}}
            """);
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Contains("type mismatch in column 'conv_rate' row 1", body["detail"]!.GetValue<string>());
        (_, body) = await Post("/get-online-features", """{"features": ["driver_live:conv_rate"], "entities": {"driver_id": [1005]}}""");
        Assert.Equal("""["NOT_FOUND"]""", body["results"]![1]!["statuses"]!.ToJsonString());
        Assert.False(Directory.Exists(_repo.Dir.File("data/.kiln-pushed")));
    }
}
