using Kiln.Tracking.Mlflow;
using Microsoft.AspNetCore.Http.Features;

namespace Kiln.Server;

/// <summary>
/// Kestrel resolves "." and ".." segments before routing, so "/artifacts/a/../../x" would quietly
/// become another URL. A request whose raw target has dot segments (plain or percent-encoded) is
/// refused with 400 instead: a client that sends one means a path the server will not serve.
/// </summary>
internal sealed class DotSegmentGuard(RequestDelegate next)
{
    public async Task InvokeAsync(HttpContext context)
    {
        var raw = context.Features.Get<IHttpRequestFeature>()?.RawTarget ?? "";
        var q = raw.IndexOf('?', StringComparison.Ordinal);
        var path = Uri.UnescapeDataString(q < 0 ? raw : raw[..q]).Replace('\\', '/');
        if (path.Contains("/../", StringComparison.Ordinal) || path.EndsWith("/..", StringComparison.Ordinal)
            || path.Contains("/./", StringComparison.Ordinal) || path.EndsWith("/.", StringComparison.Ordinal))
        {
            context.Response.StatusCode = StatusCodes.Status400BadRequest;
            await context.Response.WriteAsJsonAsync(new MlflowError
            {
                ErrorCode = "INVALID_PARAMETER_VALUE",
                Message = "invalid path: '.' and '..' segments are not allowed",
            }, MlflowJson.Default.MlflowError, cancellationToken: context.RequestAborted);
            return;
        }
        await next(context);
    }
}
