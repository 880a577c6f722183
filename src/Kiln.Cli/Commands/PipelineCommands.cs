using System.CommandLine;
using System.Text.Json;
using Kiln.Cli.Pipelines;
using Kiln.Core;
using Kiln.Pipelines;
using Kiln.Pipelines.Definition;
using Kiln.Pipelines.Execution;
using Kiln.Pipelines.Http;
using Kiln.Pipelines.Scheduling;
using Kiln.Pipelines.State;
using Kiln.Pipelines.Tasks;
using Spectre.Console;

namespace Kiln.Cli.Commands;

/// <summary><c>kiln pipeline run|list|show|logs|cancel|resume|recover|schedule|validate</c>.</summary>
internal static class PipelineCommands
{
    private static readonly Option<string?> Db = new("--db", "--tracking-uri")
    {
        Description = "The pipeline store: a directory (./.kiln), a *.db file, or a postgres:// URI. Default: $KILN_TRACKING_URI or ./.kiln/kiln.db",
        Recursive = true,
    };

    private static readonly Option<bool> Json = new("--json") { Description = "Print JSON on stdout instead of a table." };

    /// <summary>The task kinds the CLI knows; areas add theirs here when they are merged.</summary>
    internal static TaskKindRegistry Kinds() => TaskKindRegistry.CreateDefault().AddModelKinds().AddDataKinds();

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

    private static Task<IPipelineStore> OpenStoreAsync(ParseResult parse, CancellationToken ct) =>
        PipelineStores.OpenAsync(parse.GetValue(Db) ?? Environment.GetEnvironmentVariable("KILN_TRACKING_URI"), ct);

    private static Command RunCommand()
    {
        var file = new Argument<string>("FILE") { Description = "The pipeline YAML file." };
        var param = new Option<string[]>("--param", "-p") { Description = "A parameter value, NAME=VALUE (repeatable).", AllowMultipleArgumentsPerToken = false };
        var cmd = new Command("run", "Run a pipeline to the end; prints the run id on stdout, progress on stderr. Exit 0 when it succeeds.");
        cmd.Arguments.Add(file);
        cmd.Options.Add(param);
        cmd.SetHandler(async (parse, ct) =>
        {
            var kinds = Kinds();
            var def = PipelineLoader.LoadFile(parse.GetValue(file)!, kinds);
            var values = ParseParams(parse.GetValue(param));
            await using var store = await OpenStoreAsync(parse, ct);
            await using var engine = new PipelineEngine(store, kinds);
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

    private static async Task<int> FinishAsync(IPipelineStore store, string runId, RunState state)
    {
        var run = await store.GetRunAsync(runId, CancellationToken.None);
        switch (state)
        {
            case RunState.Succeeded:
                Cli.Err.MarkupLineInterpolated($"run [blue]{runId}[/] [green]succeeded[/]");
                return 0;
            case RunState.Cancelled:
                Console.Error.WriteLine($"kiln: run {runId} cancelled");
                return 130;
            default:
                Console.Error.WriteLine($"error: run {runId} failed: {run?.Error ?? "a task did not succeed"}");
                return 1;
        }
    }

    private static void Progress(TaskStateChange c)
    {
        var (mark, color) = c.State switch
        {
            TaskState.Running => ("▶", "blue"),
            TaskState.Succeeded => ("✓", "green"),
            TaskState.Failed => ("✗", "red"),
            TaskState.Retrying => ("↻", "yellow"),
            TaskState.UpstreamFailed => ("⊘", "red"),
            TaskState.Skipped => ("–", "grey"),
            TaskState.Cancelled => ("■", "yellow"),
            _ => ("·", "grey"),
        };
        var attempt = c.Attempt > 1 ? $" (attempt {c.Attempt})" : "";
        var error = c.Error is null ? "" : $": {c.Error}";
        Cli.Err.MarkupLineInterpolated($"  [{color}]{mark} {c.Task} {c.State.Name()}[/]{attempt}{error}");
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
            await using var store = await OpenStoreAsync(parse, ct);
            var runs = await store.ListRunsAsync(parse.GetValue(name), s, parse.GetValue(limit), ct);
            if (parse.GetValue(Json))
            {
                Console.Out.WriteLine(JsonSerializer.Serialize(new RunListDto([.. runs.Select(RunDto.From)]), PipelineJson.Default.RunListDto));
                return 0;
            }
            var table = new Table().AddColumns("run", "pipeline", "state", "trigger", "created", "duration", "error");
            foreach (var r in runs)
            {
                table.AddRow(Markup.Escape(r.RunId), Markup.Escape(r.Pipeline), StateMarkup(r.State.Name()), Markup.Escape(r.Trigger),
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
            await using var store = await OpenStoreAsync(parse, ct);
            var id = parse.GetValue(runArg)!;
            var run = await store.GetRunAsync(id, ct) ?? throw new KilnException($"no pipeline run '{id}'");
            var tasks = await store.GetTasksAsync(id, ct);
            var attempts = await store.GetAttemptsAsync(id, null, ct);
            if (parse.GetValue(Json))
            {
                Console.Out.WriteLine(JsonSerializer.Serialize(new RunDetailDto(RunDto.From(run), [.. tasks.Select(TaskDto.From)], [.. attempts.Select(AttemptDto.From)]), PipelineJson.Default.RunDetailDto));
                return 0;
            }
            Cli.Err.MarkupLine($"run [blue]{Markup.Escape(run.RunId)}[/] of [bold]{Markup.Escape(run.Pipeline)}[/]: {StateMarkup(run.State.Name())} (trigger {Markup.Escape(run.Trigger)}, {Duration(run.StartedAt, run.FinishedAt)})");
            if (run.Parameters.Count > 0) Cli.Err.MarkupLineInterpolated($"params: {string.Join(", ", run.Parameters.Select(kv => $"{kv.Key}={kv.Value}"))}");
            if (run.Error is not null) Cli.Err.MarkupLineInterpolated($"[red]error[/]: {run.Error}");
            var table = new Table().AddColumns("task", "kind", "state", "attempts", "duration", "outputs / error");
            foreach (var t in tasks)
            {
                var detail = t.Error ?? (t.Outputs is null ? "" : string.Join(", ", t.Outputs.Where(kv => kv.Key != "stdout").Select(kv => $"{kv.Key}={kv.Value}")));
                table.AddRow(Markup.Escape(t.Task), Markup.Escape(t.Kind), StateMarkup(t.State.Name()) + (t.Cached ? " (cached)" : ""),
                    t.Attempts.ToString(System.Globalization.CultureInfo.InvariantCulture), Duration(t.StartedAt, t.FinishedAt), Markup.Escape(Short(detail)));
            }
            Cli.Err.Write(table);
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
            await using var store = await OpenStoreAsync(parse, ct);
            var id = parse.GetValue(runArg)!;
            _ = await store.GetRunAsync(id, ct) ?? throw new KilnException($"no pipeline run '{id}'");
            var task = parse.GetValue(taskArg);
            if (task is not null && !(await store.GetTasksAsync(id, ct)).Any(t => t.Task == task))
                throw new KilnException($"run {id} has no task '{task}'");
            long after = 0;
            while (true)
            {
                var lines = await store.GetLogsAsync(id, task, after, 10_000, ct);
                if (lines.Count == 0) break;
                foreach (var l in lines)
                {
                    Console.Out.WriteLine(task is null ? $"[{l.Task}#{l.Attempt}] {l.Line}" : l.Line);
                }
                after = lines[^1].Id;
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
            await using var store = await OpenStoreAsync(parse, ct);
            await using var engine = new PipelineEngine(store, Kinds());
            var id = parse.GetValue(runArg)!;
            var run = await store.GetRunAsync(id, ct) ?? throw new KilnException($"no pipeline run '{id}'");
            if (run.State.IsTerminal()) throw new KilnException($"run {id} already finished ({run.State.Name()})");
            await engine.CancelAsync(id, ct);
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
            await using var store = await OpenStoreAsync(parse, ct);
            await using var engine = new PipelineEngine(store, Kinds());
            engine.TaskStateChanged += Progress;
            var id = parse.GetValue(runArg)!;
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
            await using var store = await OpenStoreAsync(parse, ct);
            await using var engine = new PipelineEngine(store, Kinds());
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
        cmd.SetHandler(async (parse, ct) =>
        {
            var kinds = Kinds();
            await using var store = await OpenStoreAsync(parse, ct);
            await using var engine = new PipelineEngine(store, kinds);
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
        "retrying" or "cancelled" => $"[yellow]{state}[/]",
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
