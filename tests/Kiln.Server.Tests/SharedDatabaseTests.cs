using Kiln.Features.Http;
using Kiln.Features.Registry;
using Kiln.Pipelines.State;
using Kiln.Storage;
using Kiln.Testing;
using Kiln.Tracking;
using Microsoft.Extensions.DependencyInjection;

namespace Kiln.Server.Tests;

/// <summary>kiln server holds one metadata database for tracking, pipelines and features.</summary>
public sealed class SharedDatabaseTests
{
    [Fact]
    public async Task Tracking_pipelines_and_features_share_one_database_object()
    {
        using var dir = new TempDir("kiln-shared-db");
        Directory.CreateDirectory(dir.File("pipelines"));
        // What kiln server --db DIR --online-store online.db --pipelines pipelines/ composes.
        var options = new KilnServerOptions
        {
            Db = dir.Path, Port = 0, Host = "127.0.0.1", OnlineStore = dir.File("online.db"), PipelinesDirectory = dir.File("pipelines"),
        };
        await using var app = KilnServer.BuildApp(options);

        var database = app.Services.GetRequiredService<MetadataDatabase>();
        var tracking = app.Services.GetRequiredService<TrackingStores>();
        // kiln server exports metrics, so its store is the instrumented one around the SQL store.
        var instrumented = Assert.IsType<InstrumentedPipelineStore>(app.Services.GetRequiredService<IPipelineStore>());
        var pipelines = Assert.IsType<SqlPipelineStore>(instrumented.Inner);
        var features = Assert.IsType<FeatureRegistry>(await app.Services.GetRequiredService<FeatureServing>().GetRegistryAsync());
        var registryApi = Assert.IsType<FeatureRegistry>(app.Services.GetRequiredService<IFeatureRegistry>());

        Assert.Same(database, tracking.Database);
        Assert.Same(database, pipelines.Database);
        Assert.Same(database, features.Database);
        Assert.Same(database, registryApi.Database);
        Assert.Equal(Path.Combine(dir.Path, "kiln.db"), database.Location.SqlitePath);

        // All three areas' tables are in the one file, each at its recorded version.
        await tracking.Tracking.GetExperimentAsync("0");
        await pipelines.InitializeAsync();
        Assert.Equal(1, await database.SchemaVersionAsync("tracking", default));
        Assert.Equal(SqlPipelineStore.SchemaVersion, await database.SchemaVersionAsync("pipelines", default));
        Assert.Equal(1, await database.SchemaVersionAsync("features", default));
    }
}
