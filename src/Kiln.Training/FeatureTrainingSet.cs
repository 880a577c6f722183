using Kiln.Core;
using Kiln.Core.Data;
using Kiln.Core.Packaging;
using Kiln.Features;
using Kiln.Features.Offline;
using Kiln.Features.Registry;

namespace Kiln.Training;

/// <summary>
/// The training set of a spec with <c>features_from</c>: built from the feature service and the entity table with a
/// point-in-time join before training, and described in the package's metadata (<c>feature_store</c>). A temporary
/// file is deleted on dispose; a file the spec asked to keep (<c>out</c>) stays.
/// </summary>
internal sealed class FeatureTrainingSet : IDisposable
{
    private readonly string? _tempDirectory;

    private FeatureTrainingSet(string path, string? tempDirectory, FeatureStoreInfo info, DatasetInfo dataset)
    {
        Path = path;
        _tempDirectory = tempDirectory;
        Info = info;
        Dataset = dataset;
    }

    /// <summary>The built training set (Parquet or CSV).</summary>
    public string Path { get; }

    public FeatureStoreInfo Info { get; }

    /// <summary>The entity table as the dataset (its SHA-256), with the training set's row count.</summary>
    public DatasetInfo Dataset { get; }

    /// <summary>The registry used when neither the spec nor the command line names one.</summary>
    public static string DefaultRegistry => Environment.GetEnvironmentVariable("KILN_FEATURE_REGISTRY") is { Length: > 0 } env ? env : ".kiln/kiln.db";

    public static async Task<FeatureTrainingSet> BuildAsync(TrainingSpec spec, ITrainingProgress? progress, CancellationToken ct)
    {
        var from = spec.FeaturesFrom!;
        var registry = from.Registry is { } r ? (FeatureRegistryIsPath(r) ? System.IO.Path.GetFullPath(r, spec.BaseDirectory) : r) : DefaultRegistry;
        var entities = System.IO.Path.GetFullPath(from.Entities, spec.BaseDirectory);
        if (!File.Exists(entities)) throw new KilnException($"{spec.Source}: 'features_from.entities' {from.Entities}: no such file");
        string? temp = null;
        string outPath;
        if (from.Out is { } keep)
        {
            outPath = System.IO.Path.GetFullPath(keep, spec.BaseDirectory);
        }
        else
        {
            temp = Directory.CreateTempSubdirectory("kiln-training-set-").FullName;
            outPath = System.IO.Path.Combine(temp, "training_set.parquet");
        }
        try
        {
            progress?.Stage($"Building the training set from feature service '{from.Service}'");
            TrainingSetInfo built;
            try
            {
                built = await TrainingSets.BuildAsync(registry, from.Project, from.Service, entities, outPath,
                    new RetrievalOptions { FullNames = from.FullNames, TimestampColumn = from.TimestampColumn }, ct).ConfigureAwait(false);
            }
            catch (KilnException e)
            {
                throw new KilnException($"{spec.Source}: features_from: {e.Message}", e);
            }

            // Every feature and the label must be a column of the training set: a feature of the service or a column
            // of the entity table (a request-time field). Say which, before the trainer reads anything.
            var columns = await TableReader.ReadColumnNamesAsync(outPath, ct).ConfigureAwait(false);
            var entityColumns = columns.Where(c => !built.Columns.ContainsKey(c)).ToList();
            foreach (var name in spec.Features.Select(f => f.Name).Append(spec.Label))
            {
                if (columns.Contains(name)) continue;
                var what = name == spec.Label ? $"label '{name}'" : $"feature '{name}'";
                throw new KilnException($"{spec.Source}: {what} is neither a feature of service '{from.Service}' ({string.Join(", ", built.Columns.Keys)}) "
                    + $"nor a column of the entity table {from.Entities} ({string.Join(", ", entityColumns)})");
            }

            var inputs = new SortedDictionary<string, string>(StringComparer.Ordinal);
            foreach (var f in spec.Features)
                if (built.Columns.TryGetValue(f.Name, out var feature)) inputs[f.Name] = feature;
            var entitySha = ModelPackage.Sha256OfFile(entities);
            var info = new FeatureStoreInfo
            {
                Service = from.Service,
                Project = built.Project,
                DefinitionsVersion = built.DefinitionsVersion,
                Features = [.. built.Features],
                Inputs = inputs,
                JoinKeys = [.. built.JoinKeys],
                Entities = from.Entities,
                TimestampColumn = from.TimestampColumn,
                FullNames = from.FullNames,
                Registry = FeatureRegistry.Redact(from.Registry ?? registry),
                TrainingSetSha256 = ModelPackage.Sha256OfFile(outPath),
            };
            var dataset = new DatasetInfo
            {
                Uri = from.Entities,
                Sha256 = entitySha,
                Rows = built.Rows,
                Files = [new DatasetFile { Path = entities, Sha256 = entitySha, Size = new FileInfo(entities).Length }],
            };
            return new FeatureTrainingSet(outPath, temp, info, dataset);
        }
        catch
        {
            if (temp is not null) Directory.Delete(temp, recursive: true);
            throw;
        }
    }

    /// <summary>A registry given as a file path (resolved against the spec's folder), not a PostgreSQL URI or connection string.</summary>
    private static bool FeatureRegistryIsPath(string location) =>
        !location.Contains("://", StringComparison.Ordinal) && !location.Contains('=', StringComparison.Ordinal);

    public void Dispose()
    {
        if (_tempDirectory is not null && Directory.Exists(_tempDirectory)) Directory.Delete(_tempDirectory, recursive: true);
    }
}
