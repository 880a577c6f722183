using System.Globalization;
using System.Text.Json;
using Kiln.Core;
using Kiln.Features.Online;
using Kiln.Http;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace Kiln.Features.Http;

/// <summary>Registration of the feature store in a host: <c>services.AddKilnFeatures(...)</c> and <c>app.MapKilnFeatureEndpoints()</c>.</summary>
public static class FeatureEndpoints
{
    /// <summary>Registers <see cref="FeatureServing"/> with its options (validated at start).</summary>
    public static IServiceCollection AddKilnFeatures(this IServiceCollection services, Action<KilnFeatureOptions>? configure = null)
    {
        var options = services.AddOptions<KilnFeatureOptions>();
        if (configure is not null) options.Configure(configure);
        options.Validate(o => !string.IsNullOrWhiteSpace(o.OnlineStore), "KilnFeatureOptions.OnlineStore is empty")
            .Validate(o => o.RepositoryPath is not null || o.Registry is null || !string.IsNullOrWhiteSpace(o.Registry), "KilnFeatureOptions.Registry is empty")
            .Validate(o => o.RefreshInterval >= TimeSpan.Zero, "KilnFeatureOptions.RefreshInterval is negative")
            .ValidateOnStart();
        services.AddSingleton<FeatureServing>();
        return services;
    }

    private static readonly Func<JsonBodyError, ProblemHttpResult> s_bodyProblem = RequestBodies.Problem(Invalid);

    /// <summary>Maps Feast's <c>POST /get-online-features</c> and <c>POST /push</c>.</summary>
    public static IEndpointRouteBuilder MapKilnFeatureEndpoints(this IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapGroup("").WithTags("features");
        group.MapPost("/get-online-features", GetOnlineFeaturesAsync);
        group.MapPost("/push", PushAsync);
        return endpoints;
    }

    private static async Task<Results<EmptyHttpResult, ProblemHttpResult>> GetOnlineFeaturesAsync(
        HttpRequest http, FeatureServing serving, CancellationToken cancellationToken)
    {
        var (request, problem) = await JsonBodies.ReadAsync(http, FeatureJsonContext.Default.GetOnlineFeaturesRequest, s_bodyProblem, cancellationToken: cancellationToken)
            .ConfigureAwait(false);
        if (request is null) return problem!;
        if (request.Entities is null || request.Entities.Count == 0) return Invalid("entities: required (join key -> list of values)");
        if ((request.Features is null || request.Features.Count == 0) == string.IsNullOrEmpty(request.FeatureService))
            return Invalid("give either features (view:feature, ...) or feature_service");
        try
        {
            var reader = await serving.GetReaderAsync(cancellationToken).ConfigureAwait(false);
            var features = request.FeatureService is { Length: > 0 } service
                ? reader.Repository.ServiceFeatures(service)
                : reader.Repository.ResolveFeatures(request.Features!, "features");
            var entities = request.Entities.ToDictionary(kv => kv.Key, kv => (IReadOnlyList<object?>)kv.Value.Cast<object?>().ToList(), StringComparer.Ordinal);
            var result = await reader.ReadAsync(features, entities, request.FullFeatureNames, includeJoinKeys: true, cancellationToken).ConfigureAwait(false);
            // Written straight to the body (the shape of GetOnlineFeaturesResponse), without a JsonNode per value.
            var response = http.HttpContext.Response;
            response.ContentType = "application/json; charset=utf-8";
            using (var writer = new Utf8JsonWriter(response.BodyWriter))
            {
                writer.WriteStartObject();
                writer.WriteStartObject("metadata");
                writer.WriteStartArray("feature_names");
                foreach (var c in result.Columns) writer.WriteStringValue(c.Name);
                writer.WriteEndArray();
                writer.WriteEndObject();
                writer.WriteStartArray("results");
                foreach (var c in result.Columns) WriteVector(writer, c);
                writer.WriteEndArray();
                writer.WriteEndObject();
            }
            await response.BodyWriter.FlushAsync(cancellationToken).ConfigureAwait(false);
            return TypedResults.Empty;
        }
        catch (KilnException e)
        {
            return Invalid(e.Message);
        }
    }

    private static async Task<Results<JsonHttpResult<PushResponse>, ProblemHttpResult>> PushAsync(
        HttpRequest http, FeatureServing serving, CancellationToken cancellationToken)
    {
        var (request, problem) = await JsonBodies.ReadAsync(http, FeatureJsonContext.Default.PushRequest, s_bodyProblem, cancellationToken: cancellationToken)
            .ConfigureAwait(false);
        if (request is null) return problem!;
        var target = request.PushSourceName ?? request.FeatureView;
        if (string.IsNullOrEmpty(target)) return Invalid("give push_source_name (or feature_view)");
        if (request.Df is null || request.Df.Count == 0) return Invalid("df: required (column -> list of values)");
        try
        {
            var reader = await serving.GetReaderAsync(cancellationToken).ConfigureAwait(false);
            var store = await serving.GetStoreAsync(cancellationToken).ConfigureAwait(false);
            var rows = request.Df.ToDictionary(kv => kv.Key, kv => (IReadOnlyList<object?>)kv.Value.Cast<object?>().ToList(), StringComparer.Ordinal);
            var result = await FeaturePush.PushAsync(reader.Repository, store, target, rows, request.To, cancellationToken).ConfigureAwait(false);
            return TypedResults.Json(new PushResponse
            {
                Views = [.. result.Views],
                Rows = result.Rows,
                WrittenOnline = result.WrittenOnline,
                WrittenOffline = result.OfflineFile is not null,
            }, FeatureJsonContext.Default.PushResponse);
        }
        catch (KilnException e)
        {
            return Invalid(e.Message);
        }
    }

    private static ProblemHttpResult Invalid(string detail) =>
        TypedResults.Problem(detail: detail, statusCode: StatusCodes.Status400BadRequest, title: "Invalid feature request");

    private static readonly string _epoch = "1970-01-01T00:00:00Z";

    private static void WriteVector(Utf8JsonWriter writer, OnlineFeatureColumn column)
    {
        writer.WriteStartObject();
        writer.WriteStartArray("values");
        foreach (var v in column.Values) WriteValue(writer, v);
        writer.WriteEndArray();
        writer.WriteStartArray("statuses");
        foreach (var st in column.Statuses)
        {
            writer.WriteStringValue(st switch
            {
                FeatureStatus.Present => "PRESENT",
                FeatureStatus.NotFound => "NOT_FOUND",
                FeatureStatus.NullValue => "NULL_VALUE",
                _ => "OUTSIDE_MAX_AGE",
            });
        }
        writer.WriteEndArray();
        writer.WriteStartArray("event_timestamps");
        Span<char> buffer = stackalloc char[40];
        foreach (var t in column.EventTimestamps)
        {
            if (t is { } time && time.TryFormat(buffer, out var n, "yyyy-MM-ddTHH:mm:ss.FFFFFFZ", CultureInfo.InvariantCulture)) writer.WriteStringValue(buffer[..n]);
            else writer.WriteStringValue(t is { } other ? other.ToString("yyyy-MM-ddTHH:mm:ss.FFFFFFZ", CultureInfo.InvariantCulture) : _epoch);
        }
        writer.WriteEndArray();
        writer.WriteEndObject();
    }

    private static void WriteValue(Utf8JsonWriter writer, object? value)
    {
        switch (value)
        {
            case null: writer.WriteNullValue(); break;
            case long l: writer.WriteNumberValue(l); break;
            case int i: writer.WriteNumberValue(i); break;
            case double d when double.IsFinite(d): writer.WriteNumberValue(d); break;
            case float f when float.IsFinite(f): writer.WriteNumberValue(f); break;
            case double or float: writer.WriteNullValue(); break;
            case bool b: writer.WriteBooleanValue(b); break;
            case string str: writer.WriteStringValue(str); break;
            case DateTime t: writer.WriteStringValue(t.ToString("yyyy-MM-ddTHH:mm:ss.FFFFFFZ", CultureInfo.InvariantCulture)); break;
            case JsonElement e: e.WriteTo(writer); break;
            default: writer.WriteStringValue(Convert.ToString(value, CultureInfo.InvariantCulture)); break;
        }
    }
}
