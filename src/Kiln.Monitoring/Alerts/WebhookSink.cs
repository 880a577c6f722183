using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Kiln.Monitoring.Alerts;

/// <summary>The JSON body POSTed to a rule's webhooks when an alert fires or resolves.</summary>
public sealed record WebhookPayload
{
    /// <summary>The payload format's version.</summary>
    public string Version { get; init; } = "1";

    public required string Alert { get; init; }

    /// <summary><c>firing</c> or <c>resolved</c>.</summary>
    public required string Status { get; init; }

    public required string Severity { get; init; }

    /// <summary>The series' <c>model</c> label (null when the series has none).</summary>
    public string? Model { get; init; }

    public required string Metric { get; init; }

    /// <summary>The value at the transition (null when it came from missing data).</summary>
    public double? Value { get; init; }

    public required double Threshold { get; init; }

    /// <summary><c>above</c>, <c>below</c>, <c>above_or_equal</c> or <c>below_or_equal</c>.</summary>
    public required string Condition { get; init; }

    public required IReadOnlyDictionary<string, string> Labels { get; init; }

    public DateTimeOffset? StartedAt { get; init; }

    public DateTimeOffset? ResolvedAt { get; init; }

    /// <summary>Stable per rule and series: the same alert's firing and resolved notifications share it.</summary>
    public required string Fingerprint { get; init; }

    public required string Summary { get; init; }

    /// <summary>Where to look (the configured external URL's /metrics), or null.</summary>
    public string? Link { get; init; }

    /// <summary>Builds the payload of a firing or resolved transition.</summary>
    public static WebhookPayload From(AlertTransition t, string? link) => new()
    {
        Alert = t.Rule.Name,
        Status = t.To == AlertState.Resolved ? "resolved" : "firing",
        Severity = t.Rule.Severity,
        Model = t.Model,
        Metric = t.Rule.Metric,
        Value = double.IsNaN(t.Value) || double.IsInfinity(t.Value) ? null : t.Value,
        Threshold = t.Rule.Threshold,
        Condition = AlertRule.ConditionName(t.Rule.Condition),
        Labels = t.Labels,
        StartedAt = t.StartedAt,
        ResolvedAt = t.ResolvedAt,
        Fingerprint = t.Fingerprint,
        Summary = SummaryOf(t),
        Link = link,
    };

    /// <summary>The rule's summary, or a sentence: "fraud_drift firing: kiln_monitor_dataset_drift{model="fraud"} = 1 (above 0.5 for 10m)".</summary>
    public static string SummaryOf(AlertTransition t)
    {
        var status = t.To == AlertState.Resolved ? "resolved" : "firing";
        var value = t.NoData ? "no data" : t.Value.ToString("G6", CultureInfo.InvariantCulture);
        var text = $"{t.Rule.Name} {status}: {Continuous.Measurement.SeriesKeyOf(t.Rule.Metric, t.Labels)} = {value} " +
            $"({AlertRule.ConditionName(t.Rule.Condition)} {t.Rule.Threshold.ToString("G6", CultureInfo.InvariantCulture)})";
        return t.Rule.Summary is { Length: > 0 } s ? s + " — " + text : text;
    }
}

/// <summary>The body of POST /api/v1/pipelines/events/{name}.</summary>
public sealed record PipelineEventBody(IReadOnlyDictionary<string, string> Payload);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(WebhookPayload))]
[JsonSerializable(typeof(PipelineEventBody))]
internal sealed partial class AlertJsonContext : JsonSerializerContext;

/// <summary>POSTs firing and resolved notifications of rules that name webhooks, through a <see cref="HttpDelivery"/>.</summary>
public sealed class WebhookSink(HttpDelivery delivery, string? link = null) : IAlertSink
{
    public ValueTask NotifyAsync(AlertTransition t, CancellationToken cancellationToken)
    {
        if (t.Rule.Webhooks.Count == 0 || !IsNotified(t)) return ValueTask.CompletedTask;
        var payload = WebhookPayload.From(t, link);
        var json = JsonSerializer.Serialize(payload, AlertJsonContext.Default.WebhookPayload);
        var headers = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["X-Kiln-Alert"] = t.Rule.Name,
            ["X-Kiln-Alert-Fingerprint"] = payload.Fingerprint,
        };
        foreach (var url in t.Rule.Webhooks)
            delivery.Enqueue(new HttpNotification(url, json, $"{t.Rule.Name} {payload.Status}") { Headers = headers });
        return ValueTask.CompletedTask;
    }

    /// <summary>Webhooks hear of an alert when it starts firing (from pending) and when it resolves.</summary>
    public static bool IsNotified(AlertTransition t) =>
        (t.To == AlertState.Firing && t.From == AlertState.Pending) || t.To == AlertState.Resolved;
}

/// <summary>
/// Raises a rule's pipeline event when its alert fires by POSTing to a Kiln server's
/// <c>/api/v1/pipelines/events/{name}</c> (retried like webhooks). In a process that runs the pipelines itself,
/// use an in-process sink instead (kiln server --pipelines does).
/// </summary>
public sealed class PipelineEventHttpSink(HttpDelivery delivery, Uri server, IReadOnlyList<Continuous.MonitorTarget>? targets = null) : IAlertSink
{
    public ValueTask NotifyAsync(AlertTransition t, CancellationToken cancellationToken)
    {
        if (t.Rule.PipelineEvent is not { } name || !(t.To == AlertState.Firing && t.From == AlertState.Pending)) return ValueTask.CompletedTask;
        var url = new Uri(server, "api/v1/pipelines/events/" + Uri.EscapeDataString(name));
        var json = JsonSerializer.Serialize(new PipelineEventBody(EventPayload(t, targets)), AlertJsonContext.Default.PipelineEventBody);
        delivery.Enqueue(new HttpNotification(url, json, $"{t.Rule.Name} -> pipeline event {name}"));
        return ValueTask.CompletedTask;
    }

    /// <summary>
    /// What a pipeline gets: the series' labels (model, feature, …) and alert, metric, value, threshold, severity,
    /// started_at, fingerprint, and <c>current</c>: the prediction log directory of the monitoring target the alert is
    /// about (its <c>model</c> label), which is what a drift_check or retraining task reads. Entries whose keys are
    /// parameters of the pipeline become its parameter values.
    /// </summary>
    public static IReadOnlyDictionary<string, string> EventPayload(AlertTransition t, IReadOnlyList<Continuous.MonitorTarget>? targets = null)
    {
        var d = new Dictionary<string, string>(t.Labels, StringComparer.Ordinal)
        {
            ["alert"] = t.Rule.Name,
            ["metric"] = t.Rule.Metric,
            ["value"] = t.Value.ToString("R", CultureInfo.InvariantCulture),
            ["threshold"] = t.Rule.Threshold.ToString("R", CultureInfo.InvariantCulture),
            ["severity"] = t.Rule.Severity,
            ["fingerprint"] = t.Fingerprint,
        };
        if (t.StartedAt is { } s) d["started_at"] = s.ToString("O", CultureInfo.InvariantCulture);
        if (targets is not null && t.Labels.TryGetValue("model", out var model) && !d.ContainsKey("current"))
        {
            foreach (var target in targets)
            {
                if (target.Name != model) continue;
                d["current"] = target.LogDirectory;
                break;
            }
        }
        return d;
    }
}
