using Kiln.Core.Profiling;

namespace Kiln.Core.Packaging;

/// <summary>kiln.json: the package's manifest: format version, identity, and a SHA-256 for every other file.</summary>
public sealed class PackageManifest
{
    /// <summary>The package format this code writes.</summary>
    public const int CurrentFormatVersion = 1;

    /// <summary>The manifest's file name at the package root.</summary>
    public const string FileName = "kiln.json";

    public required int FormatVersion { get; init; }

    public required string Name { get; init; }

    public required ModelTask Task { get; init; }

    public required ModelRuntime Runtime { get; init; }

    /// <summary>Path of the model file relative to the package root.</summary>
    public required string ModelFile { get; init; }

    public required DateTimeOffset CreatedAt { get; init; }

    /// <summary>Every file of the package but the manifest, by relative path ('/' separated).</summary>
    public required SortedDictionary<string, PackageFile> Files { get; init; }
}

/// <summary>A file's checksum and size.</summary>
public sealed class PackageFile
{
    public required string Sha256 { get; init; }

    public required long Size { get; init; }
}

/// <summary>profile.json: the reference profile of the inputs (training rows) and of the outputs (holdout predictions).</summary>
public sealed class PackageProfile
{
    public required DatasetProfile Inputs { get; init; }

    public required DatasetProfile Outputs { get; init; }
}

/// <summary>metadata.json: where the model came from and how good it was.</summary>
public sealed class PackageMetadata
{
    public required string Name { get; init; }

    public required ModelTask Task { get; init; }

    public required DateTimeOffset CreatedAt { get; init; }

    public DatasetInfo? Dataset { get; init; }

    public SplitInfo? Split { get; init; }

    public TrainerInfo? Trainer { get; init; }

    /// <summary>Holdout metrics by name (accuracy, auc, f1, rmse, …).</summary>
    public SortedDictionary<string, double> Metrics { get; init; } = [];

    public required RuntimeInfo Runtime { get; init; }

    /// <summary>The git commit of the working directory at training time, when there is one.</summary>
    public string? GitCommit { get; init; }

    /// <summary>The training spec as written by the user.</summary>
    public string? Spec { get; init; }

    /// <summary>The feature service the training set was built from (null when the data was a flat file).</summary>
    public FeatureStoreInfo? FeatureStore { get; init; }
}

/// <summary>
/// metadata.json's <c>feature_store</c>: which feature service, features and definitions version built the training
/// set, and which model input each feature became, so that serving reads the same features online.
/// </summary>
public sealed class FeatureStoreInfo
{
    /// <summary>The feature service's name.</summary>
    public required string Service { get; init; }

    /// <summary>The feature-store project the definitions belong to.</summary>
    public required string Project { get; init; }

    /// <summary>The applied definitions version (in the feature registry) the training set was built with.</summary>
    public required int DefinitionsVersion { get; init; }

    /// <summary>Every feature of the service, as <c>view:feature</c>, in the service's order.</summary>
    public required List<string> Features { get; init; }

    /// <summary>Model input name → the feature (<c>view:feature</c>) that fills it; inputs not listed come with the request.</summary>
    public required SortedDictionary<string, string> Inputs { get; init; }

    /// <summary>The join keys a request must carry (every join key of the service's views).</summary>
    public required List<string> JoinKeys { get; init; }

    /// <summary>The entity table as written in the spec.</summary>
    public required string Entities { get; init; }

    /// <summary>The entity table's event time column.</summary>
    public string TimestampColumn { get; init; } = "event_timestamp";

    /// <summary>Were feature columns named <c>view__feature</c>?</summary>
    public bool FullNames { get; init; }

    /// <summary>The feature registry as the spec or the command line named it (a path or a URI without password).</summary>
    public string? Registry { get; init; }

    /// <summary>SHA-256 of the training set file that was built (Parquet), for reproducibility checks.</summary>
    public string? TrainingSetSha256 { get; init; }
}

public sealed class DatasetInfo
{
    public required string Uri { get; init; }

    /// <summary>SHA-256 over the data files' checksums in path order (equals the file's own SHA-256 for one file).</summary>
    public required string Sha256 { get; init; }

    public required long Rows { get; init; }

    public List<DatasetFile> Files { get; init; } = [];
}

public sealed class DatasetFile
{
    public required string Path { get; init; }

    public required string Sha256 { get; init; }

    public required long Size { get; init; }
}

public sealed class SplitInfo
{
    public required double Holdout { get; init; }

    public required int Seed { get; init; }

    public required long TrainRows { get; init; }

    public required long HoldoutRows { get; init; }
}

public sealed class TrainerInfo
{
    public required string Kind { get; init; }

    public SortedDictionary<string, string> Parameters { get; init; } = [];
}

public sealed class RuntimeInfo
{
    public required string Kiln { get; init; }

    public required string Dotnet { get; init; }

    public required string Os { get; init; }

    /// <summary>Versions of the libraries that matter for loading the model (ML.NET, ONNX Runtime).</summary>
    public SortedDictionary<string, string> Packages { get; init; } = [];
}
