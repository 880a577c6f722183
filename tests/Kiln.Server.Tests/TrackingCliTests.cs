using System.Text.Json;
using Kiln.Testing;
using Kiln.Tracking;

namespace Kiln.Server.Tests;

/// <summary>kiln runs … and kiln models … as a user runs them: the real binary, embedded and through a server.</summary>
public sealed class TrackingCliTests(ServerFixture server) : IClassFixture<ServerFixture>
{
    private static async Task<(string Model, string[] RunIds)> SeedAsync(TrackingStores stores)
    {
        var client = new TrackingClient(stores);
        var model = $"cli-{Guid.NewGuid():N}"[..12];
        var ids = new List<string>();
        for (var i = 1; i <= 3; i++)
        {
            var run = await client.StartRunAsync("cli-experiment", $"fit-{i}");
            await run.LogParamsAsync([KeyValuePair.Create("trees", (i * 100).ToString(System.Globalization.CultureInfo.InvariantCulture))]);
            await run.LogMetricAsync("auc", 0.6 + (i * 0.1));
            await run.EndAsync();
            await client.RegisterModelAsync(model, $"runs:/{run.RunId}/model");
            ids.Add(run.RunId);
        }
        return (model, ids.ToArray());
    }

    private static async Task<Proc.Result> Kiln(string uri, params string[] args)
    {
        var r = await KilnCli.RunAsync([.. args, "--tracking-uri", uri], timeout: TimeSpan.FromMinutes(2));
        return r;
    }

    [Fact]
    public async Task Alias_set_history_and_rollback_embedded()
    {
        using var dir = new TempDir("kiln-cli");
        string model;
        string[] runs;
        await using (var stores = TrackingStores.Open(dir.Path)) (model, runs) = await SeedAsync(stores);

        var set1 = await Kiln(dir.Path, "models", "alias", "set", model, "production", "1");
        Assert.True(set1.ExitCode == 0, set1.ToString());
        Assert.Equal(0, (await Kiln(dir.Path, "models", "alias", "set", model, "production", "3")).ExitCode);
        var rollback = await Kiln(dir.Path, "models", "rollback", model, "production");
        Assert.True(rollback.ExitCode == 0, rollback.ToString());
        Assert.Equal("1", rollback.StdOut.Trim());

        var history = await Kiln(dir.Path, "models", "history", model, "--json");
        var events = JsonDocument.Parse(history.StdOut).RootElement.GetProperty("events").EnumerateArray()
            .Select(e => (e.GetProperty("action").GetString(), e.GetProperty("to_version").GetInt32())).ToList();
        Assert.Equal([("set", 1), ("set", 3), ("rollback", 1)], events);

        var show = await Kiln(dir.Path, "models", "show", model, "--json");
        var aliases = JsonDocument.Parse(show.StdOut).RootElement.GetProperty("registered_model").GetProperty("aliases");
        Assert.Equal("1", aliases[0].GetProperty("version").GetString());
        var versions = await Kiln(dir.Path, "models", "versions", model, "--json");
        Assert.Equal(3, JsonDocument.Parse(versions.StdOut).RootElement.GetProperty("model_versions").GetArrayLength());
        var list = await Kiln(dir.Path, "models", "list", "--json");
        Assert.Contains(model, list.StdOut, StringComparison.Ordinal);

        var again = await Kiln(dir.Path, "models", "rollback", model, "production");
        Assert.Equal(1, again.ExitCode);
        Assert.StartsWith("error: ", again.StdErr, StringComparison.Ordinal);
        Assert.Contains("no earlier version", again.StdErr, StringComparison.Ordinal);
        var missing = await Kiln(dir.Path, "models", "alias", "set", model, "production", "9");
        Assert.Equal(1, missing.ExitCode);
        Assert.Contains("version 9", missing.StdErr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Runs_list_show_compare_embedded_and_through_env()
    {
        using var dir = new TempDir("kiln-cli");
        string[] runs;
        await using (var stores = TrackingStores.Open(dir.Path)) (_, runs) = await SeedAsync(stores);

        var list = await KilnCli.RunAsync(["runs", "list", "--experiment", "cli-experiment", "--filter", "metrics.auc > 0.75", "--order-by", "metrics.auc ASC", "--json"],
            env: new Dictionary<string, string> { [TrackingStores.EnvironmentVariable] = dir.Path });
        Assert.True(list.ExitCode == 0, list.ToString());
        var names = JsonDocument.Parse(list.StdOut).RootElement.GetProperty("runs").EnumerateArray()
            .Select(r => r.GetProperty("info").GetProperty("run_name").GetString()).ToList();
        Assert.Equal(["fit-2", "fit-3"], names);

        var show = await Kiln(dir.Path, "runs", "show", runs[0], "--json");
        Assert.Equal("FINISHED", JsonDocument.Parse(show.StdOut).RootElement.GetProperty("run").GetProperty("info").GetProperty("status").GetString());
        var compare = await Kiln(dir.Path, "runs", "compare", runs[0], runs[2]);
        Assert.True(compare.ExitCode == 0, compare.ToString());
        Assert.Contains("params.trees", compare.StdErr, StringComparison.Ordinal);
        Assert.Contains("300", compare.StdErr, StringComparison.Ordinal);
        var badFilter = await Kiln(dir.Path, "runs", "list", "--filter", "metrics.auc >> 1");
        Assert.Equal(1, badFilter.ExitCode);
        Assert.Contains("invalid filter", badFilter.StdErr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Models_commands_through_a_server()
    {
        var (model, _) = await SeedAsync(server.Stores);
        var uri = server.Address.ToString();
        Assert.Equal(0, (await Kiln(uri, "models", "alias", "set", model, "challenger", "2")).ExitCode);
        Assert.Equal(0, (await Kiln(uri, "models", "alias", "set", model, "challenger", "3")).ExitCode);
        var rollback = await Kiln(uri, "models", "rollback", model, "challenger");
        Assert.True(rollback.ExitCode == 0, rollback.ToString());
        Assert.Equal(2, (await server.Stores.Registry.GetModelVersionByAliasAsync(model, "challenger")).Version);
        var history = await server.Stores.Registry.GetAliasHistoryAsync(model, "challenger");
        Assert.Equal(Environment.UserName, history[^1].UserId);
        var absent = await Kiln(uri, "models", "show", "no-such-model");
        Assert.Equal(1, absent.ExitCode);
        Assert.Contains("no-such-model", absent.StdErr, StringComparison.Ordinal);
    }
}
