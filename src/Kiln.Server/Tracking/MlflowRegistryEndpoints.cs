using System.Text.RegularExpressions;
using Kiln.Tracking;
using Kiln.Tracking.Mlflow;
using Microsoft.AspNetCore.Http.HttpResults;
using static Kiln.Server.Tracking.MlflowHttp;

namespace Kiln.Server.Tracking;

/// <summary>MLflow REST API 2.0: registered models (with aliases) and model versions.</summary>
internal static partial class MlflowRegistryEndpoints
{
    public static void Map(RouteGroupBuilder g)
    {
        var models = g.MapGroup("/registered-models");
        models.MapPost("/create", async Task<JsonHttpResult<RegisteredModelResponse>> (HttpRequest req, IModelRegistry r, CancellationToken ct) =>
        {
            var b = await RequestAsync(req, ct);
            return Model(await r.CreateRegisteredModelAsync(Required(b.Name, "name"), b.Description, b.Tags.FromDto("tag"), ct));
        });
        models.MapGet("/get", async Task<JsonHttpResult<RegisteredModelResponse>> (HttpRequest req, IModelRegistry r, CancellationToken ct) =>
            Model(await r.GetRegisteredModelAsync(Required(Query(req, "name"), "name"), ct)));
        models.MapPost("/rename", async Task<JsonHttpResult<RegisteredModelResponse>> (HttpRequest req, IModelRegistry r, CancellationToken ct) =>
        {
            var b = await RequestAsync(req, ct);
            return Model(await r.RenameRegisteredModelAsync(Required(b.Name, "name"), Required(b.NewName, "new_name"), ct));
        });
        models.MapPatch("/update", async Task<JsonHttpResult<RegisteredModelResponse>> (HttpRequest req, IModelRegistry r, CancellationToken ct) =>
        {
            var b = await RequestAsync(req, ct);
            return Model(await r.UpdateRegisteredModelAsync(Required(b.Name, "name"), b.Description, ct));
        });
        models.MapDelete("/delete", async Task<JsonHttpResult<EmptyResponse>> (HttpRequest req, IModelRegistry r, CancellationToken ct) =>
        {
            var b = await RequestAsync(req, ct);
            await r.DeleteRegisteredModelAsync(Required(b.Name, "name"), ct);
            return Empty();
        });
        models.MapGet("/search", async Task<JsonHttpResult<RegisteredModelsResponse>> (HttpRequest req, IModelRegistry r, CancellationToken ct) =>
        {
            var like = ParseFilter(Query(req, "filter"), "name", out _);
            var page = await r.SearchRegisteredModelsAsync(like, QueryInt(req, "max_results") ?? 100, Query(req, "page_token"), ct);
            return Ok(new RegisteredModelsResponse { RegisteredModels = page.Items.Select(m => m.ToDto()).ToList(), NextPageToken = page.NextPageToken },
                Json.RegisteredModelsResponse);
        });
        models.MapPost("/get-latest-versions", LatestVersions);
        models.MapGet("/get-latest-versions", LatestVersions);
        models.MapPost("/set-tag", async Task<JsonHttpResult<EmptyResponse>> (HttpRequest req, IModelRegistry r, CancellationToken ct) =>
        {
            var b = await RequestAsync(req, ct);
            await r.SetRegisteredModelTagAsync(Required(b.Name, "name"), Required(b.Key, "key"), b.Value ?? "", ct);
            return Empty();
        });
        models.MapDelete("/delete-tag", async Task<JsonHttpResult<EmptyResponse>> (HttpRequest req, IModelRegistry r, CancellationToken ct) =>
        {
            var b = await RequestAsync(req, ct);
            await r.DeleteRegisteredModelTagAsync(Required(b.Name, "name"), Required(b.Key, "key"), ct);
            return Empty();
        });
        models.MapPost("/alias", async Task<JsonHttpResult<EmptyResponse>> (HttpRequest req, IModelRegistry r, CancellationToken ct) =>
        {
            var b = await RequestAsync(req, ct);
            await r.SetAliasAsync(Required(b.Name, "name"), Required(b.Alias, "alias"), MlflowMapping.ParseVersion(b.Version), User(req), ct);
            return Empty();
        });
        models.MapDelete("/alias", async Task<JsonHttpResult<EmptyResponse>> (HttpRequest req, IModelRegistry r, CancellationToken ct) =>
        {
            var b = await RequestAsync(req, ct);
            await r.DeleteAliasAsync(Required(b.Name, "name"), Required(b.Alias, "alias"), User(req), ct);
            return Empty();
        });
        models.MapGet("/alias", async Task<JsonHttpResult<ModelVersionResponse>> (HttpRequest req, IModelRegistry r, CancellationToken ct) =>
            Version(await r.GetModelVersionByAliasAsync(Required(Query(req, "name"), "name"), Required(Query(req, "alias"), "alias"), ct)));

        var versions = g.MapGroup("/model-versions");
        versions.MapPost("/create", async Task<JsonHttpResult<ModelVersionResponse>> (HttpRequest req, IModelRegistry r, CancellationToken ct) =>
        {
            var b = await RequestAsync(req, ct);
            var source = Required(b.Source, "source");
            var runId = string.IsNullOrEmpty(b.RunId) ? ModelUris.RunIdOf(source) : b.RunId;
            return Version(await r.CreateModelVersionAsync(new CreateModelVersion(Required(b.Name, "name"), source, runId, b.Description,
                b.Tags.FromDto("tag"), User(req)), ct));
        });
        versions.MapGet("/get", async Task<JsonHttpResult<ModelVersionResponse>> (HttpRequest req, IModelRegistry r, CancellationToken ct) =>
            Version(await r.GetModelVersionAsync(Required(Query(req, "name"), "name"), MlflowMapping.ParseVersion(Query(req, "version")), ct)));
        versions.MapPatch("/update", async Task<JsonHttpResult<ModelVersionResponse>> (HttpRequest req, IModelRegistry r, CancellationToken ct) =>
        {
            var b = await RequestAsync(req, ct);
            return Version(await r.UpdateModelVersionAsync(Required(b.Name, "name"), MlflowMapping.ParseVersion(b.Version), b.Description, ct));
        });
        versions.MapDelete("/delete", async Task<JsonHttpResult<EmptyResponse>> (HttpRequest req, IModelRegistry r, CancellationToken ct) =>
        {
            var b = await RequestAsync(req, ct);
            await r.DeleteModelVersionAsync(Required(b.Name, "name"), MlflowMapping.ParseVersion(b.Version), ct);
            return Empty();
        });
        versions.MapGet("/search", async Task<JsonHttpResult<ModelVersionsResponse>> (HttpRequest req, IModelRegistry r, CancellationToken ct) =>
        {
            var name = ParseFilter(Query(req, "filter"), "name", out var runId);
            var page = await r.SearchModelVersionsAsync(name, runId, QueryInt(req, "max_results") ?? 1000, Query(req, "page_token"), ct);
            return Ok(new ModelVersionsResponse { ModelVersions = page.Items.Select(v => v.ToDto()).ToList(), NextPageToken = page.NextPageToken },
                Json.ModelVersionsResponse);
        });
        versions.MapGet("/get-download-uri", async Task<JsonHttpResult<DownloadUriResponse>> (HttpRequest req, IModelRegistry r, ITrackingStore t,
            CancellationToken ct) =>
        {
            var v = await r.GetModelVersionAsync(Required(Query(req, "name"), "name"), MlflowMapping.ParseVersion(Query(req, "version")), ct);
            return Ok(new DownloadUriResponse { ArtifactUri = await ModelUris.ArtifactUriOfAsync(v.Source, t, ct) }, Json.DownloadUriResponse);
        });
        versions.MapPost("/transition-stage", async Task<JsonHttpResult<ModelVersionResponse>> (HttpRequest req, IModelRegistry r, CancellationToken ct) =>
        {
            var b = await RequestAsync(req, ct);
            return Version(await r.TransitionStageAsync(Required(b.Name, "name"), MlflowMapping.ParseVersion(b.Version), Required(b.Stage, "stage"),
                b.ArchiveExistingVersions ?? false, ct));
        });
        versions.MapPost("/set-tag", async Task<JsonHttpResult<EmptyResponse>> (HttpRequest req, IModelRegistry r, CancellationToken ct) =>
        {
            var b = await RequestAsync(req, ct);
            await r.SetModelVersionTagAsync(Required(b.Name, "name"), MlflowMapping.ParseVersion(b.Version), Required(b.Key, "key"), b.Value ?? "", ct);
            return Empty();
        });
        versions.MapDelete("/delete-tag", async Task<JsonHttpResult<EmptyResponse>> (HttpRequest req, IModelRegistry r, CancellationToken ct) =>
        {
            var b = await RequestAsync(req, ct);
            await r.DeleteModelVersionTagAsync(Required(b.Name, "name"), MlflowMapping.ParseVersion(b.Version), Required(b.Key, "key"), ct);
            return Empty();
        });
    }

    private static JsonHttpResult<RegisteredModelResponse> Model(RegisteredModel m) =>
        Ok(new RegisteredModelResponse { RegisteredModel = m.ToDto() }, Json.RegisteredModelResponse);

    private static JsonHttpResult<ModelVersionResponse> Version(ModelVersion v) =>
        Ok(new ModelVersionResponse { ModelVersion = v.ToDto() }, Json.ModelVersionResponse);

    private static async Task<JsonHttpResult<ModelVersionsResponse>> LatestVersions(HttpRequest req, IModelRegistry r, CancellationToken ct)
    {
        var b = await RequestAsync(req, ct);
        var model = await r.GetRegisteredModelAsync(Required(b.Name, "name"), ct);
        var stages = (b.Stages ?? []).Select(s => ModelStage.Normalize(s) ?? throw TrackingException.Invalid($"invalid stage '{s}'")).ToHashSet();
        var latest = model.LatestVersions.Where(v => stages.Count == 0 || stages.Contains(v.CurrentStage)).Select(v => v.ToDto()).ToList();
        return Ok(new ModelVersionsResponse { ModelVersions = latest }, Json.ModelVersionsResponse);
    }

    /// <summary>The request's fields from its JSON body, or from the query string when there is no body (GET, and DELETE as some clients send it).</summary>
    private static async Task<RegistryRequest> RequestAsync(HttpRequest req, CancellationToken ct)
    {
        var hasBody = req.ContentLength > 0 || req.Headers.TransferEncoding.Count > 0;
        if (hasBody) return await BodyAsync(req, Json.RegistryRequest, ct);
        return new RegistryRequest
        {
            Name = Query(req, "name"),
            NewName = Query(req, "new_name"),
            Description = Query(req, "description"),
            Version = Query(req, "version"),
            Alias = Query(req, "alias"),
            Key = Query(req, "key"),
            Value = Query(req, "value"),
            Stage = Query(req, "stage"),
            Stages = req.Query.TryGetValue("stages", out var s) ? s.Where(x => !string.IsNullOrEmpty(x)).Select(x => x!).ToList() : null,
        };
    }

    [GeneratedRegex(@"^\s*(name|run_id)\s*(=|LIKE)\s*'((?:[^']|'')*)'\s*$", RegexOptions.IgnoreCase)]
    private static partial Regex Clause();

    /// <summary>The registry's small filter grammar: name = '…', name LIKE '…', run_id = '…', joined by AND.</summary>
    private static string? ParseFilter(string? filter, string field, out string? runId)
    {
        runId = null;
        string? name = null;
        if (string.IsNullOrWhiteSpace(filter)) return null;
        foreach (var part in Regex.Split(filter, @"\s+AND\s+", RegexOptions.IgnoreCase, TimeSpan.FromSeconds(1)))
        {
            var m = Clause().Match(part);
            if (!m.Success)
                throw TrackingException.Invalid($"invalid filter '{Limits.Shorten(filter)}': supported are {field} = '...', {field} LIKE '...' and run_id = '...'");
            var value = m.Groups[3].Value.Replace("''", "'", StringComparison.Ordinal);
            if (m.Groups[1].Value.Equals("run_id", StringComparison.OrdinalIgnoreCase)) runId = value;
            else name = value;
        }
        return name;
    }
}
