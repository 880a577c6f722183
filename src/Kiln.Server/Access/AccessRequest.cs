using System.Text.Json;
using Kiln.Tracking;

namespace Kiln.Server.Access;

/// <summary>
/// A request as the access check reads it: query, route values and the top-level fields of a JSON body (read once,
/// buffered, so the endpoint reads it again). A body field named twice, or a body that is not a JSON object, is refused
/// by <see cref="LoadBodyAsync"/>: the check and the endpoint must never read different values.
/// </summary>
internal sealed class AccessRequest(HttpContext http, ITrackingStore? tracking)
{
    /// <summary>The largest body the check reads: the MLflow endpoints refuse anything larger themselves.</summary>
    public const int MaxBody = 16 * 1024 * 1024;

    private Dictionary<string, JsonElement>? _body;
    private JsonDocument? _document;

    public HttpContext Http => http;

    /// <summary>True when the request has a body (as the registry endpoints decide between body and query).</summary>
    public bool HasContent => http.Request.ContentLength > 0 || http.Request.Headers.TransferEncoding.Count > 0;

    /// <summary>Reads the JSON body's top-level fields; false (with the reason) when it cannot be read as the endpoints would.</summary>
    public async Task<string?> LoadBodyAsync(CancellationToken ct)
    {
        _body = new Dictionary<string, JsonElement>(StringComparer.Ordinal);
        if (!HasContent) return null;
        if (http.Request.ContentLength > MaxBody) return $"request body of {http.Request.ContentLength} bytes is larger than the limit of {MaxBody} bytes";
        http.Request.EnableBuffering(bufferThreshold: 64 * 1024, bufferLimit: MaxBody);
        using var buffer = new MemoryStream();
        try
        {
            await http.Request.Body.CopyToAsync(buffer, ct);
        }
        catch (IOException)
        {
            return $"request body is larger than the limit of {MaxBody} bytes";
        }
        http.Request.Body.Position = 0;
        if (buffer.Length == 0) return null;
        try
        {
            _document = JsonDocument.Parse(buffer.GetBuffer().AsMemory(0, (int)buffer.Length));
        }
        catch (JsonException)
        {
            // Not JSON: the endpoint reports it in its own words; no field can be read from it, so nothing is granted by it.
            return null;
        }
        if (_document.RootElement.ValueKind != JsonValueKind.Object) return null;
        foreach (var p in _document.RootElement.EnumerateObject())
        {
            if (!_body.TryAdd(p.Name, p.Value)) return $"malformed request body: field '{p.Name}' appears twice";
        }
        return null;
    }

    public string? Query(string name) =>
        http.Request.Query.TryGetValue(name, out var v) && !string.IsNullOrEmpty(v.ToString()) ? v.ToString() : null;

    public string? Route(string name) => http.Request.RouteValues.TryGetValue(name, out var v) && v is string s && s.Length > 0 ? s : null;

    public bool HasBody(string name) => _body?.ContainsKey(name) == true;

    /// <summary>A string (or number, as its text) field of the body; null when absent or of another kind.</summary>
    public string? Body(string name) =>
        _body is not null && _body.TryGetValue(name, out var v) ? v.ValueKind switch
        {
            JsonValueKind.String => v.GetString(),
            JsonValueKind.Number => v.GetRawText(),
            _ => null,
        } : null;

    public IReadOnlyList<string> BodyStrings(string name) =>
        _body is not null && _body.TryGetValue(name, out var v) && v.ValueKind == JsonValueKind.Array
            ? v.EnumerateArray().Select(e => e.ValueKind == JsonValueKind.String ? e.GetString()! : e.GetRawText()).ToList()
            : [];

    /// <summary>A registry field: from the JSON body when there is one, else from the query (as the registry endpoints read it).</summary>
    public string? RegistryField(string name) => HasContent ? Body(name) : Query(name);

    public ValueTask<IReadOnlyList<string>> One(string? id) => ValueTask.FromResult<IReadOnlyList<string>>(string.IsNullOrEmpty(id) ? [] : [id]);

    public string? FirstSegment(string? path)
    {
        if (string.IsNullOrEmpty(path)) return null;
        var trimmed = path.TrimStart('/');
        var slash = trimmed.IndexOf('/', StringComparison.Ordinal);
        return slash < 0 ? trimmed : trimmed[..slash];
    }

    public async ValueTask<IReadOnlyList<string>> ExperimentOfRunAsync(string? runId)
    {
        if (string.IsNullOrEmpty(runId) || tracking is null) return [];
        try
        {
            return [(await tracking.GetRunAsync(runId, http.RequestAborted)).Info.ExperimentId];
        }
        catch (TrackingException)
        {
            return [];
        }
    }

    public async ValueTask<IReadOnlyList<string>> ExperimentNamedAsync(string? name)
    {
        if (string.IsNullOrEmpty(name) || tracking is null) return [];
        return await tracking.GetExperimentByNameAsync(name, http.RequestAborted) is { } e ? [e.ExperimentId] : [];
    }
}
