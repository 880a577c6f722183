using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Kiln.Server.Metrics;

/// <summary>
/// Requests and their duration in kiln server, by area (tracking, features, pipelines, feedback, server) and route
/// template ("/api/v1/pipelines/runs/{runId}", never the raw path), on the server's meter:
/// kiln_server_requests_total{area,route,method,status} and kiln_server_request_duration_seconds{area,route,method}.
/// A path no endpoint matches is counted under route "unmatched", so a scanner cannot add series.
/// </summary>
public sealed class ServerHttpMetrics
{
    public ServerHttpMetrics(Meter meter)
    {
        Requests = meter.CreateCounter<long>("kiln.server.requests", null, "Requests answered by kiln server, by area, route template, method and HTTP status.");
        Duration = meter.CreateHistogram<double>("kiln.server.request.duration", "s", "Time from reading a request to writing its answer, by area, route template and method.");
    }

    public Counter<long> Requests { get; }

    public Histogram<double> Duration { get; }

    /// <summary>The area a route template belongs to.</summary>
    public static string Area(string route) => route switch
    {
        _ when route.StartsWith("/api/v1/pipelines", StringComparison.Ordinal) => "pipelines",
        _ when route.StartsWith("/api/v1/feedback", StringComparison.Ordinal) => "feedback",
        _ when route.StartsWith("/get-online-features", StringComparison.Ordinal) || route.StartsWith("/push", StringComparison.Ordinal)
            || route.StartsWith("/api/v1/features", StringComparison.Ordinal) => "features",
        _ when route.StartsWith("/api/2.0/", StringComparison.Ordinal) || route.StartsWith("/ajax-api/", StringComparison.Ordinal)
            || route.StartsWith("/api/v1/", StringComparison.Ordinal) => "tracking",
        _ => "server",
    };

    /// <summary>The method as a closed set (anything unusual is "other").</summary>
    public static string Method(string method) => method switch
    {
        "GET" or "POST" or "PUT" or "DELETE" or "PATCH" or "HEAD" or "OPTIONS" => method,
        _ => "other",
    };
}

/// <summary>Times each request and records it under its endpoint's route template (runs after routing).</summary>
public sealed class ServerHttpMetricsMiddleware(RequestDelegate next, ServerHttpMetrics metrics)
{
    public async Task InvokeAsync(HttpContext context)
    {
        var t0 = Stopwatch.GetTimestamp();
        var failed = false;
        try
        {
            await next(context).ConfigureAwait(false);
        }
        catch
        {
            failed = true;
            throw;
        }
        finally
        {
            var seconds = Stopwatch.GetElapsedTime(t0).TotalSeconds;
            var route = context.GetEndpoint() is RouteEndpoint e ? "/" + (e.RoutePattern.RawText ?? "").TrimStart('/') : "unmatched";
            var area = route == "unmatched" ? "server" : ServerHttpMetrics.Area(route);
            var method = ServerHttpMetrics.Method(context.Request.Method);
            var status = failed ? 500 : context.RequestAborted.IsCancellationRequested && !context.Response.HasStarted ? 499 : context.Response.StatusCode;
            metrics.Requests.Add(1, new("area", area), new("route", route), new("method", method),
                new("status", status.ToString(System.Globalization.CultureInfo.InvariantCulture)));
            metrics.Duration.Record(seconds, new("area", area), new("route", route), new("method", method));
        }
    }
}

public static class ServerHttpMetricsExtensions
{
    /// <summary>Adds the request metrics middleware (needs <see cref="ServerHttpMetrics"/> registered).</summary>
    public static IApplicationBuilder UseKilnServerHttpMetrics(this IApplicationBuilder app) => app.UseMiddleware<ServerHttpMetricsMiddleware>();
}
