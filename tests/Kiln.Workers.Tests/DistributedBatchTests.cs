using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Kiln.Testing;
using Npgsql;

namespace Kiln.Workers.Tests;

/// <summary>The real CLI: kiln worker processes on the test PostgreSQL and kiln batch --distributed.</summary>
public class DistributedBatchTests(WorkerFixture fixture) : IClassFixture<WorkerFixture>
{
    private static async Task<long> ScalarAsync(string database, string sql)
    {
        await using var c = new NpgsqlConnection(WorkerFixture.ConnectionString(database));
        await c.OpenAsync();
        await using var cmd = new NpgsqlCommand(sql, c);
        return Convert.ToInt64(await cmd.ExecuteScalarAsync() ?? 0L, CultureInfo.InvariantCulture);
    }

    /// <summary>A job in the Processing state (the given one, or any): its id, state id and the worker's pid.</summary>
    private static async Task<(long Job, long State, int Pid)?> ProcessingAsync(string database, long? job = null)
    {
        await using var c = new NpgsqlConnection(WorkerFixture.ConnectionString(database));
        await c.OpenAsync();
        await using var cmd = new NpgsqlCommand(
            "SELECT j.id, s.id, s.data FROM hangfire.job j JOIN hangfire.state s ON s.id = j.stateid " +
            "WHERE j.statename = 'Processing' AND (@job IS NULL OR j.id = @job) LIMIT 1", c);
        cmd.Parameters.Add(new NpgsqlParameter<long?>("job", NpgsqlTypes.NpgsqlDbType.Bigint) { TypedValue = job });
        await using var r = await cmd.ExecuteReaderAsync();
        if (!await r.ReadAsync()) return null;
        var server = JsonDocument.Parse(r.GetString(2)).RootElement.GetProperty("ServerId").GetString()!;
        return (r.GetInt64(0), r.GetInt64(1), int.Parse(server.Split(':')[2], CultureInfo.InvariantCulture));
    }

    private static void Signal(int pid, string signal)
    {
        using var kill = Process.Start("kill", ["-" + signal, pid.ToString(CultureInfo.InvariantCulture)]);
        kill.WaitForExit();
    }

    /// <summary>
    /// Waits until a partition is being processed and at least one has finished, then freezes (SIGSTOP) the worker
    /// processing one (its pid is in the server id Hangfire records with the Processing state) and returns it, for the
    /// caller to kill -9. The worker is frozen before the job's state is read again, so the partition cannot finish
    /// between the choice and the kill: on a fast machine a partition takes less than the polling interval.
    /// </summary>
    private static async Task<Process> FreezeWorkerMidPartitionAsync(string name, List<Process> workers, Process batch)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(3);
        while (true)
        {
            Assert.True(DateTime.UtcNow < deadline, "no partition was processed in time");
            Assert.False(batch.HasExited, "kiln batch ended before a worker could be killed");
            await Task.Delay(20);
            try
            {
                if (await ScalarAsync(name, "SELECT count(*) FROM hangfire.job WHERE statename = 'Succeeded'") < 1) continue;
                if (await ProcessingAsync(name) is not var (job, state, pid)) continue;
                var worker = workers.Single(w => w.Id == pid);
                Signal(pid, "STOP");
                await Task.Delay(300); // a state change the worker sent before it stopped lands
                if (await ProcessingAsync(name, job) is var (_, stillState, _) && stillState == state) return worker;
                Signal(pid, "CONT");
            }
            catch (PostgresException)
            {
                // The hangfire schema is not there yet.
            }
        }
    }

    [Fact]
    public async Task Three_workers_one_killed_mid_run_score_every_row_exactly_once()
    {
        using var dir = new TempDir("kiln-dist");
        await using var database = await TestDatabase.CreateAsync("kiln_workers");
        var (db, name) = (database.Uri, database.Name);
        var workers = new List<Process>();
        Process? batch = null;
        try
        {
            for (var i = 0; i < 3; i++) workers.Add(await WorkerFixture.StartWorkerAsync(db, dir.Path, "--concurrency", "1"));
            var output = dir.File("out");
            batch = KilnCli.Start(["batch", "--model", fixture.Model, "--input", fixture.Csv, "--output", output, "--keep", "transaction_id",
                "--distributed", "--db", db, "--partitions", "12", "--json"], dir.Path);
            var stdout = new System.Text.StringBuilder();
            batch.OutputDataReceived += (_, e) => { lock (stdout) stdout.AppendLine(e.Data); };

            var victim = await FreezeWorkerMidPartitionAsync(name, workers, batch);
            victim.Kill(); // SIGKILL to the worker alone
            await victim.WaitForExitAsync();

            using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(5));
            try
            {
                await batch.WaitForExitAsync(cts.Token);
            }
            catch (OperationCanceledException)
            {
                await using var c = new NpgsqlConnection(WorkerFixture.ConnectionString(name));
                await c.OpenAsync();
                await using var cmd = new NpgsqlCommand("SELECT string_agg(j.id || ' ' || j.statename || ' ' || coalesce(s.data::text, ''), E'\n') FROM hangfire.job j JOIN hangfire.state s ON s.id = j.stateid", c);
                await using var locks = new NpgsqlCommand("SELECT string_agg(resource || ' ' || acquired, ', ') FROM hangfire.lock", c);
                Assert.Fail($"kiln batch did not finish after the kill of worker {victim.Id}; jobs:\n{await cmd.ExecuteScalarAsync()}\nlocks: {await locks.ExecuteScalarAsync()}");
            }
            Assert.Equal(0, batch.ExitCode);

            // Every input row exactly once (the oracle: the ids r0..rN-1 the fixture wrote).
            var ids = await WorkerFixture.OutputIdsAsync(output);
            Assert.Equal(fixture.Rows, ids.Count);
            Assert.Equal(fixture.Rows, ids.Distinct(StringComparer.Ordinal).Count());
            Assert.Empty(Directory.GetFiles(output, ".part-*"));
            using var manifest = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(output, "_manifest.json")));
            Assert.True(manifest.RootElement.GetProperty("complete").GetBoolean());
            Assert.Equal(fixture.Rows, manifest.RootElement.GetProperty("rows").GetInt64());
            Assert.Equal(12, manifest.RootElement.GetProperty("parts").GetArrayLength());

            // The killed worker's partition ran twice (Processing recorded twice), and still left one copy.
            var reprocessed = await ScalarAsync(name,
                "SELECT count(*) FROM (SELECT jobid FROM hangfire.state WHERE name = 'Processing' GROUP BY jobid HAVING count(*) > 1) t");
            Assert.True(reprocessed >= 1, "no partition was run a second time after the kill");
            string json;
            lock (stdout) json = stdout.ToString().Trim();
            using var result = JsonDocument.Parse(json);
            Assert.Equal(fixture.Rows, result.RootElement.GetProperty("rows").GetInt64());
            Assert.True(result.RootElement.GetProperty("partitions_by_worker").EnumerateObject().Count() >= 2, json);
        }
        finally
        {
            if (batch is { HasExited: false }) batch.Kill(entireProcessTree: true);
            foreach (var w in workers) if (!w.HasExited) w.Kill(entireProcessTree: true);
        }
    }

    [Fact]
    public async Task A_partition_whose_input_vanished_fails_the_job_in_one_line_and_leaves_no_output()
    {
        using var dir = new TempDir("kiln-dist-vanish");
        await using var database = await TestDatabase.CreateAsync("kiln_workers");
        var (db, name) = (database.Uri, database.Name);
        var input = dir.Path + "/in";
        Directory.CreateDirectory(input);
        File.Copy(fixture.Csv, Path.Combine(input, "a.csv"));
        File.Copy(fixture.Csv, Path.Combine(input, "b.csv"));
        var output = dir.File("out");
        Process? worker = null;
        var batch = KilnCli.Start(["batch", "--model", fixture.Model, "--input", input, "--output", output, "--keep", "transaction_id",
            "--distributed", "--db", db, "--partitions", "4"], dir.Path);
        var err = new System.Text.StringBuilder();
        batch.ErrorDataReceived += (_, e) => { lock (err) err.AppendLine(e.Data); };
        try
        {
            // The job is planned and its partitions queued with no worker running; then one input file goes.
            var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(2);
            while (true)
            {
                Assert.True(DateTime.UtcNow < deadline, "the partitions were not queued in time");
                Assert.False(batch.HasExited, "kiln batch ended early");
                await Task.Delay(100);
                try
                {
                    if (await ScalarAsync(name, "SELECT count(*) FROM hangfire.job WHERE statename = 'Enqueued'") >= 4) break;
                }
                catch (PostgresException)
                {
                }
            }
            File.Delete(Path.Combine(input, "b.csv"));
            worker = await WorkerFixture.StartWorkerAsync(db, dir.Path, "--concurrency", "1");
            using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(3));
            await batch.WaitForExitAsync(cts.Token);
            Assert.Equal(1, batch.ExitCode);
            string text;
            lock (err) text = err.ToString();
            var errors = text.Split('\n').Where(l => l.StartsWith("error:", StringComparison.Ordinal)).ToList();
            Assert.Single(errors);
            Assert.Matches(@"^error: partition 1-\d \(bytes \d+-\d+\) failed: .*b\.csv: the input file of partition 1-\d \(bytes \d+-\d+\) has vanished since the job was planned", errors[0]);
            // No committed partial output: no manifest, no part (the parts of a.csv committed before the failure are removed).
            Assert.False(File.Exists(Path.Combine(output, "_manifest.json")));
            Assert.Empty(Directory.Exists(output) ? Directory.GetFiles(output, "*part-*") : []);
        }
        finally
        {
            if (!batch.HasExited) batch.Kill(entireProcessTree: true);
            if (worker is { HasExited: false }) worker.Kill(entireProcessTree: true);
        }
    }

    [Fact]
    public async Task An_unreachable_database_is_one_line_and_nothing_is_written()
    {
        using var dir = new TempDir("kiln-dist-bad");
        var port = TestEnvironment.FreePort();
        var output = dir.File("out");
        var r = await KilnCli.RunAsync(["batch", "--model", fixture.Model, "--input", fixture.Csv, "--output", output,
            "--distributed", "--db", $"postgresql://postgres@127.0.0.1:{port}/kiln"], dir.Path);
        Assert.Equal(1, r.ExitCode);
        Assert.Matches($@"^error: postgresql://127\.0\.0\.1:{port}/kiln: cannot connect \(.+\)\s*\n\(run with --verbose for detail\)\s*$", r.StdErr);
        Assert.False(Directory.Exists(output));

        var w = await KilnCli.RunAsync(["worker", "--db", $"postgresql://postgres@127.0.0.1:{port}/kiln"], dir.Path);
        Assert.Equal(1, w.ExitCode);
        Assert.StartsWith($"error: postgresql://127.0.0.1:{port}/kiln: cannot connect", w.StdErr);

        var sqlite = await KilnCli.RunAsync(["worker", "--db", dir.File("kiln.db")], dir.Path);
        Assert.Equal(1, sqlite.ExitCode);
        Assert.Contains("workers share their jobs through PostgreSQL; give a postgresql:// URI", sqlite.StdErr);
    }

    [Fact]
    public async Task A_worker_stops_on_sigterm_after_its_running_partition_and_the_job_still_completes()
    {
        using var dir = new TempDir("kiln-dist-term");
        await using var database = await TestDatabase.CreateAsync("kiln_workers");
        var (db, name) = (database.Uri, database.Name);
        var output = dir.File("out");
        Process? first = null, second = null, batch = null;
        try
        {
            first = await WorkerFixture.StartWorkerAsync(db, dir.Path, "--concurrency", "1", "--shutdown-timeout", "2m");
            batch = KilnCli.Start(["batch", "--model", fixture.Model, "--input", fixture.Csv, "--output", output, "--keep", "transaction_id",
                "--distributed", "--db", db, "--partitions", "4"], dir.Path);
            // Freeze the worker (SIGSTOP) while it holds a partition and another waits, so neither can finish
            // between the check and the SIGTERM; the TERM is delivered when it continues.
            var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(2);
            long succeededBefore;
            while (true)
            {
                Assert.True(DateTime.UtcNow < deadline, "no partition started in time");
                Assert.False(batch.HasExited, "kiln batch ended before the worker could be stopped");
                await Task.Delay(20);
                var stopped = false;
                try
                {
                    if (await ProcessingAsync(name) is null) continue;
                    Signal(first.Id, "STOP");
                    stopped = true;
                    await Task.Delay(300); // a state change the worker sent before it stopped lands
                    if (await ProcessingAsync(name) is not null
                        && await ScalarAsync(name, "SELECT count(*) FROM hangfire.job WHERE statename = 'Enqueued'") >= 1)
                    {
                        succeededBefore = await ScalarAsync(name, "SELECT count(*) FROM hangfire.job WHERE statename = 'Succeeded'");
                        stopped = false; // stays frozen until the TERM below
                        break;
                    }
                }
                catch (PostgresException)
                {
                    // The hangfire schema is not there yet.
                }
                finally
                {
                    if (stopped) Signal(first.Id, "CONT");
                }
            }
            Signal(first.Id, "TERM");
            Signal(first.Id, "CONT");
            using (var cts = new CancellationTokenSource(TimeSpan.FromMinutes(3))) await first.WaitForExitAsync(cts.Token);
            Assert.Equal(0, first.ExitCode);
            // The partition it was running finished before it stopped (it was not handed back half done).
            Assert.True(await ScalarAsync(name, "SELECT count(*) FROM hangfire.job WHERE statename = 'Succeeded'") > succeededBefore);
            Assert.Equal(0, await ScalarAsync(name, "SELECT count(*) FROM hangfire.job WHERE statename = 'Processing'"));
            Assert.False(batch.HasExited);

            second = await WorkerFixture.StartWorkerAsync(db, dir.Path, "--concurrency", "2");
            using (var cts = new CancellationTokenSource(TimeSpan.FromMinutes(3))) await batch.WaitForExitAsync(cts.Token);
            Assert.Equal(0, batch.ExitCode);
            var ids = await WorkerFixture.OutputIdsAsync(output);
            Assert.Equal(fixture.Rows, ids.Distinct(StringComparer.Ordinal).Count());
            Assert.Equal(fixture.Rows, ids.Count);
        }
        finally
        {
            foreach (var p in new[] { first, second, batch }) if (p is { HasExited: false }) p.Kill(entireProcessTree: true);
        }
    }

    [Fact]
    public async Task Workers_commit_their_parts_to_a_bucket_once_and_the_coordinator_writes_the_manifest()
    {
        using var dir = new TempDir("kiln-dist-s3");
        await using var s3 = await S3rver.StartAsync("kiln");
        var env = new Dictionary<string, string>(s3.Environment);
        await using var database = await TestDatabase.CreateAsync("kiln_workers");
        var (db, name) = (database.Uri, database.Name);
        var workers = new List<Process>();
        try
        {
            // Refused before anything is enqueued: a bucket that does not exist, and a prefix that already holds objects.
            var missing = await KilnCli.RunAsync(["batch", "--model", fixture.Model, "--input", fixture.Csv, "--output", "s3://no-such-bucket/scored",
                "--keep", "transaction_id", "--distributed", "--db", db], dir.Path, env);
            Assert.Equal(1, missing.ExitCode);
            Assert.Contains("bucket 'no-such-bucket' does not exist", missing.StdErr, StringComparison.Ordinal);
            var settings = Kiln.Storage.Objects.S3Settings.FromVariables(k => env.GetValueOrDefault(k));
            using (var taken = new Kiln.Storage.Objects.S3Storage(new Kiln.Storage.Objects.S3Location("kiln", "taken"), settings))
                await taken.PutAsync("old.txt", new MemoryStream("x"u8.ToArray()), long.MaxValue, () => new InvalidOperationException());
            var notEmpty = await KilnCli.RunAsync(["batch", "--model", fixture.Model, "--input", fixture.Csv, "--output", "s3://kiln/taken",
                "--keep", "transaction_id", "--distributed", "--db", db], dir.Path, env);
            Assert.Equal(1, notEmpty.ExitCode);
            Assert.Contains("--output s3://kiln/taken: the prefix is not empty", notEmpty.StdErr, StringComparison.Ordinal);
            Assert.Equal(0, await ScalarAsync(name, "SELECT count(*) FROM hangfire.job"));

            for (var i = 0; i < 2; i++) workers.Add(await WorkerFixture.StartWorkerAsync(db, dir.Path, env, "--queues", "batch", "--concurrency", "1"));
            var batch = await KilnCli.RunAsync(["batch", "--model", fixture.Model, "--input", fixture.Csv, "--output", "s3://kiln/scored/job1",
                "--keep", "transaction_id", "--distributed", "--db", db, "--partitions", "4", "--json"], dir.Path, env);
            Assert.True(batch.ExitCode == 0, batch.ToString());
            using (var result = JsonDocument.Parse(batch.StdOut))
            {
                Assert.Equal("s3://kiln/scored/job1", result.RootElement.GetProperty("output").GetString());
                Assert.Equal(fixture.Rows, result.RootElement.GetProperty("rows").GetInt64());
            }

            using var scored = new Kiln.Storage.Objects.S3Storage(new Kiln.Storage.Objects.S3Location("kiln", "scored/job1"), settings);
            async Task<List<string>> KeysAsync() => [.. (await scored.ListAllAsync("")).Select(o => o.Key).Order(StringComparer.Ordinal)];
            // Only the committed parts and the manifest: nothing temporary is ever uploaded.
            List<string> expected = ["_manifest.json", "part-00000-00000.parquet", "part-00000-00001.parquet", "part-00000-00002.parquet", "part-00000-00003.parquet"];
            Assert.Equal(expected, await KeysAsync());
            await using (var m = (await scored.OpenReadAsync("_manifest.json"))!)
            {
                var manifest = JsonDocument.Parse(m).RootElement;
                Assert.True(manifest.GetProperty("complete").GetBoolean());
                Assert.Equal(fixture.Rows, manifest.GetProperty("rows").GetInt64());
                Assert.Equal(4, manifest.GetProperty("parts").GetArrayLength());
            }
            await AssertEveryRowOnceAsync(scored, dir.File("download-1"));

            // A partition run a second time (its job requeued, as from the dashboard) uploads the same key: one copy.
            var storage = await WorkerStorage.OpenAsync(db);
            var jobId = (await ScalarAsync(name, "SELECT min(id) FROM hangfire.job")).ToString(CultureInfo.InvariantCulture);
            Assert.True(Hangfire.BackgroundJobClientExtensions.Requeue(new Hangfire.BackgroundJobClient(storage), jobId));
            var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(2);
            while (await ScalarAsync(name, $"SELECT count(*) FROM hangfire.state WHERE jobid = {jobId} AND name = 'Succeeded'") < 2)
            {
                Assert.True(DateTime.UtcNow < deadline, "the requeued partition did not run again");
                await Task.Delay(100);
            }
            Assert.Equal(expected, await KeysAsync());
            await AssertEveryRowOnceAsync(scored, dir.File("download-2"));
        }
        finally
        {
            foreach (var w in workers) if (!w.HasExited) w.Kill(entireProcessTree: true);
        }
    }

    [Fact]
    public async Task A_worker_killed_mid_partition_of_a_bucket_output_leaves_every_row_once_in_the_bucket()
    {
        using var dir = new TempDir("kiln-dist-s3-kill");
        await using var s3 = await S3rver.StartAsync("kiln");
        var env = new Dictionary<string, string>(s3.Environment);
        await using var database = await TestDatabase.CreateAsync("kiln_workers");
        var (db, name) = (database.Uri, database.Name);
        var workers = new List<Process>();
        Process? batch = null;
        try
        {
            for (var i = 0; i < 2; i++) workers.Add(await WorkerFixture.StartWorkerAsync(db, dir.Path, env, "--queues", "batch", "--concurrency", "1"));
            batch = KilnCli.Start(["batch", "--model", fixture.Model, "--input", fixture.Csv, "--output", "s3://kiln/scored/killed",
                "--keep", "transaction_id", "--distributed", "--db", db, "--partitions", "8", "--json"], dir.Path, env);
            var victim = await FreezeWorkerMidPartitionAsync(name, workers, batch);
            victim.Kill(); // SIGKILL, mid-partition: its part was being written to a local file, never uploaded
            await victim.WaitForExitAsync();

            using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(5));
            await batch.WaitForExitAsync(cts.Token);
            Assert.Equal(0, batch.ExitCode);

            // The killed worker's partition ran a second time on the other worker.
            var reprocessed = await ScalarAsync(name,
                "SELECT count(*) FROM (SELECT jobid FROM hangfire.state WHERE name = 'Processing' GROUP BY jobid HAVING count(*) > 1) t");
            Assert.True(reprocessed >= 1, "no partition was run a second time after the kill");

            // The bucket holds the eight committed parts and the manifest, nothing else, and every input id once
            // (the oracle: the ids r0..rN-1 the fixture wrote).
            var settings = Kiln.Storage.Objects.S3Settings.FromVariables(k => env.GetValueOrDefault(k));
            using var scored = new Kiln.Storage.Objects.S3Storage(new Kiln.Storage.Objects.S3Location("kiln", "scored/killed"), settings);
            var keys = (await scored.ListAllAsync("")).Select(o => o.Key).Order(StringComparer.Ordinal).ToList();
            Assert.Equal(["_manifest.json", .. Enumerable.Range(0, 8).Select(i => $"part-00000-{i:00000}.parquet")], keys);
            await AssertEveryRowOnceAsync(scored, dir.File("download"));
        }
        finally
        {
            if (batch is { HasExited: false }) batch.Kill(entireProcessTree: true);
            foreach (var w in workers) if (!w.HasExited) w.Kill(entireProcessTree: true);
        }
    }

    [Fact]
    public async Task A_failed_partition_of_a_bucket_output_removes_its_staged_file_and_the_parts_already_uploaded()
    {
        using var dir = new TempDir("kiln-dist-s3-fail");
        await using var s3 = await S3rver.StartAsync("kiln");
        var env = new Dictionary<string, string>(s3.Environment);
        // The worker's staged parts go under its own TMPDIR, so what a failed attempt leaves there can be seen.
        var workerEnv = new Dictionary<string, string>(env) { ["TMPDIR"] = dir.File("worker-tmp") };
        Directory.CreateDirectory(dir.File("worker-tmp"));
        await using var database = await TestDatabase.CreateAsync("kiln_workers");
        var (db, name) = (database.Uri, database.Name);
        // Two files: a.csv is good; b.csv has a bad amount in its last line, after thousands of good rows.
        var input = dir.File("in");
        Directory.CreateDirectory(input);
        File.Copy(fixture.Csv, Path.Combine(input, "a.csv"));
        var lines = await File.ReadAllLinesAsync(fixture.Csv);
        var last = lines[^1].Split(',');
        last[1] = "not-a-number";
        await File.WriteAllLinesAsync(Path.Combine(input, "b.csv"), [.. lines[..^1], string.Join(',', last)]);
        Process? worker = null;
        var batch = KilnCli.Start(["batch", "--model", fixture.Model, "--input", input, "--output", "s3://kiln/scored/failed", "--keep", "transaction_id",
            "--distributed", "--db", db, "--partitions", "4", "--batch-rows", "500"], dir.Path, env);
        var err = new System.Text.StringBuilder();
        batch.ErrorDataReceived += (_, e) => { lock (err) err.AppendLine(e.Data); };
        try
        {
            // Every partition is queued before the one worker starts, so a.csv's partitions (queued first) run and
            // upload their parts before b.csv's last one fails.
            var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(2);
            while (true)
            {
                Assert.True(DateTime.UtcNow < deadline, "the partitions were not queued in time");
                Assert.False(batch.HasExited, "kiln batch ended early");
                await Task.Delay(100);
                try
                {
                    if (await ScalarAsync(name, "SELECT count(*) FROM hangfire.job WHERE statename = 'Enqueued'") >= 4) break;
                }
                catch (PostgresException)
                {
                }
            }
            worker = await WorkerFixture.StartWorkerAsync(db, dir.Path, workerEnv, "--queues", "batch", "--concurrency", "1");
            using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(3));
            await batch.WaitForExitAsync(cts.Token);
            Assert.Equal(1, batch.ExitCode);
            string text;
            lock (err) text = err.ToString();
            var errors = text.Split('\n').Where(l => l.StartsWith("error:", StringComparison.Ordinal)).ToList();
            Assert.Single(errors);
            Assert.Contains("not-a-number", errors[0], StringComparison.Ordinal);

            // Parts were uploaded before the failure (succeeded partitions commit theirs) and are gone now: no partial
            // output under the prefix, no manifest.
            Assert.True(await ScalarAsync(name, "SELECT count(*) FROM hangfire.state WHERE name = 'Succeeded'") >= 1, "no partition succeeded before the failure");
            var settings = Kiln.Storage.Objects.S3Settings.FromVariables(k => env.GetValueOrDefault(k));
            using var failed = new Kiln.Storage.Objects.S3Storage(new Kiln.Storage.Objects.S3Location("kiln", "scored/failed"), settings);
            Assert.Empty(await failed.ListAllAsync(""));
            // The failed attempt's staged part (written locally up to the bad row) is removed from the worker too.
            // (The runtime's own diagnostic sockets live in TMPDIR too; the sink stages under kiln-batch-s3-*.)
            Assert.Empty(Directory.GetDirectories(dir.File("worker-tmp"), "kiln-batch-s3-*"));
            Assert.Empty(Directory.GetFiles(dir.File("worker-tmp"), "*.tmp-*", SearchOption.AllDirectories));
        }
        finally
        {
            if (!batch.HasExited) batch.Kill(entireProcessTree: true);
            if (worker is { HasExited: false }) worker.Kill(entireProcessTree: true);
        }
    }

    /// <summary>Downloads the parts under <paramref name="scored"/> and checks every input id is there once (the oracle: the ids r0..rN-1 the fixture wrote).</summary>
    private async Task AssertEveryRowOnceAsync(Kiln.Storage.Objects.S3Storage scored, string local)
    {
        Directory.CreateDirectory(local);
        foreach (var o in await scored.ListAllAsync(""))
        {
            if (!o.Key.EndsWith(".parquet", StringComparison.Ordinal)) continue;
            await using var body = (await scored.OpenReadAsync(o.Key))!;
            await using var file = File.Create(Path.Combine(local, o.Key));
            await body.CopyToAsync(file);
        }
        var ids = await WorkerFixture.OutputIdsAsync(local);
        Assert.Equal(fixture.Rows, ids.Count);
        Assert.Equal(fixture.Rows, ids.Distinct(StringComparer.Ordinal).Count());
    }

    [Fact]
    public async Task A_worker_refuses_a_database_of_a_newer_kiln_in_one_line()
    {
        using var dir = new TempDir("kiln-dist-newer");
        await using var database = await TestDatabase.CreateAsync("kiln_workers");
        var (db, name) = (database.Uri, database.Name);
        // A newer Kiln has migrated the workers area one version past what this build knows.
        var first = await KilnCli.RunAsync(["worker", "--db", db, "--queues", "nope"], dir.Path); // creates kiln_schema, then refuses the queue
        Assert.Equal(1, first.ExitCode);
        var known = await ScalarAsync(name, "SELECT max(version) FROM kiln_schema WHERE area = 'workers'");
        await using (var c = new NpgsqlConnection(WorkerFixture.ConnectionString(name)))
        {
            await c.OpenAsync();
            await using var cmd = new NpgsqlCommand($"INSERT INTO kiln_schema (area, version, applied_at, note) VALUES ('workers', {known + 1}, '2030-01-01T00:00:00Z', 'a newer kiln')", c);
            await cmd.ExecuteNonQueryAsync();
        }
        var w = await KilnCli.RunAsync(["worker", "--db", db], dir.Path, timeout: TimeSpan.FromMinutes(2));
        Assert.Equal(1, w.ExitCode);
        var line = Assert.Single(w.StdErr.Split('\n', StringSplitOptions.RemoveEmptyEntries), l => l.StartsWith("error:", StringComparison.Ordinal));
        Assert.EndsWith($"workers schema version {known + 1} is newer than this kiln (knows {known}); upgrade kiln", line.Trim());
        Assert.Equal("", w.StdOut); // it never started: no worker name printed

        // The coordinator of a distributed pipeline run refuses it the same way, before a run is stored.
        await File.WriteAllTextAsync(dir.File("p.yaml"), "name: p\ntasks:\n  a:\n    kind: noop\n");
        var run = await KilnCli.RunAsync(["pipeline", "run", dir.File("p.yaml"), "--on", db], dir.Path);
        Assert.Equal(1, run.ExitCode);
        Assert.Contains("newer than this kiln", run.StdErr, StringComparison.Ordinal);
        Assert.Equal("", run.StdOut);
    }
}
