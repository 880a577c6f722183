using System.Globalization;

namespace Kiln.Tracking.Mlflow;

/// <summary>Converts between Kiln's model and MLflow's wire messages, both ways.</summary>
public static class MlflowMapping
{
    public static KeyValueDto ToDto(this KeyValue kv) => new() { Key = kv.Key, Value = kv.Value };

    public static List<KeyValueDto> ToDto(this IEnumerable<KeyValue> kvs) => kvs.Select(ToDto).ToList();

    public static MetricDto ToDto(this Metric m) => new() { Key = m.Key, Value = m.Value, Timestamp = m.Timestamp, Step = m.Step };

    public static ExperimentDto ToDto(this Experiment e) => new()
    {
        ExperimentId = e.ExperimentId,
        Name = e.Name,
        ArtifactLocation = e.ArtifactLocation,
        LifecycleStage = e.LifecycleStage,
        CreationTime = e.CreationTime,
        LastUpdateTime = e.LastUpdateTime,
        Tags = e.Tags.ToDto(),
    };

    public static RunInfoDto ToDto(this RunInfo i) => new()
    {
        RunId = i.RunId,
        RunUuid = i.RunId,
        RunName = i.RunName,
        ExperimentId = i.ExperimentId,
        UserId = i.UserId,
        Status = i.Status,
        StartTime = i.StartTime,
        EndTime = i.EndTime,
        ArtifactUri = i.ArtifactUri,
        LifecycleStage = i.LifecycleStage,
    };

    public static RunDto ToDto(this Run r) => new()
    {
        Info = r.Info.ToDto(),
        Data = new RunDataDto
        {
            Metrics = r.Data.Metrics.Select(ToDto).ToList(),
            Params = r.Data.Params.ToDto(),
            Tags = r.Data.Tags.ToDto(),
        },
    };

    public static ModelVersionDto ToDto(this ModelVersion v) => new()
    {
        Name = v.Name,
        Version = v.Version.ToString(CultureInfo.InvariantCulture),
        CreationTimestamp = v.CreationTimestamp,
        LastUpdatedTimestamp = v.LastUpdatedTimestamp,
        Description = v.Description ?? "",
        UserId = v.UserId,
        CurrentStage = v.CurrentStage,
        Source = v.Source,
        RunId = v.RunId ?? "",
        Status = v.Status,
        Tags = v.Tags.ToDto(),
        Aliases = [.. v.Aliases],
    };

    public static RegisteredModelDto ToDto(this RegisteredModel m) => new()
    {
        Name = m.Name,
        CreationTimestamp = m.CreationTimestamp,
        LastUpdatedTimestamp = m.LastUpdatedTimestamp,
        Description = m.Description ?? "",
        LatestVersions = m.LatestVersions.Select(ToDto).ToList(),
        Tags = m.Tags.ToDto(),
        Aliases = m.Aliases.Select(a => new RegisteredModelAliasDto { Alias = a.Alias, Version = a.Version.ToString(CultureInfo.InvariantCulture) }).ToList(),
    };

    public static AliasEventDto ToDto(this AliasEvent e) => new()
    {
        Id = e.Id,
        Name = e.Name,
        Alias = e.Alias,
        Action = e.Action,
        FromVersion = e.FromVersion,
        ToVersion = e.ToVersion,
        UserId = e.UserId,
        Timestamp = e.Timestamp,
    };

    public static KeyValue FromDto(this KeyValueDto d, string kind) =>
        new(d.Key ?? throw TrackingException.Invalid($"a {kind} has no key"), d.Value ?? throw TrackingException.Invalid($"{kind} '{d.Key}' has no value"));

    public static List<KeyValue> FromDto(this List<KeyValueDto>? ds, string kind) => ds?.Select(d => d.FromDto(kind)).ToList() ?? [];

    public static Metric FromDto(this MetricDto d, long now) =>
        new(d.Key ?? throw TrackingException.Invalid("a metric has no key"), d.Value, d.Timestamp ?? now, d.Step ?? 0);

    public static Experiment FromDto(this ExperimentDto d) => new(
        d.ExperimentId ?? "", d.Name ?? "", d.ArtifactLocation ?? "", d.LifecycleStage ?? LifecycleStage.Active, d.CreationTime, d.LastUpdateTime,
        d.Tags.FromDto("experiment tag"));

    public static RunInfo FromDto(this RunInfoDto d) => new(
        d.RunId ?? d.RunUuid ?? "", d.RunName ?? "", d.ExperimentId ?? "", d.UserId ?? "", d.Status ?? RunStatus.Running, d.StartTime, d.EndTime,
        d.ArtifactUri ?? "", d.LifecycleStage ?? LifecycleStage.Active);

    public static Run FromDto(this RunDto d) => new(
        (d.Info ?? new RunInfoDto()).FromDto(),
        new RunData(
            d.Data?.Metrics?.Select(m => m.FromDto(0)).ToList() ?? [],
            d.Data?.Params.FromDto("param") ?? [],
            d.Data?.Tags.FromDto("tag") ?? []));

    public static ModelVersion FromDto(this ModelVersionDto d) => new(
        d.Name ?? "", ParseVersion(d.Version), d.CreationTimestamp, d.LastUpdatedTimestamp, string.IsNullOrEmpty(d.Description) ? null : d.Description,
        d.UserId ?? "", d.CurrentStage ?? ModelStage.None, d.Source ?? "", string.IsNullOrEmpty(d.RunId) ? null : d.RunId, d.Status ?? "READY",
        d.Tags.FromDto("tag"), d.Aliases ?? []);

    public static RegisteredModel FromDto(this RegisteredModelDto d) => new(
        d.Name ?? "", d.CreationTimestamp, d.LastUpdatedTimestamp, string.IsNullOrEmpty(d.Description) ? null : d.Description,
        d.LatestVersions?.Select(FromDto).ToList() ?? [], d.Tags.FromDto("tag"),
        d.Aliases?.Select(a => new ModelAlias(a.Alias ?? "", ParseVersion(a.Version))).ToList() ?? []);

    public static AliasEvent FromDto(this AliasEventDto d) =>
        new(d.Id, d.Name ?? "", d.Alias ?? "", d.Action ?? "", d.FromVersion, d.ToVersion, d.UserId ?? "", d.Timestamp);

    /// <summary>MLflow's ViewType as it travels: ACTIVE_ONLY, DELETED_ONLY, ALL, or their numbers 1, 2, 3.</summary>
    public static ViewType ParseViewType(string? v) => v?.ToUpperInvariant() switch
    {
        null or "" or "ACTIVE_ONLY" or "1" => ViewType.ActiveOnly,
        "DELETED_ONLY" or "2" => ViewType.DeletedOnly,
        "ALL" or "3" => ViewType.All,
        _ => throw TrackingException.Invalid($"invalid view type '{Limits.Shorten(v)}' (use ACTIVE_ONLY, DELETED_ONLY or ALL)"),
    };

    public static string ToWire(this ViewType v) => v switch
    {
        ViewType.DeletedOnly => "DELETED_ONLY",
        ViewType.All => "ALL",
        _ => "ACTIVE_ONLY",
    };

    /// <summary>A model version number as MLflow sends it (a string); a clear error when it is not a positive integer.</summary>
    public static int ParseVersion(string? version)
    {
        if (string.IsNullOrEmpty(version)) throw TrackingException.Invalid("model version is missing");
        if (!int.TryParse(version, NumberStyles.None, CultureInfo.InvariantCulture, out var v) || v < 1)
            throw TrackingException.Invalid($"invalid model version '{Limits.Shorten(version)}': versions are positive integers");
        return v;
    }
}
