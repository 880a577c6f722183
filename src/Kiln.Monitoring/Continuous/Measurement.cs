using System.Text;

namespace Kiln.Monitoring.Continuous;

/// <summary>
/// One value an evaluator measured over a window: a Prometheus-style metric name (<c>kiln_monitor_…</c>), its labels
/// and the value. Published as a gauge on /metrics and fed to the alert rules. NaN means "no value" (missing data).
/// </summary>
public sealed record Measurement(string Name, IReadOnlyDictionary<string, string> Labels, double Value)
{
    /// <summary>What the metric means (the HELP line on /metrics); the first measurement of a name supplies it.</summary>
    public string? Help { get; init; }

    /// <summary>A measurement with labels given as pairs.</summary>
    public static Measurement Of(string name, double value, string? help, params (string Key, string Value)[] labels)
    {
        var d = new Dictionary<string, string>(labels.Length, StringComparer.Ordinal);
        foreach (var (k, v) in labels) d[k] = v;
        return new Measurement(name, d, value) { Help = help };
    }

    /// <summary>The series identity: the name and the labels sorted by key, as Prometheus writes them.</summary>
    public string SeriesKey => SeriesKeyOf(Name, Labels);

    public static string SeriesKeyOf(string name, IReadOnlyDictionary<string, string> labels)
    {
        var sb = new StringBuilder(name);
        sb.Append('{');
        var first = true;
        foreach (var (k, v) in labels.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            if (!first) sb.Append(',');
            first = false;
            sb.Append(k).Append("=\"").Append(v.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal)).Append('"');
        }
        return sb.Append('}').ToString();
    }

    public override string ToString() => $"{SeriesKey} {Value.ToString("G6", System.Globalization.CultureInfo.InvariantCulture)}";
}

/// <summary>What to monitor: one model's prediction log against its package's reference profile.</summary>
public sealed record MonitorTarget
{
    /// <summary>The <c>model</c> label on every measurement of this target (default: the model's name in the log).</summary>
    public required string Name { get; init; }

    /// <summary>The reference: a model package directory or a registry URI (models:/NAME/VERSION, models:/NAME@ALIAS).</summary>
    public required string Model { get; init; }

    /// <summary>The model's name in the prediction log (LOG_DIR/model=NAME/…).</summary>
    public required string LogModel { get; init; }

    /// <summary>The prediction log's root directory.</summary>
    public required string LogDirectory { get; init; }

    /// <summary>The sliding window evaluated at each tick: [now − Window, now).</summary>
    public TimeSpan Window { get; init; } = TimeSpan.FromHours(1);

    /// <summary>Windows with fewer rows publish only their row count (drift gauges are absent: no data).</summary>
    public long MinRows { get; init; } = 1;

    /// <summary>Drift tests and thresholds.</summary>
    public Drift.DriftOptions Drift { get; init; } = Kiln.Monitoring.Drift.DriftOptions.Default;

    /// <summary>Settings for other evaluators (the keys of the target's <c>options:</c> map in monitoring.yaml).</summary>
    public IReadOnlyDictionary<string, string> Options { get; init; } = new Dictionary<string, string>(StringComparer.Ordinal);
}

/// <summary>
/// The seam between what is measured and what is done with it: an evaluator measures one target over one window.
/// <see cref="MonitorService"/> calls every registered evaluator for every target at each tick, publishes the union
/// of their measurements as gauges and feeds it to the alert rules. An evaluator that throws gives no data for that
/// tick (logged, counted in <c>kiln_monitor_evaluation_errors</c>); it never stops the loop.
/// </summary>
public interface IMonitorEvaluator
{
    /// <summary>A short name for logs and the <c>evaluator</c> label of error counts.</summary>
    string Name { get; }

    /// <summary>Measures <paramref name="target"/> over [windowStart, windowEnd).</summary>
    Task<IReadOnlyList<Measurement>> EvaluateAsync(MonitorTarget target, DateTimeOffset windowStart, DateTimeOffset windowEnd, CancellationToken cancellationToken);
}
