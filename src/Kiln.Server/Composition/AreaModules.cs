using Kiln.Features.Http;
using Kiln.Features.Registry;
using Kiln.Pipelines;
using Kiln.Pipelines.Http;
using Kiln.Storage;
using Kiln.Vectors.Http;

namespace Kiln.Server.Composition;

/// <summary>The feature store's online API (Feast's /get-online-features and /push) inside kiln server.</summary>
internal sealed class FeatureServerModule(string? registry, string onlineStore) : IKilnServerModule
{
    public void ConfigureServices(WebApplicationBuilder builder) =>
        builder.Services.AddKilnFeatures(o => { o.Registry = registry; o.OnlineStore = onlineStore; });

    public void MapEndpoints(WebApplication app) => app.MapKilnFeatureEndpoints();
}

/// <summary>
/// The feature registry in the server's metadata database, as a REST API under /api/v1/features: what
/// <c>kiln features … --feature-registry http://server</c> reaches.
/// </summary>
internal sealed class FeatureRegistryServerModule : IKilnServerModule
{
    public void ConfigureServices(WebApplicationBuilder builder) =>
        builder.Services.AddSingleton<IFeatureRegistry>(sp => new FeatureRegistry(sp.GetRequiredService<MetadataDatabase>()));

    public void MapEndpoints(WebApplication app) => app.MapKilnFeatureRegistryEndpoints();
}

/// <summary>
/// Pipelines inside kiln server: the /api/v1/pipelines API, the cron scheduler and orphan recovery, with every
/// area's task kinds (<see cref="KilnTaskKinds"/>) and the server's own store as the kinds' tracking store.
/// </summary>
internal sealed class PipelineServerModule(string? store, string pipelinesDirectory, string trackingUri) : IKilnServerModule
{
    public void ConfigureServices(WebApplicationBuilder builder)
    {
        builder.Services.AddKilnPipelines(o => { o.Store = store; o.PipelinesDirectory = pipelinesDirectory; });
        builder.Services.AddKilnTaskKinds(trackingUri);
    }

    public void MapEndpoints(WebApplication app) => app.MapKilnPipelineEndpoints();
}

/// <summary>Delayed labels inside kiln server: POST /api/v1/feedback into the shared prediction log of many replicas.</summary>
internal sealed class FeedbackServerModule(string logDirectory) : IKilnServerModule
{
    public void ConfigureServices(WebApplicationBuilder builder)
    {
    }

    public void MapEndpoints(WebApplication app) => Kiln.Monitoring.Feedback.FeedbackEndpoints.MapKilnFeedbackEndpoints(app, logDirectory);
}

/// <summary>Vector collections inside kiln server: Qdrant's REST API under /collections, the catalog in the server's metadata database.</summary>
internal sealed class VectorServerModule(string directory) : IKilnServerModule
{
    public void ConfigureServices(WebApplicationBuilder builder) =>
        builder.Services.AddKilnVectors(o => o.Directory = directory);

    public void MapEndpoints(WebApplication app) => app.MapKilnVectorEndpoints();
}
