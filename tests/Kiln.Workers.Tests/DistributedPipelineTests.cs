using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Kiln.Testing;

namespace Kiln.Workers.Tests;

/// <summary>The real CLI: kiln pipeline run --on with its tasks on kiln worker processes, one of them killed mid-task.</summary>
public class DistributedPipelineTests
{
    private static string[] Lines(string file) => File.Exists(file) ? File.ReadAllLines(file) : [];

    private static async Task<JsonElement> ShowAsync(string runId, string db, string cwd)
    {
        var r = await KilnCli.RunAsync(["pipeline", "show", runId, "--json", "--db", db], cwd);
        Assert.True(r.ExitCode == 0, r.ToString());
        return JsonDocument.Parse(r.StdOut).RootElement;
    }

    private static async Task WaitForAsync(Func<Task<bool>> condition, string what, Process? process = null, StringBuilder? stderr = null)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(120);
        while (!await condition())
        {
            if (process is { HasExited: true }) throw new InvalidOperationException($"kiln exited ({process.ExitCode}) before {what}: {stderr}");
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"timed out waiting for {what}");
            await Task.Delay(100);
        }
    }

    /// <summary>Live processes whose environment carries every one of <paramref name="entries"/> (NAME=VALUE).</summary>
    private static List<int> ProcessesWith(params string[] entries)
    {
        var found = new List<int>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out var pid)) continue;
            try
            {
                var env = File.ReadAllText(Path.Combine(dir, "environ")).Split('\0');
                if (entries.All(e => env.Contains(e))) found.Add(pid);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
            }
        }
        return found;
    }

    [Fact]
    public async Task A_diamond_survives_the_worker_running_its_slow_task_being_killed()
    {
        using var dir = new TempDir("kiln-dist-pipe");
        await using var database = await TestDatabase.CreateAsync("kiln_workers");
        var (db, name) = (database.Uri, database.Name);
        var log = dir.File("log.txt");
        var go = dir.File("go");
        var file = dir.File("diamond.yaml");
        await WriteDiamondAsync(file, "diamond", "t-42", log, go);
        var workers = new List<Process>();
        Process? run = null;
        try
        {
            for (var i = 0; i < 2; i++) workers.Add(await WorkerFixture.StartWorkerAsync(db, dir.Path, "--queues", "pipelines", "--concurrency", "1"));
            run = KilnCli.Start(["pipeline", "run", file, "--on", db], dir.Path);
            var stdout = new StringBuilder();
            var stderr = new StringBuilder();
            run.OutputDataReceived += (_, e) => { lock (stdout) stdout.AppendLine(e.Data); };
            run.ErrorDataReceived += (_, e) => { lock (stderr) stderr.AppendLine(e.Data); };
            string RunId() { lock (stdout) return stdout.ToString().Trim(); }

            // b's first attempt is running on a worker and its shell is writing.
            JsonElement bFirst = default;
            await WaitForAsync(async () =>
            {
                if (RunId().Length == 0 || Lines(log).Count(l => l == "tick") < 3) return false;
                var show = await ShowAsync(RunId(), db, dir.Path);
                bFirst = show.GetProperty("attempts").EnumerateArray().FirstOrDefault(a => a.GetProperty("task").GetString() == "b"
                    && a.GetProperty("state").GetString() == "running" && a.TryGetProperty("process_group", out var g) && g.ValueKind == JsonValueKind.String);
                return bFirst.ValueKind == JsonValueKind.Object;
            }, "task b to run on a worker", run, stderr);
            var runId = RunId();
            var victimName = bFirst.GetProperty("owner").GetString()!;
            var victimPid = int.Parse(victimName.Split(':')[2], CultureInfo.InvariantCulture);
            var victim = workers.Single(w => w.Id == victimPid);
            var survivorName = $"kiln-worker:{Environment.MachineName}:{workers.Single(w => w.Id != victimPid).Id}";
            var marks = new[] { $"KILN_RUN_ID={runId}", "KILN_TASK=b", "KILN_ATTEMPT=1" };
            Assert.NotEmpty(ProcessesWith(marks));

            victim.Kill(); // SIGKILL to the worker alone: what kill -9 or the OOM killer does
            await victim.WaitForExitAsync();

            // The task's shell dies with its worker (before any other worker could take the job over).
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(3);
            while (ProcessesWith(marks).Count > 0 && DateTime.UtcNow < deadline) await Task.Delay(50);
            Assert.True(ProcessesWith(marks).Count == 0, "b's first attempt outlived the worker that ran it");
            var ticks = Lines(log).Length;
            await Task.Delay(500);
            Assert.Equal(ticks, Lines(log).Length);

            // The other worker takes the job over after the invisibility timeout (5 s here) and runs b as attempt 2.
            await WaitForAsync(() => Task.FromResult(Lines(log).Count(l => l.StartsWith("b-start", StringComparison.Ordinal)) == 2), "b to start again", run, stderr);
            await File.WriteAllTextAsync(go, "");
            using (var cts = new CancellationTokenSource(TimeSpan.FromSeconds(120))) await run.WaitForExitAsync(cts.Token);
            Assert.True(run.ExitCode == 0, stderr.ToString());

            var lines = Lines(log);
            Assert.Equal(1, lines.Count(l => l == "a"));
            Assert.Equal(1, lines.Count(l => l == "c"));
            Assert.Equal(["b-start t-42 1", "b-start t-42 2"], lines.Where(l => l.StartsWith("b-start", StringComparison.Ordinal)));
            Assert.Equal(1, lines.Count(l => l == "b-end"));
            Assert.Equal(["d yes"], lines.Where(l => l.StartsWith('d')));

            var detail = await ShowAsync(runId, db, dir.Path);
            Assert.Equal("succeeded", detail.GetProperty("run").GetProperty("state").GetString());
            var attempts = detail.GetProperty("attempts").EnumerateArray().ToList();
            foreach (var t in new[] { "a", "c", "d" })
            {
                var only = Assert.Single(attempts, a => a.GetProperty("task").GetString() == t);
                Assert.Equal("succeeded", only.GetProperty("state").GetString());
                Assert.StartsWith("kiln-worker:", only.GetProperty("owner").GetString(), StringComparison.Ordinal);
            }
            var b = attempts.Where(a => a.GetProperty("task").GetString() == "b").OrderBy(a => a.GetProperty("attempt").GetInt32()).ToList();
            Assert.Equal(2, b.Count);
            Assert.Equal("interrupted", b[0].GetProperty("state").GetString());
            Assert.Equal(victimName, b[0].GetProperty("owner").GetString());
            var error = b[0].GetProperty("error").GetString()!;
            Assert.Contains($"the worker running it ({victimName}) stopped", error, StringComparison.Ordinal);
            Assert.Contains("had already exited", error, StringComparison.Ordinal); // its watcher had killed the group
            Assert.Contains($"taken over by {survivorName}", error, StringComparison.Ordinal);
            Assert.Equal("succeeded", b[1].GetProperty("state").GetString());
            Assert.Equal(survivorName, b[1].GetProperty("owner").GetString());

            // The table a person reads tells the same story.
            var text = await KilnCli.RunAsync(["pipeline", "show", runId, "--db", db], dir.Path);
            Assert.True(text.ExitCode == 0, text.ToString());
            Assert.Contains(victimName, text.StdErr, StringComparison.Ordinal);
            Assert.Contains(survivorName, text.StdErr, StringComparison.Ordinal);
            Assert.Contains("interrupted", text.StdErr, StringComparison.Ordinal);
        }
        finally
        {
            if (run is { HasExited: false }) run.Kill(entireProcessTree: true);
            foreach (var w in workers) if (!w.HasExited) w.Kill(entireProcessTree: true);
        }
    }

    [Fact]
    public async Task A_run_on_workers_whose_coordinator_is_killed_is_finished_by_resume_without_running_a_succeeded_task_again()
    {
        using var dir = new TempDir("kiln-dist-pipe-resume");
        await using var database = await TestDatabase.CreateAsync("kiln_workers");
        var (db, name) = (database.Uri, database.Name);
        var log = dir.File("log.txt");
        var go = dir.File("go");
        var file = dir.File("diamond.yaml");
        await WriteDiamondAsync(file, "diamond-resume", "t-7", log, go);
        Process? worker = null;
        Process? run = null;
        try
        {
            worker = await WorkerFixture.StartWorkerAsync(db, dir.Path, "--queues", "pipelines", "--concurrency", "2");
            run = KilnCli.Start(["pipeline", "run", file, "--on", db], dir.Path);
            var stdout = new StringBuilder();
            var stderr = new StringBuilder();
            run.OutputDataReceived += (_, e) => { lock (stdout) stdout.AppendLine(e.Data); };
            run.ErrorDataReceived += (_, e) => { lock (stderr) stderr.AppendLine(e.Data); };
            string RunId() { lock (stdout) return stdout.ToString().Trim(); }

            // a and c are done, b runs on the worker: the coordinator is killed (kill -9) there.
            await WaitForAsync(() => Task.FromResult(RunId().Length > 0 && Lines(log).Contains("c") && Lines(log).Count(l => l == "tick") >= 3),
                "a and c to finish and b to run", run, stderr);
            var runId = RunId();
            run.Kill();
            await run.WaitForExitAsync();

            // b goes on without its coordinator, ends and is recorded by its worker; nothing enqueues d.
            await File.WriteAllTextAsync(go, "");
            await WaitForAsync(async () => (await ShowAsync(runId, db, dir.Path)).GetProperty("attempts").EnumerateArray()
                .Any(a => a.GetProperty("task").GetString() == "b" && a.GetProperty("state").GetString() == "succeeded"), "b to be recorded succeeded");
            await Task.Delay(1000);
            Assert.DoesNotContain(Lines(log), l => l.StartsWith('d'));
            Assert.Equal("running", (await ShowAsync(runId, db, dir.Path)).GetProperty("run").GetProperty("state").GetString());

            // kiln pipeline resume (docs/scale-out.md: in the resuming process) runs what is left: d, with b's output.
            var resume = await KilnCli.RunAsync(["pipeline", "resume", runId, "--db", db], dir.Path, timeout: TimeSpan.FromMinutes(3));
            Assert.True(resume.ExitCode == 0, resume.ToString());

            var lines = Lines(log);
            Assert.Equal(1, lines.Count(l => l == "a"));
            Assert.Equal(1, lines.Count(l => l == "c"));
            Assert.Equal(["b-start t-7 1"], lines.Where(l => l.StartsWith("b-start", StringComparison.Ordinal)));
            Assert.Equal(1, lines.Count(l => l == "b-end"));
            Assert.Equal(["d yes"], lines.Where(l => l.StartsWith('d')));
            var detail = await ShowAsync(runId, db, dir.Path);
            Assert.Equal("succeeded", detail.GetProperty("run").GetProperty("state").GetString());
            var attempts = detail.GetProperty("attempts").EnumerateArray().ToList();
            // One attempt per task: what had succeeded on the worker was not run again; d ran in the resuming process.
            foreach (var t in new[] { "a", "b", "c" })
            {
                var only = Assert.Single(attempts, a => a.GetProperty("task").GetString() == t);
                Assert.Equal("succeeded", only.GetProperty("state").GetString());
                Assert.StartsWith("kiln-worker:", only.GetProperty("owner").GetString(), StringComparison.Ordinal);
            }
            var d = Assert.Single(attempts, a => a.GetProperty("task").GetString() == "d");
            Assert.Equal("succeeded", d.GetProperty("state").GetString());
            Assert.False(d.TryGetProperty("owner", out var owner) && owner.GetString()?.StartsWith("kiln-worker:", StringComparison.Ordinal) == true);
        }
        finally
        {
            if (run is { HasExited: false }) run.Kill(entireProcessTree: true);
            if (worker is { HasExited: false }) worker.Kill(entireProcessTree: true);
        }
    }

    [Fact]
    public async Task A_run_on_a_database_workers_cannot_share_is_refused_in_one_line_before_anything_is_stored()
    {
        using var dir = new TempDir("kiln-dist-pipe-bad");
        var file = dir.File("p.yaml");
        await File.WriteAllTextAsync(file, "name: p\ntasks:\n  a:\n    kind: noop\n");
        var port = TestEnvironment.FreePort();

        var down = await KilnCli.RunAsync(["pipeline", "run", file, "--on", $"postgresql://postgres@127.0.0.1:{port}/kiln"], dir.Path);
        Assert.Equal(1, down.ExitCode);
        Assert.StartsWith($"error: postgresql://127.0.0.1:{port}/kiln: cannot connect", down.StdErr, StringComparison.Ordinal);
        Assert.Equal("", down.StdOut); // no run id: no run was created

        var sqlite = await KilnCli.RunAsync(["pipeline", "run", file, "--on", dir.File("kiln.db")], dir.Path);
        Assert.Equal(1, sqlite.ExitCode);
        Assert.Contains("--on", sqlite.StdErr, StringComparison.Ordinal);
        Assert.Contains("workers share their jobs through PostgreSQL; give a postgresql:// URI", sqlite.StdErr, StringComparison.Ordinal);
        Assert.False(File.Exists(dir.File("kiln.db")));
        Assert.False(Directory.Exists(dir.File(".kiln")));

        await using var database = await TestDatabase.CreateAsync("kiln_workers");

        var (db, name) = (database.Uri, database.Name);
        var both = await KilnCli.RunAsync(["pipeline", "run", file, "--on", db, "--db", dir.File("other.db")], dir.Path);
        Assert.Equal(1, both.ExitCode);
        Assert.Contains("a distributed run is stored in the database its workers use; give only --on", both.StdErr, StringComparison.Ordinal);
        Assert.Equal("", both.StdOut);
    }

    [Fact]
    public async Task Cancelling_a_distributed_run_stops_its_task_on_the_worker()
    {
        using var dir = new TempDir("kiln-dist-cancel");
        await using var database = await TestDatabase.CreateAsync("kiln_workers");
        var (db, name) = (database.Uri, database.Name);
        var started = dir.File("started");
        var file = dir.File("slow.yaml");
        await File.WriteAllTextAsync(file, $"""
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
        Process? worker = null;
        Process? run = null;
        try
        {
            worker = await WorkerFixture.StartWorkerAsync(db, dir.Path, "--queues", "pipelines", "--concurrency", "1");
            run = KilnCli.Start(["pipeline", "run", file, "--on", db], dir.Path);
            var stdout = new StringBuilder();
            var stderr = new StringBuilder();
            run.OutputDataReceived += (_, e) => { lock (stdout) stdout.AppendLine(e.Data); };
            run.ErrorDataReceived += (_, e) => { lock (stderr) stderr.AppendLine(e.Data); };
            await WaitForAsync(() => Task.FromResult(File.Exists(started) && stdout.ToString().Trim().Length > 0), "the task to start on the worker", run);
            var runId = stdout.ToString().Trim();
            Assert.NotEmpty(ProcessesWith($"KILN_RUN_ID={runId}", "KILN_TASK=wait"));

            var cancel = await KilnCli.RunAsync(["pipeline", "cancel", runId, "--db", db], dir.Path);
            Assert.True(cancel.ExitCode == 0, cancel.ToString());
            using (var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60))) await run.WaitForExitAsync(cts.Token);
            Assert.True(run.ExitCode == 130, $"kiln pipeline run exited {run.ExitCode}, not 130:\n{stderr}");
            Assert.Empty(ProcessesWith($"KILN_RUN_ID={runId}", "KILN_TASK=wait")); // the worker killed the task's group

            var show = await ShowAsync(runId, db, dir.Path);
            Assert.Equal("cancelled", show.GetProperty("run").GetProperty("state").GetString());
            var states = show.GetProperty("tasks").EnumerateArray().ToDictionary(t => t.GetProperty("task").GetString()!, t => t.GetProperty("state").GetString());
            Assert.Equal("cancelled", states["wait"]);
            Assert.Equal("cancelled", states["after"]);
            var attempt = Assert.Single(show.GetProperty("attempts").EnumerateArray());
            Assert.Equal("cancelled", attempt.GetProperty("state").GetString());
            Assert.Equal($"kiln-worker:{Environment.MachineName}:{worker.Id}", attempt.GetProperty("owner").GetString());
        }
        finally
        {
            if (run is { HasExited: false }) run.Kill(entireProcessTree: true);
            if (worker is { HasExited: false }) worker.Kill(entireProcessTree: true);
        }
    }

    [Fact]
    public async Task A_schedule_started_with_on_runs_its_cron_runs_on_a_worker()
    {
        using var dir = new TempDir("kiln-dist-schedule");
        await using var database = await TestDatabase.CreateAsync("kiln_workers");
        var (db, name) = (database.Uri, database.Name);
        var ticks = dir.File("ticks.txt");
        var file = dir.File("tick.yaml");
        // A seconds-level cron (six fields): a run every 2 s, so the test sees runs fire within its time.
        await File.WriteAllTextAsync(file, $$$"""
            name: tick
            triggers:
              - cron: "*/2 * * * * *"
            tasks:
              first:
                kind: shell
                command: echo "token=$KILN_RUN_ID" >> "$KILN_OUTPUT"
              second:
                kind: shell
                depends_on: [first]
                command: echo "{{ run.scheduled_time }} {{ tasks.first.outputs.token }}" >> {{{ticks}}}
            """);
        Process? worker = null;
        Process? scheduler = null;
        try
        {
            worker = await WorkerFixture.StartWorkerAsync(db, dir.Path, "--queues", "pipelines", "--concurrency", "1");
            var workerName = $"kiln-worker:{Environment.MachineName}:{worker.Id}";
            scheduler = KilnCli.Start(["pipeline", "schedule", file, "--on", db], dir.Path);
            var stdout = new StringBuilder();
            var stderr = new StringBuilder();
            scheduler.OutputDataReceived += (_, e) => { if (e.Data is { Length: > 0 } l) lock (stdout) stdout.AppendLine(l); };
            scheduler.ErrorDataReceived += (_, e) => { lock (stderr) stderr.AppendLine(e.Data); };
            string[] RunIds() { lock (stdout) return stdout.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries); }

            // Two scheduled runs went through the worker to the end.
            var done = new List<JsonElement>();
            await WaitForAsync(async () =>
            {
                done.Clear();
                foreach (var id in RunIds())
                {
                    var show = await ShowAsync(id, db, dir.Path);
                    if (show.GetProperty("run").GetProperty("state").GetString() == "succeeded") done.Add(show);
                }
                return done.Count >= 2;
            }, "two scheduled runs to succeed", scheduler, stderr);

            foreach (var show in done)
            {
                var run = show.GetProperty("run");
                var runId = run.GetProperty("run_id").GetString()!;
                Assert.Equal("schedule", run.GetProperty("trigger").GetString());
                var attempts = show.GetProperty("attempts").EnumerateArray().ToList();
                Assert.Equal(2, attempts.Count);
                Assert.All(attempts, a =>
                {
                    Assert.Equal("succeeded", a.GetProperty("state").GetString());
                    Assert.Equal(workerName, a.GetProperty("owner").GetString()); // run by the worker, not the scheduler's process
                });
                // The second task ran with the first's output (resolved by the scheduler's engine, carried to the worker).
                Assert.Contains(Lines(ticks), l => l.EndsWith(" " + runId, StringComparison.Ordinal));
            }
            var times = Lines(ticks).Select(l => DateTimeOffset.Parse(l.Split(' ')[0], CultureInfo.InvariantCulture)).ToList();
            Assert.All(times, t => Assert.Equal(0, t.Second % 2)); // each run for its own cron occurrence
            Assert.Equal(times.Count, times.Distinct().Count());
        }
        finally
        {
            if (scheduler is { HasExited: false }) scheduler.Kill(entireProcessTree: true);
            if (worker is { HasExited: false }) worker.Kill(entireProcessTree: true);
        }
    }

    /// <summary>
    /// The diamond both kill tests run: a feeds an output (<paramref name="token"/>) to b, a template the coordinator
    /// resolves; b logs its attempt, then waits for the test's go file; c runs beside b; d joins them.
    /// </summary>
    private static Task WriteDiamondAsync(string file, string name, string token, string log, string go) =>
        File.WriteAllTextAsync(file, $$$"""
            name: {{{name}}}
            tasks:
              a:
                kind: shell
                command: echo a >> {{{log}}}; echo "token={{{token}}}" >> "$KILN_OUTPUT"
              b:
                kind: shell
                depends_on: [a]
                command: |
                  echo "b-start {{ tasks.a.outputs.token }} $KILN_ATTEMPT" >> {{{log}}}
                  while [ ! -f {{{go}}} ]; do echo tick >> {{{log}}}; sleep 0.2; done
                  echo b-end >> {{{log}}}
                  echo "done=yes" >> "$KILN_OUTPUT"
              c:
                kind: shell
                depends_on: [a]
                command: echo c >> {{{log}}}
              d:
                kind: shell
                depends_on: [b, c]
                command: echo "d {{ tasks.b.outputs.done }}" >> {{{log}}}
            """);
}
