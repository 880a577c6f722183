using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using Kiln.Features.Registry;
using Kiln.Testing;

namespace Kiln.Features.Tests;

/// <summary>
/// `kiln features … --feature-registry http://server` reaches the registry in a real `kiln server`'s database through
/// /api/v1/features, with the answers and refusals the embedded registry gives.
/// </summary>
public sealed class RemoteRegistryTests
{
    [Fact]
    public async Task Plan_apply_list_and_materialize_through_a_kiln_server_land_in_its_database()
    {
        using var world = new RideWorld(seed: 5);
        Task<Proc.Result> Kiln(params string[] args) => KilnCli.RunAsync(args, workingDirectory: world.Dir.Path);
        var port = TestEnvironment.FreePort();
        var url = $"http://127.0.0.1:{port.ToString(CultureInfo.InvariantCulture)}";
        using var server = KilnCli.Start(["server", "--db", "server.db", "--port", port.ToString(CultureInfo.InvariantCulture)], world.Dir.Path);
        try
        {
            await WaitForAsync(server, url);

            var plan = await Kiln("features", "plan", "repo", "--feature-registry", url, "--json");
            Assert.True(plan.ExitCode == 0, plan.ToString());
            using (var doc = JsonDocument.Parse(plan.StdOut))
                Assert.Contains(doc.RootElement.GetProperty("changes").EnumerateArray(), c => c.GetProperty("name").GetString() == "driver_stats" && c.GetProperty("change").GetString() == "added");

            var apply = await Kiln("features", "apply", "repo", "--feature-registry", url);
            Assert.True(apply.ExitCode == 0, apply.ToString());
            var again = await Kiln("features", "apply", "repo", "--feature-registry", url);
            Assert.True(again.ExitCode == 0, again.ToString());

            var list = await Kiln("features", "list", "--feature-registry", url, "--json");
            Assert.True(list.ExitCode == 0, list.ToString());
            using (var doc = JsonDocument.Parse(list.StdOut))
            {
                Assert.Equal(world.Project, doc.RootElement.GetProperty("project").GetString());
                Assert.Equal(1, doc.RootElement.GetProperty("version").GetInt32()); // the second apply changed nothing
                Assert.Contains(doc.RootElement.GetProperty("feature_views").EnumerateArray(), v => v.GetProperty("name").GetString() == "driver_stats");
            }

            var end = world.Now.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture);
            var start = world.Now.AddDays(-30).ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture);
            var materialize = await Kiln("features", "materialize", "repo", "--start", start, "--end", end, "--feature-registry", url, "--online-store", "online.db");
            Assert.True(materialize.ExitCode == 0, materialize.ToString());
            // Incremental starts where the server's history says the last run ended.
            var incremental = await Kiln("features", "materialize-incremental", "repo", "--end", "now", "--feature-registry", url, "--online-store", "online.db", "--json");
            Assert.True(incremental.ExitCode == 0, incremental.ToString());
            using (var doc = JsonDocument.Parse(incremental.StdOut))
            {
                var stats = doc.RootElement.EnumerateArray().Single(v => v.GetProperty("view").GetString() == "driver_stats");
                Assert.Equal(end, stats.GetProperty("start").GetDateTime().ToUniversalTime().ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture));
            }

            // What the server holds is what the embedded registry reads from its database.
            await using var local = await FeatureRegistry.OpenAsync(world.Dir.File("server.db"));
            Assert.IsType<FeatureRegistry>(local);
            var versions = await local.VersionsAsync(world.Project);
            Assert.Equal(1, Assert.Single(versions).Version);
            Assert.True(await local.LastMaterializedEndAsync(world.Project, "driver_stats") > world.Now);

            // The remote client's answers equal the embedded ones.
            await using var remote = await FeatureRegistry.OpenAsync(url);
            Assert.IsType<RemoteFeatureRegistry>(remote);
            var (version, repo) = (await remote.LatestAsync(world.Project)).GetValueOrDefault();
            Assert.Equal(1, version.Version);
            Assert.Equal(Path.GetFullPath(world.Dir.File("repo")), version.RepoPath);
            Assert.Equal(["driver_stats", .. repo.FeatureViews.Keys.Where(k => k != "driver_stats")], repo.FeatureViews.Keys.OrderBy(k => k != "driver_stats"));
            Assert.Null(await remote.VersionAsync(world.Project, 7));
            Assert.Null(await remote.LatestAsync("no_such_project"));
            var missing = await Assert.ThrowsAsync<Kiln.Core.KilnException>(() => remote.RequireLatestAsync("no_such_project"));
            Assert.Contains("project 'no_such_project' has not been applied", missing.Message);
        }
        finally
        {
            server.Kill(entireProcessTree: true);
            await server.WaitForExitAsync();
        }
    }

    [Fact]
    public async Task Client_mistakes_get_a_400_naming_the_fault_and_an_unreachable_server_one_line()
    {
        using var dir = new TempDir("kiln-remote-registry");
        var port = TestEnvironment.FreePort();
        var url = $"http://127.0.0.1:{port.ToString(CultureInfo.InvariantCulture)}";
        using var server = KilnCli.Start(["server", "--db", "server.db", "--port", port.ToString(CultureInfo.InvariantCulture)], dir.Path);
        try
        {
            await WaitForAsync(server, url);
            using var http = new HttpClient { BaseAddress = new Uri(url) };
            async Task<(HttpStatusCode Status, string Detail)> PostAsync(string path, string body)
            {
                using var r = await http.PostAsync(path, new StringContent(body, Encoding.UTF8, "application/json"));
                var text = await r.Content.ReadAsStringAsync();
                using var doc = JsonDocument.Parse(text);
                return (r.StatusCode, doc.RootElement.GetProperty("detail").GetString()!);
            }

            var (status, detail) = await PostAsync("/api/v1/features/apply", "{not json");
            Assert.Equal(HttpStatusCode.BadRequest, status);
            Assert.StartsWith("request body: ", detail, StringComparison.Ordinal);

            // A view naming an entity the repository does not define is refused as the YAML loader refuses it.
            const string Dangling = """
                {"repo_path": "/r", "repository": {"project": "p", "entities": [], "sources": [{"name": "s", "path": "/d.parquet", "timestamp_field": "ts", "defined_in": "f.yaml:3:5"}],
                 "push_sources": [], "feature_views": [{"name": "v", "entities": ["rider"], "source": "s", "schema": [], "ttl": "1.00:00:00", "online": true, "defined_in": "f.yaml:9:5"}],
                 "feature_services": []}}
                """;
            (status, detail) = await PostAsync("/api/v1/features/apply", Dangling);
            Assert.Equal(HttpStatusCode.BadRequest, status);
            Assert.Contains("feature view 'v': unknown entity 'rider'", detail);

            (status, detail) = await PostAsync("/api/v1/features/materializations", """{"project": "p", "view": "v", "start": "2024-02-01T00:00:00Z", "end": "2024-01-01T00:00:00Z", "rows": 1}""");
            Assert.Equal(HttpStatusCode.BadRequest, status);
            Assert.Contains("is before start", detail);

            using var last = await http.GetAsync("/api/v1/features/materializations/last?project=p");
            Assert.Equal(HttpStatusCode.BadRequest, last.StatusCode);
        }
        finally
        {
            server.Kill(entireProcessTree: true);
            await server.WaitForExitAsync();
        }

        // The server is gone: one line naming it, exit 1.
        var gone = await KilnCli.RunAsync(["features", "list", "--feature-registry", url], dir.Path);
        Assert.Equal(1, gone.ExitCode);
        Assert.Contains($"cannot reach the kiln server at {url}", gone.StdErr);
        Assert.DoesNotContain("   at ", gone.StdErr);
    }

    private static async Task WaitForAsync(System.Diagnostics.Process server, string url)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        var deadline = DateTime.UtcNow.AddSeconds(90);
        while (DateTime.UtcNow < deadline)
        {
            if (server.HasExited) throw new InvalidOperationException($"kiln server exited with {server.ExitCode}");
            try
            {
                using var r = await http.GetAsync(new Uri($"{url}/api/v1/features/versions"));
                if (r.IsSuccessStatusCode) return;
            }
            catch (HttpRequestException) { }
            catch (TaskCanceledException) { }
            await Task.Delay(200);
        }
        throw new TimeoutException("kiln server did not answer /api/v1/features/versions within 90 s");
    }
}
