using System.Collections.Concurrent;
using System.Text;
using Kiln.Monitoring.Alerts;
using Kiln.Monitoring.Continuous;
using Kiln.Tracking;

namespace Kiln.Web.Monitoring;

/// <summary>One stored series of a monitor target: its metric and labels as the alert rules see them, and its points.</summary>
public sealed record MonitorSeries(string Key, string Metric, IReadOnlyDictionary<string, string> Labels, IReadOnlyList<Kiln.Tracking.Metric> Points);

/// <summary>
/// The continuous monitor's proxy and realized metrics over time, kept in the tracking store: one run per monitor
/// target (named after it, tagged <c>kiln.monitor.target</c>) in the experiment <c>kiln-monitor</c>, and each
/// evaluation logged as a batch of metrics at the evaluation's time (step = Unix seconds). The same store and
/// metric history as any run, so they can also be read with MLflow's clients, and the web UI charts them.
/// </summary>
public sealed class MonitorHistory(ITrackingStore tracking) : IMonitorTickSink
{
    /// <summary>The experiment the monitor's runs are in.</summary>
    public const string Experiment = "kiln-monitor";

    /// <summary>The tag naming a run's monitor target.</summary>
    public const string TargetTag = "kiln.monitor.target";

    // The gauges kept (proxy metrics of the outputs, realized metrics from feedback) and the labels besides `model`
    // that tell their series apart, in the order they appear in the key (metric/label value/…).
    private static readonly Dictionary<string, string[]> Kept = new(StringComparer.Ordinal)
    {
        ["kiln_monitor_prediction_mean"] = [],
        ["kiln_monitor_prediction_drift_score"] = ["test"],
        ["kiln_monitor_class_share"] = ["class"],
        ["kiln_monitor_label_coverage"] = [],
        ["kiln_monitor_realized_accuracy"] = [],
        ["kiln_monitor_realized_auc"] = [],
        ["kiln_monitor_realized_f1"] = [],
        ["kiln_monitor_realized_log_loss"] = [],
        ["kiln_monitor_realized_rmse"] = [],
        ["kiln_monitor_realized_mae"] = [],
    };

    private const string Prefix = "kiln_monitor_";

    private readonly ConcurrentDictionary<string, string> _runs = new(StringComparer.Ordinal);
    private string? _experimentId;

    /// <summary>Whether a metric is one of the kept proxy or realized metrics.</summary>
    public static bool IsKept(string metric) => Kept.ContainsKey(metric);

    public async Task RecordAsync(MonitorTick tick, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(tick);
        var at = tick.At.ToUnixTimeMilliseconds();
        foreach (var group in tick.Measurements.Where(m => Kept.ContainsKey(m.Name) && double.IsFinite(m.Value) && m.Labels.ContainsKey("model"))
                     .GroupBy(m => m.Labels["model"], StringComparer.Ordinal))
        {
            var metrics = group.Select(m => new Kiln.Tracking.Metric(Key(m.Name, m.Labels), m.Value, at, tick.At.ToUnixTimeSeconds()))
                .DistinctBy(m => m.Key).ToList();
            if (metrics.Count == 0) continue;
            var run = await RunOfAsync(group.Key, cancellationToken).ConfigureAwait(false);
            await tracking.LogBatchAsync(run, metrics, null, null, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Every kept series of a target, oldest point first; empty when it was never evaluated.</summary>
    public async Task<List<MonitorSeries>> ReadAsync(string target, CancellationToken cancellationToken)
    {
        var result = new List<MonitorSeries>();
        if (await tracking.GetExperimentByNameAsync(Experiment, cancellationToken).ConfigureAwait(false) is not { } experiment) return result;
        var runs = await tracking.SearchRunsAsync(new RunQuery([experiment.ExperimentId], $"tags.`{TargetTag}` = '{target.Replace("'", "\\'", StringComparison.Ordinal)}'", MaxResults: 1), cancellationToken).ConfigureAwait(false);
        if (runs.Items.Count == 0) return result;
        var run = runs.Items[0];
        foreach (var key in run.Data.Metrics.Select(m => m.Key).Order(StringComparer.Ordinal))
        {
            if (Parse(key, target) is not { } parsed) continue;
            var points = (await tracking.GetMetricHistoryAsync(run.RunId, key, cancellationToken).ConfigureAwait(false)).OrderBy(p => p.Timestamp).ToList();
            result.Add(new MonitorSeries(key, parsed.Metric, parsed.Labels, points));
        }
        return result;
    }

    /// <summary>The thresholds of the rules that watch a series (a rule's metric and labels match it).</summary>
    public static List<AlertRule> RulesOf(MonitorSeries series, IEnumerable<AlertRule> rules) =>
        rules.Where(r => r.Matches(series.Metric, series.Labels)).ToList();

    // metric/value/… with the `kiln_monitor_` prefix dropped; label values limited to the characters metric keys allow.
    internal static string Key(string metric, IReadOnlyDictionary<string, string> labels)
    {
        var sb = new StringBuilder(metric[Prefix.Length..]);
        foreach (var label in Kept[metric]) sb.Append('/').Append(Clean(labels.TryGetValue(label, out var v) ? v : ""));
        return sb.ToString();
    }

    private static (string Metric, Dictionary<string, string> Labels)? Parse(string key, string target)
    {
        var parts = key.Split('/');
        var metric = Prefix + parts[0];
        if (!Kept.TryGetValue(metric, out var labelKeys) || labelKeys.Length != parts.Length - 1) return null;
        var labels = new Dictionary<string, string>(StringComparer.Ordinal) { ["model"] = target };
        for (var i = 0; i < labelKeys.Length; i++) labels[labelKeys[i]] = parts[i + 1];
        return (metric, labels);
    }

    private static string Clean(string value)
    {
        var sb = new StringBuilder(value.Length);
        foreach (var c in value) sb.Append(char.IsLetterOrDigit(c) || c is '_' or '-' or '.' or ' ' ? c : '_');
        return sb.Length == 0 ? "_" : sb.ToString();
    }

    private async Task<string> RunOfAsync(string target, CancellationToken cancellationToken)
    {
        if (_runs.TryGetValue(target, out var id)) return id;
        _experimentId ??= (await tracking.GetExperimentByNameAsync(Experiment, cancellationToken).ConfigureAwait(false))?.ExperimentId
            ?? await tracking.CreateExperimentAsync(Experiment, ct: cancellationToken).ConfigureAwait(false);
        var found = await tracking.SearchRunsAsync(new RunQuery([_experimentId], $"tags.`{TargetTag}` = '{target.Replace("'", "\\'", StringComparison.Ordinal)}'", MaxResults: 1), cancellationToken).ConfigureAwait(false);
        id = found.Items.Count > 0 ? found.Items[0].RunId
            : (await tracking.CreateRunAsync(new CreateRun(_experimentId, target, "kiln-monitor", Tags: [new KeyValue(TargetTag, target)]), cancellationToken).ConfigureAwait(false)).RunId;
        _runs[target] = id;
        return id;
    }
}
