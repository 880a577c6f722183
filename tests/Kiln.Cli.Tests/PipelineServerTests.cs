using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Kiln.Testing;

namespace Kiln.Cli.Tests;

/// <summary>
/// A real `kiln server --pipelines DIR` on a loopback port, with hello.yaml and retrain-on-drift.yaml
/// (its examples/quickstart defaults made absolute) in its catalog; its working directory and store are a temporary directory.
/// </summary>
public sealed class PipelineServer : IAsyncLifetime
{
    private Process? _process;

    public TempDir Dir { get; } = new("kiln-pipeline-server");

    public string Url { get; private set; } = "";

    public static string Examples => Path.Combine(TestEnvironment.RepoRoot, "examples", "pipelines");

    public async Task InitializeAsync()
    {
        var catalog = Directory.CreateDirectory(Dir.File("pipelines")).FullName;
        File.Copy(Path.Combine(Examples, "hello.yaml"), Path.Combine(catalog, "hello.yaml"));
        var retrain = (await File.ReadAllTextAsync(Path.Combine(Examples, "retrain-on-drift.yaml")))
            .Replace(" examples/quickstart/", $" {TrainedPackage.Quickstart}/", StringComparison.Ordinal);
        await File.WriteAllTextAsync(Path.Combine(catalog, "retrain-on-drift.yaml"), retrain);

        var port = TestEnvironment.FreePort();
        Url = $"http://127.0.0.1:{port.ToString(CultureInfo.InvariantCulture)}";
        _process = KilnCli.Start(["server", "--db", ".kiln", "--port", port.ToString(CultureInfo.InvariantCulture), "--pipelines", catalog], Dir.Path);
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (DateTime.UtcNow < deadline)
        {
            if (_process.HasExited) throw new InvalidOperationException($"kiln server exited with {_process.ExitCode}");
            try
            {
                using var r = await http.GetAsync(new Uri($"{Url}/api/v1/pipelines"));
                if (r.IsSuccessStatusCode) return;
            }
            catch (HttpRequestException) { }
            catch (TaskCanceledException) { }
            await Task.Delay(200);
        }
        throw new TimeoutException("kiln server did not answer /api/v1/pipelines within 60 s");
    }

    public Task<Proc.Result> KilnAsync(params string[] args) => KilnCli.RunAsync([.. args, "--db", Url], Dir.Path);

    public async Task DisposeAsync()
    {
        if (_process is { HasExited: false }) _process.Kill(entireProcessTree: true);
        if (_process is not null) await _process.WaitForExitAsync();
        _process?.Dispose();
        Dir.Dispose();
    }
}

/// <summary>`kiln pipeline ...` with an http:// tracking URI goes through the server's /api/v1/pipelines.</summary>
public class PipelineServerTests(PipelineServer server) : IClassFixture<PipelineServer>
{
    private async Task<JsonElement> ShowAsync(string runId)
    {
        var r = await server.KilnAsync("pipeline", "show", runId, "--json");
        Assert.True(r.ExitCode == 0, r.ToString());
        return JsonDocument.Parse(r.StdOut).RootElement;
    }

    private async Task<JsonElement> WaitDoneAsync(string runId)
    {
        var deadline = DateTime.UtcNow.AddMinutes(3);
        while (true)
        {
            var show = await ShowAsync(runId);
            if (show.GetProperty("run").GetProperty("state").GetString() is "succeeded" or "failed" or "cancelled") return show;
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"run {runId} did not finish: {show}");
            await Task.Delay(300);
        }
    }

    private static JsonElement TaskOf(JsonElement show, string name) =>
        show.GetProperty("tasks").EnumerateArray().Single(t => t.GetProperty("task").GetString() == name);

    [Fact]
    public async Task Run_show_logs_list_and_cancel_go_through_the_server()
    {
        // A catalog pipeline by name: the server runs it, the CLI follows its logs and exits as a local run would.
        var run = await server.KilnAsync("pipeline", "run", "hello", "--param", "greeting=hi", "--param", $"workdir={server.Dir.File("hello")}");
        Assert.True(run.ExitCode == 0, run.ToString());
        var id = run.StdOut.Trim();
        Assert.Contains("[report#1] 3 lines, 6 words", run.StdErr, StringComparison.Ordinal);
        Assert.Contains($"run {id} succeeded", run.StdErr, StringComparison.Ordinal);

        var show = await ShowAsync(id);
        Assert.Equal("api", show.GetProperty("run").GetProperty("trigger").GetString());
        Assert.Equal("hi", show.GetProperty("run").GetProperty("params").GetProperty("greeting").GetString());
        Assert.Equal("3 lines, 6 words", TaskOf(show, "report").GetProperty("outputs").GetProperty("stdout").GetString());
        Assert.Equal("hi world", (await File.ReadAllLinesAsync(server.Dir.File("hello/data.txt")))[0]); // it ran in the server

        var logs = await server.KilnAsync("pipeline", "logs", id, "report");
        Assert.True(logs.ExitCode == 0, logs.ToString());
        Assert.Equal("3 lines, 6 words", logs.StdOut.Trim());

        var list = await server.KilnAsync("pipeline", "list", "--json", "--pipeline", "hello");
        Assert.True(list.ExitCode == 0, list.ToString());
        Assert.Contains(JsonDocument.Parse(list.StdOut).RootElement.GetProperty("runs").EnumerateArray(), r => r.GetProperty("run_id").GetString() == id);

        // A local file is sent inline; `kiln pipeline cancel` from another process stops it, and the follower exits 130.
        var slow = server.Dir.File("slow.yaml");
        await File.WriteAllTextAsync(slow, """
            name: slow
            tasks:
              wait:
                kind: shell
                command: sleep 120
            """);
        using var follower = KilnCli.Start(["pipeline", "run", slow, "--db", server.Url], server.Dir.Path);
        string? slowId = null;
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (slowId is null && DateTime.UtcNow < deadline)
        {
            var running = await server.KilnAsync("pipeline", "list", "--json", "--pipeline", "slow", "--state", "running");
            slowId = JsonDocument.Parse(running.StdOut).RootElement.GetProperty("runs").EnumerateArray().Select(r => r.GetProperty("run_id").GetString()).FirstOrDefault();
            if (slowId is null) await Task.Delay(200);
        }
        Assert.NotNull(slowId);
        var cancel = await server.KilnAsync("pipeline", "cancel", slowId);
        Assert.True(cancel.ExitCode == 0, cancel.ToString());
        using (var wait = new CancellationTokenSource(TimeSpan.FromSeconds(60))) await follower.WaitForExitAsync(wait.Token);
        Assert.Equal(130, follower.ExitCode);
        var cancelled = await ShowAsync(slowId);
        Assert.Equal("cancelled", cancelled.GetProperty("run").GetProperty("state").GetString());
        Assert.Equal("cancelled", TaskOf(cancelled, "wait").GetProperty("state").GetString());

        var again = await server.KilnAsync("pipeline", "cancel", slowId);
        Assert.Equal(1, again.ExitCode);
        Assert.Contains($"run {slowId} already finished (cancelled)", again.StdErr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Mistakes_through_the_server_are_one_line_errors()
    {
        var unknown = await server.KilnAsync("pipeline", "show", "no-such-run");
        Assert.Equal(1, unknown.ExitCode);
        Assert.Contains("error: run_id: no pipeline run 'no-such-run'", unknown.StdErr, StringComparison.Ordinal);

        var notInCatalog = await server.KilnAsync("pipeline", "run", "nightly");
        Assert.Equal(1, notInCatalog.ExitCode);
        Assert.Contains("error: pipeline: no pipeline named 'nightly' is loaded", notInCatalog.StdErr, StringComparison.Ordinal);

        var cycle = server.Dir.File("cycle.yaml");
        await File.WriteAllTextAsync(cycle, "name: cycle\ntasks:\n  a: {kind: noop, depends_on: b}\n  b: {kind: noop, depends_on: a}\n");
        var refused = await server.KilnAsync("pipeline", "run", cycle);
        Assert.Equal(1, refused.ExitCode);
        Assert.Contains("cycle.yaml:", refused.StdErr, StringComparison.Ordinal);
        Assert.Contains("cycle", refused.StdErr, StringComparison.Ordinal);

        var badParam = await server.KilnAsync("pipeline", "run", "hello", "--param", "greting=hi");
        Assert.Equal(1, badParam.ExitCode);
        Assert.Contains("unknown parameter 'greting'", badParam.StdErr, StringComparison.Ordinal);

        var schedule = await server.KilnAsync("pipeline", "schedule", Path.Combine(PipelineServer.Examples, "nightly-scoring.yaml"));
        Assert.Equal(1, schedule.ExitCode);
        Assert.Contains("a kiln server schedules the cron triggers of the pipelines in its --pipelines directory", schedule.StdErr, StringComparison.Ordinal);

        var nobody = await KilnCli.RunAsync(["pipeline", "list", "--db", $"http://127.0.0.1:{TestEnvironment.FreePort().ToString(CultureInfo.InvariantCulture)}"]);
        Assert.Equal(1, nobody.ExitCode);
        Assert.Contains("error: cannot reach the kiln server at http://127.0.0.1:", nobody.StdErr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_drift_alert_event_starts_retrain_on_drift_with_its_payload_as_parameters_and_promotes_a_better_model()
    {
        // Production holds a deliberately weak model (one tree, two leaves), trained through the server.
        var weak = server.Dir.File("weak.yaml");
        var spec = (await File.ReadAllTextAsync(Path.Combine(TrainedPackage.Quickstart, "spec.yaml")))
            .Replace("data: transactions.csv", $"data: {TrainedPackage.Transactions}", StringComparison.Ordinal)
            .Replace("trees: 100", "trees: 1", StringComparison.Ordinal).Replace("leaves: 32", "leaves: 2", StringComparison.Ordinal);
        await File.WriteAllTextAsync(weak, spec);
        var first = await server.KilnAsync("pipeline", "run", Path.Combine(PipelineServer.Examples, "quickstart-loop.yaml"),
            "--param", $"spec={weak}", "--param", $"data={TrainedPackage.Transactions}", "--param", "min_metric=0.5");
        Assert.True(first.ExitCode == 0, first.ToString());

        // Monitoring's alert, as it would post it: numbers, booleans and lists beside the fields the pipeline takes.
        using var dir = new TempDir("kiln-alert");
        var drifted = await Pipelines.DriftedAsync(dir);
        var payload = JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["payload"] = new Dictionary<string, object>
            {
                ["model"] = "fraud",
                ["current"] = drifted,
                ["dataset_drift"] = true,
                ["drift_share"] = 0.5,
                ["drifted_features"] = new[] { "amount", "customer_age", "distance_from_home_km" },
            },
        });
        using var http = new HttpClient();
        using var response = await http.PostAsync(new Uri($"{server.Url}/api/v1/pipelines/events/drift_alert"), new StringContent(payload, Encoding.UTF8, "application/json"));
        var body = await response.Content.ReadAsStringAsync();
        Assert.True((int)response.StatusCode == 202, body);
        var started = Assert.Single(JsonDocument.Parse(body).RootElement.GetProperty("runs").EnumerateArray());
        Assert.Equal("retrain-on-drift", started.GetProperty("pipeline").GetString());
        Assert.Equal("event:drift_alert", started.GetProperty("trigger").GetString());
        var parameters = started.GetProperty("params");
        Assert.Equal("fraud", parameters.GetProperty("model").GetString());
        Assert.Equal(drifted, parameters.GetProperty("current").GetString());
        Assert.False(parameters.TryGetProperty("drift_share", out _)); // not a parameter of the pipeline

        var done = await WaitDoneAsync(started.GetProperty("run_id").GetString()!);
        Assert.True(done.GetProperty("run").GetProperty("state").GetString() == "succeeded", done.ToString());
        var check = TaskOf(done, "check").GetProperty("outputs");
        Assert.Equal("true", check.GetProperty("dataset_drift").GetString());
        Assert.Equal("1", check.GetProperty("model_version").GetString());
        var promote = TaskOf(done, "promote").GetProperty("outputs");
        Assert.Equal("1", promote.GetProperty("previous").GetString());
        Assert.Equal("2", promote.GetProperty("version").GetString());
    }

    [Fact]
    public async Task Sigterm_stops_the_server_and_cancels_the_runs_it_executes()
    {
        using var dir = new TempDir("kiln-sigterm");
        var catalog = Directory.CreateDirectory(dir.File("pipelines")).FullName;
        await File.WriteAllTextAsync(Path.Combine(catalog, "slow.yaml"), "name: slow\ntasks:\n  wait:\n    kind: shell\n    command: sleep 120\n");
        var port = TestEnvironment.FreePort().ToString(CultureInfo.InvariantCulture);
        using var process = KilnCli.Start(["server", "--db", ".kiln", "--port", port, "--pipelines", catalog], dir.Path);
        try
        {
            using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(5) };
            var deadline = DateTime.UtcNow.AddSeconds(60);
            string? id = null;
            while (id is null && DateTime.UtcNow < deadline && !process.HasExited)
            {
                try
                {
                    using var start = await http.PostAsync(new Uri("/api/v1/pipelines/runs", UriKind.Relative), new StringContent("""{"pipeline": "slow"}""", Encoding.UTF8, "application/json"));
                    if ((int)start.StatusCode == 202) id = JsonDocument.Parse(await start.Content.ReadAsStringAsync()).RootElement.GetProperty("run_id").GetString();
                }
                catch (HttpRequestException) { }
                catch (TaskCanceledException) { }
                if (id is null) await Task.Delay(200);
            }
            Assert.NotNull(id);
            while (DateTime.UtcNow < deadline)
            {
                var run = JsonDocument.Parse(await http.GetStringAsync(new Uri($"/api/v1/pipelines/runs/{id}", UriKind.Relative))).RootElement;
                if (TaskOf(run, "wait").GetProperty("state").GetString() == "running") break;
                await Task.Delay(200);
            }

            var kill = await Proc.RunAsync("kill", ["-TERM", process.Id.ToString(CultureInfo.InvariantCulture)]);
            Assert.Equal(0, kill.ExitCode);
            using (var wait = new CancellationTokenSource(TimeSpan.FromSeconds(30))) await process.WaitForExitAsync(wait.Token);
            Assert.Equal(0, process.ExitCode);

            var show = await KilnCli.RunAsync(["pipeline", "show", id, "--json", "--db", dir.File(".kiln")], dir.Path);
            Assert.True(show.ExitCode == 0, show.ToString());
            Assert.Equal("cancelled", JsonDocument.Parse(show.StdOut).RootElement.GetProperty("run").GetProperty("state").GetString());
        }
        finally
        {
            if (!process.HasExited) process.Kill(entireProcessTree: true);
        }
    }
}
