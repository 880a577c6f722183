namespace Kiln.Tracking;

/// <summary>A key/value pair: a parameter, a tag, or an experiment or model tag.</summary>
public sealed record KeyValue(string Key, string Value);

/// <summary>One metric point: a value at a step and a time (milliseconds since the Unix epoch).</summary>
public sealed record Metric(string Key, double Value, long Timestamp, long Step);

/// <summary>Whether an experiment or run is live or soft-deleted (MLflow's lifecycle_stage).</summary>
public static class LifecycleStage
{
    public const string Active = "active";
    public const string Deleted = "deleted";
}

/// <summary>Which lifecycle stages a search returns (MLflow's ViewType).</summary>
public enum ViewType
{
    ActiveOnly = 1,
    DeletedOnly = 2,
    All = 3,
}

/// <summary>A run's status (MLflow's RunStatus).</summary>
public static class RunStatus
{
    public const string Running = "RUNNING";
    public const string Scheduled = "SCHEDULED";
    public const string Finished = "FINISHED";
    public const string Failed = "FAILED";
    public const string Killed = "KILLED";

    public static bool IsValid(string s) => s is Running or Scheduled or Finished or Failed or Killed;
}

/// <summary>An experiment: a named group of runs.</summary>
public sealed record Experiment(
    string ExperimentId,
    string Name,
    string ArtifactLocation,
    string LifecycleStage,
    long CreationTime,
    long LastUpdateTime,
    IReadOnlyList<KeyValue> Tags);

/// <summary>A run's metadata.</summary>
public sealed record RunInfo(
    string RunId,
    string RunName,
    string ExperimentId,
    string UserId,
    string Status,
    long StartTime,
    long? EndTime,
    string ArtifactUri,
    string LifecycleStage);

/// <summary>A run's logged data: the latest value of each metric, params and tags.</summary>
public sealed record RunData(IReadOnlyList<Metric> Metrics, IReadOnlyList<KeyValue> Params, IReadOnlyList<KeyValue> Tags);

/// <summary>A run: its metadata and its data.</summary>
public sealed record Run(RunInfo Info, RunData Data)
{
    public string RunId => Info.RunId;

    public double? Metric(string key)
    {
        foreach (var m in Data.Metrics) if (m.Key == key) return m.Value;
        return null;
    }

    public string? Param(string key)
    {
        foreach (var p in Data.Params) if (p.Key == key) return p.Value;
        return null;
    }

    public string? Tag(string key)
    {
        foreach (var t in Data.Tags) if (t.Key == key) return t.Value;
        return null;
    }
}

/// <summary>One page of results and the token of the next page (null on the last page).</summary>
public sealed record Page<T>(IReadOnlyList<T> Items, string? NextPageToken);

/// <summary>What to create a run with.</summary>
public sealed record CreateRun(string ExperimentId, string? RunName = null, string? UserId = null, long? StartTime = null,
    IReadOnlyList<KeyValue>? Tags = null);

/// <summary>A run search: MLflow's filter grammar, order_by clauses, a page size and a page token.</summary>
public sealed record RunQuery(IReadOnlyList<string> ExperimentIds, string? Filter = null, IReadOnlyList<string>? OrderBy = null,
    int MaxResults = 1000, string? PageToken = null, ViewType ViewType = ViewType.ActiveOnly);

/// <summary>An experiment search.</summary>
public sealed record ExperimentQuery(ViewType ViewType = ViewType.ActiveOnly, int MaxResults = 1000, string? PageToken = null,
    string? NameLike = null);

/// <summary>A file or directory in an artifact listing; the path is relative to the listed root.</summary>
public sealed record ArtifactFile(string Path, bool IsDir, long? FileSize);
