using Kiln.Pipelines.Execution;
using Kiln.Pipelines.Scheduling;
using Kiln.Pipelines.State;
using Kiln.Pipelines.Tasks;
using Kiln.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Kiln.Pipelines;

/// <summary>Settings of the pipeline services in a host (<c>kiln server</c>).</summary>
public sealed class KilnPipelineOptions
{
    /// <summary>The store: null for the host's <see cref="MetadataDatabase"/> if it registered one, else ./.kiln/kiln.db; or a location (docs/cli.md#locations).</summary>
    public string? Store { get; set; }

    /// <summary>A directory of pipeline YAML files loaded into the catalog at start.</summary>
    public string? PipelinesDirectory { get; set; }

    /// <summary>Run the cron scheduler and recover orphaned runs in this host.</summary>
    public bool RunScheduler { get; set; } = true;
}

public static class PipelineServiceCollectionExtensions
{
    /// <summary>
    /// Registers the store, the task kinds (built-ins plus every <see cref="ITaskKind"/> in the container),
    /// the engine and a hosted service that opens the store, loads the catalog and runs the scheduler.
    /// Map the HTTP API with <see cref="Http.PipelineEndpoints.MapKilnPipelineEndpoints"/>.
    /// </summary>
    public static IServiceCollection AddKilnPipelines(this IServiceCollection services, Action<KilnPipelineOptions>? configure = null)
    {
        var options = services.AddOptions<KilnPipelineOptions>();
        if (configure is not null) options.Configure(configure);
        services.AddSingleton(TimeProvider.System);
        services.AddSingleton<IPipelineStore>(sp =>
        {
            // A host that registered one metadata database (kiln server) shares it unless a store is named.
            var store = sp.GetRequiredService<IOptions<KilnPipelineOptions>>().Value.Store;
            IPipelineStore opened = store is null && sp.GetService<MetadataDatabase>() is { } shared ? new SqlPipelineStore(shared) : PipelineStores.Create(store);
            // A host that exports metrics registers PipelineMetrics on its meter; the store then counts runs and attempts.
            return sp.GetService<PipelineMetrics>() is { } metrics ? new InstrumentedPipelineStore(opened, metrics) : opened;
        });
        services.AddSingleton(sp =>
        {
            var registry = TaskKindRegistry.CreateDefault();
            foreach (var kind in sp.GetServices<ITaskKind>()) registry.Add(kind);
            return registry;
        });
        services.AddSingleton(sp => new PipelineEngine(sp.GetRequiredService<IPipelineStore>(), sp.GetRequiredService<TaskKindRegistry>(),
            new PipelineEngineOptions { Services = sp }, sp.GetService<IExecutor>(), sp.GetRequiredService<TimeProvider>(),
            sp.GetService<ILogger<PipelineEngine>>()));
        services.AddSingleton(sp => new PipelineScheduler(sp.GetRequiredService<PipelineEngine>(), sp.GetRequiredService<TimeProvider>(),
            sp.GetService<ILogger<PipelineScheduler>>()));
        services.AddSingleton<Http.AlertmanagerReceiver>();
        services.AddHostedService<PipelineHostedService>();
        return services;
    }
}

/// <summary>Opens the store, loads the catalog, recovers orphaned runs and runs the scheduler for the host's lifetime.</summary>
internal sealed class PipelineHostedService(IPipelineStore store, PipelineEngine engine, PipelineScheduler scheduler,
    TaskKindRegistry kinds, IOptions<KilnPipelineOptions> options) : BackgroundService
{
    public override async Task StartAsync(CancellationToken cancellationToken)
    {
        await store.InitializeAsync(cancellationToken).ConfigureAwait(false);
        if (options.Value.PipelinesDirectory is { } dir && Directory.Exists(dir)) engine.Catalog.LoadDirectory(dir, kinds);
        await base.StartAsync(cancellationToken).ConfigureAwait(false);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!options.Value.RunScheduler) return;
        await scheduler.RunAsync(stoppingToken).ConfigureAwait(false);
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken).ConfigureAwait(false);
        await engine.DisposeAsync().ConfigureAwait(false);
    }
}
