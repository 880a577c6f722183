// Scheduling overhead of the local executor: no-op tasks, every state change, attempt and output
// persisted in SQLite (WAL), as `kiln pipeline run` does.
//   dotnet run -c Release --project bench/Kiln.Bench.Pipelines -- [tasks=1000] [concurrency=8] [repeats=3]
// Per-task overhead through workers (kiln pipeline run --on) against the local path, on PostgreSQL:
//   KILN_TEST_POSTGRES=... dotnet run -c Release --project bench/Kiln.Bench.Pipelines -- workers [tasks=30] [rounds=7] [queue-poll-ms=200]
using System.Diagnostics;
using System.Globalization;
using System.Text;
using Kiln.Pipelines.Definition;
using Kiln.Pipelines.Execution;
using Kiln.Pipelines.State;
using Kiln.Pipelines.Tasks;

if (args.Length > 0 && args[0] == "workers")
{
    await WorkersBench.RunAsync(args[1..]);
    return;
}

var sizes = args.Length > 0 ? args[0].Split(',').Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray() : [1_000, 10_000];
var concurrency = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 8;
var repeats = args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 3;
var kinds = TaskKindRegistry.CreateDefault();

Console.WriteLine($"machine: {Environment.ProcessorCount} cores, {System.Runtime.InteropServices.RuntimeInformation.OSDescription}, load {File.ReadAllText("/proc/loadavg").Split(' ')[0]}");
Console.WriteLine($"{"tasks",7} {"yaml load",10} {"run (best)",11} {"ms/task",8} {"tasks/s",8} {"rows",8}");

foreach (var n in sizes)
{
    // A layered DAG: layers of 50 tasks, each depending on two tasks of the layer before.
    var yaml = new StringBuilder($"name: bench-{n}\nmax_concurrency: {concurrency}\ntasks:\n");
    const int Width = 50;
    for (var i = 0; i < n; i++)
    {
        yaml.Append(CultureInfo.InvariantCulture, $"  t{i}:\n    kind: noop\n");
        var layer = i / Width;
        if (layer > 0)
        {
            var a = (layer - 1) * Width + i % Width;
            var b = (layer - 1) * Width + (i + 1) % Width;
            yaml.Append(CultureInfo.InvariantCulture, $"    depends_on: [t{a}, t{b}]\n");
        }
    }
    var text = yaml.ToString();
    var load = Stopwatch.StartNew();
    var def = PipelineLoader.Load(text, kinds, $"bench-{n}.yaml");
    load.Stop();

    var best = TimeSpan.MaxValue;
    long rows = 0;
    for (var r = 0; r < repeats; r++)
    {
        var dir = Path.Combine(Path.GetTempPath(), $"kiln-bench-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        try
        {
            await using var store = PipelineStores.Create(Path.Combine(dir, "kiln.db"));
            await store.InitializeAsync();
            await using var engine = new PipelineEngine(store, kinds);
            var sw = Stopwatch.StartNew();
            var (run, state) = await engine.RunAsync(def);
            sw.Stop();
            if (state != RunState.Succeeded) throw new InvalidOperationException($"run {run.RunId} ended {state}");
            var attempts = await store.GetAttemptsAsync(run.RunId);
            var tasks = await store.GetTasksAsync(run.RunId);
            if (attempts.Count != n || tasks.Any(t => t.State != TaskState.Succeeded)) throw new InvalidOperationException("not every task was persisted as succeeded");
            rows = attempts.Count + tasks.Count;
            if (sw.Elapsed < best) best = sw.Elapsed;
        }
        finally
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            try { Directory.Delete(dir, recursive: true); } catch (IOException) { }
        }
    }
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"{n,7} {load.Elapsed.TotalMilliseconds,8:0} ms {best.TotalMilliseconds,8:0} ms {best.TotalMilliseconds / n,8:0.000} {n / best.TotalSeconds,8:0} {rows,8}"));
}
