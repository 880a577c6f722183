namespace Kiln.Tracking;

/// <summary>A registered model: a name that versions are filed under.</summary>
public sealed record RegisteredModel(
    string Name,
    long CreationTimestamp,
    long LastUpdatedTimestamp,
    string? Description,
    IReadOnlyList<ModelVersion> LatestVersions,
    IReadOnlyList<KeyValue> Tags,
    IReadOnlyList<ModelAlias> Aliases);

/// <summary>An alias of a registered model and the version it points at.</summary>
public sealed record ModelAlias(string Alias, int Version);

/// <summary>One version of a registered model.</summary>
public sealed record ModelVersion(
    string Name,
    int Version,
    long CreationTimestamp,
    long LastUpdatedTimestamp,
    string? Description,
    string UserId,
    string CurrentStage,
    string Source,
    string? RunId,
    string Status,
    IReadOnlyList<KeyValue> Tags,
    IReadOnlyList<string> Aliases);

/// <summary>One move of an alias: set (from a version or from nothing), deleted, or rolled back.</summary>
public sealed record AliasEvent(
    long Id,
    string Name,
    string Alias,
    string Action,
    int? FromVersion,
    int? ToVersion,
    string UserId,
    long Timestamp);

/// <summary>The kinds of alias move recorded in the audit history.</summary>
public static class AliasAction
{
    public const string Set = "set";
    public const string Delete = "delete";
    public const string Rollback = "rollback";
}

/// <summary>MLflow's model version stages, accepted for compatibility (aliases are the modern way).</summary>
public static class ModelStage
{
    public const string None = "None";
    public const string Staging = "Staging";
    public const string Production = "Production";
    public const string Archived = "Archived";

    /// <summary>The canonical spelling of a stage, matched case-insensitively; null when it is not a stage.</summary>
    public static string? Normalize(string? stage) => stage?.ToUpperInvariant() switch
    {
        "NONE" => None,
        "STAGING" => Staging,
        "PRODUCTION" => Production,
        "ARCHIVED" => Archived,
        _ => null,
    };
}

/// <summary>What to create a model version with.</summary>
public sealed record CreateModelVersion(string Name, string Source, string? RunId = null, string? Description = null,
    IReadOnlyList<KeyValue>? Tags = null, string? UserId = null);
