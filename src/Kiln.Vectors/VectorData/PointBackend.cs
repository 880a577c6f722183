using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Kiln.Vectors.Filtering;

namespace Kiln.Vectors.VectorData;

/// <summary>The operations the VectorData collection needs, in Kiln's terms, with filters in Qdrant's JSON shape.
/// Two sources: a <see cref="Kiln.Vectors.VectorStore"/> in the same process, or a Qdrant-shaped REST API (kiln server).</summary>
internal interface IPointBackend
{
    string Where { get; }

    Task<IReadOnlyList<string>> ListAsync(CancellationToken ct);

    Task<bool> ExistsAsync(string name, CancellationToken ct);

    Task CreateAsync(string name, CollectionConfig config, CancellationToken ct);

    Task DeleteCollectionAsync(string name, CancellationToken ct);

    Task UpsertAsync(string name, IReadOnlyList<PointInput> points, CancellationToken ct);

    Task<IReadOnlyList<StoredPoint>> GetAsync(string name, IReadOnlyList<PointId> ids, bool withVectors, CancellationToken ct);

    Task DeleteAsync(string name, IReadOnlyList<PointId> ids, CancellationToken ct);

    Task<IReadOnlyList<ScoredPoint>> SearchAsync(string name, float[] vector, int limit, int offset, JsonObject? filter, float? threshold, bool withVectors, CancellationToken ct);

    Task<IReadOnlyList<StoredPoint>> ScrollAsync(string name, JsonObject? filter, int limit, bool withVectors, CancellationToken ct);
}

/// <summary>A Kiln vector store in this process.</summary>
internal sealed class LocalBackend(Kiln.Vectors.VectorStore store) : IPointBackend
{
    public string Where => store.Directory;

    public Task<IReadOnlyList<string>> ListAsync(CancellationToken ct) => Task.FromResult(store.Names);

    public Task<bool> ExistsAsync(string name, CancellationToken ct) => Task.FromResult(store.Exists(name));

    public async Task CreateAsync(string name, CollectionConfig config, CancellationToken ct)
    {
        var c = await store.CreateAsync(name, config with { PayloadIndexes = new(StringComparer.Ordinal) }, ct).ConfigureAwait(false);
        foreach (var (field, type) in config.PayloadIndexes) await c.CreatePayloadIndexAsync(field, type, ct).ConfigureAwait(false);
    }

    public Task DeleteCollectionAsync(string name, CancellationToken ct) => store.DeleteAsync(name, ct);

    public Task UpsertAsync(string name, IReadOnlyList<PointInput> points, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        store.Get(name).Upsert(points);
        return Task.CompletedTask;
    }

    public Task<IReadOnlyList<StoredPoint>> GetAsync(string name, IReadOnlyList<PointId> ids, bool withVectors, CancellationToken ct) =>
        Task.FromResult(store.Get(name).Get(ids));

    public Task DeleteAsync(string name, IReadOnlyList<PointId> ids, CancellationToken ct)
    {
        store.Get(name).Delete(ids);
        return Task.CompletedTask;
    }

    public Task<IReadOnlyList<ScoredPoint>> SearchAsync(string name, float[] vector, int limit, int offset, JsonObject? filter, float? threshold, bool withVectors, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        var request = new SearchRequest(vector, limit) { Offset = offset, ScoreThreshold = threshold, Filter = Parse(filter) };
        return Task.FromResult(store.Get(name).Search(request));
    }

    public Task<IReadOnlyList<StoredPoint>> ScrollAsync(string name, JsonObject? filter, int limit, bool withVectors, CancellationToken ct) =>
        Task.FromResult(store.Get(name).Scroll(Parse(filter), null, limit).Points);

    // Through the JSON text, so that a filter reads exactly as the same filter sent over HTTP.
    private static PointFilter? Parse(JsonObject? filter) => filter is null ? null : PointFilter.Parse(JsonNode.Parse(filter.ToJsonString()));
}

/// <summary>A Qdrant-shaped REST API (kiln server's /collections) through an <see cref="HttpClient"/> whose base address is the server.</summary>
internal sealed class RestBackend(HttpClient http) : IPointBackend
{
    public string Where => http.BaseAddress?.ToString() ?? "(no base address)";

    public async Task<IReadOnlyList<string>> ListAsync(CancellationToken ct)
    {
        var result = await SendAsync(HttpMethod.Get, "collections", null, ct).ConfigureAwait(false);
        return [.. result!["collections"]!.AsArray().Select(c => c!["name"]!.GetValue<string>())];
    }

    public async Task<bool> ExistsAsync(string name, CancellationToken ct) =>
        (await SendAsync(HttpMethod.Get, $"collections/{Uri.EscapeDataString(name)}/exists", null, ct).ConfigureAwait(false))!["exists"]!.GetValue<bool>();

    public async Task CreateAsync(string name, CollectionConfig config, CancellationToken ct)
    {
        var body = new JsonObject
        {
            ["vectors"] = new JsonObject { ["size"] = config.Dimension, ["distance"] = config.Distance.ToString() },
            ["hnsw_config"] = new JsonObject { ["full_scan_threshold"] = config.FullScanThreshold },
        };
        await SendAsync(HttpMethod.Put, $"collections/{Uri.EscapeDataString(name)}", body, ct).ConfigureAwait(false);
        foreach (var (field, type) in config.PayloadIndexes)
        {
            var index = new JsonObject { ["field_name"] = field, ["field_schema"] = type.ToString().ToLowerInvariant() };
            await SendAsync(HttpMethod.Put, $"collections/{Uri.EscapeDataString(name)}/index?wait=true", index, ct).ConfigureAwait(false);
        }
    }

    public async Task DeleteCollectionAsync(string name, CancellationToken ct) =>
        await SendAsync(HttpMethod.Delete, $"collections/{Uri.EscapeDataString(name)}", null, ct).ConfigureAwait(false);

    public async Task UpsertAsync(string name, IReadOnlyList<PointInput> points, CancellationToken ct)
    {
        var list = new JsonArray();
        foreach (var p in points)
        {
            list.Add(new JsonObject
            {
                ["id"] = p.Id.ToJson(),
                ["vector"] = new JsonArray([.. p.Vector.Select(x => (JsonNode)x)]),
                ["payload"] = p.Payload?.DeepClone() ?? new JsonObject(),
            });
        }
        await SendAsync(HttpMethod.Put, $"collections/{Uri.EscapeDataString(name)}/points?wait=true", new JsonObject { ["points"] = list }, ct).ConfigureAwait(false);
    }

    public async Task<IReadOnlyList<StoredPoint>> GetAsync(string name, IReadOnlyList<PointId> ids, bool withVectors, CancellationToken ct)
    {
        var body = new JsonObject { ["ids"] = Ids(ids), ["with_payload"] = true, ["with_vector"] = withVectors };
        var result = await SendAsync(HttpMethod.Post, $"collections/{Uri.EscapeDataString(name)}/points", body, ct).ConfigureAwait(false);
        return [.. result!.AsArray().Select(p => Point(p!.AsObject()))];
    }

    public async Task DeleteAsync(string name, IReadOnlyList<PointId> ids, CancellationToken ct) =>
        await SendAsync(HttpMethod.Post, $"collections/{Uri.EscapeDataString(name)}/points/delete?wait=true", new JsonObject { ["points"] = Ids(ids) }, ct).ConfigureAwait(false);

    public async Task<IReadOnlyList<ScoredPoint>> SearchAsync(string name, float[] vector, int limit, int offset, JsonObject? filter, float? threshold, bool withVectors, CancellationToken ct)
    {
        var body = new JsonObject
        {
            ["vector"] = new JsonArray([.. vector.Select(x => (JsonNode)x)]),
            ["limit"] = limit,
            ["offset"] = offset,
            ["with_payload"] = true,
            ["with_vector"] = withVectors,
        };
        if (filter is not null) body["filter"] = filter.DeepClone();
        if (threshold is { } t) body["score_threshold"] = t;
        var result = await SendAsync(HttpMethod.Post, $"collections/{Uri.EscapeDataString(name)}/points/search", body, ct).ConfigureAwait(false);
        return [.. result!.AsArray().Select(p => new ScoredPoint(Point(p!.AsObject()), p!["score"]!.GetValue<float>()))];
    }

    public async Task<IReadOnlyList<StoredPoint>> ScrollAsync(string name, JsonObject? filter, int limit, bool withVectors, CancellationToken ct)
    {
        var body = new JsonObject { ["limit"] = limit, ["with_payload"] = true, ["with_vector"] = withVectors };
        if (filter is not null) body["filter"] = filter.DeepClone();
        var result = await SendAsync(HttpMethod.Post, $"collections/{Uri.EscapeDataString(name)}/points/scroll", body, ct).ConfigureAwait(false);
        return [.. result!["points"]!.AsArray().Select(p => Point(p!.AsObject()))];
    }

    private static JsonArray Ids(IReadOnlyList<PointId> ids) => new([.. ids.Select(i => i.ToJson())]);

    private static StoredPoint Point(JsonObject o)
    {
        var vector = o["vector"] is JsonArray a ? a.Select(x => x!.GetValue<float>()).ToArray() : [];
        return new StoredPoint(PointId.Parse(o["id"], "id"), vector, o["payload"] as JsonObject, 0);
    }

    /// <summary>Sends one request and returns Qdrant's <c>result</c>; a refusal throws with the server's error text.</summary>
    private async Task<JsonNode?> SendAsync(HttpMethod method, string path, JsonObject? body, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(method, path);
        if (body is not null) request.Content = JsonContent.Create(body);
        using var response = await http.SendAsync(request, ct).ConfigureAwait(false);
        var text = await response.Content.ReadAsStringAsync(ct).ConfigureAwait(false);
        JsonNode? reply = null;
        try { reply = text.Length == 0 ? null : JsonNode.Parse(text); }
        catch (System.Text.Json.JsonException) { }
        if (!response.IsSuccessStatusCode)
        {
            var error = reply?["status"]?["error"]?.GetValue<string>() ?? $"HTTP {(int)response.StatusCode}";
            throw (int)response.StatusCode == 404 ? new VectorNotFoundException(error) : new VectorInputException(error);
        }
        return reply?["result"];
    }
}
