using System.Net;
using Kiln.Serving.Logging;
using Kiln.Serving.Metrics;
using Kiln.Serving.Models;
using Kiln.Serving.Protocols.MlflowScoring;
using Kiln.Serving.Protocols.Native;
using Kiln.Serving.Protection;
using Kiln.Serving.Protocols.OpenInference;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Kiln.Serving;

/// <summary>
/// The `kiln serve` process as a library: Kestrel with an HTTP/1.1 listener (native, MLflow and
/// Open Inference REST routes, /health, /ready, /metrics) and an HTTP/2 listener for gRPC, the
/// model manager (load, warm, hot swap) and the prediction log. Tests and the CLI build one,
/// start it, and stop it (stopping drains requests, then completes the prediction log).
/// </summary>
public sealed class ServingHost : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ListenOptions[] _listeners;

    private ServingHost(WebApplication app, ListenOptions[] listeners)
    {
        _app = app;
        _listeners = listeners;
    }

    public IServiceProvider Services => _app.Services;

    public ModelManager Models => _app.Services.GetRequiredService<ModelManager>();

    public PredictionLog PredictionLog => _app.Services.GetRequiredService<PredictionLog>();

    /// <summary>http(s)://host:port of the HTTP listener (after start).</summary>
    public Uri HttpUri { get; private set; } = null!;

    /// <summary>http(s)://host:port of the gRPC listener (after start), or null when gRPC is off.</summary>
    public Uri? GrpcUri { get; private set; }

    /// <summary>Builds the server (nothing listens until <see cref="StartAsync"/>); throws a KilnException for bad options.</summary>
    public static Task<ServingHost> BuildAsync(ServeOptions options, Action<ILoggingBuilder>? logging = null)
    {
        options.Validate();
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        if (logging is not null) logging(builder.Logging);
        else builder.Logging.AddSimpleConsole(o => { o.SingleLine = true; o.TimestampFormat = "HH:mm:ss "; });
        builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
        builder.Logging.AddFilter("Microsoft.Hosting", LogLevel.Warning);
        // Off entirely: when this category is enabled at any level, hosting opens a log scope and an
        // Activity for every request (measured at ~3% of a request's CPU); it only logs request
        // start/finish at Information, which Kiln's metrics and prediction log already cover.
        builder.Logging.AddFilter("Microsoft.AspNetCore.Hosting.Diagnostics", LogLevel.None);

        var address = options.Host is "localhost" ? IPAddress.Loopback : IPAddress.TryParse(options.Host, out var ip) ? ip
            : throw new Kiln.Core.KilnException($"--host: '{options.Host}' is not an IP address");
        var listeners = new List<ListenOptions>();
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Limits.MaxRequestBodySize = options.MaxRequestBodyBytes;
            k.Listen(address, options.Port, l =>
            {
                // Over TLS, ALPN lets a client pick HTTP/2 (gRPC) or HTTP/1.1 on the one port; in clear text HTTP/1.1 only.
                l.Protocols = options.Tls is null ? HttpProtocols.Http1 : HttpProtocols.Http1AndHttp2;
                UseTls(l, options.Tls);
                listeners.Add(l);
            });
            if (options.GrpcPort is int grpc)
            {
                k.Listen(address, grpc, l =>
                {
                    l.Protocols = HttpProtocols.Http2;
                    UseTls(l, options.Tls);
                    listeners.Add(l);
                });
            }
        });

        var services = builder.Services;
        services.AddSingleton(options);
        services.AddSingleton<ServingMetrics>();
        services.AddSingleton(sp => new PrometheusExporter(sp.GetRequiredService<ServingMetrics>().Meter));
        if (options.Otlp is { } otlp) services.AddSingleton(_ => OtlpMetrics.Start(otlp, "kiln-serve", ServingMetrics.MeterName));
        services.AddSingleton<ModelManager>();
        services.AddHostedService(sp => sp.GetRequiredService<ModelManager>());
        // The shipper before the writer: the host stops services in reverse order, so it uploads after the final drain.
        services.AddSingleton<LogShipper>();
        services.AddHostedService(sp => sp.GetRequiredService<LogShipper>());
        services.AddSingleton<PredictionLog>();
        services.AddHostedService(sp => sp.GetRequiredService<PredictionLog>());
        services.AddSingleton<Inference>();
        services.AddSingleton<Features.OnlineFeatures>();
        options.ConfigureServices?.Invoke(services); // extra hosted services (e.g. kiln serve --monitor)
        services.ConfigureHttpJsonOptions(o =>
        {
            o.SerializerOptions.PropertyNamingPolicy = System.Text.Json.JsonNamingPolicy.SnakeCaseLower;
            o.SerializerOptions.DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull;
            o.SerializerOptions.TypeInfoResolverChain.Insert(0, ServingJsonContext.Default);
        });
        services.AddProblemDetails();
        services.AddGrpc(o =>
        {
            o.MaxReceiveMessageSize = (int)Math.Min(int.MaxValue, options.MaxRequestBodyBytes);
            o.EnableDetailedErrors = false;
        });
        // Server reflection, so grpcurl and other tools list and call the service without the proto file.
        services.AddGrpcReflection();
        services.AddSingleton<RequestGate>();

        var app = builder.Build();
        // Listen from the start: measurements made before the first scrape must count too.
        app.Services.GetRequiredService<PrometheusExporter>();
        if (options.Otlp is not null) app.Services.GetRequiredService<OpenTelemetry.Metrics.MeterProvider>();
        app.UseExceptionHandler(new ExceptionHandlerOptions { ExceptionHandler = HandleExceptionAsync, StatusCodeSelector = StatusFor });
        if (options.TokenCheck is { } check)
        {
            var tokens = new TokenGate(check, options.OpenMetrics);
            app.Use(tokens.InvokeAsync);
        }
        var gate = app.Services.GetRequiredService<RequestGate>();
        app.Use(gate.InvokeAsync);
        app.MapNativeEndpoints(gated: true);
        app.MapInvocationsEndpoints(gated: true);
        app.MapOpenInferenceEndpoints(gated: true);
        app.MapGrpcService<V2GrpcService>().RequireGate();
        app.MapGrpcReflectionService();
        app.MapGet("/metrics", (PrometheusExporter exporter, HttpContext http) => exporter.WriteAsync(http.Response, http.RequestAborted));
        options.ConfigureEndpoints?.Invoke(app);
        return Task.FromResult(new ServingHost(app, [.. listeners]));
    }

    private static void UseTls(ListenOptions listen, Kiln.Core.Http.ServerTls? tls)
    {
        if (tls is null) return;
        listen.UseHttps(new Microsoft.AspNetCore.Server.Kestrel.Https.HttpsConnectionAdapterOptions
        {
            ServerCertificate = tls.Certificate,
            ServerCertificateChain = tls.Chain,
        });
    }

    /// <summary>Client mistakes Kestrel finds (oversized body, bad framing) keep their 4xx status; a timeout is 504.</summary>
    private static int StatusFor(Exception e) => e switch
    {
        Microsoft.AspNetCore.Http.BadHttpRequestException b => b.StatusCode,
        OperationCanceledException => StatusCodes.Status504GatewayTimeout,
        _ => StatusCodes.Status500InternalServerError,
    };

    private static async Task HandleExceptionAsync(HttpContext http)
    {
        var e = http.Features.Get<IExceptionHandlerFeature>()?.Error;
        var status = e is null ? 500 : StatusFor(e);
        http.Response.StatusCode = status;
        var metrics = http.RequestServices.GetRequiredService<ServingMetrics>();
        if (status == 504) metrics.Rejected.Add(1, new KeyValuePair<string, object?>("reason", "timeout"));
        await Results.Problem(statusCode: status, title: status switch { 504 => "Request timed out", 500 => "Internal error", _ => "Bad request" },
            detail: status == 500 ? "the server failed to answer; see its log" : e?.Message).ExecuteAsync(http).ConfigureAwait(false);
    }

    /// <summary>Starts listening; models load in the background (watch /ready).</summary>
    public async Task StartAsync(CancellationToken ct = default)
    {
        // A log bucket that does not exist is a mistake in the command: one line, before anything listens.
        await _app.Services.GetRequiredService<LogShipper>().CheckAsync(ct).ConfigureAwait(false);
        await _app.StartAsync(ct).ConfigureAwait(false);
        var scheme = _app.Services.GetRequiredService<ServeOptions>().Tls is null ? "http" : "https";
        HttpUri = ToUri(_listeners[0], scheme);
        GrpcUri = _listeners.Length > 1 ? ToUri(_listeners[1], scheme) : null;
        ServingLog.Listening(_app.Logger, HttpUri.ToString(), GrpcUri?.ToString() ?? "(off)");
    }

    /// <summary>Starts and waits until every model's first load attempt has finished.</summary>
    public async Task StartAndLoadAsync(CancellationToken ct = default)
    {
        await StartAsync(ct).ConfigureAwait(false);
        await Models.InitialLoad.WaitAsync(ct).ConfigureAwait(false);
    }

    private static Uri ToUri(ListenOptions l, string scheme)
    {
        var ep = l.IPEndPoint!;
        var host = ep.Address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{ep.Address}]" : ep.Address.ToString();
        return new Uri($"{scheme}://{host}:{ep.Port}");
    }

    /// <summary>Stops gracefully: stop accepting, finish requests in flight, then write out the prediction log.</summary>
    public Task StopAsync(CancellationToken ct = default) => _app.StopAsync(ct);

    /// <summary>Waits until the host shuts down (Ctrl+C, SIGTERM, or <see cref="StopAsync"/>).</summary>
    public Task WaitForShutdownAsync(CancellationToken ct = default) => Microsoft.Extensions.Hosting.HostingAbstractionsHostExtensions.WaitForShutdownAsync(_app, ct);

    public async ValueTask DisposeAsync() => await _app.DisposeAsync().ConfigureAwait(false);
}
