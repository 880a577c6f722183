using System.CommandLine;
using System.Runtime.InteropServices;
using Kiln.Core;
using Kiln.Core.Http;
using Kiln.Core.Packaging;
using Kiln.Monitoring.Continuous;
using Kiln.Monitoring.Feedback;
using Kiln.Serving;
using Kiln.Serving.Registration;
using Kiln.Tracking;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Kiln.Scoring.Validation;

namespace Kiln.Cli.Commands;

/// <summary>`kiln serve`: the real-time inference server.</summary>
internal static class ServeCommands
{
    public static Command Create()
    {
        var models = new Option<string[]>("--model", "-m")
        {
            Description = "A model to serve: a package path, models:/NAME/VERSION or models:/NAME@ALIAS; NAME=URI serves it under another name. Repeat for several models; the first is the default.",
            Required = true,
            AllowMultipleArgumentsPerToken = false,
        };
        var port = new Option<int>("--port") { Description = "HTTP port (0 = any free port).", DefaultValueFactory = _ => 8080 };
        var grpcPort = new Option<int>("--grpc-port") { Description = "gRPC port for the Open Inference Protocol (-1 = off, 0 = any free port).", DefaultValueFactory = _ => 8081 };
        var host = new Option<string>("--host") { Description = "Address to listen on (0.0.0.0 in a container).", DefaultValueFactory = _ => "127.0.0.1" };
        var logDir = new Option<string?>("--log-dir") { Description = "Write every prediction as Parquet under this directory (model=/version=/date=/), or upload each closed file to s3://BUCKET/PREFIX under the same keys." };
        var logSpool = new Option<string?>("--log-spool") { Description = "With --log-dir s3://…: the local directory files are written in before their upload (default ./.kiln/log-spool/BUCKET/PREFIX); files left there by a stopped server are uploaded at the next start." };
        var poll = new Option<string>("--poll-interval") { Description = "How often to look for a new model version (e.g. 5s, 1m; 0 = never).", DefaultValueFactory = _ => "5s" };
        var unseen = new Option<string>("--unseen-categories") { Description = "A category never seen in training: reject (422) or flag (score and mark it).", DefaultValueFactory = _ => "reject" };
        unseen.AcceptOnlyFromAmong("reject", "flag");
        var maxConcurrent = new Option<int?>("--max-concurrency") { Description = "Requests scored at once before queueing (default 32 per core, at least 64)." };
        var queue = new Option<int>("--queue") { Description = "Requests that may wait beyond the concurrency limit; more get 503.", DefaultValueFactory = _ => 1024 };
        var maxBody = new Option<long>("--max-body-bytes") { Description = "Largest request body (413 beyond).", DefaultValueFactory = _ => 8 * 1024 * 1024 };
        var timeout = new Option<string>("--request-timeout") { Description = "Cancel a request after this long (504).", DefaultValueFactory = _ => "30s" };
        var monitor = new Option<string?>("--monitor") { Description = "Continuous monitoring: a monitoring.yaml (targets, windows, alert rules; gauges on /metrics). Targets default to --log-dir." };
        var logRoll = new Option<string>("--log-roll") { Description = "Close a prediction log file (making it visible to readers and monitoring) after this long.", DefaultValueFactory = _ => "60s" };
        var tracking = new Option<string?>("--tracking-uri") { Description = "Registry that resolves models:/ URIs: a local path (default $KILN_TRACKING_URI, else ./.kiln) or http(s)://host:5000." };

        var featureService = new Option<string?>("--feature-service") { Description = "Serve packages that record no feature service with this one: /predict takes entity keys and reads the inputs named like its features from the online store." };
        var featureProject = new Option<string?>("--feature-project") { Description = "The feature-store project of --feature-service (default: the most recently applied)." };
        var onlineStore = new Option<string?>("--online-store") { Description = "Online store for models that read features: a SQLite path or redis://host:port (default $KILN_ONLINE_STORE, else .kiln/online.db)." };
        var featureRegistry = new Option<string?>("--feature-registry") { Description = "Feature registry with the applied definitions: a SQLite path or PostgreSQL URI (default $KILN_FEATURE_REGISTRY, else .kiln/kiln.db)." };
        var featureRepo = new Option<string?>("--feature-repo") { Description = "Read feature definitions from this YAML repository instead of the registry (development)." };
        var waitForModel = new Option<bool>("--wait-for-model") { Description = "Start even when a model cannot be loaded yet (not registered, alias not set): /ready says 503 until it can; without this, such a model is an error at start." };
        var requireToken = new Option<bool>("--require-token") { Description = "Every request but /health and /ready needs Authorization: Bearer TOKEN (a kiln auth token of --token-db, or a line of --token-file)." };
        var tokenFile = new Option<string?>("--token-file") { Description = "With --require-token: accept the tokens of this file of hashed tokens (kiln auth token create --file); read again when it changes." };
        var tokenDb = new Option<string?>("--token-db") { Description = "With --require-token: accept the active service tokens of this database (default: the --tracking-uri database when it is local)." };
        var openMetrics = new Option<bool>("--open-metrics") { Description = "With --require-token: leave /metrics open for scrapers without a token." };
        var register = new Option<string?>("--register") { Description = "Register with this kiln server (http(s)://host:5000): a heartbeat with this replica's address, models and versions, so the server's serving page shows it. Signs in with MLFLOW_TRACKING_TOKEN when the server has access control." };
        var registerInterval = new Option<string>("--register-interval") { Description = "How often to send the --register heartbeat; the server forgets a replica after three missed ones.", DefaultValueFactory = _ => "10s" };
        var advertise = new Option<string?>("--advertise-url") { Description = "With --register: the address the server reaches this replica at (default: the HTTP listener's, with the host name when listening on 0.0.0.0)." };
        var (tlsCert, tlsKey) = TlsOptions.Create();
        var command = new Command("serve", "Serve models over HTTP (/predict, MLflow /invocations, Open Inference v2) and gRPC, with /health, /ready and /metrics.")
        {
            models, port, grpcPort, host, logDir, logSpool, poll, unseen, maxConcurrent, queue, maxBody, timeout, tracking, monitor, logRoll,
            featureService, featureProject, onlineStore, featureRegistry, featureRepo, waitForModel, requireToken, tokenFile, tokenDb, openMetrics,
            tlsCert, tlsKey, register, registerInterval, advertise,
        };
        var otlp = new OtlpCliOptions();
        otlp.AddTo(command);
        command.SetHandler(async (parse, ct) =>
        {
            // The certificate is checked first: a mistake in it is one line and nothing listens.
            var tls = TlsOptions.Load(parse, tlsCert, tlsKey);
            var registerAt = RegisterTarget(parse.GetValue(register), parse.GetValue(registerInterval)!, parse.GetValue(advertise));
            var policy = parse.GetValue(unseen) == "flag" ? UnseenCategoryPolicy.Flag : UnseenCategoryPolicy.Reject;
            var specs = parse.GetValue(models)!.Select(ModelSpec.Parse).ToList();
            foreach (var spec in specs)
            {
                if (!spec.Uri.StartsWith("models:", StringComparison.Ordinal) && !spec.Uri.StartsWith("runs:", StringComparison.Ordinal) && !Directory.Exists(spec.Uri))
                    throw new KilnException($"--model {spec.Uri}: no such package directory");
            }
            var stores = TrackingStores.Open(parse.GetValue(tracking));
            await using var storesScope = stores;
            var locator = new RegistryModelLocator(stores);
            var grpc = parse.GetValue(grpcPort);
            // A log in a bucket is written in a local spool first; what reads the log (monitoring) reads the bucket.
            var logBucket = parse.GetValue(logDir) is { } b && Kiln.Monitoring.Windows.S3LogMirror.IsS3(b) ? b : null;
            if (logBucket is null && parse.GetValue(logSpool) is not null) throw new KilnException("--log-spool: only with --log-dir s3://BUCKET/PREFIX");
            var logDirectory = logBucket is not null ? LogSpool(logBucket, parse.GetValue(logSpool))
                : parse.GetValue(logDir) is { } d ? Path.GetFullPath(d) : null;
            var monitoring = parse.GetValue(monitor) is { } m ? MonitorConfigLoader.LoadForHost(m, logBucket ?? logDirectory, pipelinesInProcess: false) : null;
            await using var tokens = TokenCheck(parse.GetValue(requireToken), parse.GetValue(tokenFile), parse.GetValue(tokenDb), parse.GetValue(tracking), parse.GetValue(openMetrics));
            var options = new ServeOptions
            {
                TokenCheck = tokens.Check,
                Tls = tls,
                OpenMetrics = parse.GetValue(openMetrics),
                Models = specs,
                Port = parse.GetValue(port),
                GrpcPort = grpc < 0 ? null : grpc,
                Host = parse.GetValue(host)!,
                LogDirectory = logDirectory,
                LogBucket = logBucket,
                LogFileRollInterval = Duration.Parse(parse.GetValue(logRoll)!, "--log-roll") is { TotalMilliseconds: > 0 } roll ? roll
                    : throw new KilnException("--log-roll: must be longer than 0 (examples: 5s, 1m)"),
                PollInterval = Duration.Parse(parse.GetValue(poll)!, "--poll-interval"),
                UnseenCategories = policy,
                MaxConcurrentRequests = parse.GetValue(maxConcurrent) ?? new ServeOptions().MaxConcurrentRequests,
                QueueLimit = parse.GetValue(queue),
                MaxRequestBodyBytes = parse.GetValue(maxBody),
                RequestTimeout = Duration.Parse(parse.GetValue(timeout)!, "--request-timeout"),
                Locator = locator,
                Otlp = otlp.Read(parse),
                FeatureStore = FeatureStoreOptions(parse.GetValue(featureService), parse.GetValue(featureProject), parse.GetValue(onlineStore),
                    parse.GetValue(featureRegistry), parse.GetValue(featureRepo)),
                // The prediction log's delayed labels belong to monitoring; kiln serve accepts them beside the log it writes.
                ConfigureEndpoints = logDirectory is null ? null : app => app.MapKilnFeedbackEndpoints(logDirectory),
                ConfigureServices = monitoring is null ? null : services => services
                    .AddKilnMonitoring(monitoring, sp => sp.GetRequiredService<Kiln.Serving.Metrics.ServingMetrics>().Meter)
                    .Replace(ServiceDescriptor.Singleton<IModelLocator>(locator)),
            };
            Cli.EnsurePortFree("--port", options.Host, options.Port);
            if (options.GrpcPort is { } grpcListen) Cli.EnsurePortFree("--grpc-port", options.Host, grpcListen);
            await using var server = await ServingHost.BuildAsync(options);
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
            // SIGTERM (docker stop, Kubernetes) stops gracefully like Ctrl+C: drain, then flush the log.
            using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; stop.Cancel(); });
            await server.StartAsync(ct);
            if (!parse.GetValue(waitForModel))
            {
                // A model that cannot be loaded at start is a mistake in the command (a typo in the
                // name, an alias never set), not something to retry quietly forever.
                await server.Models.InitialLoad.WaitAsync(ct);
                if (server.Models.Slots.FirstOrDefault(s => s.Current is null) is { } failed)
                {
                    await server.StopAsync(CancellationToken.None);
                    throw new KilnException($"--model {failed.Spec.Uri}: cannot be loaded: {failed.LastError} (--wait-for-model starts anyway and waits for it)");
                }
            }
            using var registration = registerAt is { } at
                ? new ReplicaRegistration(at.Server, at.Advertise ?? AdvertisedUri(server.HttpUri), server.Models, at.Interval) : null;
            Task heartbeat = Task.CompletedTask;
            if (registration is not null)
            {
                // The first heartbeat at start: a refusal (a bad token, no permission) is a mistake in the command; an
                // unreachable server may come up later, so the replica serves and keeps trying.
                try
                {
                    await registration.BeatAsync(ct);
                    Console.Error.WriteLine($"kiln serve: registered with {registration.Server}");
                }
                catch (KilnApiException e)
                {
                    await server.StopAsync(CancellationToken.None);
                    throw new KilnException($"--register {registration.Server}: {e.Message}", e);
                }
                catch (KilnException e)
                {
                    Console.Error.WriteLine($"kiln serve: cannot register with {registration.Server} yet ({e.Message}); trying every interval");
                }
                heartbeat = registration.RunAsync(m => Console.Error.WriteLine("kiln serve: " + m), stop.Token);
            }
            Console.Out.WriteLine($"kiln serve: HTTP {server.HttpUri}" + (server.GrpcUri is { } g ? $", gRPC {g}" : ""));
            await Console.Out.FlushAsync(ct);
            try
            {
                await Task.Delay(Timeout.Infinite, stop.Token);
            }
            catch (OperationCanceledException)
            {
            }
            await heartbeat;
            using var grace = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            await server.StopAsync(grace.Token);
            Console.Error.WriteLine("kiln serve: stopped");
            return 0;
        });
        return command;
    }

    /// <summary>--register, --register-interval and --advertise-url, checked before anything listens.</summary>
    /// <summary>The local spool of a log in a bucket: --log-spool, else ./.kiln/log-spool/BUCKET/PREFIX (a stable place, so a restart uploads what a stopped server left).</summary>
    private static string LogSpool(string bucket, string? spool)
    {
        var location = Kiln.Storage.Objects.S3Location.Parse(bucket, "--log-dir");
        return Path.GetFullPath(spool ?? Path.Combine(".kiln", "log-spool", location.Bucket, Path.Combine(location.Prefix.Split('/', StringSplitOptions.RemoveEmptyEntries))));
    }

    private static (Uri Server, TimeSpan Interval, Uri? Advertise)? RegisterTarget(string? server, string interval, string? advertise)
    {
        if (server is null)
        {
            if (advertise is not null) throw new KilnException("--advertise-url goes with --register");
            return null;
        }
        if (!KilnApiConnection.IsServerUri(server) || !Uri.TryCreate(server, UriKind.Absolute, out var uri))
            throw new KilnException($"--register: '{server}' is not an http:// or https:// URL of a kiln server");
        var every = Duration.Parse(interval, "--register-interval");
        if (every < TimeSpan.FromSeconds(1) || every > TimeSpan.FromHours(1)) throw new KilnException($"--register-interval {interval}: must be between 1s and 1h");
        Uri? self = null;
        if (advertise is not null && (!KilnApiConnection.IsServerUri(advertise) || !Uri.TryCreate(advertise, UriKind.Absolute, out self)))
            throw new KilnException($"--advertise-url: '{advertise}' is not an http:// or https:// URL");
        return (uri, every, self);
    }

    // The listener's address as other hosts reach it: a wildcard listener is named by the machine's host name.
    private static Uri AdvertisedUri(Uri listener) =>
        listener.Host is "0.0.0.0" or "[::]" or "::" ? new UriBuilder(listener) { Host = System.Net.Dns.GetHostName() }.Uri : listener;

    /// <summary>The token check of --require-token: a token file, or the service tokens of the auth store (the tracking database by default).</summary>
    private static TokenSource TokenCheck(bool require, string? file, string? db, string? tracking, bool openMetrics)
    {
        if (!require)
        {
            if (file is not null || db is not null || openMetrics) throw new KilnException("--token-file, --token-db and --open-metrics go with --require-token");
            return new TokenSource(null, null);
        }
        if (file is not null && db is not null) throw new KilnException("--require-token: give --token-file or --token-db, not both");
        if (file is not null)
        {
            var verifier = new Kiln.Auth.TokenFileVerifier(Path.GetFullPath(file));
            return new TokenSource((secret, _) => ValueTask.FromResult(verifier.Check(secret)), null);
        }
        var location = db ?? tracking ?? Environment.GetEnvironmentVariable("KILN_TRACKING_URI") ?? TrackingStores.DefaultUri;
        if (Kiln.Storage.StorageLocation.IsServer(location))
            throw new KilnException($"--require-token: tokens are read from a database, and {location} is a server; give --token-db DIR|postgresql://... or --token-file FILE");
        var store = Kiln.Auth.AuthStore.Open(location, "--token-db");
        var authenticator = new Kiln.Auth.Authenticator(store);
        return new TokenSource(authenticator.CheckTokenAsync, store);
    }

    /// <summary>The token check handed to serving, and the store it reads (closed when kiln serve stops).</summary>
    private sealed record TokenSource(Func<string, CancellationToken, ValueTask<bool>>? Check, Kiln.Auth.AuthStore? Store) : IAsyncDisposable
    {
        public ValueTask DisposeAsync() => Store?.DisposeAsync() ?? ValueTask.CompletedTask;
    }

    private static Kiln.Serving.Features.FeatureStoreOptions FeatureStoreOptions(string? service, string? project, string? online, string? registry, string? repo)
    {
        if (repo is not null && !Directory.Exists(repo)) throw new KilnException($"--feature-repo {repo}: no such directory");
        var defaults = new Kiln.Serving.Features.FeatureStoreOptions();
        return new Kiln.Serving.Features.FeatureStoreOptions
        {
            Service = service,
            Project = project,
            OnlineStore = online ?? defaults.OnlineStore,
            Registry = registry ?? defaults.Registry,
            RepositoryPath = repo is null ? null : Path.GetFullPath(repo),
        };
    }
}
