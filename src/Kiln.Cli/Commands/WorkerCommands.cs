using System.CommandLine;
using System.Runtime.InteropServices;
using Kiln.Core;
using Kiln.Workers;
using Kiln.Workers.Batch;

namespace Kiln.Cli.Commands;

/// <summary><c>kiln worker</c>: a Hangfire server that runs queued batch partitions (and pipeline tasks) from Kiln's PostgreSQL.</summary>
internal static class WorkerCommands
{
    public static Command Create()
    {
        var db = new Option<string?>("--db") { Description = "Kiln's PostgreSQL database (postgresql://user@host:port/db), where the jobs are queued. Default: $KILN_TRACKING_URI." };
        var queues = new Option<string[]>("--queues") { Description = "Queues to serve, comma-separated, in priority order: batch, pipelines.", AllowMultipleArgumentsPerToken = true };
        var concurrency = new Option<int>("--concurrency") { Description = "Jobs run at once by this process.", DefaultValueFactory = _ => Math.Max(1, Environment.ProcessorCount) };
        var invisibility = new Option<string>("--invisibility-timeout") { Description = "How soon a job of a killed worker is run by another (a duration: 30s, 5m). Running jobs renew it.", DefaultValueFactory = _ => "30s" };
        var shutdown = new Option<string>("--shutdown-timeout") { Description = "On SIGTERM, how long running jobs may go on before they are handed back to the queue.", DefaultValueFactory = _ => "30s" };
        var cmd = new Command("worker", "Run queued work (distributed batch partitions) from Kiln's PostgreSQL until SIGTERM or Ctrl+C; start any number, on any machines.");
        foreach (var o in new Option[] { db, queues, concurrency, invisibility, shutdown }) cmd.Options.Add(o);
        cmd.SetHandler(async (parse, ct) =>
        {
            var location = parse.GetValue(db) ?? Environment.GetEnvironmentVariable("KILN_TRACKING_URI")
                ?? throw new KilnException("--db: give Kiln's PostgreSQL database (postgresql://…), or set KILN_TRACKING_URI");
            var names = (parse.GetValue(queues) ?? []).SelectMany(q => q.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)).ToList();
            var storage = await WorkerStorage.OpenAsync(location, new WorkerStorageOptions
            {
                InvisibilityTimeout = Duration.Parse(parse.GetValue(invisibility)!, "--invisibility-timeout"),
            }, ct);
            var options = new WorkerOptions
            {
                Queues = names.Count > 0 ? names : KilnQueues.All,
                Concurrency = parse.GetValue(concurrency),
                ShutdownTimeout = Duration.Parse(parse.GetValue(shutdown)!, "--shutdown-timeout"),
            };
            WorkerIdentity.Name = options.Name;
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
            // SIGTERM (docker stop, Kubernetes) stops like Ctrl+C: running jobs finish or are handed back.
            using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; stop.Cancel(); });
            await KilnWorker.RunAsync(storage, options, name =>
            {
                Console.Out.WriteLine(name);
                Console.Out.Flush();
                Console.Error.WriteLine($"kiln worker {name}: serving {string.Join(", ", options.Queues)} with {options.Concurrency} workers (Ctrl+C or SIGTERM to stop)");
            }, stop.Token);
            Console.Error.WriteLine("kiln worker: stopped");
            return 0;
        });
        return cmd;
    }
}
