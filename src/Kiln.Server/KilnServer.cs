using System.Net;
using Kiln.Core;
using Kiln.Core.Http;
using Kiln.Monitoring.Continuous;
using Kiln.Server.Access;
using Kiln.Server.Jobs;
using Kiln.Server.Composition;
using Kiln.Server.Tracking;
using Kiln.Serving.Metrics;
using Kiln.Storage;
using Kiln.Tracking.Mlflow;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;

namespace Kiln.Server;

/// <summary>What `kiln server` starts with.</summary>
public sealed class KilnServerOptions
{
    /// <summary>The metadata database: a directory (SQLite inside), sqlite:FILE, postgresql://… or an Npgsql connection string.</summary>
    public string Db { get; set; } = Kiln.Tracking.TrackingStores.DefaultUri;

    /// <summary>The artifact root directory; by default beside the SQLite file, or ./.kiln/artifacts for PostgreSQL.</summary>
    public string? Artifacts { get; set; }

    public string Host { get; set; } = "127.0.0.1";

    /// <summary>The port; 0 picks a free one (read it back from <see cref="KilnServer.Address"/>).</summary>
    public int Port { get; set; } = 5000;

    /// <summary>The largest artifact file an upload may write.</summary>
    public long MaxArtifactBytes { get; set; } = Kiln.Tracking.Artifacts.LocalArtifactStore.DefaultMaxFileBytes;

    /// <summary>The lowest level logged to the console.</summary>
    public LogLevel LogLevel { get; set; } = LogLevel.Warning;

    /// <summary>Serve the feature store's online API (/get-online-features, /push) from this online store (a SQLite path or redis://).</summary>
    public string? OnlineStore { get; set; }

    /// <summary>The feature definitions store; by default the metadata database.</summary>
    public string? FeatureRegistry { get; set; }

    /// <summary>Run pipelines in the server: a directory of pipeline YAML files (API, cron schedules, recovery).</summary>
    public string? PipelinesDirectory { get; set; }

    /// <summary>The serving replicas' shared prediction log: accept delayed labels on POST /api/v1/feedback into it.</summary>
    public string? FeedbackLogDirectory { get; set; }

    /// <summary>Continuous monitoring of prediction logs: a monitoring.yaml (gauges on /metrics, alerts, pipeline events).</summary>
    public string? MonitorFile { get; set; }

    /// <summary>Serve vector collections (Qdrant's REST API under /collections) stored in this directory, their catalog in <see cref="Db"/>.</summary>
    public string? VectorsDirectory { get; set; }

    /// <summary>Serve HTTPS with this certificate (--tls-cert/--tls-key): HTTP/1.1 and HTTP/2, chosen by ALPN. Null: plain HTTP/1.1.</summary>
    public ServerTls? Tls { get; set; }

    /// <summary>Who may call what: users, tokens and permissions in the metadata database (docs/security.md).</summary>
    public AccessOptions Access { get; } = new();

    /// <summary>Also push /metrics' instruments to an OpenTelemetry collector.</summary>
    public OtlpOptions? Otlp { get; set; }

    /// <summary>kiln serve replicas that do not register themselves (--replica, --replicas-file), listed on the serving page.</summary>
    public List<Uri> Replicas { get; } = [];

    /// <summary>How often the serving page's scraper reads each live replica's /metrics.</summary>
    public TimeSpan ReplicaScrapeInterval { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>Hangfire's storage of Kiln's queued work, whose dashboard is mounted at /jobs (set by <see cref="KilnServer.PrepareJobsAsync"/> when --db is PostgreSQL).</summary>
    public Hangfire.JobStorage? Jobs { get; set; }

    /// <summary>
    /// Further areas that add services and endpoints to the server, after the ones the options above turn on
    /// (tracking and /metrics are always there).
    /// </summary>
    public List<IKilnServerModule> Modules { get; } = [];

    /// <summary>The areas these options turn on, in order, after checking what can be checked before the server starts.</summary>
    internal List<IKilnServerModule> ComposeModules()
    {
        if (PipelinesDirectory is { } dir && !Directory.Exists(dir)) throw new KilnException($"--pipelines: directory '{dir}' does not exist");
        var modules = new List<IKilnServerModule> { new TrackingModule(this), new AccessModule(Access, Tls is not null) };
        // The registry API serves the registry in the server's own database (none when --db is another server).
        if (!StorageLocation.IsServer(Db)) modules.Add(new FeatureRegistryServerModule());
        if (OnlineStore is { } online) modules.Add(new FeatureServerModule(FeatureRegistry, online));
        // Pipelines share the server's one metadata database, and its store is their kinds' tracking store.
        if (PipelinesDirectory is { } pipelines) modules.Add(new PipelineServerModule(null, pipelines, Db));
        if (FeedbackLogDirectory is { } log) modules.Add(new FeedbackServerModule(log));
        if (VectorsDirectory is { } vectors)
        {
            // The collections' catalog is a table of the server's own metadata database.
            if (StorageLocation.IsServer(Db)) throw new KilnException("--vectors: the collections' catalog lives in the metadata database; --db must be a directory, sqlite:///FILE or postgresql://..., not another server");
            modules.Add(new VectorServerModule(vectors));
        }
        if (Jobs is { } jobs) modules.Add(new JobsDashboardModule(jobs));
        modules.Add(new MetricsServerModule(Otlp));
        MonitorConfig? monitorConfig = null;
        if (MonitorFile is { } monitor)
        {
            var config = MonitorConfigLoader.LoadForHost(monitor, FeedbackLogDirectory is { } l ? Path.GetFullPath(l) : null,
                pipelinesInProcess: PipelinesDirectory is not null);
            modules.Add(new MonitorServerModule(config, PipelinesDirectory is not null));
            monitorConfig = config;
        }
        modules.Add(new ServingReplicasModule(Replicas, ReplicaScrapeInterval));
        modules.Add(new WebUiModule(new Kiln.Web.UiOptions
        {
            PredictionLog = FeedbackLogDirectory is { } log2 ? Path.GetFullPath(log2) : monitorConfig?.Targets.FirstOrDefault()?.LogDirectory,
            AlertStateFile = monitorConfig?.AlertStateFile,
        }));
        modules.AddRange(Modules);
        return modules;
    }
}

/// <summary>An area of the control plane: registers its services, then maps its endpoints.</summary>
public interface IKilnServerModule
{
    void ConfigureServices(WebApplicationBuilder builder);

    void MapEndpoints(WebApplication app);
}

/// <summary>
/// Builds the kiln control-plane server from <see cref="KilnServerOptions"/>: MLflow's REST API, the artifact proxy and
/// /api/v1 always, and each area the options turn on (features, pipelines with every area's task kinds, feedback,
/// monitoring, /metrics). This is the one place that composes the areas; the CLI only maps its flags to the options.
/// </summary>
public static class KilnServer
{
    public static WebApplication BuildApp(KilnServerOptions options)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ApplicationName = "kiln-server", Args = [] });
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(o => o.SingleLine = true);
        builder.Logging.SetMinimumLevel(options.LogLevel);
        builder.WebHost.UseKestrel(k =>
        {
            // Bodies are limited per endpoint (log-batch 1 MB, artifacts by MaxArtifactBytes).
            k.Limits.MaxRequestBodySize = null;
            k.AddServerHeader = false;
            Action<ListenOptions> listen = l =>
            {
                if (options.Tls is not { } tls) return;
                l.Protocols = HttpProtocols.Http1AndHttp2;
                l.UseHttps(new HttpsConnectionAdapterOptions { ServerCertificate = tls.Certificate, ServerCertificateChain = tls.Chain });
            };
            if (IPAddress.TryParse(options.Host, out var ip)) k.Listen(ip, options.Port, listen);
            else if (options.Host is "localhost") k.ListenLocalhost(options.Port, listen);
            else k.ListenAnyIP(options.Port, listen);
        });
        builder.Services.ConfigureHttpJsonOptions(o => o.SerializerOptions.TypeInfoResolverChain.Insert(0, MlflowJson.Default));
        builder.Services.AddProblemDetails();

        var modules = options.ComposeModules();
        foreach (var m in modules) m.ConfigureServices(builder);

        var app = builder.Build();
        app.UseMiddleware<DotSegmentGuard>();
        app.UseRouting();
        app.MapGet("/health", () => TypedResults.Text("OK"));
        foreach (var m in modules) m.MapEndpoints(app);
        // Last before the endpoints (after routing and the request metrics, which then count refusals too).
        app.UseMiddleware<AccessMiddleware>();
        // After the caller is signed in: the UI's and the jobs dashboard's anti-forgery tokens are bound to that user.
        app.UseAntiforgery();
        return app;
    }

    /// <summary>
    /// Decides, before the server listens, whether access control is on: it is when the database has a user (or
    /// <see cref="AccessOptions.Require"/> is set, which then needs a user). With no user the server must not be
    /// reachable from other machines, so a non-loopback <see cref="KilnServerOptions.Host"/> becomes 127.0.0.1.
    /// Returns the line to tell the operator.
    /// </summary>
    public static async Task<string> PrepareAccessAsync(KilnServerOptions options, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (Kiln.Storage.StorageLocation.IsServer(options.Db))
        {
            if (options.Access.Require) throw new KilnException("--require-auth needs a database of its own for users (--db DIR or postgresql://...), not another server");
            return Loopback(options, "its store is another kiln server, so it keeps no users");
        }
        await using var store = Kiln.Auth.AuthStore.Open(options.Db, "--db");
        var users = await store.ListUsersAsync(ct);
        if (users.Count > 0)
        {
            options.Access.Require = true;
            return $"access control is on: {users.Count} user(s), default permission {Kiln.Auth.Permissions.Name(options.Access.DefaultPermission)}";
        }
        var add = $"kiln auth user add admin --admin --db {Kiln.Storage.StorageLocation.Redact(options.Db)}";
        if (options.Access.Require) throw new KilnException($"--require-auth: {store.Database.Description} has no users; create an admin first: {add}");
        return Loopback(options, $"{store.Database.Description} has no users; create an admin with `{add}` and restart");
    }

    /// <summary>
    /// With a PostgreSQL --db, opens the storage kiln worker and kiln batch --distributed queue their jobs in (creating
    /// Hangfire's tables if no worker has yet), so the server mounts its dashboard at /jobs. Nothing for SQLite.
    /// </summary>
    public static async Task PrepareJobsAsync(KilnServerOptions options, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (StorageLocation.IsServer(options.Db) || StorageLocation.Parse(options.Db, "--db").Kind != StorageKind.Postgres) return;
        options.Jobs = await Kiln.Workers.WorkerStorage.OpenAsync(options.Db, null, ct);
    }

    private static string Loopback(KilnServerOptions options, string why)
    {
        if (IsLoopback(options.Host)) return $"access control is off: {why}; listening on loopback only";
        var asked = options.Host;
        options.Host = "127.0.0.1";
        return $"access control is off: {why}; so listening on 127.0.0.1 only, not {asked}";
    }

    private static bool IsLoopback(string host) => host is "localhost" || (IPAddress.TryParse(host, out var ip) && IPAddress.IsLoopback(ip));

    /// <summary>The http:// (https:// with TLS) address the started app listens on (with the real port when 0 was asked for).</summary>
    public static Uri Address(WebApplication app)
    {
        var addresses = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses;
        var first = addresses?.FirstOrDefault() ?? throw new InvalidOperationException("the server is not listening yet");
        return new Uri(first.Replace("0.0.0.0", "127.0.0.1", StringComparison.Ordinal).Replace("[::]", "127.0.0.1", StringComparison.Ordinal));
    }
}
