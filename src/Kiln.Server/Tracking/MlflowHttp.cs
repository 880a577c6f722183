using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Kiln.Core;
using Kiln.Tracking;
using Kiln.Tracking.Mlflow;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Kiln.Server.Tracking;

/// <summary>Request decoding and error mapping shared by the MLflow-compatible endpoints.</summary>
internal static class MlflowHttp
{
    /// <summary>Request bodies larger than this are refused on every MLflow endpoint but log-batch (1 MB).</summary>
    public const int DefaultBodyLimit = 16 * 1024 * 1024;

    public static MlflowJson Json => MlflowJson.Default;

    public static JsonHttpResult<T> Ok<T>(T value, JsonTypeInfo<T> info) => TypedResults.Json(value, info);

    public static JsonHttpResult<EmptyResponse> Empty() => TypedResults.Json(new EmptyResponse(), Json.EmptyResponse);

    /// <summary>Reads a JSON body (an empty body is an empty message); malformed JSON or an oversized body is INVALID_PARAMETER_VALUE.</summary>
    public static async Task<T> BodyAsync<T>(HttpRequest request, JsonTypeInfo<T> info, CancellationToken ct, int limit = DefaultBodyLimit)
        where T : new()
    {
        if (request.ContentLength > limit) throw TooLarge(request.ContentLength.Value, limit);
        using var buffer = new MemoryStream();
        var chunk = new byte[16384];
        int n;
        while ((n = await request.Body.ReadAsync(chunk, ct)) > 0)
        {
            if (buffer.Length + n > limit) throw TooLarge(buffer.Length + n, limit);
            buffer.Write(chunk, 0, n);
        }
        if (buffer.Length == 0) return new T();
        try
        {
            return JsonSerializer.Deserialize(buffer.GetBuffer().AsSpan(0, (int)buffer.Length), info) ?? new T();
        }
        catch (JsonException e)
        {
            var where = string.IsNullOrEmpty(e.Path) || e.Path == "$" ? "" : $" at field '{e.Path.TrimStart('$', '.')}'";
            throw TrackingException.Invalid($"malformed request body{where}: {FirstSentence(e.Message)}");
        }
    }

    private static TrackingException TooLarge(long size, int limit) =>
        TrackingException.Invalid($"request body of {size} bytes is larger than the limit of {limit} bytes");

    private static string FirstSentence(string s)
    {
        var i = s.IndexOf(". ", StringComparison.Ordinal);
        return i < 0 ? s : s[..i];
    }

    public static string? Query(HttpRequest request, string name) =>
        request.Query.TryGetValue(name, out var v) && !string.IsNullOrEmpty(v.ToString()) ? v.ToString() : null;

    public static string Required(string? value, string field) =>
        string.IsNullOrEmpty(value) ? throw TrackingException.Invalid($"missing value for required parameter '{field}'") : value;

    public static int? QueryInt(HttpRequest request, string name)
    {
        var s = Query(request, name);
        if (s is null) return null;
        return int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v)
            ? v
            : throw TrackingException.Invalid($"invalid value '{Limits.Shorten(s)}' for parameter '{name}': expected an integer");
    }

    /// <summary>The user recorded for alias moves: the X-Kiln-User header when a client sends it.</summary>
    public static string? User(HttpRequest request) =>
        request.Headers.TryGetValue(Kiln.Tracking.Http.KilnHttpClient.UserHeader, out var u) && u.ToString().Length > 0 ? u.ToString() : null;

    public static JsonHttpResult<MlflowError> Error(string code, string message, int status) =>
        TypedResults.Json(new MlflowError { ErrorCode = code, Message = message }, Json.MlflowError, statusCode: status);
}

/// <summary>Maps domain errors on MLflow endpoints to MLflow's {"error_code","message"} body and status.</summary>
internal sealed class MlflowErrorFilter(ILogger<MlflowErrorFilter> logger) : IEndpointFilter
{
    public async ValueTask<object?> InvokeAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        try
        {
            return await next(context);
        }
        catch (TrackingException e)
        {
            if (e.Code == ErrorCode.InternalError) Log.InternalError(logger, context.HttpContext.Request.Path, e);
            return MlflowHttp.Error(e.MlflowCode, e.Message, e.HttpStatus);
        }
        catch (KilnException e)
        {
            return MlflowHttp.Error("INVALID_PARAMETER_VALUE", e.Message, 400);
        }
        catch (BadHttpRequestException e)
        {
            return MlflowHttp.Error("INVALID_PARAMETER_VALUE", e.Message, e.StatusCode);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            Log.InternalError(logger, context.HttpContext.Request.Path, e);
            return MlflowHttp.Error("INTERNAL_ERROR", "internal server error; see the server log", 500);
        }
    }
}

/// <summary>Maps domain errors on native endpoints to RFC 9457 problem details (with MLflow's code as error_code).</summary>
internal sealed class ProblemFilter(ILogger<ProblemFilter> logger) : IEndpointFilter
{
    public async ValueTask<object?> InvokeAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        try
        {
            return await next(context);
        }
        catch (TrackingException e)
        {
            if (e.Code == ErrorCode.InternalError) Log.InternalError(logger, context.HttpContext.Request.Path, e);
            return TypedResults.Problem(e.Message, statusCode: e.HttpStatus, title: Title(e.HttpStatus),
                extensions: new Dictionary<string, object?> { ["error_code"] = e.MlflowCode });
        }
        catch (KilnException e)
        {
            return TypedResults.Problem(e.Message, statusCode: 400, title: Title(400),
                extensions: new Dictionary<string, object?> { ["error_code"] = "INVALID_PARAMETER_VALUE" });
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            Log.InternalError(logger, context.HttpContext.Request.Path, e);
            return TypedResults.Problem("internal server error; see the server log", statusCode: 500, title: Title(500));
        }
    }

    private static string Title(int status) => status switch
    {
        404 => "Not Found",
        409 => "Conflict",
        500 => "Internal Server Error",
        _ => "Bad Request",
    };
}

internal static partial class Log
{
    [LoggerMessage(EventId = 3001, Level = LogLevel.Error, Message = "request {Path} failed")]
    public static partial void InternalError(ILogger logger, PathString path, Exception exception);

    [LoggerMessage(EventId = 3002, Level = LogLevel.Information, Message = "tracking store {Store}, artifacts under {Artifacts}")]
    public static partial void Stores(ILogger logger, string store, string artifacts);
}
