using System.Text.Json;
using Kiln.Testing;

namespace Kiln.Cli.Tests;

/// <summary>A quickstart model package trained once for a test class with the real `kiln train`.</summary>
public sealed class TrainedPackage : IAsyncLifetime
{
    private readonly TempDir _dir = new("kiln-pkg");

    public string Directory => _dir.File("fraud");

    public static string Quickstart => Path.Combine(TestEnvironment.RepoRoot, "examples", "quickstart");

    public static string Transactions => Path.Combine(Quickstart, "transactions.csv");

    public async Task InitializeAsync()
    {
        var r = await KilnCli.RunAsync(["train", Path.Combine(Quickstart, "spec.yaml"), "--out", Directory], _dir.Path);
        Assert.True(r.ExitCode == 0, r.ToString());
    }

    public Task DisposeAsync()
    {
        _dir.Dispose();
        return Task.CompletedTask;
    }
}

/// <summary>Runs pipelines with the real binary and reads their runs back.</summary>
internal static class Pipelines
{
    public static async Task<Proc.Result> RunAsync(TempDir dir, string yaml, params string[] extra)
    {
        var file = dir.File($"p-{Guid.NewGuid():N}.yaml");
        await File.WriteAllTextAsync(file, yaml);
        return await KilnCli.RunAsync(["pipeline", "run", file, "--db", dir.File("kiln.db"), .. extra], dir.Path);
    }

    public static async Task<JsonElement> ShowAsync(string runId, string db, string cwd)
    {
        var r = await KilnCli.RunAsync(["pipeline", "show", runId, "--json", "--db", db], cwd);
        Assert.True(r.ExitCode == 0, r.ToString());
        return JsonDocument.Parse(r.StdOut).RootElement;
    }

    /// <summary>The tasks of the run whose id `kiln pipeline run` printed, by name.</summary>
    public static async Task<Dictionary<string, JsonElement>> TasksAsync(TempDir dir, Proc.Result run, string? db = null)
    {
        var id = run.StdOut.Trim().Split('\n')[0].Trim();
        var show = await ShowAsync(id, db ?? dir.File("kiln.db"), dir.Path);
        return show.GetProperty("tasks").EnumerateArray().ToDictionary(t => t.GetProperty("task").GetString()!, t => t);
    }

    public static string State(this JsonElement task) => task.GetProperty("state").GetString()!;

    public static string Output(this JsonElement task, string name) => task.GetProperty("outputs").GetProperty(name).GetString()!;

    public static string Error(this JsonElement task) => task.TryGetProperty("error", out var e) ? e.GetString() ?? "" : "";

    /// <summary>The quickstart data with three of its six inputs shifted far from training.</summary>
    public static async Task<string> DriftedAsync(TempDir dir)
    {
        var path = dir.File("drifted.csv");
        var r = await Proc.PythonAsync($$"""
            import pandas as pd
            d = pd.read_csv("{{TrainedPackage.Transactions}}")
            d["amount"] = d["amount"] * 3
            d["distance_from_home_km"] = d["distance_from_home_km"] * 4
            d["customer_age"] = d["customer_age"] + 25
            d.to_csv("{{path}}", index=False)
            """);
        Assert.True(r.ExitCode == 0, r.ToString());
        return path;
    }
}
