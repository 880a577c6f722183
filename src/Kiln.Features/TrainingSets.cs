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
    string Path)
{
    /// <summary>Output column name → the feature (<c>view:feature</c>) it holds, in the service's order.</summary>
    public IReadOnlyDictionary<string, string> Columns { get; init; } = new Dictionary<string, string>();

    /// <summary>Every join key of the service's views (what an online request must carry).</summary>
    public IReadOnlyList<string> JoinKeys { get; init; } = [];
}

/// <summary>Builds training sets for <c>kiln train</c> from a feature service and an entity table.</summary>
public static class TrainingSets
{
    /// <summary>
    /// Joins the service's features point-in-time onto the entity table, using the latest applied definitions in the
    /// registry, and writes <paramref name="outPath"/> (.parquet or .csv).
    /// </summary>
    public static Task<TrainingSetInfo> BuildAsync(string registryLocation, string? project, string featureService,
        string entitiesPath, string outPath, bool fullNames = false, CancellationToken cancellationToken = default) =>
        BuildAsync(registryLocation, project, featureService, entitiesPath, outPath, new RetrievalOptions { FullNames = fullNames }, cancellationToken);

    /// <summary>The same, with retrieval options (full names, the entity table's timestamp column).</summary>
    public static async Task<TrainingSetInfo> BuildAsync(string registryLocation, string? project, string featureService,
        string entitiesPath, string outPath, RetrievalOptions options, CancellationToken cancellationToken = default)
    {
        var registry = await FeatureRegistry.OpenAsync(registryLocation, cancellationToken).ConfigureAwait(false);
        await using var registryScope = registry.ConfigureAwait(false);
        var (version, repo) = await registry.RequireLatestAsync(project, cancellationToken).ConfigureAwait(false);
        var features = repo.ServiceFeatures(featureService);
        var rows = await HistoricalRetrieval.ToFileAsync(repo, entitiesPath, features, outPath, options, cancellationToken).ConfigureAwait(false);
        var columns = new Dictionary<string, string>(StringComparer.Ordinal);
        var joinKeys = new List<string>();
        foreach (var f in features)
        {
            columns.TryAdd(options.FullNames ? f.FullName : f.Feature, f.ToString());
            foreach (var k in repo.JoinKeys(repo.View(f.View))) if (!joinKeys.Contains(k)) joinKeys.Add(k);
        }
        return new TrainingSetInfo(repo.Project, version.Version, featureService, [.. features.Select(f => f.ToString())], rows, System.IO.Path.GetFullPath(outPath))
        {
            Columns = columns,
            JoinKeys = joinKeys,
        };
    }
}
