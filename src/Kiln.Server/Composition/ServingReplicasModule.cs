using Kiln.Core;
using Kiln.Core.Http;
using Kiln.Web.Serving;

namespace Kiln.Server.Composition;

/// <summary>
/// The kiln serve replicas the server knows of: POST /api/v1/serving/replicas takes a replica's heartbeat (kiln serve
/// --register), GET lists the live ones; the registry is in memory (<see cref="ReplicaRegistry"/>), and a scraper reads
/// each live replica's /metrics for the serving page.
/// </summary>
internal sealed class ServingReplicasModule(IReadOnlyList<Uri> configured, TimeSpan scrapeInterval) : IKilnServerModule
{
    public void ConfigureServices(WebApplicationBuilder builder)
    {
        builder.Services.AddSingleton(_ => new ReplicaRegistry(configured));
        builder.Services.AddSingleton(sp => new ReplicaScraper(sp.GetRequiredService<ReplicaRegistry>(), scrapeInterval));
        builder.Services.AddHostedService(sp => sp.GetRequiredService<ReplicaScraper>());
    }

    public void MapEndpoints(WebApplication app)
    {
        app.MapPost("/api/v1/serving/replicas", Heartbeat);
        app.MapGet("/api/v1/serving/replicas", (ReplicaRegistry registry, CancellationToken ct) =>
            TypedResults.Json(new ReplicaList(registry.Live().Select(Item).ToList()), ReplicaJsonContext.Default.ReplicaList));
    }

    private static async Task<IResult> Heartbeat(HttpRequest request, ReplicaRegistry registry, CancellationToken ct)
    {
        ReplicaHeartbeat? beat;
        try
        {
            beat = await request.ReadFromJsonAsync(ReplicaJsonContext.Default.ReplicaHeartbeat, ct);
        }
        catch (Exception e) when (e is System.Text.Json.JsonException or InvalidOperationException or BadHttpRequestException)
        {
            return TypedResults.Problem($"body: not a replica heartbeat ({e.Message})", statusCode: 400);
        }
        if (beat is null) return TypedResults.Problem("body: a JSON object with url, models and interval_seconds is required", statusCode: 400);
        try
        {
            var replica = registry.Heartbeat(beat.Url, (beat.Models ?? []).Select(m => new ReplicaModel(m?.Name ?? "", m?.Version)).ToList(), beat.IntervalSeconds);
            return TypedResults.Json(new ReplicaHeartbeatAccepted(replica.Url.AbsoluteUri, replica.ExpiresAt!.Value), ReplicaJsonContext.Default.ReplicaHeartbeatAccepted);
        }
        catch (KilnException e)
        {
            return TypedResults.Problem(e.Message, statusCode: 400);
        }
    }

    private static ReplicaListItem Item(Replica r) =>
        new(r.Url.AbsoluteUri, r.Models.Select(m => new ReplicaHeartbeatModel(m.Name, m.Version)).ToList(), r.Configured, r.LastHeartbeat, r.ExpiresAt);
}
