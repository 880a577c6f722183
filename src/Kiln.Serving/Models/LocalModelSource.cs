using System.Security.Cryptography;
using Kiln.Core;
using Kiln.Core.Packaging;

namespace Kiln.Serving.Models;

/// <summary>
/// A package directory on the local file system. Its version is the first 12 hex digits of the
/// SHA-256 of its manifest (kiln.json), which holds every other file's checksum, so any change of
/// content is a new version. A directory replaced in place (as <see cref="PackageWriter"/> does,
/// by renames) is picked up by the next poll.
/// </summary>
public sealed class LocalModelSource : IModelSource
{
    public bool CanResolve(string uri) => !uri.Contains("://", StringComparison.Ordinal) && !uri.StartsWith("models:", StringComparison.Ordinal);

    public Task<string> CurrentVersionAsync(string uri, CancellationToken ct) => Task.FromResult(VersionOf(PathOf(uri)));

    public Task<ResolvedModel> ResolveAsync(string uri, CancellationToken ct)
    {
        var dir = PathOf(uri);
        return Task.FromResult(new ResolvedModel(dir, VersionOf(dir)));
    }

    private static string PathOf(string uri) => Path.GetFullPath(uri.StartsWith("file:", StringComparison.Ordinal) ? uri[5..] : uri);

    /// <summary>The version of the package in a directory (hash of its manifest).</summary>
    public static string VersionOf(string directory)
    {
        var manifest = Path.Combine(directory, PackageManifest.FileName);
        try
        {
            var bytes = File.ReadAllBytes(manifest);
            return Convert.ToHexStringLower(SHA256.HashData(bytes))[..12];
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new KilnException($"{directory}: not a Kiln package ({PackageManifest.FileName} is missing)");
        }
    }
}
