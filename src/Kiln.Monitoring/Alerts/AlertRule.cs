namespace Kiln.Monitoring.Alerts;

/// <summary>How a rule compares a value with its threshold.</summary>
public enum AlertCondition
{
    /// <summary>value &gt; threshold.</summary>
    Above,
    /// <summary>value &lt; threshold.</summary>
    Below,
    /// <summary>value ≥ threshold.</summary>
    AboveOrEqual,
    /// <summary>value ≤ threshold.</summary>
    BelowOrEqual,
}

/// <summary>What an evaluation without a value for a series means to its alert.</summary>
public enum NoDataPolicy
{
    /// <summary>Ignored: state and timers stay as they were (a gap neither fires nor resolves). The default.</summary>
    Keep,
    /// <summary>Counts as "condition clear" (a firing alert starts to resolve).</summary>
    Ok,
    /// <summary>Counts as "condition holds" (silence is itself alarming).</summary>
    Alerting,
}

/// <summary>
/// An alert rule: every series of <see cref="Metric"/> whose labels include <see cref="Labels"/> is an alert instance
/// with its own state; the condition must hold for <see cref="For"/> to fire and be clear for <see cref="ClearFor"/>
/// to resolve.
/// </summary>
public sealed record AlertRule
{
    public required string Name { get; init; }

    public required string Metric { get; init; }

    /// <summary>Labels a series must have, with these exact values (others are free).</summary>
    public IReadOnlyDictionary<string, string> Labels { get; init; } = new Dictionary<string, string>(StringComparer.Ordinal);

    public AlertCondition Condition { get; init; } = AlertCondition.Above;

    public double Threshold { get; init; }

    /// <summary>How long the condition must hold (from the first evaluation that saw it) before the alert fires; 0 fires at once.</summary>
    public TimeSpan For { get; init; }

    /// <summary>How long the condition must be clear (from the first clear evaluation) before a firing alert resolves; 0 resolves at once.</summary>
    public TimeSpan ClearFor { get; init; }

    public string Severity { get; init; } = "warning";

    public NoDataPolicy NoData { get; init; } = NoDataPolicy.Keep;

    /// <summary>Webhook URLs that get firing and resolved notifications.</summary>
    public IReadOnlyList<Uri> Webhooks { get; init; } = [];

    /// <summary>A pipeline event raised when the alert fires (pipelines whose triggers name it start).</summary>
    public string? PipelineEvent { get; init; }

    /// <summary>Free text for the notification (default: a sentence built from the rule and the value).</summary>
    public string? Summary { get; init; }

    /// <summary>True when <paramref name="value"/> meets the condition (NaN never does: it is missing data).</summary>
    public bool Holds(double value) => !double.IsNaN(value) && Condition switch
    {
        AlertCondition.Above => value > Threshold,
        AlertCondition.Below => value < Threshold,
        AlertCondition.AboveOrEqual => value >= Threshold,
        _ => value <= Threshold,
    };

    /// <summary>True when the series' labels include every label of the rule.</summary>
    public bool Matches(string metric, IReadOnlyDictionary<string, string> labels)
    {
        if (!string.Equals(metric, Metric, StringComparison.Ordinal)) return false;
        foreach (var (k, v) in Labels)
        {
            if (!labels.TryGetValue(k, out var actual) || !string.Equals(actual, v, StringComparison.Ordinal)) return false;
        }
        return true;
    }

    public static string ConditionName(AlertCondition c) => c switch
    {
        AlertCondition.Above => "above",
        AlertCondition.Below => "below",
        AlertCondition.AboveOrEqual => "above_or_equal",
        _ => "below_or_equal",
    };

    public static bool TryParseCondition(string text, out AlertCondition condition)
    {
        switch (text)
        {
            case "above" or ">": condition = AlertCondition.Above; return true;
            case "below" or "<": condition = AlertCondition.Below; return true;
            case "above_or_equal" or ">=": condition = AlertCondition.AboveOrEqual; return true;
            case "below_or_equal" or "<=": condition = AlertCondition.BelowOrEqual; return true;
            default: condition = default; return false;
        }
    }
}
