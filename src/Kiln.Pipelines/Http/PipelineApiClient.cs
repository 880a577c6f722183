using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json.Serialization.Metadata;
using Kiln.Core.Http;

namespace Kiln.Pipelines.Http;

/// <summary>A client of a kiln server's <c>/api/v1/pipelines</c> API (what <c>kiln pipeline ...</c> uses with an http(s):// tracking URI).</summary>
public sealed class PipelineApiClient : IDisposable
{
    private readonly KilnApiConnection _api;

    /// <param name="server">The server's address, e.g. http://127.0.0.1:5000 (a path prefix is kept).</param>
    /// <param name="http">An HttpClient to use (not disposed); null creates one.</param>
    public PipelineApiClient(Uri server, HttpClient? http = null) =>
        _api = new KilnApiConnection(server, "api/v1/pipelines", "does not serve pipelines (/api/v1/pipelines); start it with kiln server --pipelines DIR", http);

    /// <summary>True for an http:// or https:// location (a server rather than a store).</summary>
    public static bool IsServerUri(string? location) => KilnApiConnection.IsServerUri(location);

    /// <summary>The pipelines the server knows (its catalog directory).</summary>
    public Task<PipelineListDto> ListPipelinesAsync(CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Get, "", null, PipelineJson.Default.PipelineListDto, cancellationToken);

    /// <summary>Starts a run of a catalog pipeline (by name) or of an inline YAML definition; the server runs it in the background.</summary>
    public Task<RunDto> StartRunAsync(string? pipeline, string? definition, IReadOnlyDictionary<string, string>? parameters,
        CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Post, "runs", JsonContent.Create(new StartRunBody(pipeline, definition, parameters), PipelineJson.Default.StartRunBody),
            PipelineJson.Default.RunDto, cancellationToken);

    /// <summary>Runs, newest first.</summary>
    public Task<RunListDto> ListRunsAsync(string? pipeline = null, string? state = null, int? limit = null, CancellationToken cancellationToken = default)
    {
        var query = new List<string>();
        if (pipeline is not null) query.Add("pipeline=" + Uri.EscapeDataString(pipeline));
        if (state is not null) query.Add("state=" + Uri.EscapeDataString(state));
        if (limit is { } l) query.Add("limit=" + l.ToString(CultureInfo.InvariantCulture));
        return SendAsync(HttpMethod.Get, "runs" + (query.Count == 0 ? "" : "?" + string.Join("&", query)), null, PipelineJson.Default.RunListDto, cancellationToken);
    }

    /// <summary>A run with its tasks and attempts.</summary>
    public Task<RunDetailDto> GetRunAsync(string runId, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Get, "runs/" + Uri.EscapeDataString(runId), null, PipelineJson.Default.RunDetailDto, cancellationToken);

    /// <summary>Log lines after the id <paramref name="after"/> (0: from the start), at most 10,000 per call.</summary>
    public Task<LogListDto> GetLogsAsync(string runId, string? task = null, long after = 0, CancellationToken cancellationToken = default)
    {
        var path = $"runs/{Uri.EscapeDataString(runId)}/logs?after={after.ToString(CultureInfo.InvariantCulture)}";
        if (task is not null) path += "&task=" + Uri.EscapeDataString(task);
        return SendAsync(HttpMethod.Get, path, null, PipelineJson.Default.LogListDto, cancellationToken);
    }

    /// <summary>Asks the server to cancel a run.</summary>
    public Task<RunDto> CancelAsync(string runId, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Post, $"runs/{Uri.EscapeDataString(runId)}/cancel", null, PipelineJson.Default.RunDto, cancellationToken);

    /// <summary>Asks the server to resume a run (its failed, cancelled or interrupted tasks).</summary>
    public Task<RunDto> ResumeAsync(string runId, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Post, $"runs/{Uri.EscapeDataString(runId)}/resume", null, PipelineJson.Default.RunDto, cancellationToken);

    /// <summary>Raises an event: every catalog pipeline triggered by it starts, with payload fields as parameter values.</summary>
    public Task<EventResultDto> TriggerEventAsync(string eventName, IReadOnlyDictionary<string, string>? payload = null, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Post, "events/" + Uri.EscapeDataString(eventName), JsonContent.Create(new EventBody(payload), PipelineJson.Default.EventBody),
            PipelineJson.Default.EventResultDto, cancellationToken);

    private Task<T> SendAsync<T>(HttpMethod method, string path, HttpContent? content, JsonTypeInfo<T> type, CancellationToken cancellationToken) =>
        _api.SendAsync(method, path, content, type, cancellationToken);

    public void Dispose() => _api.Dispose();
}

/// <summary>The body of POST /runs as a client sends it.</summary>
public sealed record StartRunBody(string? Pipeline, string? Definition, IReadOnlyDictionary<string, string>? Params);

/// <summary>The body of POST /events/{name} as a client sends it.</summary>
public sealed record EventBody(IReadOnlyDictionary<string, string>? Payload);
