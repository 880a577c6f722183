using System.Security.Cryptography;
using System.Text;
using Kiln.Monitoring.Continuous;

namespace Kiln.Monitoring.Alerts;

/// <summary>The state of one alert instance (one rule, one series).</summary>
public sealed class AlertInstance
{
    internal AlertInstance(AlertRule rule, IReadOnlyDictionary<string, string> labels)
    {
        Rule = rule;
        Labels = labels;
        SeriesKey = Measurement.SeriesKeyOf(rule.Metric, labels);
    }

    public AlertRule Rule { get; }

    public IReadOnlyDictionary<string, string> Labels { get; }

    public string SeriesKey { get; }

    public AlertState State { get; internal set; }

    /// <summary>First evaluation of the current pending streak.</summary>
    public DateTimeOffset? PendingSince { get; internal set; }

    /// <summary>When the alert started firing (kept while firing, resolving and in the resolved notification).</summary>
    public DateTimeOffset? FiringSince { get; internal set; }

    /// <summary>First clear evaluation of the current resolving streak.</summary>
    public DateTimeOffset? ClearSince { get; internal set; }

    /// <summary>The last value seen (NaN when none).</summary>
    public double LastValue { get; internal set; } = double.NaN;

    /// <summary>True when the last evaluation had no value for the series.</summary>
    public bool NoData { get; internal set; }

    internal static string FingerprintOf(string rule, string seriesKey) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(rule + "\n" + seriesKey)))[..16];
}

/// <summary>
/// Runs alert rules over successive evaluations. Each call to <see cref="Observe"/> is one evaluation at the
/// <see cref="TimeProvider"/>'s current time; it returns the transitions it caused, in order. Durations are measured
/// between evaluation times, so an alert fires at the first evaluation at least <c>for</c> after the condition was
/// first seen (and resolves likewise with <c>clear_for</c>).
/// </summary>
/// <remarks>
/// Missing data: a series that an earlier evaluation produced and this one did not (or whose value is NaN), and a
/// rule that matched nothing at all, have no data. The rule's <see cref="NoDataPolicy"/> decides: <c>keep</c> (default)
/// leaves the instance as it is, timers included, so a gap neither fires nor resolves; <c>ok</c> counts it as clear;
/// <c>alerting</c> as holding. An instance that is inactive or resolved and has no data is forgotten.
/// </remarks>
public sealed class AlertEngine
{
    private readonly IReadOnlyList<AlertRule> _rules;
    private readonly TimeProvider _time;
    private readonly Dictionary<(string Rule, string Series), AlertInstance> _instances = [];
    private readonly Lock _lock = new();

    public AlertEngine(IEnumerable<AlertRule> rules, TimeProvider? time = null)
    {
        _rules = [.. rules];
        _time = time ?? TimeProvider.System;
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var r in _rules)
        {
            if (!names.Add(r.Name)) throw new ArgumentException($"two alert rules are named '{r.Name}'", nameof(rules));
        }
    }

    public IReadOnlyList<AlertRule> Rules => _rules;

    /// <summary>The instances that are not inactive, for gauges and status pages.</summary>
    public IReadOnlyList<AlertInstance> Active()
    {
        lock (_lock) return [.. _instances.Values.Where(i => i.State is not AlertState.Inactive and not AlertState.Resolved)];
    }

    /// <summary>Every known instance (including inactive and resolved ones still remembered).</summary>
    public IReadOnlyList<AlertInstance> All()
    {
        lock (_lock) return [.. _instances.Values];
    }

    /// <summary>The instances that are pending, firing or resolving, as snapshots to persist (<see cref="AlertStateStore"/>).</summary>
    public IReadOnlyList<AlertSnapshot> Export()
    {
        lock (_lock)
        {
            return [.. _instances.Values
                .Where(i => i.State is AlertState.Pending or AlertState.Firing or AlertState.Resolving)
                .OrderBy(i => i.Rule.Name, StringComparer.Ordinal).ThenBy(i => i.SeriesKey, StringComparer.Ordinal)
                .Select(i => new AlertSnapshot
                {
                    Rule = i.Rule.Name,
                    Labels = new SortedDictionary<string, string>(i.Labels.ToDictionary(), StringComparer.Ordinal),
                    State = i.State.Name(),
                    PendingSince = i.PendingSince,
                    FiringSince = i.FiringSince,
                    ClearSince = i.ClearSince,
                    LastValue = double.IsFinite(i.LastValue) ? i.LastValue : null,
                })];
        }
    }

    /// <summary>
    /// Puts remembered instances back (before the first evaluation), without a transition: a firing alert stays firing
    /// (no second firing notification; its resolved one comes when the condition clears) and a pending one keeps its
    /// start. Snapshots of rules that no longer exist, whose labels the rule no longer matches, or that are incomplete
    /// are skipped; the returned list says why, one line each.
    /// </summary>
    public IReadOnlyList<string> Restore(IEnumerable<AlertSnapshot> snapshots)
    {
        ArgumentNullException.ThrowIfNull(snapshots);
        var skipped = new List<string>();
        lock (_lock)
        {
            foreach (var s in snapshots)
            {
                var rule = _rules.FirstOrDefault(r => r.Name == s.Rule);
                var labels = s.Labels ?? new Dictionary<string, string>();
                var series = rule is null ? s.Rule : Measurement.SeriesKeyOf(rule.Metric, labels);
                if (rule is null)
                {
                    skipped.Add($"alert {s.Rule}: no such rule any more");
                    continue;
                }
                if (!rule.Matches(rule.Metric, labels))
                {
                    skipped.Add($"alert {s.Rule} {series}: the rule's labels no longer match");
                    continue;
                }
                AlertState state;
                switch (s.State)
                {
                    case "pending" when s.PendingSince is not null: state = AlertState.Pending; break;
                    case "firing" when s.FiringSince is not null: state = AlertState.Firing; break;
                    case "resolving" when s.FiringSince is not null && s.ClearSince is not null: state = AlertState.Resolving; break;
                    default:
                        skipped.Add($"alert {s.Rule} {series}: state '{s.State}' is not pending, firing or resolving with its times");
                        continue;
                }
                var instance = Get(rule, labels);
                instance.State = state;
                instance.PendingSince = s.PendingSince;
                instance.FiringSince = state == AlertState.Pending ? null : s.FiringSince;
                instance.ClearSince = state == AlertState.Resolving ? s.ClearSince : null;
                instance.LastValue = s.LastValue ?? double.NaN;
            }
        }
        return skipped;
    }

    /// <summary>One evaluation: feeds the measurements to every rule; returns the transitions, in order.</summary>
    public IReadOnlyList<AlertTransition> Observe(IReadOnlyList<Measurement> measurements)
    {
        var now = _time.GetUtcNow();
        var transitions = new List<AlertTransition>();
        lock (_lock)
        {
            foreach (var rule in _rules)
            {
                var seen = new HashSet<string>(StringComparer.Ordinal);
                foreach (var m in measurements)
                {
                    if (!rule.Matches(m.Name, m.Labels)) continue;
                    var instance = Get(rule, m.Labels);
                    if (!seen.Add(instance.SeriesKey)) continue; // a duplicate series: the first value wins
                    if (double.IsNaN(m.Value)) Missing(instance, now, transitions);
                    else Step(instance, rule.Holds(m.Value), m.Value, noData: false, now, transitions);
                }
                // Series seen before but not now, and a rule with no series at all: no data.
                if (seen.Count == 0 && rule.NoData != NoDataPolicy.Keep) Get(rule, rule.Labels);
                foreach (var instance in _instances.Values.Where(i => ReferenceEquals(i.Rule, rule) && !seen.Contains(i.SeriesKey)).ToList())
                {
                    Missing(instance, now, transitions);
                }
            }
        }
        return transitions;
    }

    private AlertInstance Get(AlertRule rule, IReadOnlyDictionary<string, string> labels)
    {
        var key = (rule.Name, Measurement.SeriesKeyOf(rule.Metric, labels));
        if (!_instances.TryGetValue(key, out var instance))
        {
            instance = new AlertInstance(rule, new Dictionary<string, string>(labels, StringComparer.Ordinal));
            _instances[key] = instance;
        }
        return instance;
    }

    private void Missing(AlertInstance instance, DateTimeOffset now, List<AlertTransition> transitions)
    {
        switch (instance.Rule.NoData)
        {
            case NoDataPolicy.Ok:
                Step(instance, holds: false, double.NaN, noData: true, now, transitions);
                break;
            case NoDataPolicy.Alerting:
                Step(instance, holds: true, double.NaN, noData: true, now, transitions);
                break;
            default:
                instance.NoData = true;
                break;
        }
        if (instance.State is AlertState.Inactive or AlertState.Resolved)
            _instances.Remove((instance.Rule.Name, instance.SeriesKey));
    }

    private static void Step(AlertInstance i, bool holds, double value, bool noData, DateTimeOffset now, List<AlertTransition> transitions)
    {
        i.LastValue = value;
        i.NoData = noData;
        var rule = i.Rule;
        switch (i.State)
        {
            case AlertState.Inactive or AlertState.Resolved when holds:
                i.PendingSince = now;
                i.FiringSince = null;
                i.ClearSince = null;
                Move(i, AlertState.Pending, value, noData, now, transitions);
                if (rule.For <= TimeSpan.Zero) Fire(i, value, noData, now, transitions);
                break;
            case AlertState.Pending when holds:
                if (now - i.PendingSince!.Value >= rule.For) Fire(i, value, noData, now, transitions);
                break;
            case AlertState.Pending:
                i.PendingSince = null;
                Move(i, AlertState.Inactive, value, noData, now, transitions);
                break;
            case AlertState.Firing when !holds:
                i.ClearSince = now;
                Move(i, AlertState.Resolving, value, noData, now, transitions);
                if (rule.ClearFor <= TimeSpan.Zero) Resolve(i, value, noData, now, transitions);
                break;
            case AlertState.Resolving when holds:
                i.ClearSince = null;
                Move(i, AlertState.Firing, value, noData, now, transitions);
                break;
            case AlertState.Resolving:
                if (now - i.ClearSince!.Value >= rule.ClearFor) Resolve(i, value, noData, now, transitions);
                break;
        }
    }

    private static void Fire(AlertInstance i, double value, bool noData, DateTimeOffset now, List<AlertTransition> transitions)
    {
        i.FiringSince = now;
        Move(i, AlertState.Firing, value, noData, now, transitions);
    }

    private static void Resolve(AlertInstance i, double value, bool noData, DateTimeOffset now, List<AlertTransition> transitions)
    {
        Move(i, AlertState.Resolved, value, noData, now, transitions, resolvedAt: now);
        i.PendingSince = null;
        i.ClearSince = null;
    }

    private static void Move(AlertInstance i, AlertState to, double value, bool noData, DateTimeOffset now, List<AlertTransition> transitions,
        DateTimeOffset? resolvedAt = null)
    {
        var from = i.State;
        i.State = to;
        transitions.Add(new AlertTransition
        {
            Rule = i.Rule,
            Labels = i.Labels,
            From = from,
            To = to,
            Value = value,
            At = now,
            StartedAt = i.FiringSince,
            ResolvedAt = resolvedAt,
            NoData = noData,
        });
    }
}
