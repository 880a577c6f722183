using System.CommandLine;
using System.Diagnostics.Metrics;
using System.Net;
using System.Runtime.InteropServices;
using Kiln.Core;
using Kiln.Pipelines.State;
using Kiln.Serving.Metrics;
using Kiln.Workers;
using Kiln.Workers.Batch;
using Kiln.Workers.Pipelines;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

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
        var metricsPort = new Option<int?>("--metrics-port") { Description = "Serve Prometheus metrics on http://HOST:PORT/metrics (0 picks a free port; default: no listener)." };
        var metricsHost = new Option<string>("--metrics-host") { Description = "Address the metrics listener binds (0.0.0.0 in a container).", DefaultValueFactory = _ => "127.0.0.1" };
        var cmd = new Command("worker", "Run queued work (distributed batch partitions, pipeline tasks) from Kiln's PostgreSQL until SIGTERM or Ctrl+C; start any number, on any machines.");
        foreach (var o in new Option[] { db, queues, concurrency, invisibility, shutdown, metricsPort, metricsHost }) cmd.Options.Add(o);
        var otlp = new OtlpCliOptions();
        otlp.AddTo(cmd);
        cmd.SetHandler(async (parse, ct) =>
        {
            var location = parse.GetValue(db) ?? Environment.GetEnvironmentVariable("KILN_TRACKING_URI")
                ?? throw new KilnException("--db: give Kiln's PostgreSQL database (postgresql://…), or set KILN_TRACKING_URI");
            var names = (parse.GetValue(queues) ?? []).SelectMany(q => q.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)).ToList();
            var storage = await WorkerStorage.OpenAsync(location, new WorkerStorageOptions
            {
                InvisibilityTimeout = Duration.Parse(parse.GetValue(invisibility)!, "--invisibility-timeout"),
            }, ct);
            var port = parse.GetValue(metricsPort);
            if (port is < 0 or > 65535) throw new KilnException($"--metrics-port {port} is not a TCP port (0–65535)");
            var host = parse.GetValue(metricsHost)!;
            var address = host is "localhost" ? IPAddress.Loopback : IPAddress.TryParse(host, out var ip) ? ip
                : throw new KilnException($"--metrics-host: '{host}' is not an IP address");
            var otlpOptions = otlp.Read(parse);
            using var meter = new Meter(WorkerMeterName);
            var served = names.Count > 0 ? names : KilnQueues.All;
            var name = new WorkerOptions().Name;
            // Pipeline tasks keep their state in the pipeline store of the same database (kiln pipeline show reads it there).
            await using var pipelineStore = served.Contains(KilnQueues.Pipelines) ? await PipelineStores.OpenAsync(location, ct) : null;
            await using var notifier = pipelineStore is null ? null
                : new AttemptNotifier(Npgsql.NpgsqlDataSource.Create(Kiln.Storage.StorageLocation.Parse(location, "--db").PostgresConnectionString!));
            var options = new WorkerOptions
            {
                Name = name,
                Queues = served,
                Pipelines = pipelineStore is null ? null
                    : new PipelineWorker(pipelineStore, PipelineCommands.Kinds(), Kiln.Server.Composition.KilnTaskKinds.StandaloneServices(), name, notifier),
                Concurrency = parse.GetValue(concurrency),
                ShutdownTimeout = Duration.Parse(parse.GetValue(shutdown)!, "--shutdown-timeout"),
                Metrics = port is not null || otlpOptions is not null ? new WorkerMetrics(meter, parse.GetValue(concurrency)) : null,
            };
            using var exporter = port is not null ? new PrometheusExporter(meter) : null;
            using var otlpProvider = otlpOptions is not null ? OtlpMetrics.Start(otlpOptions, "kiln-worker", WorkerMeterName) : null;
            await using var metricsApp = port is int p ? await StartMetricsAsync(address, p, exporter!, ct) : null;
            WorkerIdentity.Name = options.Name;
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
            // SIGTERM (docker stop, Kubernetes) stops like Ctrl+C: running jobs finish or are handed back.
            using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; stop.Cancel(); });
            await KilnWorker.RunAsync(storage, options, name =>
            {
                Console.Out.WriteLine(name);
                Console.Out.Flush();
                Console.Error.WriteLine($"kiln worker {name}: serving {string.Join(", ", options.Queues)} with {options.Concurrency} workers (Ctrl+C or SIGTERM to stop)");
                if (metricsApp is not null) Console.Error.WriteLine($"kiln worker {name}: metrics on {metricsApp.Urls.First()}/metrics");
            }, stop.Token);
            Console.Error.WriteLine("kiln worker: stopped");
            return 0;
        });
        return cmd;
    }

    /// <summary>The worker's meter (its instruments are named kiln.worker.* and kiln.batch.*).</summary>
    public const string WorkerMeterName = "Kiln.Worker";

    /// <summary>A small Kestrel listener with /metrics (Prometheus text) and /health; refuses a taken port in one line.</summary>
    private static async Task<WebApplication> StartMetricsAsync(IPAddress address, int port, PrometheusExporter exporter, CancellationToken ct)
    {
        Cli.EnsurePortFree("--metrics-port", address.ToString(), port);
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ApplicationName = "kiln-worker", Args = [] });
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Listen(address, port);
        });
        var app = builder.Build();
        app.MapGet("/metrics", (HttpContext http) => exporter.WriteAsync(http.Response, http.RequestAborted));
        app.MapGet("/health", () => TypedResults.Text("ok"));
        await app.StartAsync(ct);
        return app;
    }
}
