using System.Text.Json;
using Kiln.Features.Online;
using Kiln.Testing;

namespace Kiln.Features.Tests;

/// <summary>The real kiln binary on a copy of examples/features.</summary>
public sealed class FeatureCliTests : IDisposable
{
    private readonly TempDir _dir = new();

    public FeatureCliTests()
    {
        var example = Path.Combine(TestEnvironment.RepoRoot, "examples", "features");
        foreach (var file in Directory.EnumerateFiles(example, "*", SearchOption.AllDirectories))
        {
            var rel = Path.GetRelativePath(example, file);
            if (rel.StartsWith('.') || rel.Contains("/.", StringComparison.Ordinal)) continue;
            Directory.CreateDirectory(Path.GetDirectoryName(Path.Combine(_dir.Path, "repo", rel))!);
            File.Copy(file, Path.Combine(_dir.Path, "repo", rel));
        }
    }

    public void Dispose() => _dir.Dispose();

    private Task<Proc.Result> Kiln(params string[] args) => KilnCli.RunAsync(args, workingDirectory: _dir.Path);

    [Fact]
    public async Task Plan_apply_list_and_a_training_set_from_the_example()
    {
        var plan = await Kiln("features", "plan", "repo", "--json");
        Assert.True(plan.ExitCode == 0, plan.ToString());
        Assert.Contains("\"change\":\"added\"", plan.StdOut);

        var apply = await Kiln("features", "apply", "repo");
        Assert.True(apply.ExitCode == 0, apply.ToString());
        Assert.Equal("1", apply.StdOut.Trim());
        Assert.True(File.Exists(_dir.File(".kiln/kiln.db")));
        Assert.Equal("1", (await Kiln("features", "apply", "repo")).StdOut.Trim());

        var list = await Kiln("features", "list", "--json");
        Assert.True(list.ExitCode == 0, list.ToString());
        Assert.Contains("\"ride_acceptance_v1\"", list.StdOut);

        var hist = await Kiln("features", "get-historical", "--entities", "repo/entities.csv", "--service", "ride_acceptance_v1", "--out", "train.csv", "--full-names");
        Assert.True(hist.ExitCode == 0, hist.ToString());
        // Expected rows worked by hand from examples/features/data (ttl 2h for driver_hourly_stats, none for rider_stats):
        // 1001 @09:30 -> the 09:00 row re-written at 11:00 (latest created): 0.56; 1002 @11:00 -> last row 08:00 is 3h old: empty.
        Assert.Equal(
        [
            "driver_id,rider_id,event_timestamp,accepted,driver_hourly_stats__conv_rate,driver_hourly_stats__acc_rate,rider_stats__lifetime_rides,rider_stats__rating,rider_stats__tier",
            "1001,r-17,2024-05-01T09:30:00.000000Z,1,0.56,0.9,31,4.7,gold",
            "1001,r-42,2024-05-01T10:00:00.000000Z,0,0.61,0.88,2,5.0,bronze",
            "1002,r-17,2024-05-01T11:00:00.000000Z,1,,,31,4.7,gold",
            "1003,r-99,2024-05-01T11:00:00.000000Z,0,,,,,",
            "1001,r-17,2024-05-01T09:30:00.000000Z,1,0.56,0.9,31,4.7,gold",
        ], File.ReadAllLines(_dir.File("train.csv")));
    }

    [Fact]
    public async Task Materialize_then_incremental_fill_the_online_store()
    {
        var m = await Kiln("features", "materialize", "repo", "--start", "2024-05-01T00:00:00Z", "--end", "2024-05-01T10:30:00Z", "--json");
        Assert.True(m.ExitCode == 0, m.ToString());
        var view = JsonDocument.Parse(m.StdOut).RootElement.EnumerateArray().Single(v => v.GetProperty("view").GetString() == "driver_hourly_stats");
        Assert.Equal((2, 2), (view.GetProperty("entities").GetInt64(), view.GetProperty("written").GetInt64()));
        // Each fact once, for a human: one line per view on stderr, no table or TSV beside it.
        Assert.Single(m.StdErr.Split('\n'), l => l.StartsWith("driver_hourly_stats: 2 entities", StringComparison.Ordinal));

        await using (var store = await OnlineStores.OpenAsync(_dir.File(".kiln/online.db")))
        {
            var rec = (await store.ReadAsync("rides", "driver_hourly_stats", ["1002"]))[0];
            Assert.Contains("0.31", rec!.Value.Payload);
        }

        var inc = await Kiln("features", "materialize-incremental", "repo", "--end", "2024-05-01T12:00:00Z", "--views", "driver_hourly_stats");
        Assert.True(inc.ExitCode == 0, inc.ToString());
        Assert.Equal("", inc.StdOut); // human output unless --json
        Assert.Contains("driver_hourly_stats: 1 entities", inc.StdErr); // only 1002's 12:00 row is after 10:30
        await using (var store = await OnlineStores.OpenAsync(_dir.File(".kiln/online.db")))
        {
            var rec = (await store.ReadAsync("rides", "driver_hourly_stats", ["1002"]))[0];
            Assert.Contains("0.35", rec!.Value.Payload);
        }
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
    }

    [Fact]
    public async Task Mistakes_exit_1_with_one_line_naming_the_culprit()
    {
        var r = await Kiln("features", "get-historical", "--repo", "repo", "--entities", "repo/entities.csv", "--features", "driver_hourly_stats:nope", "--out", "x.csv");
        Assert.Equal(1, r.ExitCode);
        Assert.StartsWith("error: --features: feature view 'driver_hourly_stats' (feature_store.yaml:", r.StdErr);
        Assert.Contains("has no feature 'nope'", r.StdErr);

        r = await Kiln("features", "list");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("nothing applied yet", r.StdErr);

        File.WriteAllText(_dir.File("repo/data/rider_profile.csv"), "rider_id,ts,lifetime_rides,rating,tier\nr-1,2024-01-01,1,1.0,x\n");
        r = await Kiln("features", "apply", "repo");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("source 'rider_profile' (feature_store.yaml:", r.StdErr);
        Assert.Contains("no timestamp_field column 'event_timestamp'", r.StdErr);
        Assert.False(File.Exists(_dir.File(".kiln/kiln.db")) && (await Kiln("features", "list")).ExitCode == 0);

        r = await Kiln("features", "materialize", "repo", "--start", "yesterday", "--end", "now");
        Assert.Equal(1, r.ExitCode);
    }
}
