using System.Collections.Concurrent;
using System.Globalization;
using System.Text.Json;
using Kiln.Pipelines.Definition;
using Kiln.Pipelines.Execution;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Logging;

namespace Kiln.Pipelines.Http;

/// <summary>What one alert of a notification led to.</summary>
public sealed record AlertOutcomeDto(string? Alert, string Fingerprint, string Status, string? Event, string Outcome, IReadOnlyList<string> RunIds, string? Error = null);

/// <summary>The answer to an Alertmanager notification: every run started, and each alert's outcome.</summary>
public sealed record AlertmanagerResultDto(IReadOnlyList<RunDto> Runs, IReadOnlyList<AlertOutcomeDto> Alerts);

/// <summary>
/// POST /api/v1/pipelines/alertmanager: Alertmanager's webhook (payload version 4). A firing alert whose labels
/// carry <c>pipeline_event=NAME</c> raises the event NAME as POST /api/v1/pipelines/events/NAME does, with the
/// alert's labels and annotations (plus <c>alert</c>, <c>started_at</c> and <c>fingerprint</c>) as the payload.
/// Resolved alerts start nothing; a notification already acted on (same fingerprint and start time, kept in the
/// pipeline store) starts nothing again, across restarts.
/// </summary>
public sealed partial class AlertmanagerReceiver(PipelineEngine engine, ILogger<AlertmanagerReceiver> logger)
{
    /// <summary>The label that names the pipeline event an alert raises.</summary>
    public const string EventLabel = "pipeline_event";

    /// <summary>The largest body accepted (Alertmanager's notifications of a few hundred alerts stay well under it).</summary>
    public const int MaxBodyBytes = 1 << 20;

    private readonly ConcurrentDictionary<string, byte> _unknownLogged = new(StringComparer.Ordinal);

    public async Task<Results<JsonHttpResult<AlertmanagerResultDto>, ProblemHttpResult>> ReceiveAsync(HttpRequest request, CancellationToken cancellationToken)
    {
        if (request.ContentLength is > MaxBodyBytes) return Bad($"the body is {request.ContentLength} bytes; at most {MaxBodyBytes} are accepted");
        var body = await ReadAsync(request.Body, cancellationToken).ConfigureAwait(false);
        if (body is null) return Bad($"the body is larger than {MaxBodyBytes} bytes");
        if (body.Length == 0) return Bad("the body is empty: expected an Alertmanager webhook notification (version 4)");

        List<Alert> alerts;
        try
        {
            using var doc = JsonDocument.Parse(body);
            alerts = Parse(doc.RootElement);
        }
        catch (JsonException e)
        {
            return Bad($"the body is not valid JSON: {e.Message}");
        }
        catch (InvalidDataException e)
        {
            return Bad(e.Message);
        }

        var runs = new List<RunDto>();
        var outcomes = new List<AlertOutcomeDto>();
        foreach (var a in alerts)
        {
            outcomes.Add(await ActAsync(a, runs, cancellationToken).ConfigureAwait(false));
        }
        return TypedResults.Json(new AlertmanagerResultDto(runs, outcomes), PipelineJson.Default.AlertmanagerResultDto, statusCode: StatusCodes.Status202Accepted);
    }

    private async Task<AlertOutcomeDto> ActAsync(Alert a, List<RunDto> runs, CancellationToken cancellationToken)
    {
        AlertOutcomeDto Outcome(string outcome, IReadOnlyList<string>? ids = null, string? error = null) =>
            new(a.Name, a.Fingerprint, a.Status, a.Event, outcome, ids ?? [], error);

        if (a.Event is null) return Outcome("no_event");
        if (a.Status != "firing") return Outcome("resolved");
        if (!engine.Catalog.ForEvent(a.Event).Any())
        {
            if (_unknownLogged.TryAdd(a.Event, 0)) Log.UnknownEvent(logger, a.Name ?? "(unnamed)", a.Event);
            return Outcome("no_pipeline");
        }
        var key = a.Fingerprint + "@" + a.StartsAt.UtcDateTime.ToString("O", CultureInfo.InvariantCulture);
        if (!await engine.Store.TryClaimAlertAsync(key, a.Event, DateTimeOffset.UtcNow, cancellationToken).ConfigureAwait(false))
            return Outcome("duplicate");
        try
        {
            var started = await engine.TriggerByEventAsync(a.Event, a.Payload, cancellationToken).ConfigureAwait(false);
            runs.AddRange(started.Select(RunDto.From));
            Log.Started(logger, a.Name ?? "(unnamed)", a.Event, started.Count);
            return Outcome("started", [.. started.Select(r => r.RunId)]);
        }
        catch (PipelineValidationException e)
        {
            await engine.Store.ReleaseAlertAsync(key, CancellationToken.None).ConfigureAwait(false);
            Log.Invalid(logger, a.Name ?? "(unnamed)", a.Event, e.Message);
            return Outcome("invalid", error: e.Message);
        }
        catch
        {
            await engine.Store.ReleaseAlertAsync(key, CancellationToken.None).ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Reads the whole body, or null when it passes the limit (a chunked body has no length up front).</summary>
    private static async Task<byte[]?> ReadAsync(Stream body, CancellationToken cancellationToken)
    {
        using var buffer = new MemoryStream();
        var chunk = new byte[16384];
        int n;
        while ((n = await body.ReadAsync(chunk, cancellationToken).ConfigureAwait(false)) > 0)
        {
            if (buffer.Length + n > MaxBodyBytes) return null;
            buffer.Write(chunk, 0, n);
        }
        return buffer.ToArray();
    }

    private sealed record Alert(string? Name, string Fingerprint, string Status, string? Event, DateTimeOffset StartsAt, Dictionary<string, string> Payload);

    /// <summary>Checks the whole notification before anything starts; throws <see cref="InvalidDataException"/> naming the field.</summary>
    private static List<Alert> Parse(JsonElement root)
    {
        if (root.ValueKind != JsonValueKind.Object) throw new InvalidDataException("the body must be a JSON object (an Alertmanager webhook notification)");
        if (!root.TryGetProperty("version", out var version)) throw new InvalidDataException("version: missing; expected \"4\" (Alertmanager's webhook payload)");
        if (version.ValueKind != JsonValueKind.String || version.GetString() != "4")
            throw new InvalidDataException($"version: {version.GetRawText()} is not supported; expected \"4\" (Alertmanager's webhook payload)");
        if (!root.TryGetProperty("alerts", out var list) || list.ValueKind != JsonValueKind.Array)
            throw new InvalidDataException("alerts: missing or not a list");
        var alerts = new List<Alert>();
        var i = 0;
        foreach (var a in list.EnumerateArray())
        {
            var at = $"alerts[{i++}]";
            if (a.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"{at}: not an object");
            var status = Text(a, "status", at);
            if (status is not ("firing" or "resolved")) throw new InvalidDataException($"{at}.status: '{status}' is neither firing nor resolved");
            var labels = Strings(a, "labels", at, required: true);
            var annotations = Strings(a, "annotations", at, required: false);
            var fingerprint = Text(a, "fingerprint", at);
            if (fingerprint.Length == 0) throw new InvalidDataException($"{at}.fingerprint: empty");
            var startsText = Text(a, "startsAt", at);
            if (!DateTimeOffset.TryParse(startsText, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var startsAt))
                throw new InvalidDataException($"{at}.startsAt: '{startsText}' is not a time");
            labels.TryGetValue(EventLabel, out var ev);
            if (ev is { Length: 0 }) throw new InvalidDataException($"{at}.labels.{EventLabel}: empty");
            labels.TryGetValue("alertname", out var name);

            var payload = new Dictionary<string, string>(annotations, StringComparer.Ordinal);
            foreach (var (k, v) in labels) payload[k] = v;
            if (name is not null) payload["alert"] = name;
            payload["started_at"] = startsText;
            payload["fingerprint"] = fingerprint;
            alerts.Add(new Alert(name, fingerprint, status, ev, startsAt, payload));
        }
        return alerts;
    }

    private static string Text(JsonElement e, string field, string at)
    {
        if (!e.TryGetProperty(field, out var v)) throw new InvalidDataException($"{at}.{field}: missing");
        if (v.ValueKind != JsonValueKind.String) throw new InvalidDataException($"{at}.{field}: not a string");
        return v.GetString()!;
    }

    private static Dictionary<string, string> Strings(JsonElement e, string field, string at, bool required)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        if (!e.TryGetProperty(field, out var v) || v.ValueKind == JsonValueKind.Null)
        {
            if (required) throw new InvalidDataException($"{at}.{field}: missing");
            return result;
        }
        if (v.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"{at}.{field}: not an object of strings");
        foreach (var p in v.EnumerateObject())
        {
            if (p.Value.ValueKind != JsonValueKind.String) throw new InvalidDataException($"{at}.{field}.{p.Name}: not a string");
            result[p.Name] = p.Value.GetString()!;
        }
        return result;
    }

    private static ProblemHttpResult Bad(string detail) =>
        TypedResults.Problem(detail: detail, statusCode: StatusCodes.Status400BadRequest, title: "invalid Alertmanager notification");

    private static partial class Log
    {
        [LoggerMessage(EventId = 8201, Level = LogLevel.Warning, Message = "Alertmanager alert {Alert} names pipeline event {Event}, which no loaded pipeline listens to (logged once per event)")]
        public static partial void UnknownEvent(ILogger logger, string alert, string @event);

        [LoggerMessage(EventId = 8202, Level = LogLevel.Information, Message = "Alertmanager alert {Alert}: pipeline event {Event} started {Runs} run(s)")]
        public static partial void Started(ILogger logger, string alert, string @event, int runs);

        [LoggerMessage(EventId = 8203, Level = LogLevel.Warning, Message = "Alertmanager alert {Alert}: pipeline event {Event} refused: {Message}")]
        public static partial void Invalid(ILogger logger, string alert, string @event, string message);
    }
}
