using Kiln.Core;
using Kiln.Features.Definitions;

namespace Kiln.Features.Registry;

/// <summary>
/// The feature registry: versioned definitions per project and the materialization history. Two implementations:
/// <see cref="FeatureRegistry"/> over the metadata database, and <see cref="RemoteFeatureRegistry"/> over a kiln
/// server's <c>/api/v1/features</c> API. <see cref="FeatureRegistry.OpenAsync"/> picks one from the location.
/// </summary>
public interface IFeatureRegistry : IAsyncDisposable
{
    /// <summary>Compares a repository with the latest recorded version of its project.</summary>
    Task<RepositoryPlan> PlanAsync(FeatureRepository repo, CancellationToken cancellationToken = default);

    /// <summary>Records the repository as a new version when anything changed; returns the version now current and the plan applied.</summary>
    Task<(int Version, RepositoryPlan Plan)> ApplyAsync(FeatureRepository repo, string repoPath, CancellationToken cancellationToken = default);

    /// <summary>The latest recorded definitions of a project (or of the most recently applied project when null).</summary>
    Task<(RegistryVersion Version, FeatureRepository Repository)?> LatestAsync(string? project, CancellationToken cancellationToken = default);

    /// <summary>The definitions of one applied version of a project, or null when there is no such version.</summary>
    Task<(RegistryVersion Version, FeatureRepository Repository)?> VersionAsync(string project, int version, CancellationToken cancellationToken = default);

    /// <summary>Every recorded version, newest first.</summary>
    Task<IReadOnlyList<RegistryVersion>> VersionsAsync(string? project, CancellationToken cancellationToken = default);

    /// <summary>Records that a view was materialized over [start, end].</summary>
    Task RecordMaterializationAsync(string project, string view, DateTime start, DateTime end, long rows, CancellationToken cancellationToken = default);

    /// <summary>The latest end time a view was materialized to, or null.</summary>
    Task<DateTime?> LastMaterializedEndAsync(string project, string view, CancellationToken cancellationToken = default);
}

/// <summary>What every registry answers the same way, whatever holds it.</summary>
public static class FeatureRegistryExtensions
{
    /// <summary>The latest definitions, or a KilnException telling the user to apply first.</summary>
    public static async Task<(RegistryVersion Version, FeatureRepository Repository)> RequireLatestAsync(this IFeatureRegistry registry, string? project,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(registry);
        return await registry.LatestAsync(project, cancellationToken).ConfigureAwait(false)
            ?? throw new KilnException(project is null
                ? $"feature registry {registry}: nothing applied yet (run kiln features apply REPO)"
                : $"feature registry {registry}: project '{project}' has not been applied (run kiln features apply REPO)");
    }
}
