using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Text;
using Kiln.Monitoring.Alerts;

namespace Kiln.Monitoring.Continuous;

/// <summary>
/// Publishes the latest measurements as observable gauges on a <see cref="Meter"/> (one instrument per metric name,
/// one series per label set), so whatever exports that meter (kiln serve's and kiln server's /metrics) shows them.
/// Each <see cref="Publish"/> replaces the previous set: a series that is no longer measured disappears (no stale
/// values). Names and label names are made valid for Prometheus ([a-zA-Z_:][a-zA-Z0-9_:]*, labels without ':');
/// NaN values are left out.
/// </summary>
public sealed class GaugePublisher
{
    public const string AlertMetric = "kiln_monitor_alert";

    private readonly Meter _meter;
    private readonly ConcurrentDictionary<string, ObservableGauge<double>> _gauges = new(StringComparer.Ordinal);
    private volatile Dictionary<string, Measurement<double>[]> _current = new(StringComparer.Ordinal);
    private volatile Measurement<double>[] _alerts = [];

    public GaugePublisher(Meter meter)
    {
        _meter = meter;
        EvaluationErrors = meter.CreateCounter<long>("kiln_monitor_evaluation_errors", null, "Evaluations that failed, by target and evaluator (the target has no data for that tick).");
        _meter.CreateObservableGauge(AlertMetric, () => _alerts, null,
            "1 for every alert instance that is pending, firing or resolving (labels: alert, state, severity and the series' labels).");
    }

    public Meter Meter => _meter;

    public Counter<long> EvaluationErrors { get; }

    /// <summary>Replaces the published measurements.</summary>
    public void Publish(IEnumerable<Measurement> measurements)
    {
        var byName = new Dictionary<string, List<Measurement<double>>>(StringComparer.Ordinal);
        var help = new Dictionary<string, string?>(StringComparer.Ordinal);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var m in measurements)
        {
            if (double.IsNaN(m.Value)) continue;
            var name = MetricName(m.Name);
            var tags = Tags(m.Labels);
            if (!seen.Add(name + "\n" + Key(tags))) continue; // duplicate series: the first wins
            if (!byName.TryGetValue(name, out var list))
            {
                byName[name] = list = [];
                help[name] = m.Help;
            }
            list.Add(new Measurement<double>(m.Value, tags));
        }
        _current = byName.ToDictionary(p => p.Key, p => p.Value.ToArray(), StringComparer.Ordinal);
        foreach (var (name, text) in help)
        {
            if (name == AlertMetric || _gauges.ContainsKey(name)) continue;
            _gauges.GetOrAdd(name, n => _meter.CreateObservableGauge(n, () => Observe(n), null, text ?? n));
        }
    }

    /// <summary>Replaces the alert gauge's series with the given active instances.</summary>
    public void PublishAlerts(IEnumerable<AlertInstance> active)
    {
        var list = new List<Measurement<double>>();
        foreach (var i in active)
        {
            var labels = new Dictionary<string, string>(StringComparer.Ordinal)
            {
                ["alert"] = i.Rule.Name,
                ["state"] = i.State.Name(),
                ["severity"] = i.Rule.Severity,
            };
            foreach (var (k, v) in i.Labels) labels.TryAdd(k, v);
            list.Add(new Measurement<double>(1, Tags(labels)));
        }
        _alerts = [.. list];
    }

    private IEnumerable<Measurement<double>> Observe(string name) => _current.TryGetValue(name, out var list) ? list : [];

    private static KeyValuePair<string, object?>[] Tags(IReadOnlyDictionary<string, string> labels)
    {
        var tags = new KeyValuePair<string, object?>[labels.Count];
        var i = 0;
        foreach (var (k, v) in labels) tags[i++] = new(LabelName(k), v);
        Array.Sort(tags, (a, b) => string.CompareOrdinal(a.Key, b.Key));
        return tags;
    }

    private static string Key(KeyValuePair<string, object?>[] tags)
    {
        var sb = new StringBuilder();
        foreach (var (k, v) in tags) sb.Append(k).Append('=').Append(v).Append('\u0001');
        return sb.ToString();
    }

    /// <summary>A valid Prometheus metric name: invalid characters become '_', a leading digit gets a '_' before it.</summary>
    public static string MetricName(string name) => Sanitize(name, allowColon: true);

    /// <summary>A valid Prometheus label name (no ':', not starting with "__", which Prometheus reserves).</summary>
    public static string LabelName(string name)
    {
        var s = Sanitize(name, allowColon: false);
        return s.StartsWith("__", StringComparison.Ordinal) ? "label" + s : s;
    }

    private static string Sanitize(string name, bool allowColon)
    {
        if (name.Length == 0) return "_";
        var sb = new StringBuilder(name.Length + 1);
        if (name[0] is >= '0' and <= '9') sb.Append('_');
        foreach (var c in name)
            sb.Append(c is (>= 'a' and <= 'z') or (>= 'A' and <= 'Z') or (>= '0' and <= '9') or '_' || (allowColon && c == ':') ? c : '_');
        return sb.ToString();
    }
}
