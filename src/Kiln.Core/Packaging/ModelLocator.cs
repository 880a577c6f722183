using System.Security.Cryptography;

namespace Kiln.Core.Packaging;

/// <summary>
/// A model URI resolved to a package directory on this machine and the version it pins. <see cref="Version"/> is what
/// serving, the prediction log and metrics call the version: the registry version number when the URI went through the
/// registry, else the content version of the package (<see cref="DirectoryModelLocator.ContentVersion"/>).
/// </summary>
/// <param name="Uri">The URI as given.</param>
/// <param name="PackageDirectory">The full path of the package directory (its manifest is there).</param>
/// <param name="Version">The pinned version, as text.</param>
/// <param name="Name">The registered model's name, when the URI named a registered model.</param>
/// <param name="RegistryVersion">The registered version number, when the URI named a registered model.</param>
/// <param name="RunId">The run that produced the package, when known.</param>
public sealed record ResolvedModel(string Uri, string PackageDirectory, string Version, string? Name = null, int? RegistryVersion = null,
    string? RunId = null);

/// <summary>
/// Turns a model URI (a package directory, <c>models:/NAME/VERSION</c>, <c>models:/NAME@ALIAS</c>, <c>runs:/RUN_ID/PATH</c>)
/// into a local package. The one way every area finds a model; the registry's implementation lives in Kiln.Tracking.
/// </summary>
public interface IModelLocator
{
    /// <summary>Makes the package available locally (downloading it when the registry is remote) and pins its version.</summary>
    Task<ResolvedModel> ResolveAsync(string uri, CancellationToken ct = default);

    /// <summary>
    /// The version the URI names now, as <see cref="ResolvedModel.Version"/> would say it: cheap (one small registry
    /// request for an alias, a manifest read for a directory), so serving can ask every poll interval.
    /// </summary>
    Task<string> CurrentVersionAsync(string uri, CancellationToken ct = default);
}

/// <summary>
/// Package directories only (a path or a <c>file:</c> URI, relative to a base directory); registry URIs are a
/// one-line error naming the URI. The registry's locator hands local paths to this one.
/// </summary>
/// <param name="baseDirectory">Relative paths are resolved against this (default: the current directory).</param>
public sealed class DirectoryModelLocator(string? baseDirectory = null) : IModelLocator
{
    /// <summary>True for URIs only the model registry can resolve (models:/, runs:/, mlflow-artifacts:/).</summary>
    public static bool IsRegistryUri(string uri) =>
        uri.StartsWith("models:", StringComparison.Ordinal) || uri.StartsWith("runs:", StringComparison.Ordinal)
        || uri.StartsWith("mlflow-artifacts:", StringComparison.Ordinal);

    public Task<ResolvedModel> ResolveAsync(string uri, CancellationToken ct = default)
    {
        var dir = Locate(uri);
        return Task.FromResult(new ResolvedModel(uri, dir, ContentVersion(dir)));
    }

    public Task<string> CurrentVersionAsync(string uri, CancellationToken ct = default) => Task.FromResult(ContentVersion(Locate(uri)));

    /// <summary>
    /// The version of the package in a directory: the first 12 hex digits of the SHA-256 of its manifest, which holds
    /// every other file's checksum, so any change of content is a new version (and a directory replaced in place, as
    /// <see cref="PackageWriter"/> does, is a new version at the next poll).
    /// </summary>
    public static string ContentVersion(string directory)
    {
        try
        {
            return Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(Path.Combine(directory, PackageManifest.FileName))))[..12];
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new KilnException($"{directory}: not a Kiln model package ({PackageManifest.FileName} is missing)");
        }
    }

    private string Locate(string uri)
    {
        if (string.IsNullOrWhiteSpace(uri)) throw new KilnException("the model URI is empty: pass a package directory or a models:/ URI");
        if (IsRegistryUri(uri))
            throw new KilnException($"{uri}: models:/ and runs:/ URIs need the model registry (a tracking store), which is not configured here; pass a package directory");
        string local;
        if (uri.StartsWith("file://", StringComparison.OrdinalIgnoreCase)) local = new Uri(uri).LocalPath;
        else if (uri.StartsWith("file:", StringComparison.OrdinalIgnoreCase)) local = uri[5..];
        else if (uri.Contains("://", StringComparison.Ordinal))
            throw new KilnException($"{uri}: not a model URI Kiln knows; pass a package directory, models:/NAME/VERSION, models:/NAME@ALIAS or runs:/RUN_ID/PATH");
        else local = uri;
        var dir = Path.GetFullPath(local, baseDirectory ?? Directory.GetCurrentDirectory());
        if (!Directory.Exists(dir)) throw new KilnException($"{uri}: not a Kiln model package (no such directory {dir})");
        if (!ModelPackage.IsPackage(dir)) throw new KilnException($"{uri}: not a Kiln model package (no {PackageManifest.FileName} in {dir})");
        return dir;
    }
}
