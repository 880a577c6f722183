using System.Globalization;
using System.Net.Http.Headers;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Kiln.Tracking.Mlflow;

namespace Kiln.Tracking.Http;

/// <summary>
/// The three stores reached through a running kiln server: MLflow's REST API 2.0 for tracking and
/// the registry, the mlflow-artifacts proxy for files, and /api/v1 for alias history and rollback.
/// </summary>
public sealed class KilnHttpClient : ITrackingStore, IModelRegistry, IArtifactStore, IAsyncDisposable
{
    /// <summary>The header that names who moves an alias (recorded in the alias history).</summary>
    public const string UserHeader = "X-Kiln-User";

    private readonly HttpClient _http;
    private readonly bool _ownsHttp;
    private readonly Uri _base;
    private static readonly MlflowJson Json = MlflowJson.Default;

    public KilnHttpClient(Uri baseUri, HttpClient? http = null)
    {
        _base = new Uri(baseUri.ToString().TrimEnd('/') + "/");
        _ownsHttp = http is null;
        _http = http ?? Kiln.Core.Http.KilnTls.CreateHttpClient(TimeSpan.FromMinutes(10));
    }

    public string User { get; set; } = Environment.UserName;

    /// <summary>Sent with every request: from MLFLOW_TRACKING_TOKEN, or MLFLOW_TRACKING_USERNAME and _PASSWORD (<see cref="Kiln.Core.ServerCredentials"/>).</summary>
    public AuthenticationHeaderValue? Authorization { get; set; } = Kiln.Core.ServerCredentials.FromEnvironment();

    private Uri Url(string relative) => new(_base, relative);

    private static string Q(string? s) => Uri.EscapeDataString(s ?? "");

    private async Task<TRes> SendAsync<TRes>(HttpMethod method, string path, HttpContent? content, JsonTypeInfo<TRes> info, CancellationToken ct,
        string? user = null)
    {
        using var request = new HttpRequestMessage(method, Url(path)) { Content = content };
        request.Headers.Add(UserHeader, string.IsNullOrEmpty(user) ? User : user);
        request.Headers.Authorization = Authorization;
        HttpResponseMessage response;
        try
        {
            response = await _http.SendAsync(request, ct).ConfigureAwait(false);
        }
        catch (HttpRequestException e)
        {
            throw new TrackingException(ErrorCode.InternalError, $"cannot reach the kiln server at {_base}: {Kiln.Core.Http.KilnTls.Explain(e)}", e);
        }
        using (response)
        {
            if (!response.IsSuccessStatusCode) throw await ErrorAsync(response, ct).ConfigureAwait(false);
            var stream = await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
            await using (stream.ConfigureAwait(false))
            {
                return await JsonSerializer.DeserializeAsync(stream, info, ct).ConfigureAwait(false)
                    ?? throw new TrackingException(ErrorCode.InternalError, $"empty response from {path}");
            }
        }
    }

    private Task<TRes> PostAsync<TReq, TRes>(string path, TReq body, JsonTypeInfo<TReq> reqInfo, JsonTypeInfo<TRes> resInfo, CancellationToken ct,
        HttpMethod? method = null, string? user = null)
    {
        var content = new ByteArrayContent(JsonSerializer.SerializeToUtf8Bytes(body, reqInfo));
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        return SendAsync(method ?? HttpMethod.Post, path, content, resInfo, ct, user);
    }

    private Task<TRes> GetAsync<TRes>(string path, JsonTypeInfo<TRes> info, CancellationToken ct) =>
        SendAsync(HttpMethod.Get, path, null, info, ct);

    private static async Task<TrackingException> ErrorAsync(HttpResponseMessage response, CancellationToken ct)
    {
        var body = await response.Content.ReadAsStringAsync(ct).ConfigureAwait(false);
        var status = (int)response.StatusCode;
        try
        {
            using var doc = JsonDocument.Parse(body);
            var root = doc.RootElement;
            if (root.ValueKind == JsonValueKind.Object)
            {
                var code = root.TryGetProperty("error_code", out var c) ? c.GetString() : null;
                var message = root.TryGetProperty("message", out var m) ? m.GetString()
                    : root.TryGetProperty("detail", out var d) ? d.GetString()
                    : root.TryGetProperty("title", out var t) ? t.GetString() : null;
                if (message is not null)
                {
                    var kind = code is not null ? TrackingException.FromMlflow(code)
                        : status == 404 ? ErrorCode.ResourceDoesNotExist
                        : status < 500 ? ErrorCode.InvalidParameterValue : ErrorCode.InternalError;
                    return new TrackingException(kind, message);
                }
            }
        }
        catch (JsonException)
        {
        }
        return new TrackingException(status == 404 ? ErrorCode.ResourceDoesNotExist : status < 500 ? ErrorCode.BadRequest : ErrorCode.InternalError,
            $"kiln server answered {status} {response.ReasonPhrase}: {Limits.Shorten(body)}");
    }

    // ---- tracking ----

    public async Task<string> CreateExperimentAsync(string name, string? artifactLocation = null, IReadOnlyList<KeyValue>? tags = null,
        CancellationToken ct = default)
    {
        var r = await PostAsync("api/2.0/mlflow/experiments/create",
            new CreateExperimentRequest { Name = name, ArtifactLocation = artifactLocation, Tags = tags?.ToDto() },
            Json.CreateExperimentRequest, Json.ExperimentIdResponse, ct).ConfigureAwait(false);
        return r.ExperimentId ?? "";
    }

    public async Task<Experiment> GetExperimentAsync(string experimentId, CancellationToken ct = default) =>
        (await GetAsync($"api/2.0/mlflow/experiments/get?experiment_id={Q(experimentId)}", Json.ExperimentResponse, ct).ConfigureAwait(false))
        .Experiment!.FromDto();

    public async Task<Experiment?> GetExperimentByNameAsync(string name, CancellationToken ct = default)
    {
        try
        {
            return (await GetAsync($"api/2.0/mlflow/experiments/get-by-name?experiment_name={Q(name)}", Json.ExperimentResponse, ct).ConfigureAwait(false))
                .Experiment!.FromDto();
        }
        catch (TrackingException e) when (e.Code == ErrorCode.ResourceDoesNotExist)
        {
            return null;
        }
    }

    public async Task<Page<Experiment>> SearchExperimentsAsync(ExperimentQuery query, CancellationToken ct = default)
    {
        var r = await PostAsync("api/2.0/mlflow/experiments/search", new SearchExperimentsRequest
        {
            MaxResults = query.MaxResults,
            PageToken = query.PageToken,
            ViewType = query.ViewType.ToWire(),
            Filter = query.NameLike is null ? null : $"name LIKE '{query.NameLike.Replace("'", "''", StringComparison.Ordinal)}'",
        }, Json.SearchExperimentsRequest, Json.ExperimentsResponse, ct).ConfigureAwait(false);
        return new Page<Experiment>(r.Experiments?.Select(e => e.FromDto()).ToList() ?? [], Empty(r.NextPageToken));
    }

    public Task RenameExperimentAsync(string experimentId, string newName, CancellationToken ct = default) =>
        PostAsync("api/2.0/mlflow/experiments/update", new ExperimentRequest { ExperimentId = experimentId, NewName = newName },
            Json.ExperimentRequest, Json.EmptyResponse, ct);

    public Task DeleteExperimentAsync(string experimentId, CancellationToken ct = default) =>
        PostAsync("api/2.0/mlflow/experiments/delete", new ExperimentRequest { ExperimentId = experimentId }, Json.ExperimentRequest, Json.EmptyResponse, ct);

    public Task RestoreExperimentAsync(string experimentId, CancellationToken ct = default) =>
        PostAsync("api/2.0/mlflow/experiments/restore", new ExperimentRequest { ExperimentId = experimentId }, Json.ExperimentRequest, Json.EmptyResponse, ct);

    public Task SetExperimentTagAsync(string experimentId, string key, string value, CancellationToken ct = default) =>
        PostAsync("api/2.0/mlflow/experiments/set-experiment-tag", new ExperimentRequest { ExperimentId = experimentId, Key = key, Value = value },
            Json.ExperimentRequest, Json.EmptyResponse, ct);

    public async Task<Run> CreateRunAsync(CreateRun request, CancellationToken ct = default)
    {
        var r = await PostAsync("api/2.0/mlflow/runs/create", new CreateRunRequest
        {
            ExperimentId = request.ExperimentId,
            RunName = request.RunName,
            UserId = request.UserId,
            StartTime = request.StartTime,
            Tags = request.Tags?.ToDto(),
        }, Json.CreateRunRequest, Json.RunResponse, ct).ConfigureAwait(false);
        return r.Run!.FromDto();
    }

    public async Task<Run> GetRunAsync(string runId, CancellationToken ct = default) =>
        (await GetAsync($"api/2.0/mlflow/runs/get?run_id={Q(runId)}", Json.RunResponse, ct).ConfigureAwait(false)).Run!.FromDto();

    public async Task<RunInfo> UpdateRunAsync(string runId, string? status, long? endTime, string? runName, CancellationToken ct = default)
    {
        var r = await PostAsync("api/2.0/mlflow/runs/update", new RunRequest { RunId = runId, Status = status, EndTime = endTime, RunName = runName },
            Json.RunRequest, Json.UpdateRunResponse, ct).ConfigureAwait(false);
        return r.RunInfo!.FromDto();
    }

    public Task DeleteRunAsync(string runId, CancellationToken ct = default) =>
        PostAsync("api/2.0/mlflow/runs/delete", new RunRequest { RunId = runId }, Json.RunRequest, Json.EmptyResponse, ct);

    public Task RestoreRunAsync(string runId, CancellationToken ct = default) =>
        PostAsync("api/2.0/mlflow/runs/restore", new RunRequest { RunId = runId }, Json.RunRequest, Json.EmptyResponse, ct);

    public Task LogBatchAsync(string runId, IReadOnlyList<Metric>? metrics, IReadOnlyList<KeyValue>? @params, IReadOnlyList<KeyValue>? tags,
        CancellationToken ct = default) =>
        PostAsync("api/2.0/mlflow/runs/log-batch", new LogBatchRequest
        {
            RunId = runId,
            Metrics = metrics?.Select(m => m.ToDto()).ToList(),
            Params = @params?.ToDto(),
            Tags = tags?.ToDto(),
        }, Json.LogBatchRequest, Json.EmptyResponse, ct);

    public Task DeleteTagAsync(string runId, string key, CancellationToken ct = default) =>
        PostAsync("api/2.0/mlflow/runs/delete-tag", new RunRequest { RunId = runId, Key = key }, Json.RunRequest, Json.EmptyResponse, ct);

    public async Task<IReadOnlyList<Metric>> GetMetricHistoryAsync(string runId, string key, CancellationToken ct = default)
    {
        var r = await GetAsync($"api/2.0/mlflow/metrics/get-history?run_id={Q(runId)}&metric_key={Q(key)}", Json.MetricHistoryResponse, ct)
            .ConfigureAwait(false);
        return r.Metrics?.Select(m => m.FromDto(0)).ToList() ?? [];
    }

    public async Task<Page<Run>> SearchRunsAsync(RunQuery query, CancellationToken ct = default)
    {
        var r = await PostAsync("api/2.0/mlflow/runs/search", new SearchRunsRequest
        {
            ExperimentIds = [.. query.ExperimentIds],
            Filter = query.Filter,
            OrderBy = query.OrderBy?.ToList(),
            MaxResults = query.MaxResults,
            PageToken = query.PageToken,
            RunViewType = query.ViewType.ToWire(),
        }, Json.SearchRunsRequest, Json.SearchRunsResponse, ct).ConfigureAwait(false);
        return new Page<Run>(r.Runs?.Select(x => x.FromDto()).ToList() ?? [], Empty(r.NextPageToken));
    }

    private static string? Empty(string? token) => string.IsNullOrEmpty(token) ? null : token;

    // ---- registry ----

    private Task<RegisteredModelResponse> RegistryAsync(string path, RegistryRequest body, CancellationToken ct, HttpMethod? method = null) =>
        PostAsync("api/2.0/mlflow/" + path, body, Json.RegistryRequest, Json.RegisteredModelResponse, ct, method);

    private Task<ModelVersionResponse> VersionAsync(string path, RegistryRequest body, CancellationToken ct, HttpMethod? method = null) =>
        PostAsync("api/2.0/mlflow/" + path, body, Json.RegistryRequest, Json.ModelVersionResponse, ct, method);

    private static string V(int version) => version.ToString(CultureInfo.InvariantCulture);

    public async Task<RegisteredModel> CreateRegisteredModelAsync(string name, string? description = null, IReadOnlyList<KeyValue>? tags = null,
        CancellationToken ct = default) =>
        (await RegistryAsync("registered-models/create", new RegistryRequest { Name = name, Description = description, Tags = tags?.ToDto() }, ct)
            .ConfigureAwait(false)).RegisteredModel!.FromDto();

    public async Task<RegisteredModel> GetRegisteredModelAsync(string name, CancellationToken ct = default) =>
        (await GetAsync($"api/2.0/mlflow/registered-models/get?name={Q(name)}", Json.RegisteredModelResponse, ct).ConfigureAwait(false))
        .RegisteredModel!.FromDto();

    public async Task<RegisteredModel> RenameRegisteredModelAsync(string name, string newName, CancellationToken ct = default) =>
        (await RegistryAsync("registered-models/rename", new RegistryRequest { Name = name, NewName = newName }, ct).ConfigureAwait(false))
        .RegisteredModel!.FromDto();

    public async Task<RegisteredModel> UpdateRegisteredModelAsync(string name, string? description, CancellationToken ct = default) =>
        (await RegistryAsync("registered-models/update", new RegistryRequest { Name = name, Description = description }, ct, HttpMethod.Patch)
            .ConfigureAwait(false)).RegisteredModel!.FromDto();

    public Task DeleteRegisteredModelAsync(string name, CancellationToken ct = default) =>
        PostAsync("api/2.0/mlflow/registered-models/delete", new RegistryRequest { Name = name }, Json.RegistryRequest, Json.EmptyResponse, ct,
            HttpMethod.Delete);

    public async Task<Page<RegisteredModel>> SearchRegisteredModelsAsync(string? nameLike = null, int maxResults = 100, string? pageToken = null,
        CancellationToken ct = default)
    {
        var filter = nameLike is null ? "" : $"name LIKE '{nameLike.Replace("'", "''", StringComparison.Ordinal)}'";
        var r = await GetAsync($"api/2.0/mlflow/registered-models/search?filter={Q(filter)}&max_results={maxResults}&page_token={Q(pageToken)}",
            Json.RegisteredModelsResponse, ct).ConfigureAwait(false);
        return new Page<RegisteredModel>(r.RegisteredModels?.Select(m => m.FromDto()).ToList() ?? [], Empty(r.NextPageToken));
    }

    public Task SetRegisteredModelTagAsync(string name, string key, string value, CancellationToken ct = default) =>
        PostAsync("api/2.0/mlflow/registered-models/set-tag", new RegistryRequest { Name = name, Key = key, Value = value },
            Json.RegistryRequest, Json.EmptyResponse, ct);

    public Task DeleteRegisteredModelTagAsync(string name, string key, CancellationToken ct = default) =>
        PostAsync("api/2.0/mlflow/registered-models/delete-tag", new RegistryRequest { Name = name, Key = key },
            Json.RegistryRequest, Json.EmptyResponse, ct, HttpMethod.Delete);

    public async Task<ModelVersion> CreateModelVersionAsync(CreateModelVersion request, CancellationToken ct = default) =>
        (await VersionAsync("model-versions/create", new RegistryRequest
        {
            Name = request.Name,
            Source = request.Source,
            RunId = request.RunId,
            Description = request.Description,
            Tags = request.Tags?.ToDto(),
        }, ct).ConfigureAwait(false)).ModelVersion!.FromDto();

    public async Task<ModelVersion> GetModelVersionAsync(string name, int version, CancellationToken ct = default) =>
        (await GetAsync($"api/2.0/mlflow/model-versions/get?name={Q(name)}&version={V(version)}", Json.ModelVersionResponse, ct).ConfigureAwait(false))
        .ModelVersion!.FromDto();

    public async Task<ModelVersion> UpdateModelVersionAsync(string name, int version, string? description, CancellationToken ct = default) =>
        (await VersionAsync("model-versions/update", new RegistryRequest { Name = name, Version = V(version), Description = description }, ct,
            HttpMethod.Patch).ConfigureAwait(false)).ModelVersion!.FromDto();

    public Task DeleteModelVersionAsync(string name, int version, CancellationToken ct = default) =>
        PostAsync("api/2.0/mlflow/model-versions/delete", new RegistryRequest { Name = name, Version = V(version) },
            Json.RegistryRequest, Json.EmptyResponse, ct, HttpMethod.Delete);

    public async Task<Page<ModelVersion>> SearchModelVersionsAsync(string? name = null, string? runId = null, int maxResults = 1000,
        string? pageToken = null, CancellationToken ct = default)
    {
        var filters = new List<string>();
        if (name is not null) filters.Add($"name = '{name.Replace("'", "''", StringComparison.Ordinal)}'");
        if (runId is not null) filters.Add($"run_id = '{runId.Replace("'", "''", StringComparison.Ordinal)}'");
        var r = await GetAsync($"api/2.0/mlflow/model-versions/search?filter={Q(string.Join(" AND ", filters))}&max_results={maxResults}&page_token={Q(pageToken)}",
            Json.ModelVersionsResponse, ct).ConfigureAwait(false);
        return new Page<ModelVersion>(r.ModelVersions?.Select(v => v.FromDto()).ToList() ?? [], Empty(r.NextPageToken));
    }

    public Task SetModelVersionTagAsync(string name, int version, string key, string value, CancellationToken ct = default) =>
        PostAsync("api/2.0/mlflow/model-versions/set-tag", new RegistryRequest { Name = name, Version = V(version), Key = key, Value = value },
            Json.RegistryRequest, Json.EmptyResponse, ct);

    public Task DeleteModelVersionTagAsync(string name, int version, string key, CancellationToken ct = default) =>
        PostAsync("api/2.0/mlflow/model-versions/delete-tag", new RegistryRequest { Name = name, Version = V(version), Key = key },
            Json.RegistryRequest, Json.EmptyResponse, ct, HttpMethod.Delete);

    public async Task<ModelVersion> TransitionStageAsync(string name, int version, string stage, bool archiveExisting, CancellationToken ct = default) =>
        (await VersionAsync("model-versions/transition-stage", new RegistryRequest
        {
            Name = name,
            Version = V(version),
            Stage = stage,
            ArchiveExistingVersions = archiveExisting,
        }, ct).ConfigureAwait(false)).ModelVersion!.FromDto();

    public Task SetAliasAsync(string name, string alias, int version, string? userId = null, CancellationToken ct = default) =>
        PostAsync("api/2.0/mlflow/registered-models/alias", new RegistryRequest { Name = name, Alias = alias, Version = V(version) },
            Json.RegistryRequest, Json.EmptyResponse, ct, user: userId);

    public Task DeleteAliasAsync(string name, string alias, string? userId = null, CancellationToken ct = default) =>
        SendAsync(HttpMethod.Delete, $"api/2.0/mlflow/registered-models/alias?name={Q(name)}&alias={Q(alias)}", null, Json.EmptyResponse, ct, userId);

    public async Task<ModelVersion> GetModelVersionByAliasAsync(string name, string alias, CancellationToken ct = default) =>
        (await GetAsync($"api/2.0/mlflow/registered-models/alias?name={Q(name)}&alias={Q(alias)}", Json.ModelVersionResponse, ct).ConfigureAwait(false))
        .ModelVersion!.FromDto();

    public async Task<IReadOnlyList<AliasEvent>> GetAliasHistoryAsync(string name, string? alias = null, CancellationToken ct = default)
    {
        var path = $"api/v1/models/{Q(name)}/aliases/history" + (alias is null ? "" : $"?alias={Q(alias)}");
        var r = await GetAsync(path, Json.AliasHistoryResponse, ct).ConfigureAwait(false);
        return r.Events?.Select(e => e.FromDto()).ToList() ?? [];
    }

    public async Task<AliasEvent> RollbackAliasAsync(string name, string alias, string? userId = null, CancellationToken ct = default) =>
        (await SendAsync(HttpMethod.Post, $"api/v1/models/{Q(name)}/aliases/{Q(alias)}/rollback", null, Json.AliasEventDto, ct, userId).ConfigureAwait(false))
        .FromDto();

    /// <summary>The version an alias points at, in one small request (serving polls this for hot swap).</summary>
    public async Task<int> GetAliasVersionAsync(string name, string alias, CancellationToken ct = default) =>
        (await GetAsync($"api/v1/models/{Q(name)}/aliases/{Q(alias)}", Json.AliasTargetResponse, ct).ConfigureAwait(false)).Version;

    // ---- artifacts (the mlflow-artifacts proxy) ----

    private static string EscapePath(string path) =>
        string.Join('/', path.Split('/').Select(Uri.EscapeDataString));

    public async Task PutAsync(string path, Stream content, CancellationToken ct = default)
    {
        var normalized = Artifacts.LocalArtifactStore.Normalize(path, allowEmpty: false);
        var body = new StreamContent(content);
        body.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        await SendAsync(HttpMethod.Put, "api/2.0/mlflow-artifacts/artifacts/" + EscapePath(normalized), body, Json.EmptyResponse, ct).ConfigureAwait(false);
    }

    public async Task<Stream> OpenReadAsync(string path, CancellationToken ct = default)
    {
        var normalized = Artifacts.LocalArtifactStore.Normalize(path, allowEmpty: false);
        using var request = new HttpRequestMessage(HttpMethod.Get, Url("api/2.0/mlflow-artifacts/artifacts/" + EscapePath(normalized)));
        request.Headers.Authorization = Authorization;
        var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode)
        {
            using (response) throw await ErrorAsync(response, ct).ConfigureAwait(false);
        }
        return await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
    }

    public async Task<IReadOnlyList<ArtifactFile>> ListAsync(string? path, CancellationToken ct = default)
    {
        var normalized = Artifacts.LocalArtifactStore.Normalize(path, allowEmpty: true);
        var r = await GetAsync($"api/2.0/mlflow-artifacts/artifacts?path={Q(normalized)}", Json.ListArtifactsResponse, ct).ConfigureAwait(false);
        // The proxy lists names relative to the listed directory, as MLflow does; the store interface uses root-relative paths.
        var prefix = normalized.Length == 0 ? "" : normalized + "/";
        return r.Files?.Select(f => new ArtifactFile(prefix + f.Path, f.IsDir, f.FileSize)).ToList() ?? [];
    }

    public ValueTask DisposeAsync()
    {
        if (_ownsHttp) _http.Dispose();
        return ValueTask.CompletedTask;
    }
}
