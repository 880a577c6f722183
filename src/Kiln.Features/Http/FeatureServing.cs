using Kiln.Core;
using Kiln.Features.Definitions;
using Kiln.Features.Online;
using Kiln.Features.Registry;
using Kiln.Storage;
using Microsoft.Extensions.Options;

namespace Kiln.Features.Http;

/// <summary>
/// The process-wide feature serving state: the online store, and the definitions (from a YAML repository or the
/// latest applied version in the registry, looked up again every refresh interval). The inference server resolves
/// this from DI and calls <see cref="GetReaderAsync"/>.
/// </summary>
public sealed class FeatureServing : IAsyncDisposable
{
    private readonly KilnFeatureOptions _options;
    private readonly SemaphoreSlim _lock = new(1, 1);
    private IOnlineStore? _store;
    private IFeatureRegistry? _registry;
    private OnlineFeatureReader? _reader;
    private DateTime _loadedAt;

    private readonly MetadataDatabase? _hostDatabase;

    /// <param name="options">Where definitions and values are.</param>
    /// <param name="hostDatabase">The host's metadata database, used when <see cref="KilnFeatureOptions.Registry"/> is null.</param>
    public FeatureServing(IOptions<KilnFeatureOptions> options, MetadataDatabase? hostDatabase = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options.Value;
        _hostDatabase = hostDatabase;
    }

    /// <summary>The registry the definitions come from: the host's database or the one <see cref="KilnFeatureOptions.Registry"/> names.</summary>
    public async ValueTask<IFeatureRegistry> GetRegistryAsync(CancellationToken cancellationToken = default)
    {
        if (_registry is not null) return _registry;
        if (_options.Registry is { } location) return _registry = await FeatureRegistry.OpenAsync(location, cancellationToken).ConfigureAwait(false);
        var shared = _hostDatabase ?? throw new KilnException("the feature registry is not set: give --feature-registry (or KilnFeatureOptions.Registry)");
        var registry = new FeatureRegistry(shared);
        await registry.InitializeAsync(cancellationToken).ConfigureAwait(false);
        return _registry = registry;
    }

    /// <summary>A reader over the current definitions and the online store.</summary>
    public async ValueTask<OnlineFeatureReader> GetReaderAsync(CancellationToken cancellationToken = default)
    {
        var reader = _reader;
        if (reader is not null && DateTime.UtcNow - _loadedAt < _options.RefreshInterval) return reader;
        await _lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_reader is not null && DateTime.UtcNow - _loadedAt < _options.RefreshInterval) return _reader;
            _store ??= await OnlineStores.OpenAsync(_options.OnlineStore, cancellationToken).ConfigureAwait(false);
            FeatureRepository repo;
            if (_options.RepositoryPath is { } path)
            {
                repo = RepositoryLoader.Load(path);
            }
            else
            {
                var registry = await GetRegistryAsync(cancellationToken).ConfigureAwait(false);
                repo = (await registry.RequireLatestAsync(_options.Project, cancellationToken).ConfigureAwait(false)).Repository;
            }
            _reader = new OnlineFeatureReader(repo, _store);
            _loadedAt = DateTime.UtcNow;
            return _reader;
        }
        finally
        {
            _lock.Release();
        }
    }

    /// <summary>The online store (opened on first use).</summary>
    public async ValueTask<IOnlineStore> GetStoreAsync(CancellationToken cancellationToken = default)
    {
        await GetReaderAsync(cancellationToken).ConfigureAwait(false);
        return _store!;
    }

    public async ValueTask DisposeAsync()
    {
        if (_store is not null) await _store.DisposeAsync().ConfigureAwait(false);
        if (_registry is not null) await _registry.DisposeAsync().ConfigureAwait(false);
        _lock.Dispose();
    }
}
