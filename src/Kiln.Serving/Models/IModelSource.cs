namespace Kiln.Serving.Models;

/// <summary>A model URI resolved to a package directory on this machine and the version it holds.</summary>
public sealed record ResolvedModel(string PackageDirectory, string Version);

/// <summary>
/// Where served models come from: a local package path, or (plugged in by the registry) a
/// <c>models:/NAME/VERSION</c> or <c>models:/NAME@ALIAS</c> URI. The server asks
/// <see cref="CurrentVersionAsync"/> every poll interval and calls <see cref="ResolveAsync"/>
/// only when the answer differs from the version it serves.
/// </summary>
public interface IModelSource
{
    /// <summary>Does this source understand the URI (by scheme)?</summary>
    bool CanResolve(string uri);

    /// <summary>The version the URI names now (cheap: called every poll).</summary>
    Task<string> CurrentVersionAsync(string uri, CancellationToken ct);

    /// <summary>Makes the package available locally and says which version it is.</summary>
    Task<ResolvedModel> ResolveAsync(string uri, CancellationToken ct);
}
