using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Kiln.Testing;
using Xunit.Abstractions;

namespace Kiln.Vectors.Tests;

/// <summary>kill -9 of the real kiln server under a stream of upserts, deletes and snapshots.</summary>
public sealed class CrashTests(ITestOutputHelper output) : IDisposable
{
    private readonly TempDir _dir = new("kiln-vectors-crash");

    public void Dispose() => _dir.Dispose();

    private static float[] VectorOf(ulong id) => [.. Enumerable.Range(0, 8).Select(j => (float)((id * 7 + (ulong)j * 13) % 101))];

    [Fact]
    public async Task Kill_9_loses_no_acknowledged_write_and_resurrects_no_deleted_point()
    {
        var (server, http) = await StartAsync();
        var live = new HashSet<ulong>();
        var deleted = new HashSet<ulong>();
        var uncertain = new HashSet<ulong>();
        var gate = new object();
        var snapshots = 0;
        try
        {
            var (s, _) = await Send(http, HttpMethod.Put, "/collections/crash", """{"vectors": {"size": 8, "distance": "Euclid"}}""");
            Assert.Equal(HttpStatusCode.OK, s);
            using var stop = new CancellationTokenSource();
            var writers = Enumerable.Range(0, 3).Select(w => Task.Run(async () =>
            {
                var rng = new Random(w);
                var mine = new List<ulong>();
                ulong next = (ulong)w * 1_000_000;
                for (var op = 0; !stop.IsCancellationRequested; op++)
                {
                    List<ulong> ids;
                    bool upsert = mine.Count < 10 || rng.Next(3) > 0;
                    string path, json;
                    HttpMethod method;
                    if (upsert)
                    {
                        ids = [.. Enumerable.Range(0, 5).Select(_ => next++)];
                        method = HttpMethod.Put;
                        path = "/collections/crash/points";
                        json = new JsonObject
                        {
                            ["points"] = new JsonArray([.. ids.Select(id => (JsonNode)new JsonObject
                            {
                                ["id"] = id,
                                ["vector"] = new JsonArray([.. VectorOf(id).Select(x => (JsonNode)x)]),
                                ["payload"] = new JsonObject { ["writer"] = w },
                            })]),
                        }.ToJsonString();
                    }
                    else
                    {
                        ids = [mine[rng.Next(mine.Count)], mine[rng.Next(mine.Count)]];
                        ids = [.. ids.Distinct()];
                        method = HttpMethod.Post;
                        path = "/collections/crash/points/delete";
                        json = new JsonObject { ["points"] = new JsonArray([.. ids.Select(id => (JsonNode)id)]) }.ToJsonString();
                    }
                    lock (gate) uncertain.UnionWith(ids);
                    HttpStatusCode status;
                    try
                    {
                        (status, _) = await Send(http, method, path, json);
                    }
                    catch (HttpRequestException)
                    {
                        return; // the server is gone: this request's fate is unknown, its ids stay uncertain
                    }
                    Assert.Equal(HttpStatusCode.OK, status);
                    lock (gate)
                    {
                        uncertain.ExceptWith(ids);
                        if (upsert) { live.UnionWith(ids); mine.AddRange(ids); }
                        else { live.ExceptWith(ids); deleted.UnionWith(ids); mine.RemoveAll(ids.Contains); }
                    }
                    if (w == 0 && op % 40 == 39)
                    {
                        try
                        {
                            (status, _) = await Send(http, HttpMethod.Post, "/collections/crash/snapshots", null);
                            if (status == HttpStatusCode.OK) Interlocked.Increment(ref snapshots);
                        }
                        catch (HttpRequestException) { return; }
                    }
                }
            })).ToList();
            // At least 4 s of writes, and on a loaded machine until the stream is long enough to test (60 s at most).
            var started = DateTime.UtcNow;
            while (DateTime.UtcNow - started < TimeSpan.FromSeconds(60))
            {
                await Task.Delay(TimeSpan.FromMilliseconds(250));
                bool enough;
                lock (gate) enough = live.Count > 100 && deleted.Count > 20 && Volatile.Read(ref snapshots) > 0;
                if (enough && DateTime.UtcNow - started >= TimeSpan.FromSeconds(4)) break;
                if (writers.Any(t => t.IsCompleted)) break;
            }
            server.Kill(); // SIGKILL: no shutdown code runs
            await server.WaitForExitAsync();
            await Task.WhenAll(writers);
        }
        finally
        {
            if (!server.HasExited) server.Kill();
            http.Dispose();
        }
        output.WriteLine($"acknowledged live {live.Count}, deleted {deleted.Count}, in flight {uncertain.Count}, snapshots {snapshots}");
        Assert.True(live.Count > 50 && deleted.Count > 10 && snapshots > 0, "the stream was too short to test anything");

        var (restarted, http2) = await StartAsync();
        try
        {
            var expectLive = live.Except(uncertain).ToList();
            var expectGone = deleted.Except(uncertain).Except(live).ToList();
            foreach (var chunk in expectLive.Chunk(500))
            {
                var (_, body) = await Send(http2, HttpMethod.Post, "/collections/crash/points",
                    new JsonObject { ["ids"] = new JsonArray([.. chunk.Select(id => (JsonNode)id)]), ["with_vector"] = true }.ToJsonString());
                var found = body["result"]!.AsArray().ToDictionary(p => p!["id"]!.GetValue<ulong>(), p => p!["vector"]!.AsArray().Select(x => x!.GetValue<float>()).ToArray());
                foreach (var id in chunk)
                {
                    Assert.True(found.ContainsKey(id), $"acknowledged point {id} was lost");
                    Assert.Equal(VectorOf(id), found[id]);
                }
            }
            foreach (var chunk in expectGone.Chunk(500))
            {
                var (_, body) = await Send(http2, HttpMethod.Post, "/collections/crash/points",
                    new JsonObject { ["ids"] = new JsonArray([.. chunk.Select(id => (JsonNode)id)]) }.ToJsonString());
                Assert.Empty(body["result"]!.AsArray());
            }
            // Deleted points do not come back through search either.
            var (__, count) = await Send(http2, HttpMethod.Post, "/collections/crash/points/count", "{}");
            var n = count["result"]!["count"]!.GetValue<int>();
            Assert.InRange(n, expectLive.Count, expectLive.Count + uncertain.Count);
        }
        finally
        {
            restarted.Kill();
            await restarted.WaitForExitAsync();
            http2.Dispose();
        }
    }

    private async Task<(Process Server, HttpClient Http)> StartAsync()
    {
        var port = TestEnvironment.FreePort();
        var server = KilnCli.Start(["server", "--db", _dir.File("db"), "--vectors", _dir.File("vectors"), "--port", port.ToString(CultureInfo.InvariantCulture)], _dir.Path);
        var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(30) };
        var clock = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                using var r = await http.GetAsync("/collections");
                if (r.IsSuccessStatusCode) return (server, http);
            }
            catch (HttpRequestException) { }
            if (server.HasExited || clock.Elapsed > TimeSpan.FromSeconds(90))
            {
                if (!server.HasExited) server.Kill();
                throw new InvalidOperationException($"kiln server did not start (exit {(server.HasExited ? server.ExitCode : -1)})");
            }
            await Task.Delay(200);
        }
    }

    private static async Task<(HttpStatusCode, JsonNode)> Send(HttpClient http, HttpMethod method, string path, string? json)
    {
        using var request = new HttpRequestMessage(method, path);
        if (json is not null) request.Content = new StringContent(json, Encoding.UTF8, "application/json");
        using var response = await http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        return (response.StatusCode, JsonNode.Parse(text)!);
    }
}
