using System.Diagnostics;
using System.Text.Json;
using Kiln.Testing;

namespace Kiln.Pipelines.Tests;

/// <summary>The real kiln binary: crash recovery with a killed process, cross-process cancel, errors.</summary>
public class CliTests
{
    private static async Task WaitForAsync(Func<bool> condition, string what, Process? process = null)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(90);
        while (!condition())
        {
            if (process is { HasExited: true }) throw new InvalidOperationException($"kiln exited ({process.ExitCode}) before {what}");
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"timed out waiting for {what}");
            await Task.Delay(100);
        }
    }

    private static string[] Lines(string file) => File.Exists(file) ? File.ReadAllLines(file) : [];

    private static async Task<JsonElement> ShowAsync(string runId, string db, string cwd)
    {
        var r = await KilnCli.RunAsync(["pipeline", "show", runId, "--json", "--db", db], cwd);
        Assert.True(r.ExitCode == 0, r.ToString());
        return JsonDocument.Parse(r.StdOut).RootElement;
    }

    private static async Task<string> LatestRunAsync(string db, string cwd)
    {
        var r = await KilnCli.RunAsync(["pipeline", "list", "--json", "--db", db], cwd);
        Assert.True(r.ExitCode == 0, r.ToString());
        return JsonDocument.Parse(r.StdOut).RootElement.GetProperty("runs")[0].GetProperty("run_id").GetString()!;
    }

    [Fact]
    public async Task A_run_killed_mid_task_is_resumed_without_rerunning_its_succeeded_tasks()
    {
        using var dir = new TempDir("kiln-crash");
        var log = dir.File("log.txt");
        var resumeMarker = dir.File("resumed");
        var db = dir.File("kiln.db");
        var file = dir.File("crash.yaml");
        File.WriteAllText(file, $$$"""
            name: crash
            tasks:
              a:
                kind: shell
                command: echo a >> {{{log}}}
              side:
                kind: shell
                command: echo side >> {{{log}}}
              b:
                kind: shell
                depends_on: [a, side]
                command: |
                  echo b-start >> {{{log}}}
                  if [ ! -f {{{resumeMarker}}} ]; then sleep 120; fi
                  echo b-end >> {{{log}}}
                  echo "size=$(wc -l < {{{log}}})" >> "$KILN_OUTPUT"
              c:
                kind: shell
                depends_on: b
                command: echo "c after {{ tasks.b.outputs.size }}" >> {{{log}}}
            """);

        var p = KilnCli.Start(["pipeline", "run", file, "--db", db], dir.Path);
        try
        {
            await WaitForAsync(() => Lines(log).Contains("b-start"), "task b to start", p);
            // Let the state of a and side reach the store (they finished before b started), then crash hard.
            p.Kill(entireProcessTree: true); // SIGKILL: no cleanup, no lease release
            await p.WaitForExitAsync();
        }
        finally
        {
            if (!p.HasExited) p.Kill(entireProcessTree: true);
        }

        var runId = await LatestRunAsync(db, dir.Path);
        var before = await ShowAsync(runId, db, dir.Path);
        Assert.Equal("running", before.GetProperty("run").GetProperty("state").GetString());
        Assert.StartsWith($"{p.Id}@", before.GetProperty("run").GetProperty("owner").GetString());

        File.WriteAllText(resumeMarker, "");
        var resumed = await KilnCli.RunAsync(["pipeline", "resume", runId, "--db", db], dir.Path);
        Assert.True(resumed.ExitCode == 0, resumed.ToString());

        var lines = Lines(log);
        Assert.Equal(1, lines.Count(l => l == "a"));
        Assert.Equal(1, lines.Count(l => l == "side"));
        Assert.Equal(2, lines.Count(l => l == "b-start"));
        Assert.Equal(1, lines.Count(l => l == "b-end"));
        Assert.Equal("c after 5", lines[^1]);

        var after = await ShowAsync(runId, db, dir.Path);
        Assert.Equal("succeeded", after.GetProperty("run").GetProperty("state").GetString());
        var attempts = after.GetProperty("attempts").EnumerateArray()
            .Select(a => $"{a.GetProperty("task").GetString()}#{a.GetProperty("attempt").GetInt32()} {a.GetProperty("state").GetString()}")
            .Order().ToList();
        Assert.Equal(["a#1 succeeded", "b#1 interrupted", "b#2 succeeded", "c#1 succeeded", "side#1 succeeded"], attempts);
        var interrupted = after.GetProperty("attempts").EnumerateArray().Single(a => a.GetProperty("state").GetString() == "interrupted");
        Assert.Contains($"{p.Id}@", interrupted.GetProperty("error").GetString());
    }

    /// <summary>The pids of live processes whose environment holds <paramref name="marker"/> (a task's env setting).</summary>
    private static List<int> ProcessesMarked(string marker)
    {
        var found = new List<int>();
        var entry = System.Text.Encoding.UTF8.GetBytes(marker);
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid)) continue;
            try
            {
                if (File.ReadAllBytes(Path.Combine(dir, "environ")).AsSpan().IndexOf(entry) >= 0
                    && !File.ReadAllText(Path.Combine(dir, "stat")).Contains(") Z ", StringComparison.Ordinal)) found.Add(pid);
            }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        }
        return found;
    }

    private static async Task<List<int>> WaitUntilGoneAsync(string marker, TimeSpan within)
    {
        var deadline = DateTime.UtcNow + within;
        var left = ProcessesMarked(marker);
        while (left.Count > 0 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(50);
            left = ProcessesMarked(marker);
        }
        return left;
    }

    private static string OrphanPipeline(string dir, string log, string marker, string resumeMarker) => $$$"""
        name: orphan
        tasks:
          b:
            kind: shell
            env:
              ORPHAN_MARK: {{{marker}}}
            command: |
              echo b-start >> {{{log}}}
              if [ -f {{{resumeMarker}}} ]; then echo b-end >> {{{log}}}; exit 0; fi
              # a grandchild in the background and a loop that keeps writing: what an orphan would do
              sleep 300 &
              while true; do echo tick >> {{{log}}}; sleep 0.1; done
        """;

    [Fact]
    public async Task A_shell_task_dies_with_its_runner_when_the_runner_is_killed_with_sigkill()
    {
        using var dir = new TempDir("kiln-orphan");
        var log = dir.File("log.txt");
        var db = dir.File("kiln.db");
        var file = dir.File("orphan.yaml");
        var marker = $"ORPHAN_MARK=kiln-orphan-{Guid.NewGuid():N}";
        File.WriteAllText(file, OrphanPipeline(dir.Path, log, marker["ORPHAN_MARK=".Length..], dir.File("resume")));

        var p = KilnCli.Start(["pipeline", "run", file, "--db", db], dir.Path);
        try
        {
            await WaitForAsync(() => Lines(log).Count(l => l == "tick") >= 3, "the task to be writing", p);
            Assert.True(ProcessesMarked(marker).Count >= 3, "the task's shell, its loop and its background sleep are running");
            p.Kill(); // SIGKILL to kiln alone, not to its tree: what the OOM killer or kill -9 does
            await p.WaitForExitAsync();
        }
        finally
        {
            if (!p.HasExited) p.Kill(entireProcessTree: true);
        }

        // The kernel closes the runner's end of the task's stdin pipe; the watcher in the task's group kills the group.
        var left = await WaitUntilGoneAsync(marker, TimeSpan.FromSeconds(5));
        Assert.True(left.Count == 0, $"task processes outlived their runner: {string.Join(", ", left)}");
        var ticks = Lines(log).Length;
        await Task.Delay(500);
        Assert.Equal(ticks, Lines(log).Length);

        var runId = await LatestRunAsync(db, dir.Path);
        var show = await ShowAsync(runId, db, dir.Path);
        var group = show.GetProperty("attempts")[0].GetProperty("process_group").GetString();
        Assert.Matches(@"^\d+@", group);

        File.WriteAllText(dir.File("resume"), "");
        var resumed = await KilnCli.RunAsync(["pipeline", "resume", runId, "--db", db], dir.Path);
        Assert.True(resumed.ExitCode == 0, resumed.ToString());
        Assert.Equal(1, Lines(log).Count(l => l == "b-end"));
        var after = await ShowAsync(runId, db, dir.Path);
        var first = after.GetProperty("attempts").EnumerateArray().Single(a => a.GetProperty("attempt").GetInt32() == 1);
        Assert.Equal("interrupted", first.GetProperty("state").GetString());
        Assert.Contains($"its process group {group!.Split('@')[0]} had already exited", first.GetProperty("error").GetString());
    }

    [Fact]
    public async Task Resuming_a_run_kills_a_surviving_process_group_before_the_task_runs_again()
    {
        // The watcher is the first line of defence; this takes it away (as a user's `kill` of the wrong pid might)
        // to show the second: resume kills the group recorded with the attempt before running the task again.
        using var dir = new TempDir("kiln-survivor");
        var log = dir.File("log.txt");
        var db = dir.File("kiln.db");
        var file = dir.File("orphan.yaml");
        var marker = $"ORPHAN_MARK=kiln-survivor-{Guid.NewGuid():N}";
        File.WriteAllText(file, OrphanPipeline(dir.Path, log, marker["ORPHAN_MARK=".Length..], dir.File("resume")));

        var p = KilnCli.Start(["pipeline", "run", file, "--db", db], dir.Path);
        List<int> survivors;
        try
        {
            await WaitForAsync(() => Lines(log).Count(l => l == "tick") >= 3, "the task to be writing", p);
            var runIdEarly = await LatestRunAsync(db, dir.Path);
            var group = int.Parse((await ShowAsync(runIdEarly, db, dir.Path)).GetProperty("attempts")[0].GetProperty("process_group").GetString()!.Split('@')[0],
                System.Globalization.CultureInfo.InvariantCulture);
            // The watcher: a member of the group that is a fork of the group's leader (same command line), not the leader.
            var leaderCmd = File.ReadAllText($"/proc/{group}/cmdline");
            var watcher = ProcessesMarked(marker).Single(pid => pid != group && File.ReadAllText($"/proc/{pid}/cmdline") == leaderCmd
                && File.ReadAllText($"/proc/{pid}/stat").Split(") ")[1].Split(' ')[1] == group.ToString(System.Globalization.CultureInfo.InvariantCulture));
            Assert.Equal(0, (await Proc.RunAsync("kill", ["-KILL", watcher.ToString(System.Globalization.CultureInfo.InvariantCulture)])).ExitCode);
            p.Kill();
            await p.WaitForExitAsync();
            await Task.Delay(1000);
            survivors = ProcessesMarked(marker);
        }
        finally
        {
            if (!p.HasExited) p.Kill(entireProcessTree: true);
        }
        try
        {
            Assert.True(survivors.Count >= 2, "without its watcher the task's processes survive the runner");
            var runId = await LatestRunAsync(db, dir.Path);
            File.WriteAllText(dir.File("resume"), "");
            var resumed = await KilnCli.RunAsync(["pipeline", "resume", runId, "--db", db], dir.Path);
            Assert.True(resumed.ExitCode == 0, resumed.ToString());
            Assert.Empty(ProcessesMarked(marker));
            // The first copy stopped writing before the second ran: no tick after b-end.
            var lines = Lines(log);
            Assert.Equal("b-end", lines[^1]);
            Assert.Equal(2, lines.Count(l => l == "b-start"));
            var first = (await ShowAsync(runId, db, dir.Path)).GetProperty("attempts").EnumerateArray().Single(a => a.GetProperty("attempt").GetInt32() == 1);
            Assert.Equal("interrupted", first.GetProperty("state").GetString());
            Assert.Matches(@"its process group \d+ was still running and has been killed; resumed by", first.GetProperty("error").GetString());
        }
        finally
        {
            foreach (var pid in ProcessesMarked(marker)) _ = await Proc.RunAsync("kill", ["-KILL", pid.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        }
    }

    [Fact]
    public async Task Cancel_from_another_process_stops_a_running_pipeline()
    {
        using var dir = new TempDir("kiln-cancel");
        var db = dir.File("kiln.db");
        var started = dir.File("started");
        var file = dir.File("slow.yaml");
        File.WriteAllText(file, $"""
            name: slow
            tasks:
              wait:
                kind: shell
                command: touch {started}; sleep 120
              after:
                kind: shell
                depends_on: wait
                command: echo never
            """);
        var p = KilnCli.Start(["pipeline", "run", file, "--db", db], dir.Path);
        try
        {
            await WaitForAsync(() => File.Exists(started), "the task to start", p);
            var runId = await LatestRunAsync(db, dir.Path);
            var cancel = await KilnCli.RunAsync(["pipeline", "cancel", runId, "--db", db], dir.Path);
            Assert.True(cancel.ExitCode == 0, cancel.ToString());
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            await p.WaitForExitAsync(cts.Token);
            Assert.Equal(130, p.ExitCode);
            var show = await ShowAsync(runId, db, dir.Path);
            Assert.Equal("cancelled", show.GetProperty("run").GetProperty("state").GetString());
            var states = show.GetProperty("tasks").EnumerateArray().ToDictionary(t => t.GetProperty("task").GetString()!, t => t.GetProperty("state").GetString());
            Assert.Equal("cancelled", states["wait"]);
            Assert.Equal("cancelled", states["after"]);
        }
        finally
        {
            if (!p.HasExited) p.Kill(entireProcessTree: true);
        }
    }

    [Fact]
    public async Task A_pipeline_with_a_cycle_is_refused_with_the_file_line_and_tasks()
    {
        using var dir = new TempDir("kiln-bad");
        var file = dir.File("bad.yaml");
        File.WriteAllText(file, """
            name: bad
            tasks:
              a:
                kind: noop
                depends_on: b
              b:
                kind: noop
                depends_on: a
            """);
        var r = await KilnCli.RunAsync(["pipeline", "run", file, "--db", dir.File("kiln.db")], dir.Path);
        Assert.Equal(1, r.ExitCode);
        Assert.Matches(@"error: .*bad\.yaml:[36]:3: tasks form a cycle: (a -> b -> a|b -> a -> b)", r.StdErr);
        Assert.Equal("", r.StdOut);
        Assert.False(File.Exists(dir.File("kiln.db")), "nothing is written for a refused pipeline");
    }

    [Fact]
    public async Task A_failing_run_exits_non_zero_and_its_logs_and_state_are_shown()
    {
        using var dir = new TempDir("kiln-fail");
        var db = dir.File("kiln.db");
        var file = dir.File("fail.yaml");
        File.WriteAllText(file, """
            name: fail
            parameters:
              who:
            tasks:
              hello:
                kind: shell
                command: echo "hello {{ params.who }}"
              broken:
                kind: shell
                depends_on: hello
                command: echo "about to fail" >&2; exit 7
            """);
        var missing = await KilnCli.RunAsync(["pipeline", "run", file, "--db", db], dir.Path);
        Assert.Equal(1, missing.ExitCode);
        Assert.Contains("fail.yaml:3:3: parameter 'who' has no default and was not given (use --param who=VALUE)", missing.StdErr);

        var r = await KilnCli.RunAsync(["pipeline", "run", file, "--param", "who=kiln", "--db", db], dir.Path);
        Assert.Equal(1, r.ExitCode);
        var runId = r.StdOut.Trim();
        Assert.Contains($"error: run {runId} failed: task broken: command exited with code 7", r.StdErr);

        var logs = await KilnCli.RunAsync(["pipeline", "logs", runId, "--db", db], dir.Path);
        Assert.Equal(0, logs.ExitCode);
        Assert.Equal(["[hello#1] hello kiln", "[broken#1] about to fail", "[broken#1] command exited with code 7"], logs.StdOut.TrimEnd().Split('\n'));
        var one = await KilnCli.RunAsync(["pipeline", "logs", runId, "hello", "--db", db], dir.Path);
        Assert.Equal("hello kiln", one.StdOut.Trim());
        var unknownTask = await KilnCli.RunAsync(["pipeline", "logs", runId, "nope", "--db", db], dir.Path);
        Assert.Equal(1, unknownTask.ExitCode);
        Assert.Contains($"run {runId} has no task 'nope'", unknownTask.StdErr);
        var unknownRun = await KilnCli.RunAsync(["pipeline", "show", "nope", "--db", db], dir.Path);
        Assert.Equal(1, unknownRun.ExitCode);
        Assert.Contains("error: no pipeline run 'nope'", unknownRun.StdErr);
    }

    [Fact]
    public async Task The_foreground_scheduler_starts_runs_at_their_cron_times()
    {
        using var dir = new TempDir("kiln-schedule");
        var db = dir.File("kiln.db");
        var file = dir.File("tick.yaml");
        var ticks = dir.File("ticks.txt");
        File.WriteAllText(file, $$$"""
            name: tick
            triggers:
              - cron: "*/2 * * * * *"
            tasks:
              t:
                kind: shell
                command: echo "{{ run.scheduled_time }}" >> {{{ticks}}}
            """);
        var p = KilnCli.Start(["pipeline", "schedule", file, "--db", db], dir.Path);
        try
        {
            await WaitForAsync(() => Lines(ticks).Length >= 2, "two scheduled runs", p);
        }
        finally
        {
            p.Kill(entireProcessTree: true);
            await p.WaitForExitAsync();
        }
        var times = Lines(ticks).Take(2).Select(l => DateTimeOffset.Parse(l, System.Globalization.CultureInfo.InvariantCulture)).ToList();
        Assert.All(times, t => Assert.Equal(0, t.Second % 2));
        // Consecutive occurrences are 2 s apart; on a loaded machine a late tick skips to the latest (missed: skip).
        var gap = (times[1] - times[0]).TotalSeconds;
        Assert.True(gap >= 2 && gap % 2 == 0, $"gap {gap}s");
        var list = await KilnCli.RunAsync(["pipeline", "list", "--json", "--db", db], dir.Path);
        var runs = JsonDocument.Parse(list.StdOut).RootElement.GetProperty("runs").EnumerateArray().ToList();
        Assert.True(runs.Count >= 2);
        Assert.All(runs, r => Assert.Equal("schedule", r.GetProperty("trigger").GetString()));
    }
}
