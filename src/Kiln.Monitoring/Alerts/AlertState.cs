namespace Kiln.Monitoring.Alerts;

/// <summary>
/// The states of one alert instance. inactive → pending (condition seen) → firing (held for <c>for</c>) → resolving
/// (clear seen) → resolved (clear for <c>clear_for</c>). pending → inactive when the condition clears before
/// <c>for</c>; resolving → firing when it comes back before <c>clear_for</c> (no new notification: no flapping).
/// </summary>
public enum AlertState
{
    Inactive,
    Pending,
    Firing,
    Resolving,
    Resolved,
}

/// <summary>Names as they appear in logs, payloads and labels.</summary>
public static class AlertStates
{
    public static string Name(this AlertState s) => s switch
    {
        AlertState.Inactive => "inactive",
        AlertState.Pending => "pending",
        AlertState.Firing => "firing",
        AlertState.Resolving => "resolving",
        _ => "resolved",
    };
}

/// <summary>One change of state of one alert instance (a rule and a series).</summary>
public sealed record AlertTransition
{
    public required AlertRule Rule { get; init; }

    /// <summary>The series' labels (those of the measurement; the rule's own labels when it never had data).</summary>
    public required IReadOnlyDictionary<string, string> Labels { get; init; }

    public required AlertState From { get; init; }

    public required AlertState To { get; init; }

    /// <summary>The value that caused it (NaN when the transition came from missing data).</summary>
    public double Value { get; init; } = double.NaN;

    /// <summary>When it happened (the evaluation time).</summary>
    public required DateTimeOffset At { get; init; }

    /// <summary>When the alert started firing (firing, resolving, resolved).</summary>
    public DateTimeOffset? StartedAt { get; init; }

    /// <summary>When the alert resolved (resolved only).</summary>
    public DateTimeOffset? ResolvedAt { get; init; }

    /// <summary>True when no value was seen for the series at this evaluation.</summary>
    public bool NoData { get; init; }

    /// <summary>The label <c>model</c> of the series, if any.</summary>
    public string? Model => Labels.TryGetValue("model", out var m) ? m : null;

    /// <summary>A stable id of the instance (rule and series), for deduplication by receivers.</summary>
    public string Fingerprint => AlertInstance.FingerprintOf(Rule.Name, Continuous.Measurement.SeriesKeyOf(Rule.Metric, Labels));
}
