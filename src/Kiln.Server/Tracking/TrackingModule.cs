using Kiln.Storage;
using Kiln.Tracking;

namespace Kiln.Server.Tracking;

/// <summary>Tracking, registry and artifacts: the stores as singletons and their endpoints.</summary>
internal sealed class TrackingModule(KilnServerOptions options) : IKilnServerModule
{
    public void ConfigureServices(WebApplicationBuilder builder) => builder.Services.AddKilnTracking(options.Db, options.Artifacts, options.MaxArtifactBytes);

    public void MapEndpoints(WebApplication app)
    {
        var mlflow = app.MapGroup("/api/2.0/mlflow").AddEndpointFilter<MlflowErrorFilter>();
        MlflowTrackingEndpoints.Map(mlflow);
        MlflowRegistryEndpoints.Map(mlflow);
        mlflow.Map("/{**path}", (string? path) =>
            MlflowHttp.Error("ENDPOINT_NOT_FOUND", $"no MLflow endpoint /api/2.0/mlflow/{path}", 404));

        var artifacts = app.MapGroup("/api/2.0/mlflow-artifacts").AddEndpointFilter<MlflowErrorFilter>();
        ArtifactProxyEndpoints.Map(artifacts);

        var v1 = app.MapGroup("/api/v1").AddEndpointFilter<ProblemFilter>();
        NativeRegistryEndpoints.Map(v1);
    }
}

/// <summary>Registration of the tracking stores.</summary>
public static class TrackingServiceCollectionExtensions
{
    /// <summary>
    /// Opens the stores named by a database URI (and artifact root) once, as singletons. The metadata database is
    /// registered too (<see cref="MetadataDatabase"/>), so that the other modules of the host share it.
    /// </summary>
    public static IServiceCollection AddKilnTracking(this IServiceCollection services, string db, string? artifacts, long maxArtifactBytes)
    {
        if (StorageLocation.IsServer(db))
        {
            services.AddSingleton(_ => TrackingStores.Open(db, artifacts, maxArtifactBytes));
        }
        else
        {
            services.AddSingleton(_ => MetadataDatabase.Open(db, "--db"));
            services.AddSingleton(sp => TrackingStores.Open(sp.GetRequiredService<MetadataDatabase>(), artifacts, maxArtifactBytes, uri: db));
        }
        services.AddSingleton(sp => sp.GetRequiredService<TrackingStores>().Tracking);
        services.AddSingleton(sp => sp.GetRequiredService<TrackingStores>().Registry);
        services.AddSingleton(sp => sp.GetRequiredService<TrackingStores>().Artifacts);
        return services;
    }
}
