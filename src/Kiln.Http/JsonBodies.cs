using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace Kiln.Http;

/// <summary>Why a JSON request body was not read into a value.</summary>
public enum JsonBodyFailure
{
    /// <summary>The body is the JSON literal <c>null</c>.</summary>
    Missing,

    /// <summary>The body is not JSON of the expected shape; <see cref="JsonBodyError.Detail"/> has the parser's words.</summary>
    Malformed,

    /// <summary>The body is longer than the limit (<see cref="JsonBodyError.Limit"/> bytes).</summary>
    TooLarge,
}

/// <summary>A request body that was not read: why, the parser's message when malformed, and the limit that applied.</summary>
public readonly record struct JsonBodyError(JsonBodyFailure Failure, string Detail, long? Limit);

/// <summary>
/// Reads a request's JSON body into a source-generated type, within an optional size limit, turning every way it can fail
/// into the endpoint's own problem answer, so a client's mistake is a 4xx with the endpoint's words and never a 500.
/// </summary>
public static class JsonBodies
{
    /// <summary>
    /// The body as a <typeparamref name="T"/>, or the problem <paramref name="problem"/> makes of the failure. A
    /// <paramref name="problem"/> that returns null accepts the failure: both results are then null (an optional body).
    /// </summary>
    /// <param name="maxBytes">The longest body read; null leaves the server's limit.</param>
    public static async Task<(T? Value, TProblem? Problem)> ReadAsync<T, TProblem>(HttpRequest request, JsonTypeInfo<T> type,
        Func<JsonBodyError, TProblem?> problem, long? maxBytes = null, CancellationToken cancellationToken = default)
        where T : class
        where TProblem : class
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(problem);
        if (maxBytes is { } limit)
        {
            if (request.ContentLength > limit) return (null, problem(new JsonBodyError(JsonBodyFailure.TooLarge, "", limit)));
            // A chunked body has no length up front: Kestrel stops reading past the limit instead.
            if (request.HttpContext.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } feature) feature.MaxRequestBodySize = limit;
        }
        try
        {
            var value = await JsonSerializer.DeserializeAsync(request.Body, type, cancellationToken).ConfigureAwait(false);
            return value is null ? (null, problem(new JsonBodyError(JsonBodyFailure.Missing, "", maxBytes))) : (value, null);
        }
        catch (JsonException e)
        {
            return (null, problem(new JsonBodyError(JsonBodyFailure.Malformed, e.Message, maxBytes)));
        }
        catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            return (null, problem(new JsonBodyError(JsonBodyFailure.TooLarge, "", maxBytes)));
        }
    }
}
