using System.CommandLine;
using System.Text.Json;
using Kiln.Core;
using Kiln.Core.Http;
using Kiln.Pipelines;
using Kiln.Pipelines.Definition;
using Kiln.Pipelines.Execution;
using Kiln.Pipelines.Http;
using Kiln.Pipelines.Scheduling;
using Kiln.Pipelines.State;
using Kiln.Pipelines.Tasks;
using Kiln.Server.Composition;
using Kiln.Workers.Pipelines;
using Spectre.Console;

namespace Kiln.Cli.Commands;

/// <summary><c>kiln pipeline run|list|show|logs|cancel|resume|recover|schedule|validate</c>.</summary>
internal static class PipelineCommands
{
    private static readonly Option<string?> Db = new("--db", "--tracking-uri")
    {
        Description = "The pipeline store (docs/cli.md#locations): a directory (./.kiln), a *.db file, sqlite:///FILE, a postgresql:// URI, or a kiln server's http(s):// URL (commands then go through its API). Default: $KILN_TRACKING_URI or ./.kiln/kiln.db",
        Recursive = true,
    };

    private static readonly Option<bool> Json = new("--json") { Description = "Print JSON on stdout instead of a table." };

    /// <summary>The task kinds: every area's, composed once in Kiln.Server as kiln server does.</summary>
    internal static TaskKindRegistry Kinds() => KilnTaskKinds.Create();

    private static readonly Option<string?> On = new("--on")
    {
        Description = "Run the tasks as jobs on kiln worker processes: Kiln's PostgreSQL database (postgresql://…) whose pipelines queue they serve; the run is stored there (docs/scale-out.md#distributed-pipelines).",
    };

    /// <summary>A local engine over the store, with the services its kinds ask the host for (the registry's model resolver).</summary>
    private static PipelineEngine Engine(IPipelineStore store, TaskKindRegistry kinds, IExecutor? executor = null) =>
        new(store, kinds, new PipelineEngineOptions { Services = KilnTaskKinds.StandaloneServices() }, executor);

    /// <summary>
    /// With --on: the job storage and the pipeline store on that database (a --db naming another is refused), and a
    /// warning when no worker serves the pipelines queue yet. Without: null, and the store --db names.
    /// </summary>
    private static async Task<(DistributedPipelines? Distributed, IPipelineStore Store)> OpenExecutionAsync(ParseResult parse, CancellationToken ct)
    {
        if (parse.GetValue(On) is not { } on) return (null, await OpenStoreAsync(parse, ct));
        if (parse.GetValue(Db) is { } db && db != on)
            throw new KilnException($"--db {Kiln.Storage.StorageLocation.Redact(db)} and --on {Kiln.Storage.StorageLocation.Redact(on)}: a distributed run is stored in the database its workers use; give only --on");
        var distributed = await DistributedPipelines.OpenAsync(on, "--on", ct);
        try
        {
            var store = await PipelineStores.OpenAsync(on, ct);
            if (distributed.Workers() == 0)
                Cli.Err.MarkupLine("[yellow]warning[/]: no kiln worker serves the pipelines queue of this database yet; tasks wait in the queue until one starts");
            return (distributed, store);
        }
        catch
        {
            await distributed.DisposeAsync();
            throw;
        }
    }

    public static Command Create()
    {
        var pipeline = new Command("pipeline", "Run, schedule and inspect pipelines (DAGs of tasks with retries, caching and recovery).");
        pipeline.Options.Add(Db);
        pipeline.Subcommands.Add(RunCommand());
        pipeline.Subcommands.Add(ValidateCommand());
        pipeline.Subcommands.Add(ListCommand());
        pipeline.Subcommands.Add(ShowCommand());
        pipeline.Subcommands.Add(LogsCommand());
        pipeline.Subcommands.Add(CancelCommand());
        pipeline.Subcommands.Add(ResumeCommand());
        pipeline.Subcommands.Add(RecoverCommand());
        pipeline.Subcommands.Add(ScheduleCommand());
        return pipeline;
    }

    private static string? StoreUri(ParseResult parse) => parse.GetValue(Db) ?? Environment.GetEnvironmentVariable("KILN_TRACKING_URI");

    private static Task<IPipelineStore> OpenStoreAsync(ParseResult parse, CancellationToken ct) => PipelineStores.OpenAsync(StoreUri(parse), ct);

    /// <summary>The runs --db names: a kiln server's through its API, or the embedded store's (chosen once, from the location).</summary>
    private static Task<IPipelineRuns> OpenRunsAsync(ParseResult parse, CancellationToken ct) => PipelineRuns.OpenAsync(StoreUri(parse), Kinds(), ct);

    /// <summary>A client of the server when the tracking URI is http(s)://, else null (the store is opened directly): run and resume execute here or there.</summary>
    private static PipelineApiClient? Remote(ParseResult parse) =>
        PipelineApiClient.IsServerUri(StoreUri(parse)) ? new PipelineApiClient(new Uri(StoreUri(parse)!)) : null;

    private static Command RunCommand()
    {
        var file = new Argument<string>("FILE") { Description = "The pipeline YAML file (through a server: a file, sent inline, or the name of a pipeline in its --pipelines directory)." };
        var param = new Option<string[]>("--param", "-p") { Description = "A parameter value, NAME=VALUE (repeatable).", AllowMultipleArgumentsPerToken = false };
        var cmd = new Command("run", "Run a pipeline to the end; prints the run id on stdout, progress on stderr. Exit 0 when it succeeds.");
        cmd.Arguments.Add(file);
        cmd.Options.Add(param);
        cmd.Options.Add(On);
        cmd.SetHandler(async (parse, ct) =>
        {
            var kinds = Kinds();
            var values = ParseParams(parse.GetValue(param));
            if (parse.GetValue(On) is null && Remote(parse) is { } api)
            {
                using (api) return await RunRemoteAsync(api, parse.GetValue(file)!, values, kinds, ct);
            }
            var def = PipelineLoader.LoadFile(parse.GetValue(file)!, kinds);
            var (distributed, store) = await OpenExecutionAsync(parse, ct);
            await using var distributedScope = distributed;
            await using var storeScope = store;
            await using var engine = Engine(store, kinds, distributed?.Executor);
            engine.TaskStateChanged += Progress;
            var run = await engine.CreateRunAsync(def, values, "manual", null, ct);
            Console.Out.WriteLine(run.RunId);
            Console.Out.Flush();
            Cli.Err.MarkupLineInterpolated($"[bold]{def.Name}[/]: run [blue]{run.RunId}[/] ({def.Tasks.Count} tasks)");
            var state = await engine.ExecuteAsync(run.RunId, def, ct);
            return await FinishAsync(store, run.RunId, state);
        });
        return cmd;
    }

    private static async Task<int> RunRemoteAsync(PipelineApiClient api, string target, Dictionary<string, string> values, TaskKindRegistry kinds, CancellationToken ct)
    {
        RunDto run;
        if (File.Exists(target))
        {
            // The same load-time checks as a local run, with this file's lines; the server checks again.
            PipelineLoader.LoadFile(target, kinds);
            run = await api.StartRunAsync(null, await File.ReadAllTextAsync(target, ct), values, ct);
        }
        else if (target.Contains('/', StringComparison.Ordinal) || target.EndsWith(".yaml", StringComparison.OrdinalIgnoreCase) || target.EndsWith(".yml", StringComparison.OrdinalIgnoreCase))
        {
            throw new KilnException($"{target}: no such file (through a server, FILE is a pipeline YAML file or the name of a pipeline the server knows)");
        }
        else
        {
            run = await api.StartRunAsync(target, null, values, ct);
        }
        Console.Out.WriteLine(run.RunId);
        Console.Out.Flush();
        Cli.Err.MarkupLineInterpolated($"[bold]{run.Pipeline}[/]: run [blue]{run.RunId}[/] on the server");
        return await FollowAsync(api, run.RunId, ct);
    }

    /// <summary>
    /// Follows a run on the server until it ends: its log lines and task states, polled. Ctrl+C asks the server
    /// to cancel the run and waits (at most a minute) for it to stop. Exit codes as for a local run.
    /// </summary>
    private static async Task<int> FollowAsync(PipelineApiClient api, string runId, CancellationToken ct)
    {
        var seen = new Dictionary<string, (string State, int Attempts)>(StringComparer.Ordinal);
        long after = 0;
        DateTime? cancelDeadline = null;
        while (true)
        {
            var token = cancelDeadline is null ? ct : CancellationToken.None;
            try
            {
                await PrintLogsAsync(token);
                var detail = await api.GetRunAsync(runId, token);
                foreach (var t in detail.Tasks)
                {
                    if (seen.TryGetValue(t.Task, out var was) && was.State == t.State && was.Attempts == t.Attempts) continue;
                    seen[t.Task] = (t.State, t.Attempts);
                    if (t.State != "pending") ProgressLine(t.Task, t.State, t.Attempts, t.State is "failed" or "retrying" or "skipped" ? t.Error : null);
                }
                if (detail.Run.State is "succeeded" or "failed" or "cancelled")
                {
                    await PrintLogsAsync(CancellationToken.None); // lines written between the two reads
                    return Finish(detail.Run);
                }
                if (cancelDeadline is { } d && DateTime.UtcNow > d)
                {
                    Console.Error.WriteLine($"kiln: run {runId} is still {detail.Run.State} on the server after the cancel request");
                    return 130;
                }
                await Task.Delay(TimeSpan.FromMilliseconds(500), token);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested && cancelDeadline is null)
            {
                cancelDeadline = DateTime.UtcNow.AddMinutes(1);
                Console.Error.WriteLine($"kiln: cancelling run {runId} on the server");
                try
                {
                    await api.CancelAsync(runId, CancellationToken.None);
                }
                catch (KilnApiException e) when (e.Status == 409)
                {
                }
            }
        }

        async Task PrintLogsAsync(CancellationToken token)
        {
            LogListDto logs;
            do
            {
                logs = await api.GetLogsAsync(runId, null, after, token);
                foreach (var l in logs.Logs) Console.Error.WriteLine($"  [{l.Task}#{l.Attempt}] {l.Line}");
                after = logs.NextAfter;
            }
            while (logs.Logs.Count >= 10_000);
        }
    }

    private static int Finish(RunDto run)
    {
        switch (run.State)
        {
            case "succeeded":
                Cli.Err.MarkupLineInterpolated($"run [blue]{run.RunId}[/] [green]succeeded[/]");
                return 0;
            case "cancelled":
                Console.Error.WriteLine($"kiln: run {run.RunId} cancelled");
                return 130;
            default:
                Console.Error.WriteLine($"error: run {run.RunId} failed: {run.Error ?? "a task did not succeed"}");
                return 1;
        }
    }

    private static async Task<int> FinishAsync(IPipelineStore store, string runId, RunState state)
    {
        var run = await store.GetRunAsync(runId, CancellationToken.None);
        return state switch
        {
            RunState.Succeeded => Finish(RunDto.From(run!) with { State = "succeeded" }),
            RunState.Cancelled => Finish(RunDto.From(run!) with { State = "cancelled" }),
            _ => Finish(run is null ? new RunDto(runId, "", "failed", "", new Dictionary<string, string>(), default, null, null, null, null, null, false) : RunDto.From(run) with { State = "failed" }),
        };
    }

    private static void Progress(TaskStateChange c) => ProgressLine(c.Task, c.State.Name(), c.Attempt, c.Error);

    private static void ProgressLine(string task, string state, int attempt, string? error)
    {
        var (mark, color) = state switch
        {
            "running" => ("▶", "blue"),
            "succeeded" => ("✓", "green"),
            "failed" => ("✗", "red"),
            "retrying" => ("↻", "yellow"),
            "upstream_failed" => ("⊘", "red"),
            "skipped" => ("–", "grey"),
            "cancelled" => ("■", "yellow"),
            _ => ("·", "grey"),
        };
        var attempts = attempt > 1 ? $" (attempt {attempt})" : "";
        var detail = error is null ? "" : $": {error}";
        Cli.Err.MarkupLineInterpolated($"  [{color}]{mark} {task} {state}[/]{attempts}{detail}");
    }

    private static Dictionary<string, string> ParseParams(string[]? items)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var item in items ?? [])
        {
            var eq = item.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0) throw new KilnException($"--param {item}: expected NAME=VALUE");
            result[item[..eq]] = item[(eq + 1)..];
        }
        return result;
    }

    private static Command ValidateCommand()
    {
        var file = new Argument<string>("FILE") { Description = "The pipeline YAML file." };
        var cmd = new Command("validate", "Load a pipeline and report every problem (cycles, unknown tasks or kinds, bad cron, references).");
        cmd.Arguments.Add(file);
        cmd.SetHandler((parse, ct) =>
        {
            var def = PipelineLoader.LoadFile(parse.GetValue(file)!, Kinds());
            Cli.Err.MarkupLineInterpolated($"[green]ok[/]: pipeline {def.Name}, {def.Tasks.Count} tasks, {def.Schedules.Count} schedules, {def.Events.Count} event triggers");
            return Task.FromResult(0);
        });
        return cmd;
    }

    private static Command ListCommand()
    {
        var name = new Option<string?>("--pipeline") { Description = "Only runs of this pipeline." };
        var state = new Option<string?>("--state") { Description = "Only runs in this state (pending, running, succeeded, failed, cancelled)." };
        var limit = new Option<int>("--limit") { Description = "How many runs, newest first.", DefaultValueFactory = _ => 20 };
        var cmd = new Command("list", "List pipeline runs, newest first.");
        cmd.Options.Add(name);
        cmd.Options.Add(state);
        cmd.Options.Add(limit);
        cmd.Options.Add(Json);
        cmd.SetHandler(async (parse, ct) =>
        {
            RunState? s = null;
            if (parse.GetValue(state) is { } st)
            {
                try { s = StateNames.ParseRun(st); }
                catch (InvalidDataException) { throw new KilnException($"--state {st}: expected pending, running, succeeded, failed or cancelled"); }
            }
            if (parse.GetValue(limit) is < 1 or > 1000) throw new KilnException($"--limit {parse.GetValue(limit)}: expected 1 to 1000");
            await using var runs = await OpenRunsAsync(parse, ct);
            var list = await runs.ListRunsAsync(parse.GetValue(name), s, parse.GetValue(limit), ct);
            if (parse.GetValue(Json))
            {
                Console.Out.WriteLine(JsonSerializer.Serialize(list, PipelineJson.Default.RunListDto));
                return 0;
            }
            var table = new Table().AddColumns("run", "pipeline", "state", "trigger", "created", "duration", "error");
            foreach (var r in list.Runs)
            {
                table.AddRow(Markup.Escape(r.RunId), Markup.Escape(r.Pipeline), StateMarkup(r.State), Markup.Escape(r.Trigger),
                    r.CreatedAt.ToString("u", System.Globalization.CultureInfo.InvariantCulture), Duration(r.StartedAt, r.FinishedAt), Markup.Escape(Short(r.Error)));
            }
            Cli.Err.Write(table);
            return 0;
        });
        return cmd;
    }

    private static Command ShowCommand()
    {
        var runArg = new Argument<string>("RUN") { Description = "The run id." };
        var cmd = new Command("show", "Show a run: its tasks, their states, attempts and outputs.");
        cmd.Arguments.Add(runArg);
        cmd.Options.Add(Json);
        cmd.SetHandler(async (parse, ct) =>
        {
            var id = parse.GetValue(runArg)!;
            await using var runs = await OpenRunsAsync(parse, ct);
            var detail = await runs.GetRunAsync(id, ct);
            if (parse.GetValue(Json))
            {
                Console.Out.WriteLine(JsonSerializer.Serialize(detail, PipelineJson.Default.RunDetailDto));
                return 0;
            }
            var run = detail.Run;
            Cli.Err.MarkupLine($"run [blue]{Markup.Escape(run.RunId)}[/] of [bold]{Markup.Escape(run.Pipeline)}[/]: {StateMarkup(run.State)} (trigger {Markup.Escape(run.Trigger)}, {Duration(run.StartedAt, run.FinishedAt)})");
            if (run.Params.Count > 0) Cli.Err.MarkupLineInterpolated($"params: {string.Join(", ", run.Params.Select(kv => $"{kv.Key}={kv.Value}"))}");
            if (run.Error is not null) Cli.Err.MarkupLineInterpolated($"[red]error[/]: {run.Error}");
            var table = new Table().AddColumns("task", "kind", "state", "attempts", "duration", "outputs / error");
            foreach (var t in detail.Tasks)
            {
                var text = t.Error ?? (t.Outputs is null ? "" : string.Join(", ", t.Outputs.Where(kv => kv.Key != "stdout").Select(kv => $"{kv.Key}={kv.Value}")));
                table.AddRow(Markup.Escape(t.Task), Markup.Escape(t.Kind), StateMarkup(t.State) + (t.Cached ? " (cached)" : ""),
                    t.Attempts.ToString(System.Globalization.CultureInfo.InvariantCulture), Duration(t.StartedAt, t.FinishedAt), Markup.Escape(Short(text)));
            }
            Cli.Err.Write(table);
            // Every attempt with who ran it (the process, or the kiln worker of a distributed run) and how it ended.
            var attempts = new Table().AddColumns("task", "attempt", "state", "ran on", "duration", "error");
            foreach (var a in detail.Attempts)
            {
                attempts.AddRow(Markup.Escape(a.Task), a.Attempt.ToString(System.Globalization.CultureInfo.InvariantCulture), StateMarkup(a.State),
                    Markup.Escape(a.Owner ?? ""), Duration(a.StartedAt, a.FinishedAt), Markup.Escape(a.Error ?? ""));
            }
            if (detail.Attempts.Count > 0) Cli.Err.Write(attempts);
            return 0;
        });
        return cmd;
    }

    private static Command LogsCommand()
    {
        var runArg = new Argument<string>("RUN") { Description = "The run id." };
        var taskArg = new Argument<string?>("TASK") { Description = "Only this task's lines.", Arity = ArgumentArity.ZeroOrOne };
        var cmd = new Command("logs", "Print the stored log lines of a run (or of one task), in the order written.");
        cmd.Arguments.Add(runArg);
        cmd.Arguments.Add(taskArg);
        cmd.SetHandler(async (parse, ct) =>
        {
            var id = parse.GetValue(runArg)!;
            var task = parse.GetValue(taskArg);
            void Print(string t, int attempt, string line) => Console.Out.WriteLine(task is null ? $"[{t}#{attempt}] {line}" : line);
            await using var runs = await OpenRunsAsync(parse, ct);
            var detail = await runs.GetRunAsync(id, ct);
            if (task is not null && !detail.Tasks.Any(t => t.Task == task)) throw new KilnException($"run {id} has no task '{task}'");
            long cursor = 0;
            while (true)
            {
                var page = await runs.GetLogsAsync(id, task, cursor, ct);
                if (page.Logs.Count == 0) break;
                foreach (var l in page.Logs) Print(l.Task, l.Attempt, l.Line);
                cursor = page.NextAfter;
            }
            return 0;
        });
        return cmd;
    }

    private static Command CancelCommand()
    {
        var runArg = new Argument<string>("RUN") { Description = "The run id." };
        var cmd = new Command("cancel", "Cancel a run: the process executing it stops its tasks within a few seconds.");
        cmd.Arguments.Add(runArg);
        cmd.SetHandler(async (parse, ct) =>
        {
            var id = parse.GetValue(runArg)!;
            await using var runs = await OpenRunsAsync(parse, ct);
            await runs.CancelAsync(id, ct);
            Cli.Err.MarkupLineInterpolated($"cancel requested for run [blue]{id}[/]");
            return 0;
        });
        return cmd;
    }

    private static Command ResumeCommand()
    {
        var runArg = new Argument<string>("RUN") { Description = "The run id." };
        var cmd = new Command("resume", "Continue a run whose process died, or re-run the failed tasks of a failed run; succeeded tasks are not run again.");
        cmd.Arguments.Add(runArg);
        cmd.SetHandler(async (parse, ct) =>
        {
            var id = parse.GetValue(runArg)!;
            if (Remote(parse) is { } api)
            {
                using (api)
                {
                    await api.ResumeAsync(id, ct);
                    Cli.Err.MarkupLineInterpolated($"resuming run [blue]{id}[/] on the server");
                    return await FollowAsync(api, id, ct);
                }
            }
            await using var store = await OpenStoreAsync(parse, ct);
            await using var engine = Engine(store, Kinds());
            engine.TaskStateChanged += Progress;
            Cli.Err.MarkupLineInterpolated($"resuming run [blue]{id}[/]");
            var state = await engine.ResumeAsync(id, null, ct);
            return await FinishAsync(store, id, state);
        });
        return cmd;
    }

    private static Command RecoverCommand()
    {
        var cmd = new Command("recover", "Resume every run left running by a process that died (or whose lease expired), and wait for them.");
        cmd.SetHandler(async (parse, ct) =>
        {
            if (PipelineApiClient.IsServerUri(StoreUri(parse)))
                throw new KilnException($"{StoreUri(parse)}: a kiln server recovers orphaned runs itself when it starts; use kiln pipeline resume RUN to resume one run through it");
            await using var store = await OpenStoreAsync(parse, ct);
            await using var engine = Engine(store, Kinds());
            engine.TaskStateChanged += Progress;
            var ids = await engine.RecoverAsync(ct);
            Cli.Err.MarkupLineInterpolated($"recovering {ids.Count} run(s)");
            var failed = 0;
            foreach (var id in ids)
            {
                Console.Out.WriteLine(id);
                var state = await engine.WaitAsync(id, ct);
                if (state != RunState.Succeeded) failed++;
            }
            return failed == 0 ? 0 : 1;
        });
        return cmd;
    }

    private static Command ScheduleCommand()
    {
        var files = new Argument<string[]>("FILE") { Description = "Pipeline YAML files with cron triggers.", Arity = ArgumentArity.OneOrMore };
        var cmd = new Command("schedule", "Run the scheduler in the foreground until Ctrl+C: starts each pipeline at its cron times, recovers orphaned runs.");
        cmd.Arguments.Add(files);
        cmd.Options.Add(On);
        cmd.SetHandler(async (parse, ct) =>
        {
            if (parse.GetValue(On) is null && PipelineApiClient.IsServerUri(StoreUri(parse)))
            {
                throw new KilnException($"{StoreUri(parse)}: kiln pipeline schedule runs a scheduler in this process against a store, not through a server; " +
                    "a kiln server schedules the cron triggers of the pipelines in its --pipelines directory: put the file there and restart the server");
            }
            var kinds = Kinds();
            var (distributed, store) = await OpenExecutionAsync(parse, ct);
            await using var distributedScope = distributed;
            await using var storeScope = store;
            await using var engine = Engine(store, kinds, distributed?.Executor);
            foreach (var f in parse.GetValue(files)!)
            {
                var def = PipelineLoader.LoadFile(f, kinds);
                if (def.Schedules.Count == 0) Cli.Err.MarkupLineInterpolated($"[yellow]warning[/]: {f}: pipeline {def.Name} has no cron trigger");
                engine.Catalog.Add(def);
            }
            var scheduler = new PipelineScheduler(engine);
            scheduler.RunStarted += r =>
            {
                Console.Out.WriteLine(r.RunId);
                Cli.Err.MarkupLineInterpolated($"{DateTimeOffset.UtcNow:u} started run [blue]{r.RunId}[/] of {r.Pipeline} for {r.ScheduledFor:u}");
            };
            engine.TaskStateChanged += Progress;
            if (scheduler.NextDue() is { } next) Cli.Err.MarkupLineInterpolated($"scheduler running; next run at {next:u} (Ctrl+C to stop)");
            try
            {
                await scheduler.RunAsync(ct);
            }
            catch (OperationCanceledException)
            {
            }
            return 0;
        });
        return cmd;
    }

    private static string StateMarkup(string state) => state switch
    {
        "succeeded" => "[green]succeeded[/]",
        "failed" or "upstream_failed" => $"[red]{state}[/]",
        "running" => "[blue]running[/]",
        "retrying" or "cancelled" or "interrupted" => $"[yellow]{state}[/]",
        _ => $"[grey]{state}[/]",
    };

    private static string Duration(DateTimeOffset? start, DateTimeOffset? end)
    {
        if (start is null) return "";
        var d = (end ?? DateTimeOffset.UtcNow) - start.Value;
        return d.TotalSeconds < 60 ? $"{d.TotalSeconds:0.0}s" : d.TotalMinutes < 60 ? $"{d.TotalMinutes:0.0}m" : $"{d.TotalHours:0.0}h";
    }

    private static string Short(string? s) => s is null ? "" : s.Length <= 80 ? s : s[..77] + "...";
}
