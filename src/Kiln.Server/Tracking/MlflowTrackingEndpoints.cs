using System.Text.RegularExpressions;
using Kiln.Tracking;
using Kiln.Tracking.Mlflow;
using Microsoft.AspNetCore.Http.HttpResults;
using static Kiln.Server.Tracking.MlflowHttp;

namespace Kiln.Server.Tracking;

/// <summary>MLflow REST API 2.0: experiments, runs, metrics and run artifact listings.</summary>
internal static partial class MlflowTrackingEndpoints
{
    public static void Map(RouteGroupBuilder g)
    {
        var experiments = g.MapGroup("/experiments");
        experiments.MapPost("/create", CreateExperiment);
        experiments.MapGet("/get", async Task<JsonHttpResult<ExperimentResponse>> (HttpRequest req, ITrackingStore store, CancellationToken ct) =>
            Ok(new ExperimentResponse { Experiment = (await store.GetExperimentAsync(Required(Query(req, "experiment_id"), "experiment_id"), ct)).ToDto() },
                Json.ExperimentResponse));
        experiments.MapGet("/get-by-name", async Task<JsonHttpResult<ExperimentResponse>> (HttpRequest req, ITrackingStore store, CancellationToken ct) =>
        {
            var name = Required(Query(req, "experiment_name"), "experiment_name");
            var e = await store.GetExperimentByNameAsync(name, ct) ?? throw TrackingException.NotFound($"could not find experiment with name '{name}'");
            return Ok(new ExperimentResponse { Experiment = e.ToDto() }, Json.ExperimentResponse);
        });
        // experiments/list left MLflow in 2.0, but clients written for 1.x (the npm mlflow package) still call it.
        experiments.MapGet("/list", async Task<JsonHttpResult<ExperimentsResponse>> (HttpRequest req, ITrackingStore store, CancellationToken ct) =>
        {
            var view = MlflowMapping.ParseViewType(Query(req, "view_type"));
            var all = new List<ExperimentDto>();
            string? token = null;
            do
            {
                var page = await store.SearchExperimentsAsync(new ExperimentQuery(view, Limits.MaxSearchResults, token), ct);
                all.AddRange(page.Items.Select(e => e.ToDto()));
                token = page.NextPageToken;
            }
            while (token is not null);
            return Ok(new ExperimentsResponse { Experiments = all }, Json.ExperimentsResponse);
        });
        experiments.MapPost("/search", async Task<JsonHttpResult<ExperimentsResponse>> (HttpRequest req, ITrackingStore store, CancellationToken ct) =>
            await SearchExperiments(await BodyAsync(req, Json.SearchExperimentsRequest, ct), store, ct));
        experiments.MapGet("/search", async Task<JsonHttpResult<ExperimentsResponse>> (HttpRequest req, ITrackingStore store, CancellationToken ct) =>
            await SearchExperiments(new SearchExperimentsRequest
            {
                MaxResults = QueryInt(req, "max_results"),
                PageToken = Query(req, "page_token"),
                Filter = Query(req, "filter"),
                ViewType = Query(req, "view_type"),
            }, store, ct));
        experiments.MapPost("/update", async Task<JsonHttpResult<EmptyResponse>> (HttpRequest req, ITrackingStore store, CancellationToken ct) =>
        {
            var b = await BodyAsync(req, Json.ExperimentRequest, ct);
            await store.RenameExperimentAsync(Required(b.ExperimentId, "experiment_id"), Required(b.NewName, "new_name"), ct);
            return Empty();
        });
        experiments.MapPost("/delete", async Task<JsonHttpResult<EmptyResponse>> (HttpRequest req, ITrackingStore store, CancellationToken ct) =>
        {
            var b = await BodyAsync(req, Json.ExperimentRequest, ct);
            await store.DeleteExperimentAsync(Required(b.ExperimentId, "experiment_id"), ct);
            return Empty();
        });
        experiments.MapPost("/restore", async Task<JsonHttpResult<EmptyResponse>> (HttpRequest req, ITrackingStore store, CancellationToken ct) =>
        {
            var b = await BodyAsync(req, Json.ExperimentRequest, ct);
            await store.RestoreExperimentAsync(Required(b.ExperimentId, "experiment_id"), ct);
            return Empty();
        });
        experiments.MapPost("/set-experiment-tag", SetExperimentTag);
        // The npm mlflow client (2.0.7) joins this path without its slash.
        g.MapPost("/experimentsset-experiment-tag", SetExperimentTag);

        var runs = g.MapGroup("/runs");
        runs.MapPost("/create", async Task<JsonHttpResult<RunResponse>> (HttpRequest req, ITrackingStore store, CancellationToken ct) =>
        {
            var b = await BodyAsync(req, Json.CreateRunRequest, ct);
            var run = await store.CreateRunAsync(new CreateRun(Required(b.ExperimentId, "experiment_id"), b.RunName, b.UserId, b.StartTime,
                b.Tags.FromDto("tag")), ct);
            return Ok(new RunResponse { Run = run.ToDto() }, Json.RunResponse);
        });
        runs.MapGet("/get", async Task<JsonHttpResult<RunResponse>> (HttpRequest req, ITrackingStore store, CancellationToken ct) =>
        {
            var id = Required(Query(req, "run_id") ?? Query(req, "run_uuid"), "run_id");
            return Ok(new RunResponse { Run = (await store.GetRunAsync(id, ct)).ToDto() }, Json.RunResponse);
        });
        runs.MapPost("/update", async Task<JsonHttpResult<UpdateRunResponse>> (HttpRequest req, ITrackingStore store, CancellationToken ct) =>
        {
            var b = await BodyAsync(req, Json.RunRequest, ct);
            var info = await store.UpdateRunAsync(RunId(b.RunId, b.RunUuid), b.Status, b.EndTime, b.RunName, ct);
            return Ok(new UpdateRunResponse { RunInfo = info.ToDto() }, Json.UpdateRunResponse);
        });
        runs.MapPost("/delete", async Task<JsonHttpResult<EmptyResponse>> (HttpRequest req, ITrackingStore store, CancellationToken ct) =>
        {
            var b = await BodyAsync(req, Json.RunRequest, ct);
            await store.DeleteRunAsync(RunId(b.RunId, b.RunUuid), ct);
            return Empty();
        });
        runs.MapPost("/restore", async Task<JsonHttpResult<EmptyResponse>> (HttpRequest req, ITrackingStore store, CancellationToken ct) =>
        {
            var b = await BodyAsync(req, Json.RunRequest, ct);
            await store.RestoreRunAsync(RunId(b.RunId, b.RunUuid), ct);
            return Empty();
        });
        runs.MapPost("/log-metric", async Task<JsonHttpResult<EmptyResponse>> (HttpRequest req, ITrackingStore store, CancellationToken ct) =>
        {
            var b = await BodyAsync(req, Json.LogMetricRequest, ct);
            var metric = new Metric(Required(b.Key, "key"), b.Value ?? throw TrackingException.Invalid("missing value for required parameter 'value'"),
                b.Timestamp ?? DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), b.Step ?? 0);
            await store.LogBatchAsync(RunId(b.RunId, b.RunUuid), [metric], null, null, ct);
            return Empty();
        });
        runs.MapPost("/log-parameter", async Task<JsonHttpResult<EmptyResponse>> (HttpRequest req, ITrackingStore store, CancellationToken ct) =>
        {
            var b = await BodyAsync(req, Json.RunRequest, ct);
            await store.LogBatchAsync(RunId(b.RunId, b.RunUuid), null, [new KeyValue(Required(b.Key, "key"), b.Value ?? "")], null, ct);
            return Empty();
        });
        runs.MapPost("/set-tag", async Task<JsonHttpResult<EmptyResponse>> (HttpRequest req, ITrackingStore store, CancellationToken ct) =>
        {
            var b = await BodyAsync(req, Json.RunRequest, ct);
            await store.LogBatchAsync(RunId(b.RunId, b.RunUuid), null, null, [new KeyValue(Required(b.Key, "key"), b.Value ?? "")], ct);
            return Empty();
        });
        runs.MapPost("/delete-tag", async Task<JsonHttpResult<EmptyResponse>> (HttpRequest req, ITrackingStore store, CancellationToken ct) =>
        {
            var b = await BodyAsync(req, Json.RunRequest, ct);
            await store.DeleteTagAsync(RunId(b.RunId, b.RunUuid), Required(b.Key, "key"), ct);
            return Empty();
        });
        runs.MapPost("/log-batch", async Task<JsonHttpResult<EmptyResponse>> (HttpRequest req, ITrackingStore store, CancellationToken ct) =>
        {
            var b = await BodyAsync(req, Json.LogBatchRequest, ct, Limits.MaxBatchRequestBytes);
            var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
            await store.LogBatchAsync(RunId(b.RunId, b.RunUuid), b.Metrics?.Select(m => m.FromDto(now)).ToList(), b.Params.FromDto("param"),
                b.Tags.FromDto("tag"), ct);
            return Empty();
        });
        runs.MapPost("/search", async Task<JsonHttpResult<SearchRunsResponse>> (HttpRequest req, ITrackingStore store, CancellationToken ct) =>
        {
            var b = await BodyAsync(req, Json.SearchRunsRequest, ct);
            var page = await store.SearchRunsAsync(new RunQuery(b.ExperimentIds ?? [], b.Filter, b.OrderBy, b.MaxResults ?? 1000, b.PageToken,
                MlflowMapping.ParseViewType(b.RunViewType)), ct);
            return Ok(new SearchRunsResponse { Runs = page.Items.Select(r => r.ToDto()).ToList(), NextPageToken = page.NextPageToken },
                Json.SearchRunsResponse);
        });

        g.MapGet("/metrics/get-history", async Task<JsonHttpResult<MetricHistoryResponse>> (HttpRequest req, ITrackingStore store, CancellationToken ct) =>
        {
            var id = Required(Query(req, "run_id") ?? Query(req, "run_uuid"), "run_id");
            var history = await store.GetMetricHistoryAsync(id, Required(Query(req, "metric_key"), "metric_key"), ct);
            return Ok(new MetricHistoryResponse { Metrics = history.Select(m => m.ToDto()).ToList() }, Json.MetricHistoryResponse);
        });

        g.MapGet("/artifacts/list", async Task<JsonHttpResult<ListArtifactsResponse>> (HttpRequest req, ITrackingStore store, IArtifactStore artifacts,
            CancellationToken ct) =>
        {
            var run = await store.GetRunAsync(Required(Query(req, "run_id") ?? Query(req, "run_uuid"), "run_id"), ct);
            var root = ArtifactUris.ToStorePath(run.Info.ArtifactUri);
            var files = new List<FileInfoDto>();
            if (root is not null)
            {
                var path = Kiln.Tracking.Artifacts.LocalArtifactStore.Normalize(Query(req, "path"), allowEmpty: true);
                foreach (var f in await artifacts.ListAsync(ArtifactUris.Join(root, path), ct))
                    files.Add(new FileInfoDto { Path = f.Path[(root.Length + 1)..], IsDir = f.IsDir, FileSize = f.FileSize });
            }
            return Ok(new ListArtifactsResponse { RootUri = run.Info.ArtifactUri, Files = files }, Json.ListArtifactsResponse);
        });
    }

    private static string RunId(string? runId, string? runUuid) => Required(runId ?? runUuid, "run_id");

    private static async Task<JsonHttpResult<ExperimentIdResponse>> CreateExperiment(HttpRequest req, ITrackingStore store, CancellationToken ct)
    {
        var b = await BodyAsync(req, Json.CreateExperimentRequest, ct);
        var id = await store.CreateExperimentAsync(Required(b.Name, "name"), b.ArtifactLocation, b.Tags.FromDto("experiment tag"), ct);
        return Ok(new ExperimentIdResponse { ExperimentId = id }, Json.ExperimentIdResponse);
    }

    private static async Task<JsonHttpResult<EmptyResponse>> SetExperimentTag(HttpRequest req, ITrackingStore store, CancellationToken ct)
    {
        var b = await BodyAsync(req, Json.ExperimentRequest, ct);
        await store.SetExperimentTagAsync(Required(b.ExperimentId, "experiment_id"), Required(b.Key, "key"), b.Value ?? "", ct);
        return Empty();
    }

    [GeneratedRegex(@"^\s*(?:attributes?\.)?name\s+(=|LIKE)\s*'((?:[^']|'')*)'\s*$", RegexOptions.IgnoreCase)]
    private static partial Regex NameFilter();

    private static async Task<JsonHttpResult<ExperimentsResponse>> SearchExperiments(SearchExperimentsRequest b, ITrackingStore store, CancellationToken ct)
    {
        string? nameLike = null;
        if (!string.IsNullOrWhiteSpace(b.Filter))
        {
            var m = NameFilter().Match(b.Filter);
            if (!m.Success)
                throw TrackingException.Invalid($"invalid experiment filter '{Limits.Shorten(b.Filter)}': Kiln supports name = '...' and name LIKE '...'");
            nameLike = m.Groups[2].Value.Replace("''", "'", StringComparison.Ordinal);
        }
        var page = await store.SearchExperimentsAsync(new ExperimentQuery(MlflowMapping.ParseViewType(b.ViewType), b.MaxResults ?? 1000, b.PageToken, nameLike), ct);
        return Ok(new ExperimentsResponse { Experiments = page.Items.Select(e => e.ToDto()).ToList(), NextPageToken = page.NextPageToken },
            Json.ExperimentsResponse);
    }
}
