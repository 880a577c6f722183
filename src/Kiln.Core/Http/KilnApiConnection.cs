using System.Net;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;

namespace Kiln.Core.Http;

/// <summary>A refusal from a kiln server's API: the problem detail's message, and the HTTP status.</summary>
public sealed class KilnApiException : KilnException
{
    public KilnApiException(int status, string message) : base(message) => Status = status;

    public KilnApiException(string message) : base(message) { }

    public KilnApiException(string message, Exception inner) : base(message, inner) { }

    public KilnApiException() { }

    /// <summary>The HTTP status of the answer.</summary>
    public int Status { get; }
}

/// <summary>
/// What every client of one of kiln server's JSON APIs (pipelines, the feature registry) shares: one request, its answer
/// read through a source-generated type, an unreachable server or a refusal turned into one line. A refusal's text is
/// the server's problem detail (RFC 9457), so the client prints what the embedded store would have said.
/// </summary>
public sealed class KilnApiConnection : IDisposable
{
    private readonly HttpClient _http;
    private readonly bool _ownsHttp;
    private readonly Uri _base;
    private readonly string _notServed;

    /// <param name="server">The server's address, e.g. http://127.0.0.1:5000 (a path prefix is kept).</param>
    /// <param name="apiPath">The API's path under the server, e.g. <c>api/v1/pipelines</c>.</param>
    /// <param name="notServed">What to say when the server answers 404 without a problem body (the API is not turned on there).</param>
    /// <param name="http">An HttpClient to use (not disposed); null creates one.</param>
    public KilnApiConnection(Uri server, string apiPath, string notServed, HttpClient? http = null)
    {
        ArgumentNullException.ThrowIfNull(server);
        ArgumentNullException.ThrowIfNull(apiPath);
        _base = new Uri(server.AbsoluteUri.TrimEnd('/') + "/" + apiPath.Trim('/') + "/");
        _notServed = notServed;
        _ownsHttp = http is null;
        _http = http ?? KilnTls.CreateHttpClient(TimeSpan.FromSeconds(100));
    }

    /// <summary>True for an http:// or https:// location (a server rather than a store).</summary>
    public static bool IsServerUri(string? location) =>
        location is not null && (location.StartsWith("http://", StringComparison.OrdinalIgnoreCase) || location.StartsWith("https://", StringComparison.OrdinalIgnoreCase));

    /// <summary>The server's scheme, host and port, for messages.</summary>
    public string Server => _base.GetLeftPart(UriPartial.Authority);

    /// <summary>Sends a request and reads its JSON answer.</summary>
    /// <exception cref="KilnException">the server cannot be reached or did not answer in time.</exception>
    /// <exception cref="KilnApiException">the server refused the request.</exception>
    public async Task<T> SendAsync<T>(HttpMethod method, string path, HttpContent? content, JsonTypeInfo<T> type, CancellationToken cancellationToken)
    {
        var body = await SendAsync(method, path, content, cancellationToken).ConfigureAwait(false);
        try
        {
            return JsonSerializer.Deserialize(body, type) ?? throw new KilnException($"{Server}: empty answer to {method} {path}");
        }
        catch (JsonException e)
        {
            throw new KilnException($"{Server}: unexpected answer to {method} {path}: {e.Message}", e);
        }
    }

    /// <summary>Sends a request and returns its answer's body as text.</summary>
    public async Task<string> SendAsync(HttpMethod method, string path, HttpContent? content, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(method);
        using var request = new HttpRequestMessage(method, new Uri(_base, path)) { Content = content ?? (method == HttpMethod.Post ? new StringContent("") : null) };
        // Signed in the way MLflow clients are (MLFLOW_TRACKING_TOKEN, or MLFLOW_TRACKING_USERNAME and _PASSWORD).
        request.Headers.Authorization = ServerCredentials.FromEnvironment();
        HttpResponseMessage response;
        try
        {
            response = await _http.SendAsync(request, cancellationToken).ConfigureAwait(false);
        }
        catch (HttpRequestException e)
        {
            throw new KilnException($"cannot reach the kiln server at {Server}: {KilnTls.Explain(e)}", e);
        }
        catch (TaskCanceledException e) when (!cancellationToken.IsCancellationRequested)
        {
            throw new KilnException($"the kiln server at {Server} did not answer in {_http.Timeout.TotalSeconds:0} s", e);
        }
        using (response)
        {
            var body = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
            if (response.IsSuccessStatusCode) return body;
            throw Refusal(response, body);
        }
    }

    private KilnApiException Refusal(HttpResponseMessage response, string body)
    {
        var status = (int)response.StatusCode;
        if (response.Content.Headers.ContentType?.MediaType is { } media && media.Contains("json", StringComparison.OrdinalIgnoreCase)
            && ProblemDetail(body) is { Length: > 0 } detail)
            return new KilnApiException(status, detail);
        if (response.StatusCode == HttpStatusCode.NotFound) return new KilnApiException(status, $"the server at {Server} {_notServed}");
        return new KilnApiException(status, $"{Server} answered {status} {response.ReasonPhrase}{(body.Length > 0 ? ": " + body[..Math.Min(body.Length, 200)] : "")}");
    }

    private static string? ProblemDetail(string body)
    {
        try
        {
            using var doc = JsonDocument.Parse(body);
            // A problem detail's "detail", or the "message" of MLflow's error body (kiln server's 401 and 403).
            if (doc.RootElement.ValueKind != JsonValueKind.Object) return null;
            if (doc.RootElement.TryGetProperty("detail", out var d) && d.ValueKind == JsonValueKind.String) return d.GetString();
            return doc.RootElement.TryGetProperty("error_code", out _) && doc.RootElement.TryGetProperty("message", out var m) && m.ValueKind == JsonValueKind.String
                ? m.GetString()
                : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    public void Dispose()
    {
        if (_ownsHttp) _http.Dispose();
    }
}
