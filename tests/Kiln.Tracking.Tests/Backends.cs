using Kiln.Testing;

namespace Kiln.Tracking.Tests;

/// <summary>Opens the stores under test; one fixture per backend, shared by a test class.</summary>
public interface IStoresFixture
{
    TrackingStores Stores { get; }
}

/// <summary>SQLite in a fresh temporary directory.</summary>
public sealed class SqliteFixture : IStoresFixture, IAsyncLifetime
{
    private readonly TempDir _dir = new("kiln-tracking");

    public TrackingStores Stores { get; private set; } = null!;

    public string Directory => _dir.Path;

    public Task InitializeAsync()
    {
        Stores = TrackingStores.Open(_dir.Path, maxArtifactBytes: 1024 * 1024);
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        await Stores.DisposeAsync();
        _dir.Dispose();
    }
}

/// <summary>A fresh database on the real PostgreSQL that test.sh starts, dropped afterwards.</summary>
public sealed class PostgresFixture : IStoresFixture, IAsyncLifetime
{
    private readonly TempDir _dir = new("kiln-tracking-pg");
    private TestDatabase? _database;

    public TrackingStores Stores { get; private set; } = null!;

    public string ConnectionString { get; private set; } = "";

    public async Task InitializeAsync()
    {
        _database = await TestDatabase.CreateAsync();
        ConnectionString = _database.ConnectionString;
        Stores = TrackingStores.Open(ConnectionString, Path.Combine(_dir.Path, "artifacts"), maxArtifactBytes: 1024 * 1024);
    }

    public async Task DisposeAsync()
    {
        if (_database is null) return;
        await Stores.DisposeAsync();
        await _database.DisposeAsync();
        _dir.Dispose();
    }
}

public sealed class SqliteStoreContractTests(SqliteFixture fixture) : StoreContract(fixture), IClassFixture<SqliteFixture>;

public sealed class PostgresStoreContractTests(PostgresFixture fixture) : StoreContract(fixture), IClassFixture<PostgresFixture>;

/// <summary>SQLite for runs and the registry, artifacts on a real S3-protocol server (s3rver) through <see cref="Artifacts.S3ArtifactStore"/>.</summary>
public sealed class S3ArtifactsFixture : IStoresFixture, IAsyncLifetime
{
    private readonly TempDir _dir = new("kiln-tracking-s3");

    public TrackingStores Stores { get; private set; } = null!;

    public S3rver Server { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Server = await S3rver.StartAsync("kiln");
        var sql = TrackingStores.Open(_dir.Path);
        var settings = Kiln.Storage.Objects.S3Settings.FromVariables(k => Server.Environment.GetValueOrDefault(k));
        var artifacts = new Artifacts.S3ArtifactStore(new Kiln.Storage.Objects.S3Storage(new("kiln", "team/artifacts"), settings), 1024 * 1024);
        Stores = new TrackingStores(sql.Tracking, sql.Registry, artifacts, _dir.Path, isRemote: false, sql);
    }

    public async Task DisposeAsync()
    {
        await Stores.DisposeAsync();
        await Server.DisposeAsync();
        _dir.Dispose();
    }
}

public sealed class S3ArtifactsStoreContractTests(S3ArtifactsFixture fixture) : StoreContract(fixture), IClassFixture<S3ArtifactsFixture>;
