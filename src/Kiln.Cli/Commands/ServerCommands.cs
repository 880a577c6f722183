using System.CommandLine;
using Kiln.Server;
using Kiln.Tracking;
using Spectre.Console;

namespace Kiln.Cli.Commands;

/// <summary>kiln server: the control plane (tracking, registry, artifacts; MLflow-compatible).</summary>
internal static class ServerCommands
{
    public static Command Create()
    {
        var db = new Option<string>("--db")
        {
            Description = "Metadata database of tracking, pipelines and features (docs/cli.md#locations): a directory (kiln.db inside), sqlite:///FILE, or postgresql://user:pass@host:port/db",
            DefaultValueFactory = _ => TrackingStores.DefaultUri,
        };
        var artifacts = new Option<string?>("--artifacts")
        {
            Description = "Artifact root: a directory, or s3://BUCKET/PREFIX with the standard AWS settings (default: $KILN_ARTIFACTS, else artifacts/ beside the SQLite database, ./.kiln/artifacts for PostgreSQL)",
        };
        var port = new Option<int>("--port") { Description = "Port to listen on (0 picks a free one)", DefaultValueFactory = _ => 5000 };
        var host = new Option<string>("--host") { Description = "Address to listen on", DefaultValueFactory = _ => "127.0.0.1" };
        var maxArtifact = new Option<long>("--max-artifact-bytes")
        {
            Description = "Largest artifact file an upload may write",
            DefaultValueFactory = _ => Kiln.Tracking.Artifacts.LocalArtifactStore.DefaultMaxFileBytes,
        };
        var onlineStore = new Option<string?>("--online-store")
        {
            Description = "Serve the feature store's online API (/get-online-features, /push) from this online store: a SQLite path or redis://host:port",
        };
        var featureRegistry = new Option<string?>("--feature-registry") { Description = "Feature definitions store (default: kiln.db of --db when it is a directory)" };
        var monitor = new Option<string?>("--monitor") { Description = "Continuous monitoring of prediction logs (e.g. of many kiln serve replicas): a monitoring.yaml; gauges on /metrics, alerts to the log, webhooks and pipelines" };
        var pipelines = new Option<string?>("--pipelines") { Description = "Run pipelines in the server: a directory of pipeline YAML files (API under /api/v1/pipelines, cron schedules, recovery)" };
        var vectors = new Option<string?>("--vectors") { Description = "Serve vector collections (Qdrant's REST API under /collections) stored in this directory; their catalog is a table of --db" };
        var logDir = new Option<string?>("--log-dir") { Description = "The shared prediction log of the serving replicas: accept delayed labels on POST /api/v1/feedback into its _feedback/ folder" };
        var requireAuth = new Option<bool>("--require-auth") { Description = "Refuse to start unless the database has users (access control is on anyway once it has one; docs/security.md)" };
        var defaultPermission = new Option<string>("--default-permission")
        {
            Description = "Permission of a signed-in user on what it holds no grant for: READ, EDIT, MANAGE or NO_PERMISSIONS",
            DefaultValueFactory = _ => "READ",
        };
        var replica = new Option<string[]>("--replica") { Description = "A kiln serve replica that does not register itself (http(s)://host:port); repeatable. Its /metrics feeds the serving page.", AllowMultipleArgumentsPerToken = false };
        var replicasFile = new Option<string?>("--replicas-file") { Description = "A file of kiln serve replica URLs, one a line (# comments), for replicas that do not register themselves" };
        var (tlsCert, tlsKey) = TlsOptions.Create();
        var command = new Command("server", "Run the Kiln server: tracking, model registry and artifacts, speaking MLflow's REST API 2.0; optionally the online feature API and pipelines.")
        {
            db, artifacts, port, host, maxArtifact, onlineStore, featureRegistry, pipelines, logDir, monitor, vectors, requireAuth, defaultPermission,
            tlsCert, tlsKey, replica, replicasFile,
        };
        var otlp = new OtlpCliOptions();
        otlp.AddTo(command);
        command.SetHandler(async (parse, ct) =>
        {
            var p = parse.GetValue(port);
            if (p is < 0 or > 65535) throw new Kiln.Core.KilnException($"--port {p} is not a TCP port (0–65535)");
            var max = parse.GetValue(maxArtifact);
            if (max <= 0) throw new Kiln.Core.KilnException($"--max-artifact-bytes must be positive; got {max}");
            // The certificate is checked first: a mistake in it is one line and nothing listens.
            var tls = TlsOptions.Load(parse, tlsCert, tlsKey);
            if (parse.GetValue(logDir) is { } feedbackLog && Kiln.Monitoring.Windows.S3LogMirror.IsS3(feedbackLog))
                throw new Kiln.Core.KilnException($"--log-dir {feedbackLog}: kiln server stores labels in a local or shared directory; with a log in a bucket, post labels to the kiln serve replicas (kiln serve --log-dir s3://… uploads them)");
            var options = new KilnServerOptions
            {
                Tls = tls,
                Db = parse.GetValue(db)!,
                Artifacts = parse.GetValue(artifacts),
                Port = p,
                Host = parse.GetValue(host)!,
                MaxArtifactBytes = max,
                OnlineStore = parse.GetValue(onlineStore),
                FeatureRegistry = parse.GetValue(featureRegistry),
                PipelinesDirectory = parse.GetValue(pipelines),
                FeedbackLogDirectory = parse.GetValue(logDir),
                MonitorFile = parse.GetValue(monitor),
                Otlp = otlp.Read(parse),
                VectorsDirectory = parse.GetValue(vectors),
            };
            foreach (var r in parse.GetValue(replica) ?? []) options.Replicas.Add(Kiln.Web.Serving.ReplicaRegistry.ParseUrl(r, "--replica"));
            if (parse.GetValue(replicasFile) is { } file) options.Replicas.AddRange(Kiln.Web.Serving.ReplicaRegistry.ReadFile(file));
            options.Access.Require = parse.GetValue(requireAuth);
            options.Access.DefaultPermission = Kiln.Auth.Permissions.Parse(parse.GetValue(defaultPermission), "--default-permission");
            // Before anything listens: with no users the server stays on loopback (said once it listens).
            var access = await KilnServer.PrepareAccessAsync(options, ct);
            // With PostgreSQL, the queued work of kiln worker: its dashboard at /jobs (an unreachable database fails here).
            await KilnServer.PrepareJobsAsync(options, ct);
            Cli.EnsurePortFree("--port", options.Host, options.Port);
            await using var app = KilnServer.BuildApp(options);
            // Open the stores (and create the schema) before listening, so a bad --db fails at once.
            var stores = app.Services.GetService(typeof(TrackingStores)) as TrackingStores
                ?? throw new InvalidOperationException("tracking stores are not registered");
            // An S3 artifact root is checked first: a missing bucket is one line and nothing listens.
            await stores.CheckArtifactsAsync(ct);
            await stores.Tracking.GetExperimentAsync("0", ct);
            try
            {
                await app.StartAsync(ct);
            }
            catch (IOException e)
            {
                throw new Kiln.Core.KilnException($"cannot listen on {options.Host}:{options.Port}: {e.Message}", e);
            }
            Cli.Err.MarkupLine(Markup.Escape(access));
            if (tls is not null) Cli.Err.MarkupLine(Markup.Escape($"TLS: {tls.Describe()}; HTTP/1.1 and HTTP/2"));
            Cli.Err.MarkupLine($"kiln server listening on [bold]{KilnServer.Address(app)}[/] (metadata: {Markup.Escape(options.Db)})");
            Console.Out.WriteLine(KilnServer.Address(app).ToString().TrimEnd('/'));
            Console.Out.Flush();
            try
            {
                // The host's console lifetime takes SIGTERM/SIGINT itself (stopping the app), so wait for either.
                using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct, app.Lifetime.ApplicationStopping);
                await Task.Delay(Timeout.Infinite, stop.Token);
            }
            catch (OperationCanceledException)
            {
            }
            await app.StopAsync(CancellationToken.None);
            return 0;
        });
        return command;
    }
}
