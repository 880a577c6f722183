using System.Text.Json.Nodes;
using Kiln.Pipelines.Definition;
using Kiln.Pipelines.Execution;
using Kiln.Pipelines.State;
using Kiln.Pipelines.Tasks;

namespace Kiln.Pipelines.Tests;

public class ExecutionTests
{
    private static readonly RetryPolicy s_fastRetries = new(3, TimeSpan.FromMilliseconds(20), 2, TimeSpan.FromMilliseconds(100), 0.5);

    [Fact]
    public async Task Outputs_flow_downstream_through_references_and_the_context()
    {
        await using var f = await EngineFixture.CreateAsync();
        var def = f.Load("""
            name: flow
            parameters:
              n: 4
            tasks:
              make:
                kind: shell
                command: |
                  echo "value=$(( {{ params.n }} * 10 ))" >> "$KILN_OUTPUT"
                  echo made
              use:
                kind: shell
                depends_on: make
                command: echo "got {{ tasks.make.outputs.value }} in {{ run.id }}"
              tag:
                kind: noop
                depends_on: [use]
                outputs:
                  from_use: "{{ tasks.use.outputs.stdout }}"
            """);
        var (run, state) = await f.Engine.RunAsync(def, new Dictionary<string, string> { ["n"] = "7" });
        Assert.Equal(RunState.Succeeded, state);
        var tasks = (await f.Store.GetTasksAsync(run.RunId)).ToDictionary(t => t.Task);
        Assert.Equal("70", tasks["make"].Outputs!["value"]);
        Assert.Equal($"got 70 in {run.RunId}", tasks["use"].Outputs!["stdout"]);
        Assert.Equal($"got 70 in {run.RunId}", tasks["tag"].Outputs!["from_use"]);
        var logs = await f.Store.GetLogsAsync(run.RunId, "make");
        Assert.Equal("made", Assert.Single(logs).Line);
        Assert.Equal(RunState.Succeeded, (await f.Store.GetRunAsync(run.RunId))!.State);
    }

    [Fact]
    public async Task A_csharp_step_sees_its_upstream_outputs_and_parameters()
    {
        await using var f = await EngineFixture.CreateAsync();
        var def = new PipelineBuilder("code")
            .Parameter("base", "2")
            .Step("a", ctx => Outputs.Of(("x", ctx.Parameters["base"])))
            .Step("b", ctx => Outputs.Of(("y", (int.Parse(ctx.Upstream["a"]["x"], System.Globalization.CultureInfo.InvariantCulture) * 3).ToString(System.Globalization.CultureInfo.InvariantCulture))), dependsOn: ["a"])
            .Build(f.Kinds);
        var (run, state) = await f.Engine.RunAsync(def, new Dictionary<string, string> { ["base"] = "5" });
        Assert.Equal(RunState.Succeeded, state);
        var b = (await f.Store.GetTasksAsync(run.RunId)).Single(t => t.Task == "b");
        Assert.Equal("15", b.Outputs!["y"]);
    }

    [Fact]
    public async Task A_failing_task_is_retried_until_it_succeeds_and_each_attempt_is_recorded()
    {
        await using var f = await EngineFixture.CreateAsync();
        var calls = 0;
        var def = new PipelineBuilder("flaky")
            .Step("flaky", ctx =>
            {
                ctx.Log.Info($"attempt {ctx.Attempt}");
                return ++calls < 3 ? throw new TaskFailedException($"boom {calls}") : Outputs.Of(("ok", "yes"));
            }, retry: s_fastRetries)
            .Build(f.Kinds);
        var (run, state) = await f.Engine.RunAsync(def);
        Assert.Equal(RunState.Succeeded, state);
        Assert.Equal(3, calls);
        var attempts = await f.Store.GetAttemptsAsync(run.RunId, "flaky");
        Assert.Equal(["failed", "failed", "succeeded"], attempts.Select(a => a.State));
        Assert.StartsWith("boom 1 (retrying in ", attempts[0].Error);
        Assert.True(attempts[1].StartedAt >= attempts[0].FinishedAt);
        var logs = await f.Store.GetLogsAsync(run.RunId, "flaky");
        Assert.Equal(["attempt 1", "boom 1", "attempt 2", "boom 2", "attempt 3"], logs.Select(l => l.Line));
    }

    [Fact]
    public async Task A_task_that_keeps_failing_fails_after_its_last_attempt_and_downstream_is_upstream_failed()
    {
        await using var f = await EngineFixture.CreateAsync();
        var ranIndependent = false;
        var ranDownstream = false;
        var def = new PipelineBuilder("fails")
            .Step("bad", _ => throw new TaskFailedException("always"), retry: s_fastRetries with { MaxAttempts = 2 })
            .Step("after", _ => { ranDownstream = true; return Outputs.None; }, dependsOn: ["bad"])
            .Step("after_after", _ => { ranDownstream = true; return Outputs.None; }, dependsOn: ["after"])
            .Step("independent", _ => { ranIndependent = true; return Outputs.None; })
            .Build(f.Kinds);
        var (run, state) = await f.Engine.RunAsync(def);
        Assert.Equal(RunState.Failed, state);
        Assert.False(ranDownstream);
        Assert.True(ranIndependent);
        var tasks = (await f.Store.GetTasksAsync(run.RunId)).ToDictionary(t => t.Task);
        Assert.Equal(TaskState.Failed, tasks["bad"].State);
        Assert.Equal(2, tasks["bad"].Attempts);
        Assert.Equal("always", tasks["bad"].Error);
        Assert.Equal(TaskState.UpstreamFailed, tasks["after"].State);
        Assert.Equal(TaskState.UpstreamFailed, tasks["after_after"].State);
        Assert.Equal(TaskState.Succeeded, tasks["independent"].State);
        var stored = await f.Store.GetRunAsync(run.RunId);
        Assert.Equal("task bad: always", stored!.Error);
    }

    [Fact]
    public async Task A_shell_command_with_a_non_zero_exit_code_fails_with_its_stderr_logged()
    {
        await using var f = await EngineFixture.CreateAsync();
        var def = f.Load("""
            name: sh
            tasks:
              t:
                kind: shell
                command: echo "disk full" >&2; exit 3
            """);
        var (run, state) = await f.Engine.RunAsync(def);
        Assert.Equal(RunState.Failed, state);
        var t = Assert.Single(await f.Store.GetTasksAsync(run.RunId));
        Assert.Equal("command exited with code 3", t.Error);
        var log = await f.Store.GetLogsAsync(run.RunId, "t");
        Assert.Contains(log, l => l.Stream == "stderr" && l.Line == "disk full");
    }

    [Fact]
    public async Task A_task_past_its_timeout_fails_as_timed_out()
    {
        await using var f = await EngineFixture.CreateAsync();
        var def = f.Load("""
            name: slow
            tasks:
              slow:
                kind: shell
                command: sleep 30
                timeout: 300ms
              ignores_token:
                kind: noop
            """);
        var def2 = new PipelineBuilder("stubborn")
            .Step("stubborn", async _ => { await Task.Delay(Timeout.Infinite, CancellationToken.None); return new Dictionary<string, string>(); }, timeout: TimeSpan.FromMilliseconds(200))
            .Build(f.Kinds);
        var (run, state) = await f.Engine.RunAsync(def);
        Assert.Equal(RunState.Failed, state);
        var slow = (await f.Store.GetTasksAsync(run.RunId)).Single(t => t.Task == "slow");
        Assert.Equal(TaskState.Failed, slow.State);
        Assert.Equal("timed out after 300ms", slow.Error);
        Assert.True(slow.FinishedAt - slow.StartedAt < TimeSpan.FromSeconds(20), "the sleep was killed, not waited for");

        var (run2, state2) = await f.Engine.RunAsync(def2);
        Assert.Equal(RunState.Failed, state2);
        Assert.Equal("timed out after 200ms", Assert.Single(await f.Store.GetTasksAsync(run2.RunId)).Error);
    }

    [Fact]
    public async Task Cancelling_a_run_stops_its_running_task_and_cancels_the_rest()
    {
        await using var f = await EngineFixture.CreateAsync(new PipelineEngineOptions { HeartbeatInterval = TimeSpan.FromMilliseconds(100) });
        var started = new TaskCompletionSource();
        var def = new PipelineBuilder("cancel")
            .Step("wait", async ctx => { started.TrySetResult(); await Task.Delay(Timeout.Infinite, ctx.CancellationToken); return new Dictionary<string, string>(); })
            .Step("after", _ => Outputs.None, dependsOn: ["wait"])
            .Build(f.Kinds);
        var run = await f.Engine.StartAsync(def);
        await started.Task.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.True(await f.Engine.CancelAsync(run.RunId));
        Assert.Equal(RunState.Cancelled, await f.Engine.WaitAsync(run.RunId).WaitAsync(TimeSpan.FromSeconds(30)));
        var tasks = (await f.Store.GetTasksAsync(run.RunId)).ToDictionary(t => t.Task);
        Assert.Equal(TaskState.Cancelled, tasks["wait"].State);
        Assert.Equal(TaskState.Cancelled, tasks["after"].State);
        Assert.Equal(RunState.Cancelled, (await f.Store.GetRunAsync(run.RunId))!.State);
        Assert.False(await f.Engine.CancelAsync(run.RunId), "a finished run cannot be cancelled again");
    }

    [Fact]
    public async Task A_cancel_requested_through_the_store_reaches_the_executing_engine_at_its_heartbeat()
    {
        await using var f = await EngineFixture.CreateAsync(new PipelineEngineOptions { HeartbeatInterval = TimeSpan.FromMilliseconds(100) });
        var started = new TaskCompletionSource();
        var def = new PipelineBuilder("remote-cancel")
            .Step("wait", async ctx => { started.TrySetResult(); await Task.Delay(Timeout.Infinite, ctx.CancellationToken); return new Dictionary<string, string>(); })
            .Build(f.Kinds);
        var run = await f.Engine.StartAsync(def);
        await started.Task.WaitAsync(TimeSpan.FromSeconds(30));
        // Another process (kiln pipeline cancel) only writes the request.
        await f.Store.RequestCancelAsync(run.RunId);
        Assert.Equal(RunState.Cancelled, await f.Engine.WaitAsync(run.RunId).WaitAsync(TimeSpan.FromSeconds(30)));
    }

    [Fact]
    public async Task No_more_tasks_run_at_once_than_the_concurrency_limit()
    {
        await using var f = await EngineFixture.CreateAsync();
        var current = 0;
        var peak = 0;
        var b = new PipelineBuilder("wide").MaxConcurrency(3);
        for (var i = 0; i < 12; i++)
        {
            b.Step($"t{i}", async ctx =>
            {
                var now = Interlocked.Increment(ref current);
                int seen;
                while ((seen = Volatile.Read(ref peak)) < now && Interlocked.CompareExchange(ref peak, now, seen) != seen) { }
                await Task.Delay(50, ctx.CancellationToken);
                Interlocked.Decrement(ref current);
                return new Dictionary<string, string>();
            });
        }
        var (_, state) = await f.Engine.RunAsync(b.Build(f.Kinds));
        Assert.Equal(RunState.Succeeded, state);
        Assert.Equal(3, peak);
    }

    [Fact]
    public async Task A_skipped_task_skips_its_dependents_and_the_run_still_succeeds()
    {
        await using var f = await EngineFixture.CreateAsync();
        var registered = false;
        var def = new PipelineBuilder("gate")
            .Step("gate", _ => throw new TaskSkippedException("challenger auc 0.81 does not beat production 0.84"))
            .Step("register", _ => { registered = true; return Outputs.None; }, dependsOn: ["gate"])
            .Build(f.Kinds);
        var (run, state) = await f.Engine.RunAsync(def);
        Assert.Equal(RunState.Succeeded, state);
        Assert.False(registered);
        var tasks = (await f.Store.GetTasksAsync(run.RunId)).ToDictionary(t => t.Task);
        Assert.Equal(TaskState.Skipped, tasks["gate"].State);
        Assert.Equal("challenger auc 0.81 does not beat production 0.84", tasks["gate"].Error);
        Assert.Equal(TaskState.Skipped, tasks["register"].State);
    }

    [Fact]
    public async Task A_cached_task_reuses_its_outputs_until_its_inputs_change()
    {
        await using var f = await EngineFixture.CreateAsync();
        var counter = f.File("executions.txt");
        var yaml = $$$"""
            name: cached
            parameters:
              x: 1
            tasks:
              expensive:
                kind: shell
                cache: true
                command: echo run >> {{{counter}}}; echo "double=$(( {{ params.x }} * 2 ))" >> "$KILN_OUTPUT"
            """;
        var def = f.Load(yaml);
        var (r1, _) = await f.Engine.RunAsync(def, new Dictionary<string, string> { ["x"] = "5" });
        var (r2, _) = await f.Engine.RunAsync(def, new Dictionary<string, string> { ["x"] = "5" });
        var (r3, _) = await f.Engine.RunAsync(def, new Dictionary<string, string> { ["x"] = "6" });
        Assert.Equal(2, File.ReadAllLines(counter).Length);
        var t1 = Assert.Single(await f.Store.GetTasksAsync(r1.RunId));
        var t2 = Assert.Single(await f.Store.GetTasksAsync(r2.RunId));
        var t3 = Assert.Single(await f.Store.GetTasksAsync(r3.RunId));
        Assert.False(t1.Cached);
        Assert.True(t2.Cached);
        Assert.Equal("10", t2.Outputs!["double"]);
        Assert.Equal(t1.CacheKey, t2.CacheKey);
        Assert.False(t3.Cached);
        Assert.Equal("12", t3.Outputs!["double"]);
        Assert.NotEqual(t1.CacheKey, t3.CacheKey);

        // A changed definition (another command) is another cache key too.
        var changed = f.Load(yaml.Replace("echo run", "echo again", StringComparison.Ordinal));
        var (r4, _) = await f.Engine.RunAsync(changed, new Dictionary<string, string> { ["x"] = "5" });
        Assert.False(Assert.Single(await f.Store.GetTasksAsync(r4.RunId)).Cached);
    }

    [Fact]
    public async Task Resuming_a_failed_run_reruns_only_what_did_not_succeed()
    {
        await using var f = await EngineFixture.CreateAsync();
        var marker = f.File("fixed");
        var log = f.File("log.txt");
        var def = f.Load($$$"""
            name: fix-and-resume
            tasks:
              first:
                kind: shell
                command: echo first >> {{{log}}}
              second:
                kind: shell
                depends_on: first
                command: echo second >> {{{log}}}; test -f {{{marker}}}
              third:
                kind: shell
                depends_on: second
                command: echo third >> {{{log}}}
            """);
        var (run, state) = await f.Engine.RunAsync(def);
        Assert.Equal(RunState.Failed, state);
        File.WriteAllText(marker, "");
        Assert.Equal(RunState.Succeeded, await f.Engine.ResumeAsync(run.RunId));
        Assert.Equal(["first", "second", "second", "third"], File.ReadAllLines(log));
        var second = (await f.Store.GetAttemptsAsync(run.RunId, "second")).Select(a => a.State);
        Assert.Equal(["failed", "succeeded"], second);
    }

    [Fact]
    public async Task An_event_starts_the_pipelines_that_name_it_with_payload_parameters()
    {
        await using var f = await EngineFixture.CreateAsync();
        f.Engine.Catalog.Add(f.Load("""
            name: retrain
            parameters:
              model: churn
              reason: manual
            triggers:
              - event: drift_alert
            tasks:
              t:
                kind: shell
                command: echo "retraining {{ params.model }} because {{ params.reason }}"
            """));
        f.Engine.Catalog.Add(f.Load("""
            name: unrelated
            triggers:
              - event: something_else
            tasks:
              t:
                kind: noop
            """));
        var runs = await f.Engine.TriggerByEventAsync("drift_alert", new Dictionary<string, string> { ["reason"] = "psi=0.31", ["ignored"] = "x" });
        var run = Assert.Single(runs);
        Assert.Equal("retrain", run.Pipeline);
        Assert.Equal("event:drift_alert", run.Trigger);
        Assert.Equal(RunState.Succeeded, await f.Engine.WaitAsync(run.RunId));
        var logs = await f.Store.GetLogsAsync(run.RunId);
        Assert.Equal("retraining churn because psi=0.31", Assert.Single(logs).Line);
        Assert.Empty(await f.Engine.TriggerByEventAsync("nobody_listens"));
    }

    [Fact]
    public async Task A_run_abandoned_in_this_store_is_recovered_after_its_lease_expires_without_rerunning_succeeded_tasks()
    {
        // The in-process half of crash recovery (the CLI test kills a real process): an engine "dies"
        // by never finishing; a second engine finds the expired lease and takes over.
        await using var f = await EngineFixture.CreateAsync();
        var def = new PipelineBuilder("abandoned").Task("a", "noop").Task("b", "noop", dependsOn: ["a"]).Build(f.Kinds);
        var run = await f.Engine.CreateRunAsync(def);
        var past = DateTimeOffset.UtcNow - TimeSpan.FromMinutes(5);
        Assert.True(await f.Store.TryAcquireLeaseAsync(run.RunId, "999999@elsewhere/dead", past, past + TimeSpan.FromSeconds(30)));
        await f.Store.SetRunStateAsync(run.RunId, RunState.Running, past);
        await f.Store.StartAttemptAsync(run.RunId, "a", 1, past, "999999@elsewhere/dead");
        await f.Store.EndAttemptAsync(new AttemptEnd { RunId = run.RunId, Task = "a", Attempt = 1, AttemptState = "succeeded", TaskState = TaskState.Succeeded, At = past, Outputs = new Dictionary<string, string> { ["k"] = "v" } });
        await f.Store.StartAttemptAsync(run.RunId, "b", 1, past, "999999@elsewhere/dead");

        f.Engine.Catalog.Add(def);
        var recovered = await f.Engine.RecoverAsync();
        Assert.Equal([run.RunId], recovered);
        Assert.Equal(RunState.Succeeded, await f.Engine.WaitAsync(run.RunId));
        var attempts = await f.Store.GetAttemptsAsync(run.RunId);
        Assert.Equal(["a#1 succeeded", "b#1 interrupted", "b#2 succeeded"], attempts.Select(a => $"{a.Task}#{a.Attempt} {a.State}").Order());
        Assert.Contains("999999@elsewhere/dead", attempts.Single(a => a.State == "interrupted").Error);
    }

    [Fact]
    public async Task A_run_held_by_a_live_lease_is_not_taken_over()
    {
        await using var f = await EngineFixture.CreateAsync();
        var def = new PipelineBuilder("held").Task("a", "noop").Build(f.Kinds);
        var run = await f.Engine.CreateRunAsync(def);
        var now = DateTimeOffset.UtcNow;
        Assert.True(await f.Store.TryAcquireLeaseAsync(run.RunId, "1@otherhost/live", now, now + TimeSpan.FromMinutes(5)));
        await f.Store.SetRunStateAsync(run.RunId, RunState.Running, now);
        var e = await Assert.ThrowsAsync<Kiln.Core.KilnException>(() => f.Engine.ResumeAsync(run.RunId, def));
        Assert.Contains("still being executed by 1@otherhost/live", e.Message);
        Assert.Empty(await f.Engine.RecoverAsync());
    }

    [Fact]
    public async Task The_state_history_of_a_run_is_observable_in_order()
    {
        await using var f = await EngineFixture.CreateAsync();
        var seen = new List<string>();
        f.Engine.TaskStateChanged += c => { lock (seen) seen.Add($"{c.Task}:{c.State.Name()}"); };
        var calls = 0;
        var def = new PipelineBuilder("history")
            .Step("a", _ => ++calls == 1 ? throw new TaskFailedException("once") : Outputs.None, retry: s_fastRetries)
            .Step("b", _ => Outputs.None, dependsOn: ["a"])
            .Build(f.Kinds);
        await f.Engine.RunAsync(def);
        Assert.Equal(["a:running", "a:retrying", "a:running", "a:succeeded", "b:running", "b:succeeded"], seen);
    }

    [Fact]
    public async Task Task_config_with_json_values_reaches_the_kind_resolved()
    {
        await using var f = await EngineFixture.CreateAsync();
        JsonObject? seen = null;
        var def = new PipelineBuilder("cfg")
            .Parameter("metric", "auc")
            .Step("s", ctx => { seen = ctx.Config; return Outputs.None; }, config: new JsonObject { ["thresholds"] = new JsonObject { ["name"] = "{{ params.metric }}", ["min"] = 0.8 } })
            .Build(f.Kinds);
        await f.Engine.RunAsync(def);
        Assert.Equal("{\"thresholds\":{\"name\":\"auc\",\"min\":0.8}}", seen!.ToJsonString());
    }
}
