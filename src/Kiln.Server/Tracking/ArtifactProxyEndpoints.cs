using Kiln.Tracking;
using Kiln.Tracking.Artifacts;
using Kiln.Tracking.Mlflow;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Http.HttpResults;
using static Kiln.Server.Tracking.MlflowHttp;

namespace Kiln.Server.Tracking;

/// <summary>MLflow's artifact proxy (mlflow-artifacts): upload with PUT, download with GET, list with GET ?path=.</summary>
internal static class ArtifactProxyEndpoints
{
    public static void Map(RouteGroupBuilder g)
    {
        g.MapPut("/artifacts/{**path}", async Task<JsonHttpResult<EmptyResponse>> (string path, HttpRequest req, IArtifactStore store, CancellationToken ct) =>
        {
            var limit = store switch { LocalArtifactStore l => l.MaxFileBytes, S3ArtifactStore s3 => s3.MaxFileBytes, _ => (long?)null };
            if (limit is not null && req.ContentLength > limit)
                throw TrackingException.Invalid($"artifact '{Limits.Shorten(path)}' of {req.ContentLength} bytes is larger than the upload limit of {limit} bytes");
            req.HttpContext.Features.Get<IHttpMaxRequestBodySizeFeature>()?.MaxRequestBodySize = null;
            await store.PutAsync(path, req.Body, ct);
            return Empty();
        });
        g.MapGet("/artifacts/{**path}", async Task<Results<FileStreamHttpResult, JsonHttpResult<ListArtifactsResponse>>> (string? path, HttpRequest req,
            IArtifactStore store, CancellationToken ct) =>
        {
            if (string.IsNullOrEmpty(path))
            {
                // GET /artifacts?path=dir lists a directory, with names relative to it (as MLflow's proxy does).
                var dir = LocalArtifactStore.Normalize(Query(req, "path"), allowEmpty: true);
                var files = await store.ListAsync(dir, ct);
                var skip = dir.Length == 0 ? 0 : dir.Length + 1;
                return TypedResults.Json(new ListArtifactsResponse
                {
                    Files = files.Select(f => new FileInfoDto { Path = f.Path[skip..], IsDir = f.IsDir, FileSize = f.FileSize }).ToList(),
                }, Json.ListArtifactsResponse);
            }
            var stream = await store.OpenReadAsync(path, ct);
            return TypedResults.Stream(stream, "application/octet-stream", fileDownloadName: Path.GetFileName(path));
        });
    }
}
