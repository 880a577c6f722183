using Kiln.Core.Packaging;
using Kiln.Scoring.Validation;

namespace Kiln.Serving;

/// <summary>One model to serve: a URI the sources resolve, an optional name override and its validation policy.</summary>
public sealed record ModelSpec(string Uri, string? Name = null, UnseenCategoryPolicy? UnseenCategories = null)
{
    /// <summary>Parses "URI" or "NAME=URI" (a name override, for two packages that share a name).</summary>
    public static ModelSpec Parse(string text)
    {
        var eq = text.IndexOf('=', StringComparison.Ordinal);
        if (eq > 0 && !text.StartsWith("models:", StringComparison.Ordinal) && text.IndexOf('/', StringComparison.Ordinal) is var slash && (slash < 0 || slash > eq))
            return new ModelSpec(text[(eq + 1)..], text[..eq]);
        return new ModelSpec(text);
    }
}

/// <summary>Everything `kiln serve` is configured with.</summary>
public sealed class ServeOptions
{
    public List<ModelSpec> Models { get; init; } = [];

    /// <summary>Where model URIs are resolved and their current version polled (default: package directories only).</summary>
    public IModelLocator Locator { get; init; } = new DirectoryModelLocator();

    public string Host { get; init; } = "127.0.0.1";

    /// <summary>HTTP port (0 = any free port).</summary>
    public int Port { get; init; } = 8080;

    /// <summary>gRPC (HTTP/2; over TLS when <see cref="Tls"/> is set) port; null = no gRPC listener, 0 = any free port.</summary>
    public int? GrpcPort { get; init; } = 8081;

    /// <summary>Root of the prediction log; null = no log. With <see cref="LogBucket"/>, the local spool its files are written in first.</summary>
    public string? LogDirectory { get; init; }

    /// <summary>
    /// s3://BUCKET/PREFIX: each closed prediction log file (and feedback file) under <see cref="LogDirectory"/> is uploaded
    /// to the same relative key there and then removed locally; null = the files stay in <see cref="LogDirectory"/>.
    /// </summary>
    public string? LogBucket { get; init; }

    /// <summary>How often the spool is looked at for closed files to upload (they are also uploaded at start and at shutdown).</summary>
    public TimeSpan LogShipInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>How often each model's source is asked for a newer version; zero or less = never.</summary>
    public TimeSpan PollInterval { get; init; } = TimeSpan.FromSeconds(5);

    public UnseenCategoryPolicy UnseenCategories { get; init; } = UnseenCategoryPolicy.Reject;

    /// <summary>Requests scored at once; more wait in a queue of <see cref="QueueLimit"/>, beyond that 503.</summary>
    public int MaxConcurrentRequests { get; init; } = Math.Max(64, Environment.ProcessorCount * 32);

    public int QueueLimit { get; init; } = 1024;

    /// <summary>Largest request body accepted (413 beyond).</summary>
    public long MaxRequestBodyBytes { get; init; } = 8 * 1024 * 1024;

    /// <summary>Requests taking longer are cancelled with 504.</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Rows in one request at most (422 beyond).</summary>
    public int MaxRowsPerRequest { get; init; } = 100_000;

    /// <summary>Prediction log: rows of one model version waiting for the writer before new ones are dropped (and counted).</summary>
    public int LogQueueCapacity { get; init; } = 100_000;

    /// <summary>Prediction log: a model version's waiting rows are written as a row group at this many rows…</summary>
    public int LogRowGroupSize { get; init; } = 50_000;

    /// <summary>…or when its oldest buffered row is this old.</summary>
    public TimeSpan LogFlushInterval { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Prediction log: an open file is closed (made visible) when this old or this large.</summary>
    public TimeSpan LogFileRollInterval { get; init; } = TimeSpan.FromSeconds(60);

    public int LogMaxRowsPerFile { get; init; } = 1_000_000;

    /// <summary>The prediction log's clock (its timestamps, date partitions and flush ages); tests move it across midnight.</summary>
    internal TimeProvider LogClock { get; init; } = TimeProvider.System;

    /// <summary>Where models that take features read them online (see docs/serving.md, "Models that read features").</summary>
    public Features.FeatureStoreOptions FeatureStore { get; init; } = new();

    /// <summary>Also push the metrics to an OpenTelemetry collector (OTLP); null = only the /metrics page.</summary>
    public Metrics.OtlpOptions? Otlp { get; init; }

    /// <summary>
    /// When set (kiln serve --require-token), every request but the health and readiness probes needs a bearer token this
    /// accepts; the host supplies it (a token file or the auth store), so serving loads no database code of its own.
    /// </summary>
    public Func<string, CancellationToken, ValueTask<bool>>? TokenCheck { get; init; }

    /// <summary>
    /// Serve HTTPS with this certificate (--tls-cert/--tls-key): the HTTP port speaks HTTP/1.1 and HTTP/2 (chosen by ALPN, so
    /// gRPC works there too) and the gRPC port HTTP/2, both over TLS. Null: plain HTTP/1.1 and h2c gRPC.
    /// </summary>
    public Kiln.Core.Http.ServerTls? Tls { get; init; }

    /// <summary>With <see cref="TokenCheck"/>: leave /metrics open for scrapers that send no token.</summary>
    public bool OpenMetrics { get; init; }

    /// <summary>Adds services to the host (e.g. continuous monitoring); ServingMetrics' meter is the one /metrics exports.</summary>
    public Action<Microsoft.Extensions.DependencyInjection.IServiceCollection>? ConfigureServices { get; init; }

    /// <summary>
    /// Maps more endpoints beside the scoring ones, outside the request gate (kiln serve maps monitoring's
    /// <c>POST /api/v1/feedback</c> here when it writes a prediction log, so that serving need not know about feedback).
    /// </summary>
    public Action<Microsoft.AspNetCore.Builder.WebApplication>? ConfigureEndpoints { get; init; }

    /// <summary>Check option values; throws a <see cref="Kiln.Core.KilnException"/> naming the option at fault.</summary>
    public void Validate()
    {
        if (Models.Count == 0) throw new Kiln.Core.KilnException("--model: at least one model is required");
        if (Port is < 0 or > 65535) throw new Kiln.Core.KilnException($"--port: {Port} is not a TCP port");
        if (GrpcPort is < 0 or > 65535) throw new Kiln.Core.KilnException($"--grpc-port: {GrpcPort} is not a TCP port");
        if (MaxConcurrentRequests < 1) throw new Kiln.Core.KilnException("max concurrent requests must be at least 1");
        if (QueueLimit < 0) throw new Kiln.Core.KilnException("queue limit must not be negative");
        if (MaxRequestBodyBytes < 1024) throw new Kiln.Core.KilnException("the body size limit must be at least 1 KiB");
    }
}
