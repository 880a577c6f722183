using Kiln.Features.Http;
using Kiln.Features.Registry;
using Kiln.Testing;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Kiln.Features.Tests;

/// <summary>plan/apply/versions against the registry; run on SQLite, on the real PostgreSQL, and through a server's REST API.</summary>
public abstract class RegistryContractTests : IAsyncLifetime
{
    protected IFeatureRegistry Registry { get; private set; } = null!;

    protected abstract Task<string> LocationAsync();

    public async Task InitializeAsync() => Registry = await FeatureRegistry.OpenAsync(await LocationAsync());

    public virtual async Task DisposeAsync() => await Registry.DisposeAsync();

    [Fact]
    public async Task Apply_records_versions_and_plan_shows_what_changed()
    {
        using var d = new DriverRepo(ttl: "1d");
        var plan = await Registry.PlanAsync(d.Load());
        Assert.Null(plan.CurrentVersion);
        Assert.All(plan.Changes, c => Assert.Equal(ChangeType.Added, c.Change));
        Assert.Contains(plan.Changes, c => c is { Kind: "feature_view", Name: "driver_stats" });

        var (v1, _) = await Registry.ApplyAsync(d.Load(), d.Dir.Path);
        Assert.Equal(1, v1);
        var (again, noChange) = await Registry.ApplyAsync(d.Load(), d.Dir.Path);
        Assert.Equal(1, again);
        Assert.False(noChange.HasChanges);

        // Change the ttl and drop the service.
        var yaml = File.ReadAllText(d.Dir.File("features.yaml"));
        yaml = yaml.Replace("ttl: 1d", "ttl: 2d", StringComparison.Ordinal);
        yaml = yaml[..yaml.IndexOf("feature_services:", StringComparison.Ordinal)];
        File.WriteAllText(d.Dir.File("features.yaml"), yaml);
        plan = await Registry.PlanAsync(d.Load());
        Assert.Equal(1, plan.CurrentVersion);
        var changed = Assert.Single(plan.Changes, c => c.Change == ChangeType.Changed);
        Assert.Equal("driver_stats", changed.Name);
        Assert.Contains("ttl", changed.Detail);
        Assert.Contains(plan.Changes, c => c is { Kind: "feature_service", Name: "driver_model", Change: ChangeType.Removed });

        var (v2, _) = await Registry.ApplyAsync(d.Load(), d.Dir.Path);
        Assert.Equal(2, v2);
        var latest = await Registry.RequireLatestAsync("drivers");
        Assert.Equal(2, latest.Version.Version);
        Assert.Equal(TimeSpan.FromDays(2), latest.Repository.FeatureViews["driver_stats"].Ttl);
        Assert.Empty(latest.Repository.FeatureServices);
        Assert.Equal(d.Dir.File("data/*.parquet"), latest.Repository.Sources["driver_stats_source"].Path);
        Assert.Equal([2, 1], (await Registry.VersionsAsync("drivers")).Select(v => v.Version));
    }

    [Fact]
    public async Task Materialization_history_gives_the_furthest_end()
    {
        Assert.Null(await Registry.LastMaterializedEndAsync("p", "v"));
        var t = new DateTime(2024, 5, 1, 0, 0, 0, DateTimeKind.Utc);
        await Registry.RecordMaterializationAsync("p", "v", t.AddDays(-1), t, 10);
        await Registry.RecordMaterializationAsync("p", "v", t.AddDays(-5), t.AddDays(-4), 10);
        Assert.Equal(t, await Registry.LastMaterializedEndAsync("p", "v"));
    }
}

public sealed class SqliteRegistryTests : RegistryContractTests
{
    private readonly TempDir _dir = new();

    protected override Task<string> LocationAsync() => Task.FromResult(_dir.File(".kiln/kiln.db"));

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        _dir.Dispose();
    }
}

public sealed class PostgresRegistryTests : RegistryContractTests
{
    private TestDatabase? _database;

    protected override async Task<string> LocationAsync()
    {
        _database = await TestDatabase.CreateAsync();
        return _database.Uri; // as a user would give it
    }

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        if (_database is not null) await _database.DisposeAsync();
    }
}

/// <summary>The same contract through /api/v1/features on Kestrel (the endpoints kiln server maps) over a SQLite registry.</summary>
public sealed class RemoteRegistryContractTests : RegistryContractTests
{
    private readonly TempDir _dir = new();
    private WebApplication? _app;

    protected override async Task<string> LocationAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        builder.Services.AddSingleton(await FeatureRegistry.OpenAsync(_dir.File("server.db")));
        _app = builder.Build();
        _app.MapKilnFeatureRegistryEndpoints();
        await _app.StartAsync();
        return _app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
    }

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        if (_app is not null) await _app.DisposeAsync();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        _dir.Dispose();
    }
}
