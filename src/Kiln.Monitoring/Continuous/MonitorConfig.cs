using Kiln.Monitoring.Alerts;

namespace Kiln.Monitoring.Continuous;

/// <summary>Continuous monitoring as configured in monitoring.yaml (see docs/monitoring.md).</summary>
public sealed record MonitorConfig
{
    /// <summary>The file it came from, for messages.</summary>
    public string? File { get; init; }

    /// <summary>How often every target is evaluated.</summary>
    public TimeSpan Interval { get; init; } = TimeSpan.FromMinutes(1);

    /// <summary>Where people look (kiln serve's or kiln server's public URL): webhook payloads link to its /metrics.</summary>
    public Uri? ExternalUrl { get; init; }

    /// <summary>A Kiln server whose /api/v1/pipelines/events/{name} receives pipeline events (else: in-process, when the process runs pipelines).</summary>
    public Uri? PipelinesUrl { get; init; }

    /// <summary>Webhook and pipeline-event delivery: queue, attempts, backoff, timeout.</summary>
    public HttpDeliveryOptions Delivery { get; init; } = new();

    public IReadOnlyList<MonitorTarget> Targets { get; init; } = [];

    /// <summary>
    /// Before an evaluation, the feedback of a target's log directory is compacted when more than this many small files
    /// could be merged (monitoring.yaml: <c>feedback: compact_after</c>); 0 never compacts.
    /// </summary>
    public int FeedbackCompactAfter { get; init; } = DefaultFeedbackCompactAfter;

    public const int DefaultFeedbackCompactAfter = 64;

    /// <summary>
    /// Where alert state is kept across restarts (<c>alerts.json</c> in it): monitoring.yaml's <c>state_dir</c>, else
    /// LOG_DIR/_monitor of kiln serve's --log-dir or of the first target; null keeps it in memory only.
    /// </summary>
    public string? StateDirectory { get; init; }

    /// <summary>The alert state file, when there is a state directory.</summary>
    public string? AlertStateFile => StateDirectory is null ? null : Path.Combine(StateDirectory, AlertStateStore.FileName);

    /// <summary>The folder under a log directory that holds monitoring state by default.</summary>
    public const string DefaultStateFolder = "_monitor";

    public IReadOnlyList<AlertRule> Rules { get; init; } = [];

    /// <summary>True when a rule raises a pipeline event.</summary>
    public bool RaisesPipelineEvents => Rules.Any(r => r.PipelineEvent is not null);

    /// <summary>The link put in webhook payloads.</summary>
    public string? Link => ExternalUrl is null ? null : new Uri(ExternalUrl, "metrics").ToString();
}

/// <summary>What the hosting process supplies when a target leaves it out, and what it can do.</summary>
public sealed record MonitorDefaults
{
    /// <summary>kiln serve's --log-dir.</summary>
    public string? LogDirectory { get; init; }

    /// <summary>Whether pipelines run in the hosting process; false refuses a rule's pipeline_event without pipelines_url; null when the file is only read.</summary>
    public bool? PipelinesInProcess { get; init; }
}
