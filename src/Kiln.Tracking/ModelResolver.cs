using System.Security.Cryptography;
using System.Text;
using Kiln.Tracking.Artifacts;
using Kiln.Tracking.Http;

namespace Kiln.Tracking;

/// <summary>Where a model URI led: the local directory holding the package, and the registry version when there is one.</summary>
public sealed record ResolvedModel(string Uri, string Directory, string? Name, int? Version, string? RunId);

/// <summary>
/// Resolves the URIs that name a model (models:/NAME/VERSION, models:/NAME@ALIAS, models:/NAME/STAGE,
/// runs:/RUN_ID/PATH, mlflow-artifacts:/PATH, or a local path) to a local directory. With embedded
/// stores that is the artifact directory itself; through a server the package is downloaded once
/// into a cache directory (versions never change, so the cache needs no invalidation).
/// </summary>
public sealed class ModelResolver(TrackingStores stores, string? cacheDirectory = null)
{
    /// <summary>The download cache: $KILN_MODEL_CACHE, else ~/.cache/kiln/models.</summary>
    public string CacheDirectory { get; } = cacheDirectory
        ?? Environment.GetEnvironmentVariable("KILN_MODEL_CACHE")
        ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "kiln", "models");

    public async Task<ResolvedModel> ResolveAsync(string uri, CancellationToken ct = default)
    {
        if (string.IsNullOrWhiteSpace(uri)) throw TrackingException.Invalid("model URI is empty");
        if (uri.StartsWith("models:/", StringComparison.Ordinal))
        {
            var version = await VersionOfAsync(ModelUris.ParseModelsUri(uri), ct).ConfigureAwait(false);
            var dir = await FetchAsync(version.Source, ct).ConfigureAwait(false);
            return new ResolvedModel(uri, dir, version.Name, version.Version, version.RunId);
        }
        if (uri.StartsWith("runs:/", StringComparison.Ordinal) || uri.StartsWith(ArtifactUris.Scheme, StringComparison.Ordinal))
            return new ResolvedModel(uri, await FetchAsync(uri, ct).ConfigureAwait(false), null, null, ModelUris.RunIdOf(uri));
        var local = uri.StartsWith("file://", StringComparison.OrdinalIgnoreCase) ? new Uri(uri).LocalPath : uri;
        if (!System.IO.Directory.Exists(local)) throw TrackingException.NotFound($"model directory '{local}' does not exist");
        return new ResolvedModel(uri, Path.GetFullPath(local), null, null, null);
    }

    /// <summary>The version an alias points at now: one small request, meant for polling (hot swap).</summary>
    public async Task<int> GetAliasVersionAsync(string name, string alias, CancellationToken ct = default) =>
        stores.Registry is KilnHttpClient http
            ? await http.GetAliasVersionAsync(name, alias, ct).ConfigureAwait(false)
            : (await stores.Registry.GetModelVersionByAliasAsync(name, alias, ct).ConfigureAwait(false)).Version;

    private async Task<ModelVersion> VersionOfAsync(ModelUris.ModelRef r, CancellationToken ct)
    {
        if (r.Version is { } v) return await stores.Registry.GetModelVersionAsync(r.Name, v, ct).ConfigureAwait(false);
        if (r.Alias is { } a) return await stores.Registry.GetModelVersionByAliasAsync(r.Name, a, ct).ConfigureAwait(false);
        var model = await stores.Registry.GetRegisteredModelAsync(r.Name, ct).ConfigureAwait(false);
        var candidates = r.Stage == "latest" ? model.LatestVersions : model.LatestVersions.Where(x => x.CurrentStage == r.Stage).ToList();
        return candidates.OrderByDescending(x => x.Version).FirstOrDefault()
            ?? throw TrackingException.NotFound($"registered model '{r.Name}' has no version in stage '{r.Stage}'");
    }

    /// <summary>The local directory of a package source, downloading it when the store is remote.</summary>
    private async Task<string> FetchAsync(string source, CancellationToken ct)
    {
        var artifactUri = await ModelUris.ArtifactUriOfAsync(source, stores.Tracking, ct).ConfigureAwait(false);
        var storePath = ArtifactUris.ToStorePath(artifactUri);
        if (storePath is null)
        {
            // A plain local path (or file://) registered as the source.
            var local = artifactUri.StartsWith("file://", StringComparison.OrdinalIgnoreCase) ? new Uri(artifactUri).LocalPath : artifactUri;
            if (System.IO.Directory.Exists(local)) return Path.GetFullPath(local);
            throw TrackingException.NotFound($"model source '{source}' is neither in the artifact store nor a local directory");
        }
        if (stores.Artifacts is LocalArtifactStore localStore)
        {
            var dir = Path.Combine(localStore.Root, storePath);
            if (!System.IO.Directory.Exists(dir)) throw TrackingException.NotFound($"no artifacts at '{artifactUri}' (model source '{source}')");
            return dir;
        }
        var key = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(stores.Uri + "|" + storePath)))[..24];
        var target = Path.Combine(CacheDirectory, key);
        if (System.IO.Directory.Exists(target)) return target;
        System.IO.Directory.CreateDirectory(CacheDirectory);
        var temp = target + ".partial-" + Guid.NewGuid().ToString("N")[..8];
        try
        {
            var n = await ArtifactTransfer.DownloadDirectoryAsync(stores.Artifacts, storePath, temp, ct).ConfigureAwait(false);
            if (n == 0) throw TrackingException.NotFound($"no artifacts at '{artifactUri}' (model source '{source}')");
            try
            {
                System.IO.Directory.Move(temp, target);
            }
            catch (IOException) when (System.IO.Directory.Exists(target))
            {
                // Another process finished the same download first; theirs is as good as ours.
            }
            return target;
        }
        finally
        {
            if (System.IO.Directory.Exists(temp)) System.IO.Directory.Delete(temp, recursive: true);
        }
    }
}
