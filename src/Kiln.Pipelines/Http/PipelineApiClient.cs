using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Kiln.Core;

namespace Kiln.Pipelines.Http;

/// <summary>A client of a kiln server's <c>/api/v1/pipelines</c> API (what <c>kiln pipeline ...</c> uses with an http(s):// tracking URI).</summary>
public sealed class PipelineApiClient : IDisposable
{
    private readonly HttpClient _http;
    private readonly bool _ownsHttp;
    private readonly Uri _base;

    /// <param name="server">The server's address, e.g. http://127.0.0.1:5000 (a path prefix is kept).</param>
    /// <param name="http">An HttpClient to use (not disposed); null creates one.</param>
    public PipelineApiClient(Uri server, HttpClient? http = null)
    {
        ArgumentNullException.ThrowIfNull(server);
        _base = new Uri(server.AbsoluteUri.TrimEnd('/') + "/api/v1/pipelines/");
        _ownsHttp = http is null;
        _http = http ?? new HttpClient { Timeout = TimeSpan.FromSeconds(100) };
    }

    /// <summary>True for an http:// or https:// location (a server rather than a store).</summary>
    public static bool IsServerUri(string? location) =>
        location is not null && (location.StartsWith("http://", StringComparison.OrdinalIgnoreCase) || location.StartsWith("https://", StringComparison.OrdinalIgnoreCase));

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

    private async Task<T> SendAsync<T>(HttpMethod method, string path, HttpContent? content, JsonTypeInfo<T> type, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(method, new Uri(_base, path)) { Content = content ?? (method == HttpMethod.Post ? new StringContent("") : null) };
        request.Headers.Authorization = Kiln.Core.ServerCredentials.FromEnvironment();
        HttpResponseMessage response;
        try
        {
            response = await _http.SendAsync(request, cancellationToken).ConfigureAwait(false);
        }
        catch (HttpRequestException e)
        {
            throw new KilnException($"cannot reach the kiln server at {Server}: {e.Message}", e);
        }
        catch (TaskCanceledException e) when (!cancellationToken.IsCancellationRequested)
        {
            throw new KilnException($"the kiln server at {Server} did not answer in {_http.Timeout.TotalSeconds:0} s", e);
        }
        using (response)
        {
            var body = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
            if (response.IsSuccessStatusCode)
            {
                try
                {
                    return JsonSerializer.Deserialize(body, type) ?? throw new KilnException($"{Server}: empty answer to {method} {path}");
                }
                catch (JsonException e)
                {
                    throw new KilnException($"{Server}: unexpected answer to {method} {path}: {e.Message}", e);
                }
            }
            throw Error(response, body);
        }
    }

    private string Server => _base.GetLeftPart(UriPartial.Authority);

    private PipelineApiException Error(HttpResponseMessage response, string body)
    {
        var status = (int)response.StatusCode;
        ProblemBody? problem = null;
        if (response.Content.Headers.ContentType?.MediaType is { } media && media.Contains("json", StringComparison.OrdinalIgnoreCase))
        {
            try
            {
                problem = JsonSerializer.Deserialize(body, PipelineJson.Default.ProblemBody);
            }
            catch (JsonException)
            {
            }
        }
        if (problem?.Detail is { Length: > 0 } detail) return new PipelineApiException(status, detail);
        if (response.StatusCode == HttpStatusCode.NotFound)
            return new PipelineApiException(status, $"the server at {Server} does not serve pipelines (/api/v1/pipelines); start it with kiln server --pipelines DIR");
        return new PipelineApiException(status, $"{Server} answered {status} {response.ReasonPhrase}{(body.Length > 0 ? ": " + body[..Math.Min(body.Length, 200)] : "")}");
    }

    public void Dispose()
    {
        if (_ownsHttp) _http.Dispose();
    }
}

/// <summary>A refusal from the pipeline API (the problem detail's message; <see cref="Status"/> the HTTP status).</summary>
public sealed class PipelineApiException : KilnException
{
    public PipelineApiException(int status, string message) : base(message) => Status = status;

    public PipelineApiException(string message) : base(message) { }

    public PipelineApiException(string message, Exception inner) : base(message, inner) { }

    public PipelineApiException() { }

    public int Status { get; }
}

/// <summary>The body of POST /runs as a client sends it.</summary>
public sealed record StartRunBody(string? Pipeline, string? Definition, IReadOnlyDictionary<string, string>? Params);

/// <summary>The body of POST /events/{name} as a client sends it.</summary>
public sealed record EventBody(IReadOnlyDictionary<string, string>? Payload);

/// <summary>The fields of an RFC 9457 problem that the client reads.</summary>
public sealed record ProblemBody(string? Title, string? Detail, int? Status);
