using Microsoft.AspNetCore.Http;

namespace Kiln.Serving.Protection;

/// <summary>
/// kiln serve --require-token: every request needs <c>Authorization: Bearer TOKEN</c> that <see cref="ServeOptions.TokenCheck"/>
/// accepts, except the probes (/health, /ready, /v2/health/live, /v2/health/ready) and, when asked, /metrics. A refusal
/// is 401 with a problem body (gRPC: status UNAUTHENTICATED), the same for a missing, malformed or unknown token.
/// </summary>
internal sealed class TokenGate(Func<string, CancellationToken, ValueTask<bool>> check, bool openMetrics)
{
    private static readonly string[] Probes = ["/health", "/ready", "/v2/health/live", "/v2/health/ready"];

    public async Task InvokeAsync(HttpContext http, RequestDelegate next)
    {
        var path = http.Request.Path.Value ?? "";
        if (Probes.Contains(path, StringComparer.Ordinal) || (openMetrics && path == "/metrics"))
        {
            await next(http).ConfigureAwait(false);
            return;
        }
        var header = http.Request.Headers.Authorization.ToString();
        const string Bearer = "Bearer ";
        if (header.Length > Bearer.Length && header.StartsWith(Bearer, StringComparison.OrdinalIgnoreCase)
            && await check(header[Bearer.Length..].Trim(), http.RequestAborted).ConfigureAwait(false))
        {
            await next(http).ConfigureAwait(false);
            return;
        }
        const string Message = "a valid bearer token is required (Authorization: Bearer TOKEN)";
        if (http.Request.ContentType?.StartsWith("application/grpc", StringComparison.Ordinal) == true)
        {
            // gRPC carries its status in headers of a 200 response (a trailers-only answer).
            http.Response.StatusCode = StatusCodes.Status200OK;
            http.Response.ContentType = "application/grpc";
            http.Response.Headers["grpc-status"] = "16";
            http.Response.Headers["grpc-message"] = Message;
            return;
        }
        http.Response.StatusCode = StatusCodes.Status401Unauthorized;
        http.Response.Headers.WWWAuthenticate = "Bearer";
        await Results.Problem(statusCode: 401, title: "Unauthorized", detail: Message).ExecuteAsync(http).ConfigureAwait(false);
    }
}
