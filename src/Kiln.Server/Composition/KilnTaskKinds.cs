using Kiln.Batch.Pipelines;
using Kiln.Features.Pipelines;
using Kiln.Monitoring.Pipelines;
using Kiln.Pipelines.Tasks;
using Kiln.Tracking.Pipelines;
using Kiln.Training.Pipelines;

namespace Kiln.Server.Composition;

/// <summary>
/// Every area's pipeline task kinds in one registry, and the services they ask their host for (the registry's
/// resolver of models:/ settings and the default tracking store). kiln server and `kiln pipeline` both compose
/// pipelines from here, so a kind added to an area is known to both.
/// </summary>
public static class KilnTaskKinds
{
    /// <summary>The built-in kinds (shell, python, …) plus those of training, the registry, batch, features and monitoring.</summary>
    public static TaskKindRegistry Create() => AddAreaKinds(TaskKindRegistry.CreateDefault());

    private static TaskKindRegistry AddAreaKinds(TaskKindRegistry registry) => registry
        .AddTrainingKinds().AddRegistryKinds().AddBatchKinds().AddFeatureKinds().AddMonitoringKinds();

    /// <summary>Registers the areas' kinds (the pipelines engine adds the built-ins) and what they ask the host for.</summary>
    public static IServiceCollection AddKilnTaskKinds(this IServiceCollection services, string? trackingUri)
    {
        var kinds = AddAreaKinds(new TaskKindRegistry());
        foreach (var name in kinds.Names)
        {
            if (kinds.TryGet(name, out var kind)) services.AddSingleton(kind);
        }
        services.AddSingleton(new TrackingTaskDefaults(trackingUri));
        services.AddSingleton<ITaskModelResolver, RegistryTaskModelResolver>();
        return services;
    }

    /// <summary>
    /// The services a pipeline run outside kiln server hands its kinds (through <c>PipelineEngineOptions.Services</c>):
    /// the registry's model resolver, with no default store of its own ($KILN_TRACKING_URI, else ./.kiln).
    /// </summary>
    public static IServiceProvider StandaloneServices() =>
        new ServiceCollection().AddSingleton<ITaskModelResolver, RegistryTaskModelResolver>().BuildServiceProvider();
}
