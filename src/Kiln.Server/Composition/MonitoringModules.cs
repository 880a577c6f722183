using System.Diagnostics.Metrics;
using System.Threading.Channels;
using Kiln.Core.Packaging;
using Kiln.Monitoring.Alerts;
using Kiln.Monitoring.Continuous;
using Kiln.Pipelines.Execution;
using Kiln.Serving.Metrics;
using Kiln.Tracking;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Kiln.Server.Composition;

/// <summary>The meter of kiln server's own /metrics.</summary>
internal sealed class ServerMeter : IDisposable
{
    public Meter Meter { get; } = new("Kiln.Server");

    public void Dispose() => Meter.Dispose();
}

/// <summary>
/// GET /metrics in kiln server (Prometheus text, the same exporter as kiln serve): process metrics and monitoring's
/// gauges; with OTLP options, the same instruments are pushed to a collector too.
/// </summary>
internal sealed class MetricsServerModule(OtlpOptions? otlp = null) : IKilnServerModule
{
    public void ConfigureServices(WebApplicationBuilder builder)
    {
        builder.Services.AddSingleton<ServerMeter>();
        builder.Services.AddSingleton(sp => new PrometheusExporter(sp.GetRequiredService<ServerMeter>().Meter));
        builder.Services.AddSingleton(sp => new Kiln.Server.Metrics.ServerHttpMetrics(sp.GetRequiredService<ServerMeter>().Meter));
        builder.Services.AddSingleton(sp => new Kiln.Pipelines.State.PipelineMetrics(sp.GetRequiredService<ServerMeter>().Meter));
        builder.Services.AddSingleton(sp => new Kiln.Batch.BatchMetrics(sp.GetRequiredService<ServerMeter>().Meter));
        if (otlp is not null) builder.Services.AddSingleton(_ => OtlpMetrics.Start(otlp, "kiln-server", "Kiln.Server"));
    }

    public void MapEndpoints(WebApplication app)
    {
        // Listen from the start so that counts made before the first scrape are kept.
        app.Services.GetRequiredService<PrometheusExporter>();
        Kiln.Server.Metrics.ServerHttpMetricsExtensions.UseKilnServerHttpMetrics(app);
        if (otlp is not null) app.Services.GetRequiredService<OpenTelemetry.Metrics.MeterProvider>();
        app.MapGet("/metrics", (PrometheusExporter exporter, HttpContext http) => exporter.WriteAsync(http.Response, http.RequestAborted));
    }
}

/// <summary>Continuous monitoring inside kiln server: gauges on its /metrics, alerts, and pipeline events in-process when it runs pipelines.</summary>
internal sealed class MonitorServerModule(MonitorConfig config, bool pipelinesInProcess) : IKilnServerModule
{
    public void ConfigureServices(WebApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddKilnMonitoring(config, sp => sp.GetRequiredService<ServerMeter>().Meter);
        services.Replace(ServiceDescriptor.Singleton<IModelLocator>(sp => new RegistryModelLocator(sp.GetRequiredService<TrackingStores>())));
        // Each evaluation's proxy and realized metrics, kept as metric history in the tracking store for the monitoring page.
        services.AddSingleton<IMonitorTickSink>(sp => new Kiln.Web.Monitoring.MonitorHistory(sp.GetRequiredService<ITrackingStore>()));
        if (pipelinesInProcess && config.PipelinesUrl is null)
            services.AddSingleton<IAlertSink>(sp => new PipelineEngineAlertSink(sp.GetRequiredService<PipelineEngine>(), config.Targets, sp.GetRequiredService<ILoggerFactory>().CreateLogger("Kiln.Monitoring.Alerts")));
    }

    public void MapEndpoints(WebApplication app)
    {
    }
}

/// <summary>
/// Starts the pipelines an alert names, in-process (<see cref="PipelineEngine.TriggerByEventAsync"/>) when it fires,
/// from a bounded queue of its own so evaluation never waits on the pipeline store.
/// </summary>
internal sealed class PipelineEngineAlertSink : IAlertSink, IAsyncDisposable
{
    private readonly PipelineEngine _engine;
    private readonly ILogger _logger;
    private readonly Channel<AlertTransition> _queue = Channel.CreateBounded<AlertTransition>(new BoundedChannelOptions(100) { FullMode = BoundedChannelFullMode.DropOldest });
    private readonly CancellationTokenSource _stop = new();
    private readonly IReadOnlyList<MonitorTarget> _targets;
    private readonly Task _loop;

    public PipelineEngineAlertSink(PipelineEngine engine, IReadOnlyList<MonitorTarget> targets, ILogger logger)
    {
        _engine = engine;
        _targets = targets;
        _logger = logger;
        _loop = Task.Run(RunAsync);
    }

    public ValueTask NotifyAsync(AlertTransition t, CancellationToken cancellationToken)
    {
        if (t.Rule.PipelineEvent is not null && t.To == AlertState.Firing && t.From == AlertState.Pending) _queue.Writer.TryWrite(t);
        return ValueTask.CompletedTask;
    }

    private async Task RunAsync()
    {
        try
        {
            await foreach (var t in _queue.Reader.ReadAllAsync(_stop.Token))
            {
                try
                {
                    var runs = await _engine.TriggerByEventAsync(t.Rule.PipelineEvent!, PipelineEventHttpSink.EventPayload(t, _targets), _stop.Token);
                    MonitoringModuleLog.PipelineStarted(_logger, t.Rule.Name, t.Rule.PipelineEvent!, runs.Count);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    MonitoringModuleLog.PipelineFailed(_logger, t.Rule.Name, t.Rule.PipelineEvent!, e.Message, e);
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        if (await Task.WhenAny(_loop, Task.Delay(TimeSpan.FromSeconds(5))) != _loop) await _stop.CancelAsync();
        await _loop;
        _stop.Dispose();
    }
}

internal static partial class MonitoringModuleLog
{
    [LoggerMessage(5130, LogLevel.Information, "alert {Alert}: pipeline event {Event} started {Runs} run(s)")]
    public static partial void PipelineStarted(ILogger logger, string alert, string @event, int runs);

    [LoggerMessage(5131, LogLevel.Error, "alert {Alert}: pipeline event {Event} failed: {Message}")]
    public static partial void PipelineFailed(ILogger logger, string alert, string @event, string message, Exception exception);
}
