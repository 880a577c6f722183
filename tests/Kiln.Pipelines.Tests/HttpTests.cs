using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Kiln.Core.Http;
using Kiln.Pipelines.Http;
using Kiln.Testing;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Kiln.Pipelines.Tests;

/// <summary>The pipeline API on Kestrel over a real loopback socket.</summary>
public sealed class HttpTests : IAsyncLifetime
{
    private readonly TempDir _dir = new("kiln-http");
    private WebApplication _app = null!;
    private HttpClient _http = null!;

    public async Task InitializeAsync()
    {
        var pipelines = Directory.CreateDirectory(_dir.File("pipelines")).FullName;
        File.WriteAllText(Path.Combine(pipelines, "retrain.yaml"), """
            name: retrain
            parameters:
              model: churn
              reason: manual
            triggers:
              - event: drift_alert
            tasks:
              train:
                kind: shell
                command: echo "retraining {{ params.model }} because {{ params.reason }}"
            """);
        File.WriteAllText(Path.Combine(pipelines, "slow.yaml"), """
            name: slow
            tasks:
              wait:
                kind: shell
                command: sleep 120
            """);
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        builder.Services.AddKilnPipelines(o =>
        {
            o.Store = _dir.File("kiln.db");
            o.PipelinesDirectory = pipelines;
            o.RunScheduler = false;
        });
        _app = builder.Build();
        _app.MapKilnPipelineEndpoints();
        await _app.StartAsync();
        var address = _app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        _http = new HttpClient { BaseAddress = new Uri(address), Timeout = TimeSpan.FromSeconds(60) };
    }

    public async Task DisposeAsync()
    {
        _http.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
        _dir.Dispose();
    }

    private async Task<JsonElement> JsonAsync(HttpResponseMessage r, HttpStatusCode expected)
    {
        var body = await r.Content.ReadAsStringAsync();
        Assert.True(r.StatusCode == expected, $"{(int)r.StatusCode}: {body}");
        return JsonDocument.Parse(body).RootElement;
    }

    private async Task<JsonElement> WaitForStateAsync(string runId, string state)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (true)
        {
            var run = await JsonAsync(await _http.GetAsync($"/api/v1/pipelines/runs/{runId}"), HttpStatusCode.OK);
            if (run.GetProperty("run").GetProperty("state").GetString() == state) return run;
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"run {runId} is {run.GetProperty("run").GetProperty("state")} not {state}");
            await Task.Delay(100);
        }
    }

    [Fact]
    public async Task An_inline_pipeline_starts_runs_and_its_state_outputs_and_logs_are_served()
    {
        var start = await _http.PostAsJsonAsync("/api/v1/pipelines/runs", new
        {
            definition = "name: inline\nparameters:\n  x: 1\ntasks:\n  a:\n    kind: shell\n    command: echo \"v={{ params.x }}\" >> $KILN_OUTPUT; echo hi\n  b:\n    kind: noop\n    depends_on: a\n",
            @params = new Dictionary<string, string> { ["x"] = "42" },
        });
        Assert.Equal("/api/v1/pipelines/runs", start.RequestMessage!.RequestUri!.AbsolutePath);
        var run = await JsonAsync(start, HttpStatusCode.Accepted);
        var runId = run.GetProperty("run_id").GetString()!;
        Assert.Equal("inline", run.GetProperty("pipeline").GetString());
        Assert.Equal("api", run.GetProperty("trigger").GetString());
        Assert.Equal("42", run.GetProperty("params").GetProperty("x").GetString());

        var done = await WaitForStateAsync(runId, "succeeded");
        var tasks = done.GetProperty("tasks").EnumerateArray().ToDictionary(t => t.GetProperty("task").GetString()!);
        Assert.Equal("42", tasks["a"].GetProperty("outputs").GetProperty("v").GetString());
        Assert.Equal("succeeded", tasks["b"].GetProperty("state").GetString());
        Assert.Equal(["a"], tasks["b"].GetProperty("depends_on").EnumerateArray().Select(x => x.GetString()));
        Assert.Equal(2, done.GetProperty("attempts").GetArrayLength());

        var logs = await JsonAsync(await _http.GetAsync($"/api/v1/pipelines/runs/{runId}/logs?task=a"), HttpStatusCode.OK);
        var line = Assert.Single(logs.GetProperty("logs").EnumerateArray());
        Assert.Equal("hi", line.GetProperty("line").GetString());
        Assert.Equal(line.GetProperty("id").GetInt64(), logs.GetProperty("next_after").GetInt64());

        var list = await JsonAsync(await _http.GetAsync("/api/v1/pipelines/runs?pipeline=inline&state=succeeded"), HttpStatusCode.OK);
        Assert.Equal(runId, Assert.Single(list.GetProperty("runs").EnumerateArray()).GetProperty("run_id").GetString());

        var catalog = await JsonAsync(await _http.GetAsync("/api/v1/pipelines"), HttpStatusCode.OK);
        Assert.Equal(["retrain", "slow"], catalog.GetProperty("pipelines").EnumerateArray().Select(p => p.GetProperty("name").GetString()));
        Assert.Equal(["drift_alert"], catalog.GetProperty("pipelines")[0].GetProperty("events").EnumerateArray().Select(e => e.GetString()));
    }

    [Fact]
    public async Task A_drift_event_starts_the_pipeline_that_names_it()
    {
        var r = await _http.PostAsJsonAsync("/api/v1/pipelines/events/drift_alert", new { payload = new Dictionary<string, string> { ["reason"] = "psi 0.4" } });
        var body = await JsonAsync(r, HttpStatusCode.Accepted);
        var run = Assert.Single(body.GetProperty("runs").EnumerateArray());
        Assert.Equal("retrain", run.GetProperty("pipeline").GetString());
        Assert.Equal("event:drift_alert", run.GetProperty("trigger").GetString());
        var runId = run.GetProperty("run_id").GetString()!;
        await WaitForStateAsync(runId, "succeeded");
        var logs = await JsonAsync(await _http.GetAsync($"/api/v1/pipelines/runs/{runId}/logs"), HttpStatusCode.OK);
        Assert.Equal("retraining churn because psi 0.4", logs.GetProperty("logs")[0].GetProperty("line").GetString());

        var none = await JsonAsync(await _http.PostAsync("/api/v1/pipelines/events/unheard_of", null), HttpStatusCode.Accepted);
        Assert.Equal(0, none.GetProperty("runs").GetArrayLength());
    }

    [Fact]
    public async Task A_running_pipeline_is_cancelled_through_the_api()
    {
        var run = await JsonAsync(await _http.PostAsJsonAsync("/api/v1/pipelines/runs", new { pipeline = "slow" }), HttpStatusCode.Accepted);
        var runId = run.GetProperty("run_id").GetString()!;
        await WaitForStateAsync(runId, "running");
        await JsonAsync(await _http.PostAsync($"/api/v1/pipelines/runs/{runId}/cancel", null), HttpStatusCode.Accepted);
        var done = await WaitForStateAsync(runId, "cancelled");
        Assert.Equal("cancelled", done.GetProperty("tasks")[0].GetProperty("state").GetString());
        var again = await JsonAsync(await _http.PostAsync($"/api/v1/pipelines/runs/{runId}/cancel", null), HttpStatusCode.Conflict);
        Assert.Contains("already finished (cancelled)", again.GetProperty("detail").GetString());
    }

    [Fact]
    public async Task Client_mistakes_get_problem_details_naming_the_fault()
    {
        var cycle = await _http.PostAsJsonAsync("/api/v1/pipelines/runs", new { definition = "name: c\ntasks:\n  a:\n    kind: noop\n    depends_on: a\n" });
        Assert.Equal("application/problem+json", cycle.Content.Headers.ContentType!.MediaType);
        var p = await JsonAsync(cycle, HttpStatusCode.UnprocessableEntity);
        Assert.Equal("definition:3:3: task 'a' depends on itself", p.GetProperty("detail").GetString());
        Assert.Equal(422, p.GetProperty("status").GetInt32());

        var badJson = await _http.PostAsync("/api/v1/pipelines/runs", new StringContent("{\"pipeline\": ", Encoding.UTF8, "application/json"));
        Assert.Contains("not a valid start request", (await JsonAsync(badJson, HttpStatusCode.BadRequest)).GetProperty("detail").GetString());

        var both = await _http.PostAsJsonAsync("/api/v1/pipelines/runs", new { pipeline = "slow", definition = "name: x" });
        Assert.Contains("exactly one of 'pipeline'", (await JsonAsync(both, HttpStatusCode.BadRequest)).GetProperty("detail").GetString());

        var unknown = await _http.PostAsJsonAsync("/api/v1/pipelines/runs", new { pipeline = "nope" });
        Assert.Equal("pipeline: no pipeline named 'nope' is loaded", (await JsonAsync(unknown, HttpStatusCode.NotFound)).GetProperty("detail").GetString());

        var badParam = await _http.PostAsJsonAsync("/api/v1/pipelines/runs", new { pipeline = "retrain", @params = new Dictionary<string, string> { ["modle"] = "x" } });
        Assert.Contains("unknown parameter 'modle'", (await JsonAsync(badParam, HttpStatusCode.UnprocessableEntity)).GetProperty("detail").GetString());

        var missing = await _http.GetAsync("/api/v1/pipelines/runs/does-not-exist");
        Assert.Equal("run_id: no pipeline run 'does-not-exist'", (await JsonAsync(missing, HttpStatusCode.NotFound)).GetProperty("detail").GetString());
        await JsonAsync(await _http.GetAsync("/api/v1/pipelines/runs/does-not-exist/logs"), HttpStatusCode.NotFound);
        await JsonAsync(await _http.PostAsync("/api/v1/pipelines/runs/does-not-exist/cancel", null), HttpStatusCode.NotFound);

        var badState = await _http.GetAsync("/api/v1/pipelines/runs?state=done");
        Assert.Contains("state: 'done' is not one of", (await JsonAsync(badState, HttpStatusCode.BadRequest)).GetProperty("detail").GetString());
    }

    [Fact]
    public async Task An_event_payload_with_numbers_booleans_and_lists_reaches_the_parameters()
    {
        // As monitoring posts a drift alert: only the fields named like parameters are taken, as text.
        var r = await _http.PostAsync("/api/v1/pipelines/events/drift_alert", new StringContent(
            """{"payload": {"model": "fraud", "reason": ["amount", "hour", 3], "drift_share": 0.5, "dataset_drift": true}}""", Encoding.UTF8, "application/json"));
        var run = (await JsonAsync(r, HttpStatusCode.Accepted)).GetProperty("runs")[0];
        Assert.Equal("fraud", run.GetProperty("params").GetProperty("model").GetString());
        Assert.Equal("amount,hour,3", run.GetProperty("params").GetProperty("reason").GetString());
        Assert.False(run.GetProperty("params").TryGetProperty("drift_share", out _));
        var done = await WaitForStateAsync(run.GetProperty("run_id").GetString()!, "succeeded");
        Assert.Equal("retraining fraud because amount,hour,3", done.GetProperty("tasks")[0].GetProperty("outputs").GetProperty("stdout").GetString());

        var typed = await _http.PostAsync("/api/v1/pipelines/runs", new StringContent(
            """{"pipeline": "retrain", "params": {"model": 7, "reason": false}}""", Encoding.UTF8, "application/json"));
        var started = await JsonAsync(typed, HttpStatusCode.Accepted);
        Assert.Equal("7", started.GetProperty("params").GetProperty("model").GetString());
        Assert.Equal("false", started.GetProperty("params").GetProperty("reason").GetString());
    }

    [Fact]
    public async Task The_client_starts_follows_and_cancels_runs_and_reports_refusals_as_their_detail()
    {
        using var client = new PipelineApiClient(_http.BaseAddress!, _http);
        var catalog = await client.ListPipelinesAsync();
        Assert.Equal(["retrain", "slow"], catalog.Pipelines.Select(p => p.Name).Order(StringComparer.Ordinal));

        var run = await client.StartRunAsync("retrain", null, new Dictionary<string, string> { ["model"] = "churn-v2" });
        Assert.Equal("retrain", run.Pipeline);
        await WaitForStateAsync(run.RunId, "succeeded");
        var detail = await client.GetRunAsync(run.RunId);
        Assert.Equal("succeeded", detail.Run.State);
        Assert.Equal("retraining churn-v2 because manual", detail.Tasks.Single().Outputs!["stdout"]);
        var logs = await client.GetLogsAsync(run.RunId, "train");
        Assert.Contains(logs.Logs, l => l.Line == "retraining churn-v2 because manual");
        Assert.Empty((await client.GetLogsAsync(run.RunId, "train", logs.NextAfter)).Logs);
        Assert.Contains((await client.ListRunsAsync("retrain", "succeeded", 10)).Runs, r => r.RunId == run.RunId);

        var inline = await client.StartRunAsync(null, "name: slow2\ntasks:\n  w:\n    kind: shell\n    command: sleep 120\n", null);
        await WaitForStateAsync(inline.RunId, "running");
        await client.CancelAsync(inline.RunId);
        await WaitForStateAsync(inline.RunId, "cancelled");

        var finished = await Assert.ThrowsAsync<KilnApiException>(() => client.CancelAsync(run.RunId));
        Assert.Equal(409, finished.Status);
        Assert.Equal($"run {run.RunId} already finished (succeeded)", finished.Message);
        var invalid = await Assert.ThrowsAsync<KilnApiException>(() => client.StartRunAsync(null, "name: c\ntasks:\n  a:\n    kind: noop\n    depends_on: a\n", null));
        Assert.Equal(422, invalid.Status);
        Assert.Equal("definition:3:3: task 'a' depends on itself", invalid.Message);

        using var elsewhere = new PipelineApiClient(new Uri(_http.BaseAddress!, "/not-a-kiln/"), _http);
        var notServed = await Assert.ThrowsAsync<KilnApiException>(() => elsewhere.ListRunsAsync());
        Assert.Contains("does not serve pipelines", notServed.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Runs_read_through_the_server_and_from_the_embedded_store_answer_alike()
    {
        using (var client = new PipelineApiClient(_http.BaseAddress!, _http))
        {
            var started = await client.StartRunAsync("retrain", null, new Dictionary<string, string> { ["model"] = "alike" });
            await WaitForStateAsync(started.RunId, "succeeded");
        }
        // One choice, from the location: the server's API, or the database file this process opens itself.
        await using var remote = await PipelineRuns.OpenAsync(_http.BaseAddress!.ToString(), Tasks.TaskKindRegistry.CreateDefault());
        await using var local = await PipelineRuns.OpenAsync(_dir.File("kiln.db"), Tasks.TaskKindRegistry.CreateDefault());
        Assert.NotNull(remote.Server);
        Assert.Null(local.Server);

        var remoteList = await remote.ListRunsAsync("retrain", State.RunState.Succeeded, 10);
        var localList = await local.ListRunsAsync("retrain", State.RunState.Succeeded, 10);
        Assert.NotEmpty(localList.Runs);
        Assert.Equal(Json(localList, PipelineJson.Default.RunListDto), Json(remoteList, PipelineJson.Default.RunListDto));

        var id = localList.Runs[0].RunId;
        Assert.Equal(Json(await local.GetRunAsync(id), PipelineJson.Default.RunDetailDto), Json(await remote.GetRunAsync(id), PipelineJson.Default.RunDetailDto));
        Assert.Equal(Json(await local.GetLogsAsync(id, "train", 0), PipelineJson.Default.LogListDto), Json(await remote.GetLogsAsync(id, "train", 0), PipelineJson.Default.LogListDto));

        // The same refusals, in the same words, both ways.
        foreach (var runs in new[] { local, remote })
        {
            var missing = await Assert.ThrowsAnyAsync<Kiln.Core.KilnException>(() => runs.GetRunAsync("nope"));
            Assert.Contains("no pipeline run 'nope'", missing.Message, StringComparison.Ordinal);
            var finished = await Assert.ThrowsAnyAsync<Kiln.Core.KilnException>(() => runs.CancelAsync(id));
            Assert.Equal($"run {id} already finished (succeeded)", finished.Message);
        }
    }

    private static string Json<T>(T value, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> type) => JsonSerializer.Serialize(value, type);
}
