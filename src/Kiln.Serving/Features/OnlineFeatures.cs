using Kiln.Core;
using Kiln.Features.Definitions;
using Kiln.Features.Online;
using Kiln.Features.Registry;
using Kiln.Serving.Models;

namespace Kiln.Serving.Features;

/// <summary>
/// How one served model version takes its inputs from the feature store: the features to read, the schema field each
/// fills, the join keys a request must carry, and a reader over the definitions the model was trained with.
/// </summary>
public sealed class FeatureBinding
{
    internal FeatureBinding(OnlineFeatureReader reader, string service, IReadOnlyList<FeatureRef> features, int[] fields,
        IReadOnlyList<string> joinKeys, IReadOnlyList<FeatureType?> joinKeyTypes, bool[] fromStore, DateTime createdAt)
    {
        JoinKeyTypes = joinKeyTypes;
        Reader = reader;
        Service = service;
        Features = features;
        Fields = fields;
        JoinKeys = joinKeys;
        FromStore = fromStore;
        CreatedAt = createdAt;
    }

    public OnlineFeatureReader Reader { get; }

    public string Service { get; }

    /// <summary>The features read for each request, each filling the schema field at the same index of <see cref="Fields"/>.</summary>
    public IReadOnlyList<FeatureRef> Features { get; }

    public int[] Fields { get; }

    /// <summary>Every join key the features' views need; each request row must carry all of them.</summary>
    public IReadOnlyList<string> JoinKeys { get; }

    /// <summary>The type each join key's entity declares (null: none declared), in the order of <see cref="JoinKeys"/>.</summary>
    public IReadOnlyList<FeatureType?> JoinKeyTypes { get; }

    /// <summary>Per schema field: filled from the store (true) or sent with the request (false).</summary>
    public bool[] FromStore { get; }

    internal DateTime CreatedAt { get; }
}

/// <summary>
/// The feature store as <c>kiln serve</c> sees it: the online store and the registry (opened on first use) and one
/// <see cref="FeatureBinding"/> per served model version, kept on the <see cref="ServedModel"/> itself. A package that records a feature service is bound to the
/// definitions version it was trained with; <see cref="FeatureStoreOptions.Service"/> binds other packages to the
/// latest definitions (looked up again every refresh interval).
/// </summary>
public sealed class OnlineFeatures(ServeOptions options) : IAsyncDisposable
{
    private readonly FeatureStoreOptions _options = options.FeatureStore;
    private readonly SemaphoreSlim _lock = new(1, 1);
    private readonly Dictionary<(string Project, int Version), FeatureRepository> _pinned = [];
    private IOnlineStore? _store;
    private IFeatureRegistry? _registry;
    private FeatureRepository? _yaml;

    /// <summary>Does this model take its inputs from the feature store? (Cheap: checked on every /predict.)</summary>
    public static bool Applies(ServedModel model, ServeOptions options) =>
        model.Package.Metadata.FeatureStore is not null || options.FeatureStore.Service is not null;

    /// <summary>The binding of a model version, built on first use; a KilnException when the store or definitions do not fit.</summary>
    public async ValueTask<FeatureBinding> BindAsync(ServedModel model, CancellationToken ct)
    {
        if (model.FeatureBinding is { } binding && !Stale(model, binding)) return binding;
        await _lock.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            if (model.FeatureBinding is { } again && !Stale(model, again)) return again;
            binding = await CreateAsync(model, ct).ConfigureAwait(false);
            model.FeatureBinding = binding;
            return binding;
        }
        finally
        {
            _lock.Release();
        }
    }

    private bool Stale(ServedModel model, FeatureBinding binding) =>
        model.Package.Metadata.FeatureStore is null && _options.RepositoryPath is null && DateTime.UtcNow - binding.CreatedAt >= _options.RefreshInterval;

    private async Task<FeatureBinding> CreateAsync(ServedModel model, CancellationToken ct)
    {
        // A missing SQLite file would be created empty and every feature would read NOT_FOUND: say so instead.
        if (_store is null && IsPath(_options.OnlineStore) && !File.Exists(_options.OnlineStore))
            throw new KilnException($"online store {_options.OnlineStore} does not exist (materialize into it first, or give --online-store)");
        _store ??= await OnlineStores.OpenAsync(_options.OnlineStore, ct).ConfigureAwait(false);
        var schema = model.Schema;
        var fromStore = new bool[schema.Fields.Count];
        var features = new List<FeatureRef>();
        var fields = new List<int>();
        FeatureRepository repo;
        string service;
        if (model.Package.Metadata.FeatureStore is { } recorded)
        {
            service = recorded.Service;
            repo = await DefinitionsAsync(recorded.Project, recorded.DefinitionsVersion, ct).ConfigureAwait(false);
            // In the service's order (as with --feature-service), so answers list missing features the same way.
            var ordered = recorded.Inputs.OrderBy(kv => recorded.Features.IndexOf(kv.Value) is var i && i >= 0 ? i : int.MaxValue).ThenBy(kv => kv.Key, StringComparer.Ordinal);
            foreach (var (input, feature) in ordered)
            {
                var field = schema.IndexOf(input);
                if (field < 0) continue;
                var colon = feature.IndexOf(':', StringComparison.Ordinal);
                if (colon <= 0) throw new KilnException($"model '{model.Name}': metadata.json feature_store.inputs.{input}: '{feature}' is not view:feature");
                var r = repo.ResolveFeatures([feature], $"model '{model.Name}' (feature_store.inputs.{input})")[0];
                features.Add(r);
                fields.Add(field);
                fromStore[field] = true;
            }
        }
        else
        {
            service = _options.Service!;
            repo = await LatestAsync(_options.Project, ct).ConfigureAwait(false);
            foreach (var r in repo.ServiceFeatures(service))
            {
                var field = schema.IndexOf(r.Feature);
                if (field < 0) field = schema.IndexOf(r.FullName);
                if (field < 0 || fromStore[field]) continue;
                features.Add(r);
                fields.Add(field);
                fromStore[field] = true;
            }
            // None of its inputs is a feature of the service: the model is served as it is (all inputs in the request).
        }
        var joinKeys = new List<string>();
        foreach (var f in features)
            foreach (var k in repo.JoinKeys(repo.View(f.View)))
                if (!joinKeys.Contains(k)) joinKeys.Add(k);
        return new FeatureBinding(new OnlineFeatureReader(repo, _store), service, features, [.. fields], joinKeys,
            [.. joinKeys.Select(repo.JoinKeyType)], fromStore, DateTime.UtcNow);
    }

    /// <summary>The definitions a package was trained with (a YAML repository, when serving one, is taken as it is).</summary>
    private async Task<FeatureRepository> DefinitionsAsync(string project, int version, CancellationToken ct)
    {
        if (_options.RepositoryPath is { } path) return _yaml ??= RepositoryLoader.Load(path);
        if (_pinned.TryGetValue((project, version), out var repo)) return repo;
        var found = await (await RegistryAsync(ct).ConfigureAwait(false)).VersionAsync(project, version, ct).ConfigureAwait(false)
            ?? throw new KilnException($"feature registry {FeatureRegistry.Redact(_options.Registry)} has no version {version} of project '{project}', which the model was trained with (give --feature-registry)");
        return _pinned[(project, version)] = found.Repository;
    }

    private async Task<FeatureRepository> LatestAsync(string? project, CancellationToken ct)
    {
        if (_options.RepositoryPath is { } path) return _yaml ??= RepositoryLoader.Load(path);
        return (await (await RegistryAsync(ct).ConfigureAwait(false)).RequireLatestAsync(project, ct).ConfigureAwait(false)).Repository;
    }

    private async Task<IFeatureRegistry> RegistryAsync(CancellationToken ct)
    {
        if (_registry is not null) return _registry;
        var location = _options.Registry;
        if (IsPath(location) && !File.Exists(location) && !Directory.Exists(location))
            throw new KilnException($"feature registry {location} does not exist (run kiln features apply, or give --feature-registry)");
        return _registry = await FeatureRegistry.OpenAsync(location, ct).ConfigureAwait(false);
    }

    private static bool IsPath(string location) => !location.Contains("://", StringComparison.Ordinal) && !location.Contains('=', StringComparison.Ordinal);

    public async ValueTask DisposeAsync()
    {
        if (_store is not null) await _store.DisposeAsync().ConfigureAwait(false);
        if (_registry is not null) await _registry.DisposeAsync().ConfigureAwait(false);
        _lock.Dispose();
    }
}
