using Kiln.Features.Offline;
using Kiln.Features.Registry;

namespace Kiln.Features;

/// <summary>What a training set was built from: record it in the model package so serving reads the same features.</summary>
public sealed record TrainingSetInfo(
    string Project,
    int DefinitionsVersion,
    string FeatureService,
    IReadOnlyList<string> Features,
    long Rows,
    string Path);

/// <summary>Builds training sets for <c>kiln train</c> from a feature service and an entity table.</summary>
public static class TrainingSets
{
    /// <summary>
    /// Joins the service's features point-in-time onto the entity table, using the latest applied definitions in the
    /// registry, and writes <paramref name="outPath"/> (.parquet or .csv).
    /// </summary>
    public static async Task<TrainingSetInfo> BuildAsync(string registryLocation, string? project, string featureService,
        string entitiesPath, string outPath, bool fullNames = false, CancellationToken cancellationToken = default)
    {
        var registry = await FeatureRegistry.OpenAsync(registryLocation, cancellationToken).ConfigureAwait(false);
        await using var registryScope = registry.ConfigureAwait(false);
        var (version, repo) = await registry.RequireLatestAsync(project, cancellationToken).ConfigureAwait(false);
        var features = repo.ServiceFeatures(featureService);
        var rows = await HistoricalRetrieval.ToFileAsync(repo, entitiesPath, features, outPath,
            new RetrievalOptions { FullNames = fullNames }, cancellationToken).ConfigureAwait(false);
        return new TrainingSetInfo(repo.Project, version.Version, featureService, [.. features.Select(f => f.ToString())], rows, System.IO.Path.GetFullPath(outPath));
    }
}
