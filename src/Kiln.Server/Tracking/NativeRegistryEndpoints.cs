using Kiln.Tracking;
using Kiln.Tracking.Mlflow;
using Microsoft.AspNetCore.Http.HttpResults;
using static Kiln.Server.Tracking.MlflowHttp;

namespace Kiln.Server.Tracking;

/// <summary>Kiln's own registry endpoints for what MLflow lacks: alias history, rollback, and a cheap alias poll.</summary>
internal static class NativeRegistryEndpoints
{
    public static void Map(RouteGroupBuilder v1)
    {
        var models = v1.MapGroup("/models/{name}");
        models.MapGet("/aliases/history", async Task<JsonHttpResult<AliasHistoryResponse>> (string name, HttpRequest req, IModelRegistry r, CancellationToken ct) =>
        {
            var events = await r.GetAliasHistoryAsync(name, Query(req, "alias"), ct);
            return Ok(new AliasHistoryResponse { Events = events.Select(e => e.ToDto()).ToList() }, Json.AliasHistoryResponse);
        });
        models.MapGet("/aliases/{alias}", async Task<JsonHttpResult<AliasTargetResponse>> (string name, string alias, IModelRegistry r, CancellationToken ct) =>
        {
            var v = await r.GetModelVersionByAliasAsync(name, alias, ct);
            return Ok(new AliasTargetResponse { Name = name, Alias = alias, Version = v.Version }, Json.AliasTargetResponse);
        });
        models.MapPost("/aliases/{alias}/rollback", async Task<JsonHttpResult<AliasEventDto>> (string name, string alias, HttpRequest req, IModelRegistry r,
            CancellationToken ct) =>
            Ok((await r.RollbackAliasAsync(name, alias, User(req), ct)).ToDto(), Json.AliasEventDto));
    }
}
