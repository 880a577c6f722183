using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Kiln.Core;
using Kiln.Features.Online;
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
            .Validate(o => o.RepositoryPath is not null || !string.IsNullOrWhiteSpace(o.Registry), "KilnFeatureOptions needs Registry or RepositoryPath")
            .Validate(o => o.RefreshInterval >= TimeSpan.Zero, "KilnFeatureOptions.RefreshInterval is negative")
            .ValidateOnStart();
        services.AddSingleton<FeatureServing>();
        return services;
    }

    /// <summary>Maps Feast's <c>POST /get-online-features</c> and <c>POST /push</c>.</summary>
    public static IEndpointRouteBuilder MapKilnFeatureEndpoints(this IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapGroup("").WithTags("features");
        group.MapPost("/get-online-features", GetOnlineFeaturesAsync);
        group.MapPost("/push", PushAsync);
        return endpoints;
    }

    private static async Task<Results<JsonHttpResult<GetOnlineFeaturesResponse>, ProblemHttpResult>> GetOnlineFeaturesAsync(
        HttpRequest http, FeatureServing serving, CancellationToken cancellationToken)
    {
        GetOnlineFeaturesRequest? request;
        try
        {
            request = await JsonSerializer.DeserializeAsync(http.Body, FeatureJsonContext.Default.GetOnlineFeaturesRequest, cancellationToken).ConfigureAwait(false);
        }
        catch (JsonException e)
        {
            return Invalid($"request body: {e.Message}");
        }
        if (request is null) return Invalid("request body: empty");
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
            var response = new GetOnlineFeaturesResponse
            {
                Metadata = new OnlineFeaturesMetadata { FeatureNames = [.. result.Columns.Select(c => c.Name)] },
                Results = [.. result.Columns.Select(ToVector)],
            };
            return TypedResults.Json(response, FeatureJsonContext.Default.GetOnlineFeaturesResponse);
        }
        catch (KilnException e)
        {
            return Invalid(e.Message);
        }
    }

    private static async Task<Results<JsonHttpResult<PushResponse>, ProblemHttpResult>> PushAsync(
        HttpRequest http, FeatureServing serving, CancellationToken cancellationToken)
    {
        PushRequest? request;
        try
        {
            request = await JsonSerializer.DeserializeAsync(http.Body, FeatureJsonContext.Default.PushRequest, cancellationToken).ConfigureAwait(false);
        }
        catch (JsonException e)
        {
            return Invalid($"request body: {e.Message}");
        }
        if (request is null) return Invalid("request body: empty");
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

    private static OnlineFeatureVector ToVector(OnlineFeatureColumn column)
    {
        var values = new List<JsonNode?>(column.Values.Length);
        var times = new List<string>(column.Values.Length);
        for (var i = 0; i < column.Values.Length; i++)
        {
            values.Add(Node(column.Values[i]));
            times.Add(column.EventTimestamps[i] is { } t ? t.ToString("yyyy-MM-ddTHH:mm:ss.FFFFFFZ", CultureInfo.InvariantCulture) : _epoch);
        }
        return new OnlineFeatureVector { Values = values, Statuses = [.. column.Statuses], EventTimestamps = times };
    }

    private static JsonNode? Node(object? value) => value switch
    {
        null => null,
        long l => JsonValue.Create(l),
        int i => JsonValue.Create(i),
        double d => double.IsFinite(d) ? JsonValue.Create(d) : null,
        float f => float.IsFinite(f) ? JsonValue.Create(f) : null,
        bool b => JsonValue.Create(b),
        string s => JsonValue.Create(s),
        DateTime t => JsonValue.Create(t.ToString("yyyy-MM-ddTHH:mm:ss.FFFFFFZ", CultureInfo.InvariantCulture)),
        JsonElement e => JsonNode.Parse(e.GetRawText()),
        _ => JsonValue.Create(Convert.ToString(value, CultureInfo.InvariantCulture)),
    };
}
