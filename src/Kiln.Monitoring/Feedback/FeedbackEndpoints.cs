using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Routing;

namespace Kiln.Monitoring.Feedback;

/// <summary>The answer to a feedback POST: how many labels were stored.</summary>
public sealed record FeedbackAccepted(int Stored);

/// <summary>A bad feedback body: the HTTP status, the field at fault (items[3].label) and the item index.</summary>
public sealed record FeedbackError(int Status, string Field, int? Item, string Message);

/// <summary>`POST /api/v1/feedback`: ground-truth labels for logged predictions (docs/monitoring.md).</summary>
public static class FeedbackEndpoints
{
    /// <summary>Largest body accepted (413 beyond).</summary>
    public const long MaxBodyBytes = 32L * 1024 * 1024;

    /// <summary>Most items in one request.</summary>
    public const int MaxItems = 100_000;

    /// <summary>Maps POST /api/v1/feedback, storing labels under LOG_DIR/_feedback (the log directory the server writes).</summary>
    public static IEndpointRouteBuilder MapKilnFeedbackEndpoints(this IEndpointRouteBuilder app, string logDirectory) =>
        app.MapKilnFeedbackEndpoints(new FeedbackStore(logDirectory));

    /// <summary>Maps POST /api/v1/feedback onto a store.</summary>
    public static IEndpointRouteBuilder MapKilnFeedbackEndpoints(this IEndpointRouteBuilder app, FeedbackStore store)
    {
        var group = app.MapGroup("/api/v1/feedback");
        group.MapPost("", (HttpContext http, CancellationToken ct) => PostAsync(http, store, ct)).WithName("PostFeedback");
        return app;
    }

    private static async Task<Results<JsonHttpResult<FeedbackAccepted>, ProblemHttpResult>> PostAsync(HttpContext http, FeedbackStore store, CancellationToken ct)
    {
        if (http.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit && (limit.MaxRequestBodySize is null || limit.MaxRequestBodySize > MaxBodyBytes))
            limit.MaxRequestBodySize = MaxBodyBytes;
        JsonDocument doc;
        try
        {
            doc = await JsonDocument.ParseAsync(http.Request.Body, default, ct).ConfigureAwait(false);
        }
        catch (JsonException e)
        {
            return Problem(new FeedbackError(StatusCodes.Status400BadRequest, "body", null, $"the body is not valid JSON ({e.Message})"));
        }
        catch (BadHttpRequestException e)
        {
            return Problem(new FeedbackError(e.StatusCode, "body", null, e.Message));
        }
        List<FeedbackItem> items;
        using (doc)
        {
            var (parsed, error) = FeedbackParser.Parse(doc.RootElement);
            if (error is not null) return Problem(error);
            items = parsed!;
        }
        await store.AppendAsync(items, null, ct).ConfigureAwait(false);
        return TypedResults.Json(new FeedbackAccepted(items.Count), FeedbackJsonContext.Default.FeedbackAccepted);
    }

    private static ProblemHttpResult Problem(FeedbackError e)
    {
        var extensions = new Dictionary<string, object?> { ["field"] = e.Field };
        if (e.Item is { } i) extensions["item"] = i;
        return TypedResults.Problem(e.Message, statusCode: e.Status,
            title: e.Status == StatusCodes.Status400BadRequest ? "Bad request" : e.Status == StatusCodes.Status422UnprocessableEntity ? "Invalid feedback" : "Request rejected",
            extensions: extensions);
    }
}

/// <summary>Validates feedback bodies: one item, or {"items": [...]}; every error names the field and the item.</summary>
public static class FeedbackParser
{
    public static (List<FeedbackItem>? Items, FeedbackError? Error) Parse(JsonElement root)
    {
        if (root.ValueKind != JsonValueKind.Object)
            return (null, new FeedbackError(400, "body", null, "the body must be a JSON object: {\"request_id\", \"row\", \"label\"} or {\"items\": [...]}"));
        if (root.TryGetProperty("items", out var array))
        {
            if (array.ValueKind != JsonValueKind.Array) return (null, Invalid("items", null, "'items' must be an array of feedback objects"));
            var count = array.GetArrayLength();
            if (count == 0) return (null, Invalid("items", null, "'items' is empty"));
            if (count > FeedbackEndpoints.MaxItems) return (null, Invalid("items", null, $"'items' holds {count} items; at most {FeedbackEndpoints.MaxItems} per request"));
            var items = new List<FeedbackItem>(count);
            var index = 0;
            foreach (var element in array.EnumerateArray())
            {
                var (item, error) = ParseItem(element, $"items[{index}].", index);
                if (error is not null) return (null, error);
                items.Add(item);
                index++;
            }
            return (items, null);
        }
        var (single, singleError) = ParseItem(root, "", null);
        return singleError is not null ? (null, singleError) : ([single], null);
    }

    private static FeedbackError Invalid(string field, int? item, string message) => new(422, field, item, item is null ? message : $"item {item}: {message}");

    private static (FeedbackItem Item, FeedbackError? Error) ParseItem(JsonElement e, string prefix, int? index)
    {
        if (e.ValueKind != JsonValueKind.Object) return (default, Invalid(prefix.TrimEnd('.'), index, "a feedback item must be an object"));
        if (!e.TryGetProperty("request_id", out var id) || id.ValueKind == JsonValueKind.Null)
            return (default, Invalid(prefix + "request_id", index, "'request_id' is required"));
        if (id.ValueKind != JsonValueKind.String || string.IsNullOrWhiteSpace(id.GetString()))
            return (default, Invalid(prefix + "request_id", index, "'request_id' must be a non-empty string"));
        var row = 0;
        if (e.TryGetProperty("row", out var r) && r.ValueKind != JsonValueKind.Null)
        {
            if (r.ValueKind != JsonValueKind.Number || !r.TryGetInt32(out row) || row < 0)
                return (default, Invalid(prefix + "row", index, $"'row' must be a non-negative integer; got {r.GetRawText()}"));
        }
        if (!e.TryGetProperty("label", out var l) || l.ValueKind == JsonValueKind.Null)
            return (default, Invalid(prefix + "label", index, "'label' is required (a string or a number)"));
        string label;
        switch (l.ValueKind)
        {
            case JsonValueKind.String:
                label = l.GetString()!;
                if (label.Length == 0) return (default, Invalid(prefix + "label", index, "'label' is empty"));
                break;
            case JsonValueKind.Number:
                if (!l.TryGetDouble(out var number) || !double.IsFinite(number))
                    return (default, Invalid(prefix + "label", index, $"'label' {l.GetRawText()} is not a finite number"));
                label = FormatNumber(number);
                break;
            default:
                return (default, Invalid(prefix + "label", index, $"'label' must be a string or a number; got {l.ValueKind.ToString().ToLowerInvariant()}"));
        }
        DateTimeOffset? timestamp = null;
        if (e.TryGetProperty("timestamp", out var t) && t.ValueKind != JsonValueKind.Null)
        {
            if (t.ValueKind == JsonValueKind.String && DateTimeOffset.TryParse(t.GetString(), CultureInfo.InvariantCulture,
                    DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var parsed))
                timestamp = parsed;
            else if (t.ValueKind == JsonValueKind.Number && t.TryGetDouble(out var seconds) && double.IsFinite(seconds) && Math.Abs(seconds) < 253_402_300_799)
                timestamp = DateTimeOffset.UnixEpoch.AddTicks((long)(seconds * TimeSpan.TicksPerSecond));
            else
                return (default, Invalid(prefix + "timestamp", index, $"'timestamp' must be an ISO 8601 string or Unix seconds; got {t.GetRawText()}"));
        }
        return (new FeedbackItem(id.GetString()!, row, label, timestamp), null);
    }

    /// <summary>How a numeric label is stored: the shortest round-trip form, so 1 and 1.0 both become "1".</summary>
    public static string FormatNumber(double value) => value.ToString("R", CultureInfo.InvariantCulture);
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(FeedbackAccepted))]
internal sealed partial class FeedbackJsonContext : JsonSerializerContext;
