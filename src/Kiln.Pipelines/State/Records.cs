namespace Kiln.Pipelines.State;

/// <summary>The state of a whole run.</summary>
public enum RunState
{
    Pending,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

/// <summary>The state of one task of a run.</summary>
public enum TaskState
{
    Pending,
    Running,
    Succeeded,
    Failed,
    Retrying,
    Cancelled,
    Skipped,
    UpstreamFailed,
}

/// <summary>The snake_case names stored and shown for states.</summary>
public static class StateNames
{
    public static string Name(this RunState s) => s switch
    {
        RunState.Pending => "pending",
        RunState.Running => "running",
        RunState.Succeeded => "succeeded",
        RunState.Failed => "failed",
        _ => "cancelled",
    };

    public static string Name(this TaskState s) => s switch
    {
        TaskState.Pending => "pending",
        TaskState.Running => "running",
        TaskState.Succeeded => "succeeded",
        TaskState.Failed => "failed",
        TaskState.Retrying => "retrying",
        TaskState.Cancelled => "cancelled",
        TaskState.Skipped => "skipped",
        _ => "upstream_failed",
    };

    public static RunState ParseRun(string s) => s switch
    {
        "pending" => RunState.Pending,
        "running" => RunState.Running,
        "succeeded" => RunState.Succeeded,
        "failed" => RunState.Failed,
        "cancelled" => RunState.Cancelled,
        _ => throw new InvalidDataException($"unknown run state '{s}' in the pipeline store"),
    };

    public static TaskState ParseTask(string s) => s switch
    {
        "pending" => TaskState.Pending,
        "running" => TaskState.Running,
        "succeeded" => TaskState.Succeeded,
        "failed" => TaskState.Failed,
        "retrying" => TaskState.Retrying,
        "cancelled" => TaskState.Cancelled,
        "skipped" => TaskState.Skipped,
        "upstream_failed" => TaskState.UpstreamFailed,
        _ => throw new InvalidDataException($"unknown task state '{s}' in the pipeline store"),
    };

    /// <summary>True for states a task does not leave on its own.</summary>
    public static bool IsTerminal(this TaskState s) =>
        s is TaskState.Succeeded or TaskState.Failed or TaskState.Cancelled or TaskState.Skipped or TaskState.UpstreamFailed;

    public static bool IsTerminal(this RunState s) => s is RunState.Succeeded or RunState.Failed or RunState.Cancelled;
}

/// <summary>One run of a pipeline as stored.</summary>
public sealed record RunRecord
{
    public required string RunId { get; init; }
    public required string Pipeline { get; init; }
    public required RunState State { get; init; }

    /// <summary>manual, schedule, event:NAME or api.</summary>
    public required string Trigger { get; init; }

    public required IReadOnlyDictionary<string, string> Parameters { get; init; }

    /// <summary>The pipeline's YAML (null for pipelines defined in code).</summary>
    public string? DefinitionText { get; init; }

    public string? SourcePath { get; init; }
    public required DateTimeOffset CreatedAt { get; init; }
    public DateTimeOffset? StartedAt { get; init; }
    public DateTimeOffset? FinishedAt { get; init; }
    public string? Error { get; init; }

    /// <summary>The process executing the run (<c>pid@host/instance</c>) while it holds the lease.</summary>
    public string? Owner { get; init; }

    public DateTimeOffset? LeaseExpires { get; init; }
    public bool CancelRequested { get; init; }

    /// <summary>The cron occurrence a scheduled run stands for.</summary>
    public DateTimeOffset? ScheduledFor { get; init; }
}

/// <summary>One task of a run as stored.</summary>
public sealed record TaskRecord
{
    public required string RunId { get; init; }
    public required string Task { get; init; }
    public required string Kind { get; init; }
    public required TaskState State { get; init; }
    public IReadOnlyList<string> DependsOn { get; init; } = [];
    public int Attempts { get; init; }
    public DateTimeOffset? StartedAt { get; init; }
    public DateTimeOffset? FinishedAt { get; init; }
    public IReadOnlyDictionary<string, string>? Outputs { get; init; }
    public string? Error { get; init; }
    public string? CacheKey { get; init; }

    /// <summary>True when the outputs came from the cache rather than an execution.</summary>
    public bool Cached { get; init; }
}

/// <summary>
/// One attempt of a task; <see cref="State"/> is running, succeeded, failed, cancelled or interrupted;
/// <see cref="ProcessGroup"/> is the process group its commands ran in (<c>PGID@HOST</c>), when it started any.
/// </summary>
public sealed record AttemptRecord(string RunId, string Task, int Attempt, string State, DateTimeOffset StartedAt,
    DateTimeOffset? FinishedAt, string? Error, string? Owner, string? ProcessGroup = null);

/// <summary>One stored log line of a task attempt; <see cref="Stream"/> is stdout or stderr.</summary>
public sealed record LogRecord(long Id, string RunId, string Task, int Attempt, DateTimeOffset At, string Stream, string Line);

/// <summary>A log line to store.</summary>
public readonly record struct LogLine(string RunId, string Task, int Attempt, DateTimeOffset At, string Stream, string Line);

/// <summary>A cached task result.</summary>
public sealed record CacheEntry(string Key, IReadOnlyDictionary<string, string> Outputs, string RunId, string Task, DateTimeOffset CreatedAt);

/// <summary>The end of a task attempt, stored together with the task's new state.</summary>
public sealed record AttemptEnd
{
    public required string RunId { get; init; }
    public required string Task { get; init; }
    public required int Attempt { get; init; }

    /// <summary>succeeded, failed, cancelled or interrupted.</summary>
    public required string AttemptState { get; init; }

    public required TaskState TaskState { get; init; }
    public required DateTimeOffset At { get; init; }
    public string? Error { get; init; }
    public IReadOnlyDictionary<string, string>? Outputs { get; init; }
    public string? CacheKey { get; init; }
    public bool Cached { get; init; }
}

/// <summary>What a lease renewal found.</summary>
public readonly record struct LeaseStatus(bool StillOwner, bool CancelRequested);
