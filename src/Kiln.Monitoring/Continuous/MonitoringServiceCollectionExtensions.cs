using System.Diagnostics.Metrics;
using Kiln.Core.Packaging;
using Kiln.Monitoring.Alerts;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;

namespace Kiln.Monitoring.Continuous;

/// <summary>Registers continuous monitoring in a host.</summary>
public static class MonitoringServiceCollectionExtensions
{
    /// <summary>
    /// Adds <see cref="MonitorService"/> (hosted) with the window evaluator (drift, proxy and realized metrics), gauges on <paramref name="meter"/> (the meter
    /// the host's /metrics exports), and the log and webhook sinks; with <see cref="MonitorConfig.PipelinesUrl"/>, a sink
    /// that POSTs pipeline events there. Add more <see cref="IMonitorEvaluator"/>s or <see cref="IAlertSink"/>s as
    /// singletons (and <see cref="IMonitorTickSink"/>s to keep each evaluation); replace <see cref="IModelLocator"/> to resolve registry URIs.
    /// </summary>
    public static IServiceCollection AddKilnMonitoring(this IServiceCollection services, MonitorConfig config, Func<IServiceProvider, Meter> meter)
    {
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<IModelLocator>(_ => new DirectoryModelLocator());
        services.AddSingleton(config);
        services.AddSingleton(sp => new GaugePublisher(meter(sp)));
        services.AddSingleton<IMonitorEvaluator>(sp => new WindowMonitorEvaluator(sp.GetRequiredService<IModelLocator>()));
        services.AddSingleton(sp => new HttpDelivery("webhook", config.Delivery, sp.GetRequiredService<ILoggerFactory>().CreateLogger("Kiln.Monitoring.Alerts"),
            time: sp.GetRequiredService<TimeProvider>()));
        services.AddSingleton<IAlertSink>(sp => new LogAlertSink(sp.GetRequiredService<ILoggerFactory>().CreateLogger("Kiln.Monitoring.Alerts")));
        services.AddSingleton<IAlertSink>(sp => new WebhookSink(sp.GetRequiredService<HttpDelivery>(), config.Link));
        if (config.PipelinesUrl is { } pipelines)
            services.AddSingleton<IAlertSink>(sp => new PipelineEventHttpSink(sp.GetRequiredService<HttpDelivery>(), pipelines, config.Targets));
        services.AddSingleton(sp => new MonitorService(config, sp.GetServices<IMonitorEvaluator>(), sp.GetRequiredService<GaugePublisher>(),
            sp.GetServices<IAlertSink>(), sp.GetRequiredService<ILogger<MonitorService>>(), sp.GetRequiredService<TimeProvider>(),
            sp.GetServices<IMonitorTickSink>()));
        services.AddHostedService(sp => sp.GetRequiredService<MonitorService>());
        return services;
    }
}
