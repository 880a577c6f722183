using Kiln.Testing;
using Kiln.Tracking;
using Kiln.Tracking.Tests;
using Microsoft.AspNetCore.Builder;

namespace Kiln.Server.Tests;

/// <summary>A kiln server on a loopback port over SQLite in a temporary directory, and the HTTP client stores.</summary>
public sealed class ServerFixture : IStoresFixture, IAsyncLifetime
{
    private readonly TempDir _dir = new("kiln-server");
    private WebApplication? _app;

    public TrackingStores Stores { get; private set; } = null!;

    public Uri Address { get; private set; } = null!;

    public HttpClient Http { get; } = new();

    public string ArtifactRoot => Path.Combine(_dir.Path, "artifacts");

    public string Directory => _dir.Path;

    public async Task InitializeAsync()
    {
        _app = KilnServer.BuildApp(new KilnServerOptions { Db = _dir.Path, Port = 0, MaxArtifactBytes = 1024 * 1024 });
        await _app.StartAsync();
        Address = KilnServer.Address(_app);
        Http.BaseAddress = Address;
        Stores = TrackingStores.Open(Address.ToString());
    }

    public async Task DisposeAsync()
    {
        await Stores.DisposeAsync();
        if (_app is not null)
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }
        Http.Dispose();
        _dir.Dispose();
    }
}

/// <summary>The store contract through the REST API: the HTTP client against a real server.</summary>
public sealed class HttpStoreContractTests(ServerFixture fixture) : StoreContract(fixture), IClassFixture<ServerFixture>;
