using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Kiln.Core;
using Kiln.Core.Packaging;
using Kiln.Tracking.Artifacts;
using Kiln.Tracking.Http;

namespace Kiln.Tracking;

/// <summary>
/// The model registry's <see cref="IModelLocator"/>: models:/NAME/VERSION, models:/NAME@ALIAS, models:/NAME/STAGE,
/// runs:/RUN_ID/PATH and mlflow-artifacts:/PATH through the tracking stores, anything else through a
/// <see cref="DirectoryModelLocator"/>. With embedded stores the package is the artifact directory itself; through a
/// server it is downloaded once into a cache directory and its checksums verified before it lands there (versions never
/// change, so the cache needs no invalidation).
/// </summary>
/// <param name="stores">The tracking stores (embedded or a kiln server); the caller owns them.</param>
/// <param name="cacheDirectory">Where remote packages are downloaded (default <see cref="DefaultCacheDirectory"/>).</param>
/// <param name="local">Where package directories are resolved (default: a <see cref="DirectoryModelLocator"/> of the current directory).</param>
public sealed class RegistryModelLocator(TrackingStores stores, string? cacheDirectory = null, IModelLocator? local = null) : IModelLocator
{
    private readonly IModelLocator _local = local ?? new DirectoryModelLocator();

    /// <summary>$KILN_MODEL_CACHE, else ~/.cache/kiln/models.</summary>
    public static string DefaultCacheDirectory =>
        Environment.GetEnvironmentVariable("KILN_MODEL_CACHE")
        ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "kiln", "models");

    /// <summary>The download cache of this locator.</summary>
    public string CacheDirectory { get; } = cacheDirectory ?? DefaultCacheDirectory;

    public async Task<ResolvedModel> ResolveAsync(string uri, CancellationToken ct = default)
    {
        if (string.IsNullOrWhiteSpace(uri) || !DirectoryModelLocator.IsRegistryUri(uri)) return await _local.ResolveAsync(uri, ct).ConfigureAwait(false);
        try
        {
            if (uri.StartsWith("models:/", StringComparison.Ordinal))
            {
                var version = await VersionOfAsync(ModelUris.ParseModelsUri(uri), ct).ConfigureAwait(false);
                var dir = Checked(uri, await FetchAsync(version.Source, ct).ConfigureAwait(false));
                return new ResolvedModel(uri, dir, version.Version.ToString(CultureInfo.InvariantCulture), version.Name, version.Version, version.RunId);
            }
            if (uri.StartsWith("runs:/", StringComparison.Ordinal) || uri.StartsWith(ArtifactUris.Scheme, StringComparison.Ordinal))
            {
                var dir = Checked(uri, await FetchAsync(uri, ct).ConfigureAwait(false));
                return new ResolvedModel(uri, dir, DirectoryModelLocator.ContentVersion(dir), RunId: ModelUris.RunIdOf(uri));
            }
            throw TrackingException.Invalid($"invalid model URI '{uri}': use models:/NAME/VERSION, models:/NAME@ALIAS or runs:/RUN_ID/PATH");
        }
        catch (TrackingException e) when (!e.Message.Contains(uri, StringComparison.Ordinal))
        {
            // The store names the registered model or run; the user typed the URI, so the one line names that.
            throw new TrackingException(e.Code, $"{uri}: {e.Message}", e);
        }
    }

    public async Task<string> CurrentVersionAsync(string uri, CancellationToken ct = default)
    {
        if (uri.StartsWith("models:/", StringComparison.Ordinal))
        {
            var r = ModelUris.ParseModelsUri(uri);
            // A version number is its own answer, and an alias costs one small request: no package is fetched to poll.
            if (r.Version is { } v) return v.ToString(CultureInfo.InvariantCulture);
            if (r.Alias is { } alias) return (await GetAliasVersionAsync(uri, r.Name, alias, ct).ConfigureAwait(false)).ToString(CultureInfo.InvariantCulture);
        }
        if (!DirectoryModelLocator.IsRegistryUri(uri)) return await _local.CurrentVersionAsync(uri, ct).ConfigureAwait(false);
        return (await ResolveAsync(uri, ct).ConfigureAwait(false)).Version;
    }

    /// <summary>A registered source that is not a Kiln package is the user's mistake, named by the URI they gave.</summary>
    private static string Checked(string uri, string dir) => ModelPackage.IsPackage(dir) ? dir
        : throw new KilnException($"{uri}: not a Kiln model package (no {PackageManifest.FileName} in {dir})");

    private async Task<int> GetAliasVersionAsync(string uri, string name, string alias, CancellationToken ct)
    {
        try
        {
            return stores.Registry is KilnHttpClient http
                ? await http.GetAliasVersionAsync(name, alias, ct).ConfigureAwait(false)
                : (await stores.Registry.GetModelVersionByAliasAsync(name, alias, ct).ConfigureAwait(false)).Version;
        }
        catch (TrackingException e) when (!e.Message.Contains(uri, StringComparison.Ordinal))
        {
            throw new TrackingException(e.Code, $"{uri}: {e.Message}", e);
        }
    }

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
        // The cache is keyed by where the files come from: the server, or the bucket and prefix of an S3 store.
        var origin = stores.Artifacts is S3ArtifactStore s3 ? s3.Storage.Location.ToString() : stores.Uri;
        var key = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(origin + "|" + storePath)))[..24];
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
