using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using Kiln.Vectors.Embeddings;
using Kiln.Vectors.Filtering;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Kiln.Core;
using Kiln.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Kiln.Vectors.Http;

/// <summary>Where kiln server keeps its vector collections.</summary>
public sealed class VectorStoreOptions
{
    /// <summary>The store directory: a sub-directory per collection (write-ahead log and snapshots).</summary>
    public string Directory { get; set; } = "vectors";

    /// <summary>The metadata database that holds the collections' catalog (docs/cli.md#locations); null: the
    /// <see cref="MetadataDatabase"/> the host registers (kiln server's --db).</summary>
    public string? Database { get; set; }
}

/// <summary>Opens the vector store when the host starts (a damaged store or catalog stops the start) and hands it out.</summary>
internal sealed class VectorStoreHost(IOptions<VectorStoreOptions> options, IServiceProvider services) : IHostedService
{
    private VectorStore? _store;

    public VectorStore Store => _store ?? throw new InvalidOperationException("the vector store opens when the host starts");

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (_store is not null) return;
        var o = options.Value;
        _store = o.Database is { } location
            ? await VectorStore.OpenAsync(o.Directory, location, cancellationToken).ConfigureAwait(false)
            : await VectorStore.OpenAsync(o.Directory, services.GetService<MetadataDatabase>()
                ?? throw new KilnException("the vector store needs a metadata database for its catalog: set VectorStoreOptions.Database or register a MetadataDatabase"),
                cancellationToken).ConfigureAwait(false);
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}

/// <summary>Registration of the vector store and Qdrant's REST shapes for it (collections, points, search, query).</summary>
public static class VectorEndpoints
{
    public static IServiceCollection AddKilnVectors(this IServiceCollection services, Action<VectorStoreOptions> configure)
    {
        services.AddOptions<VectorStoreOptions>().Configure(configure)
            .Validate(o => !string.IsNullOrWhiteSpace(o.Directory), "the vector store needs a directory")
            .ValidateOnStart();
        services.AddSingleton<VectorStoreHost>();
        services.AddHostedService(sp => sp.GetRequiredService<VectorStoreHost>());
        // Disposed with the container (after the host has stopped): the collections close, and a database the store opened itself.
        services.AddSingleton(sp => sp.GetRequiredService<VectorStoreHost>().Store);
        return services;
    }

    /// <summary>Maps /collections/... as Qdrant's REST API does, so that its curl examples work unchanged.</summary>
    public static IEndpointRouteBuilder MapKilnVectorEndpoints(this IEndpointRouteBuilder app)
    {
        var g = app.MapGroup("/collections");
        g.MapGet("", (VectorStore s) => Run(() => new JsonObject
        {
            ["collections"] = new JsonArray([.. s.Names.Select(n => (JsonNode)new JsonObject { ["name"] = n })]),
        }));
        g.MapGet("/{name}", (string name, VectorStore s) => Run(() => Info(s.Get(name))));
        g.MapGet("/{name}/exists", (string name, VectorStore s) => Run(() => new JsonObject { ["exists"] = s.Exists(name) }));
        g.MapPut("/{name}", (string name, HttpRequest r, VectorStore s, CancellationToken ct) =>
            RunAsync(r, ct, async body =>
            {
                await s.CreateAsync(name, ParseCollection(body), ct).ConfigureAwait(false);
                return JsonValue.Create(true);
            }));
        g.MapDelete("/{name}", (string name, VectorStore s, CancellationToken ct) =>
            RunAsync(async () => JsonValue.Create(await s.DeleteAsync(name, ct).ConfigureAwait(false))));
        g.MapPut("/{name}/index", (string name, HttpRequest r, VectorStore s, CancellationToken ct) =>
            RunAsync(r, ct, async body =>
            {
                var c = s.Get(name);
                var field = Str(body["field_name"], "field_name") ?? throw new VectorInputException("field_name: required");
                var schema = body["field_schema"] is JsonObject o ? o["type"] : body["field_schema"];
                await c.CreatePayloadIndexAsync(field, CollectionConfig.ParseSchemaType(Str(schema, "field_schema"), "field_schema"), ct).ConfigureAwait(false);
                return Completed();
            }));
        g.MapDelete("/{name}/index/{field}", (string name, string field, VectorStore s, CancellationToken ct) => RunAsync(async () =>
        {
            await s.Get(name).DeletePayloadIndexAsync(field, ct).ConfigureAwait(false);
            return Completed();
        }));
        g.MapPost("/{name}/snapshots", (string name, VectorStore s) => Run(() =>
        {
            var c = s.Get(name);
            c.Snapshot();
            return new JsonObject { ["name"] = name, ["creation_time"] = DateTime.UtcNow.ToString("s"), ["points_count"] = c.Count };
        }));
        // The whole collection as one file, and a new collection made from such a file (Kiln's own format: a zip of
        // the configuration, the graph and the points; Qdrant's snapshot files are not read).
        g.MapGet("/{name}/export", (string name, VectorStore s) =>
        {
            var tmp = Path.Combine(Path.GetTempPath(), "kiln-export-" + Guid.NewGuid().ToString("N"));
            var exported = false;
            var refusal = Run(() =>
            {
                var c = s.Get(name);
                using (var f = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write)) c.Export(f);
                exported = true;
                return null;
            });
            if (!exported)
            {
                File.Delete(tmp);
                return refusal;
            }
            var stream = new FileStream(tmp, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete, 1 << 16, FileOptions.DeleteOnClose);
            return Results.Stream(stream, "application/zip", name + ".kiln-collection.zip");
        });
        g.MapPut("/{name}/restore", async (string name, HttpRequest r, VectorStore s, CancellationToken ct) =>
        {
            // An export holds every vector of the collection: Kestrel's 30 MB body limit does not apply here.
            if (r.HttpContext.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit) limit.MaxRequestBodySize = null;
            var tmp = Path.Combine(Path.GetTempPath(), "kiln-restore-" + Guid.NewGuid().ToString("N"));
            try
            {
                var f = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write);
                await using (f.ConfigureAwait(false))
                {
                    await r.Body.CopyToAsync(f, ct).ConfigureAwait(false);
                }
                return await RunAsync(async () =>
                {
                    var f = new FileStream(tmp, FileMode.Open, FileAccess.Read);
                    await using (f.ConfigureAwait(false))
                    {
                        var c = await s.RestoreAsync(name, f, "body", ct).ConfigureAwait(false);
                        return new JsonObject { ["name"] = name, ["points_count"] = c.Count };
                    }
                }).ConfigureAwait(false);
            }
            finally
            {
                File.Delete(tmp);
            }
        });
        g.MapPut("/{name}/points", (string name, HttpRequest r, VectorStore s, CancellationToken ct) =>
            RunAsync(r, ct, body =>
            {
                var c = s.Get(name);
                c.Upsert(ParsePoints(body));
                return Completed();
            }));
        g.MapPost("/{name}/points", (string name, HttpRequest r, VectorStore s, CancellationToken ct) =>
            RunAsync(r, ct, body =>
            {
                var c = s.Get(name);
                var ids = Ids(body["ids"], "ids");
                var payload = WithPayload(body["with_payload"], true);
                var vector = Bool(body["with_vector"], "with_vector") ?? false;
                return new JsonArray([.. c.Get(ids).Select(p => (JsonNode)Render(p, null, payload, vector))]);
            }));
        g.MapGet("/{name}/points/{id}", (string name, string id, VectorStore s) => Run(() =>
        {
            var c = s.Get(name);
            var pid = PointId.ParseText(id, "id");
            var p = c.Get([pid]).FirstOrDefault() ?? throw new VectorNotFoundException($"No point with id {pid} found");
            return Render(p, null, WithPayload(true, true), true);
        }));
        g.MapPost("/{name}/points/delete", (string name, HttpRequest r, VectorStore s, CancellationToken ct) =>
            RunAsync(r, ct, body =>
            {
                var c = s.Get(name);
                if (body["points"] is { } points) c.Delete(Ids(points, "points"));
                else if (body["filter"] is { } filter) c.Delete(PointFilter.Parse(filter)!);
                else throw new VectorInputException("points: give the ids to delete (points) or a filter");
                return Completed();
            }));
        g.MapPost("/{name}/points/count", (string name, HttpRequest r, VectorStore s, CancellationToken ct) =>
            RunAsync(r, ct, body =>
            {
                var c = s.Get(name);
                return new JsonObject { ["count"] = c.CountMatching(PointFilter.Parse(body["filter"])) };
            }));
        g.MapPost("/{name}/points/scroll", (string name, HttpRequest r, VectorStore s, CancellationToken ct) =>
            RunAsync(r, ct, body =>
            {
                var c = s.Get(name);
                var limit = Int(body["limit"], "limit") ?? 10;
                PointId? offset = body["offset"] is null ? null : PointId.Parse(body["offset"], "offset");
                var payload = WithPayload(body["with_payload"], true);
                var vector = Bool(body["with_vector"], "with_vector") ?? false;
                var (points, next) = c.Scroll(PointFilter.Parse(body["filter"]), offset, limit);
                return new JsonObject
                {
                    ["points"] = new JsonArray([.. points.Select(p => (JsonNode)Render(p, null, payload, vector))]),
                    ["next_page_offset"] = next?.ToJson(),
                };
            }));
        g.MapPost("/{name}/points/search", (string name, HttpRequest r, VectorStore s, CancellationToken ct) =>
            RunAsync(r, ct, body =>
            {
                var c = s.Get(name);
                var vectorNode = body["vector"] is JsonObject named ? named["vector"] : body["vector"];
                var query = Vector(vectorNode, "vector") ?? throw new VectorInputException("vector: required");
                return new JsonArray([.. Search(c, body, query, "vector")]);
            }));
        g.MapPost("/{name}/points/search/batch", (string name, HttpRequest r, VectorStore s, CancellationToken ct) =>
            RunAsync(r, ct, body => SearchBatch(s.Get(name), body)));
        g.MapPost("/{name}/points/query", (string name, HttpRequest r, VectorStore s, CancellationToken ct) =>
            RunAsync(r, ct, body =>
            {
                var c = s.Get(name);
                var q = body["query"] is JsonObject o && o.ContainsKey("nearest") ? o["nearest"] : body["query"];
                float[]? query = null;
                if (q is JsonArray) query = Vector(q, "query");
                else if (q is JsonObject document && document.ContainsKey("text")) query = EmbedDocument(c, document, "query", ct);
                else if (q is JsonValue)
                {
                    // A point id: search with that point's vector, as Qdrant's query API does.
                    var id = PointId.Parse(q, "query");
                    query = c.Get([id]).FirstOrDefault()?.Vector ?? throw new VectorNotFoundException($"query: no point with id {id} found");
                }
                else if (q is not null) throw new VectorInputException("query: a vector, {\"nearest\": vector}, {\"text\": \"...\"} or a point id");
                if (query is null)
                {
                    var limit = Int(body["limit"], "limit") ?? 10;
                    var (points, _) = c.Scroll(PointFilter.Parse(body["filter"]), null, limit);
                    var payload = WithPayload(body["with_payload"], false);
                    var vector = Bool(body["with_vector"], "with_vector") ?? false;
                    return new JsonObject { ["points"] = new JsonArray([.. points.Select(p => (JsonNode)Render(p, null, payload, vector))]) };
                }
                return new JsonObject { ["points"] = new JsonArray([.. Search(c, body, query, "query")]) };
            }));
        return app;
    }

    /// <summary>Qdrant's document query, {"text": "...", "model": "..."}: the text embedded with the model Kiln ships.</summary>
    private static float[] EmbedDocument(VectorCollection c, JsonObject document, string field, CancellationToken ct)
    {
        if (document["text"] is not JsonValue t || t.GetValueKind() != JsonValueKind.String || string.IsNullOrWhiteSpace(t.GetValue<string>()))
            throw new VectorInputException($"{field}.text: the text to embed, a non-empty string");
        if (document["model"] is { } model && !(model is JsonValue m && m.GetValueKind() == JsonValueKind.String && TextEmbedder.IsModel(m.GetValue<string>())))
            throw new VectorInputException($"{field}.model: Kiln embeds text with {TextEmbedder.ModelName} only, got {model.ToJsonString()}");
        if (c.Config.Dimension != TextEmbedder.Dimension)
            throw new VectorInputException($"{field}.text: collection `{c.Name}` has vectors of size {c.Config.Dimension}, but {TextEmbedder.ModelName} embeds text in {TextEmbedder.Dimension} dimensions");
        return TextEmbedder.Shared.Embed(t.GetValue<string>(), ct);
    }

    private static IEnumerable<JsonNode> Search(VectorCollection c, JsonObject body, float[] query, string field)
    {
        var (request, payload) = ParseSearch(body, query, "");
        foreach (var hit in c.Search(request, field)) yield return Render(hit.Point, hit.Score, payload, request.WithVector);
    }

    /// <summary>Qdrant's search/batch: {"searches": [search, ...]} answered in one call, a list of hit lists in order.</summary>
    private static JsonArray SearchBatch(VectorCollection c, JsonObject body)
    {
        if (body["searches"] is not JsonArray searches) throw new VectorInputException("searches: a list of searches, each with a vector");
        var requests = new SearchRequest[searches.Count];
        var payloads = new Func<JsonObject?, JsonNode?>?[searches.Count];
        for (var i = 0; i < searches.Count; i++)
        {
            var prefix = $"searches[{i}].";
            if (searches[i] is not JsonObject search) throw new VectorInputException($"searches[{i}]: a search is an object with a vector");
            var vectorNode = search["vector"] is JsonObject named ? named["vector"] : search["vector"];
            var query = Vector(vectorNode, prefix + "vector") ?? throw new VectorInputException(prefix + "vector: required");
            (requests[i], payloads[i]) = ParseSearch(search, query, prefix);
        }
        var results = c.SearchBatch(requests);
        var answer = new JsonArray();
        for (var i = 0; i < results.Count; i++)
        {
            var hits = new JsonArray();
            foreach (var hit in results[i]) hits.Add(Render(hit.Point, hit.Score, payloads[i], requests[i].WithVector));
            answer.Add(hits);
        }
        return answer;
    }

    /// <summary>A search's settings (limit, filter, offset, score_threshold, params.exact, with_payload, with_vector);
    /// errors name the field under <paramref name="prefix"/>.</summary>
    private static (SearchRequest Request, Func<JsonObject?, JsonNode?>? Payload) ParseSearch(JsonObject body, float[] query, string prefix)
    {
        var limit = Int(body["limit"] ?? body["top"], prefix + "limit") ?? 10;
        var request = new SearchRequest(query, limit)
        {
            Filter = PointFilter.Parse(body["filter"], prefix + "filter"),
            Offset = Int(body["offset"], prefix + "offset") ?? 0,
            ScoreThreshold = body["score_threshold"] is { } t ? (float)(Number(t, prefix + "score_threshold")) : null,
            Exact = body["params"] is JsonObject p && (Bool(p["exact"], prefix + "params.exact") ?? false),
            WithVector = Bool(body["with_vector"], prefix + "with_vector") ?? false,
        };
        return (request, WithPayload(body["with_payload"], false, prefix));
    }

    private static JsonObject Info(VectorCollection c)
    {
        var config = c.Config;
        var schema = new JsonObject();
        foreach (var (k, v) in config.PayloadIndexes) schema[k] = new JsonObject { ["data_type"] = v.ToString().ToLowerInvariant() };
        var count = c.Count;
        return new JsonObject
        {
            ["status"] = "green",
            ["optimizer_status"] = "ok",
            ["points_count"] = count,
            ["indexed_vectors_count"] = count,
            ["segments_count"] = 1,
            ["deleted_slots"] = c.DeletedSlots,
            ["config"] = new JsonObject
            {
                ["params"] = new JsonObject
                {
                    ["vectors"] = new JsonObject
                    {
                        ["size"] = config.Dimension,
                        ["distance"] = config.Distance.ToString(),
                        ["datatype"] = CollectionConfig.DatatypeName(config.Datatype),
                    },
                },
                ["hnsw_config"] = new JsonObject
                {
                    ["m"] = config.Hnsw.M,
                    ["ef_construct"] = config.Hnsw.EfConstruct,
                    ["full_scan_threshold"] = config.FullScanThreshold,
                },
                ["wal_config"] = new JsonObject { ["fsync"] = config.WalFsync },
            },
            ["payload_schema"] = schema,
        };
    }

    internal static CollectionConfig ParseCollection(JsonObject body)
    {
        if (body["vectors"] is not JsonObject v) throw new VectorInputException("vectors: required, e.g. {\"size\": 384, \"distance\": \"Cosine\"}");
        var size = Int(v["size"], "vectors.size") ?? throw new VectorInputException("vectors.size: required");
        var hnsw = body["hnsw_config"] as JsonObject;
        var defaults = new HnswParameters();
        return new CollectionConfig
        {
            Dimension = size,
            Distance = CollectionConfig.ParseDistance(Str(v["distance"], "vectors.distance") ?? throw new VectorInputException("vectors.distance: required (Cosine, Dot or Euclid)"), "vectors.distance"),
            Datatype = CollectionConfig.ParseDatatype(Str(v["datatype"], "vectors.datatype"), "vectors.datatype"),
            Hnsw = new HnswParameters(
                Int(hnsw?["m"], "hnsw_config.m") ?? defaults.M,
                Int(hnsw?["ef_construct"], "hnsw_config.ef_construct") ?? defaults.EfConstruct,
                Int(hnsw?["ef"], "hnsw_config.ef") ?? defaults.Ef),
            FullScanThreshold = Int(hnsw?["full_scan_threshold"], "hnsw_config.full_scan_threshold") ?? 1000,
            WalFsync = Bool((body["wal_config"] as JsonObject)?["fsync"], "wal_config.fsync") ?? true,
        };
    }

    internal static List<PointInput> ParsePoints(JsonObject body)
    {
        var result = new List<PointInput>();
        if (body["points"] is JsonArray points)
        {
            for (var i = 0; i < points.Count; i++)
            {
                if (points[i] is not JsonObject p) throw new VectorInputException($"points[{i}]: a point is an object with id, vector and payload");
                var vectorNode = p["vector"] is JsonObject named && named.Count == 1 && named.ContainsKey("") ? named[""] : p["vector"];
                result.Add(new PointInput(
                    PointId.Parse(p["id"], $"points[{i}].id"),
                    Vector(vectorNode, $"points[{i}].vector") ?? throw new VectorInputException($"points[{i}].vector: required"),
                    Payload(p["payload"], $"points[{i}].payload")));
            }
            return result;
        }
        if (body["batch"] is JsonObject batch)
        {
            if (batch["ids"] is not JsonArray ids) throw new VectorInputException("batch.ids: a list of point ids");
            if (batch["vectors"] is not JsonArray vectors || vectors.Count != ids.Count) throw new VectorInputException("batch.vectors: a list of vectors, one per id");
            var payloads = batch["payloads"] as JsonArray;
            if (payloads is not null && payloads.Count != ids.Count) throw new VectorInputException("batch.payloads: one payload per id");
            for (var i = 0; i < ids.Count; i++)
            {
                result.Add(new PointInput(
                    PointId.Parse(ids[i], $"batch.ids[{i}]"),
                    Vector(vectors[i], $"batch.vectors[{i}]") ?? throw new VectorInputException($"batch.vectors[{i}]: required"),
                    Payload(payloads?[i], $"batch.payloads[{i}]")));
            }
            return result;
        }
        throw new VectorInputException("points: a list of points (or batch with ids, vectors and payloads)");
    }

    private static JsonObject? Payload(JsonNode? node, string field) => node switch
    {
        null => null,
        JsonObject o => o,
        _ => throw new VectorInputException($"{field}: a payload is a JSON object"),
    };

    private static float[]? Vector(JsonNode? node, string field)
    {
        if (node is null) return null;
        if (node is not JsonArray a) throw new VectorInputException($"{field}: a list of numbers");
        var v = new float[a.Count];
        for (var i = 0; i < a.Count; i++)
        {
            v[i] = (float)Number(a[i], $"{field}[{i}]");
        }
        return v;
    }

    private static List<PointId> Ids(JsonNode? node, string field)
    {
        if (node is not JsonArray a) throw new VectorInputException($"{field}: a list of point ids");
        var ids = new List<PointId>(a.Count);
        for (var i = 0; i < a.Count; i++) ids.Add(PointId.Parse(a[i], $"{field}[{i}]"));
        return ids;
    }

    private static double Number(JsonNode? node, string field) =>
        node is JsonValue v && v.GetValueKind() == JsonValueKind.Number ? PointFilter.Number(v)
        : throw new VectorInputException($"{field}: a number, got {node?.ToJsonString() ?? "null"}");

    private static int? Int(JsonNode? node, string field)
    {
        if (node is null) return null;
        if (node is JsonValue v && v.GetValueKind() == JsonValueKind.Number && v.TryGetValue<int>(out var i)) return i;
        throw new VectorInputException($"{field}: an integer, got {node.ToJsonString()}");
    }

    private static bool? Bool(JsonNode? node, string field)
    {
        if (node is null) return null;
        if (node is JsonValue v && v.GetValueKind() is JsonValueKind.True or JsonValueKind.False) return v.GetValue<bool>();
        throw new VectorInputException($"{field}: true or false, got {node.ToJsonString()}");
    }

    private static string? Str(JsonNode? node, string field)
    {
        if (node is null) return null;
        if (node is JsonValue v && v.GetValueKind() == JsonValueKind.String) return v.GetValue<string>();
        throw new VectorInputException($"{field}: a string, got {node.ToJsonString()}");
    }

    /// <summary>with_payload: true, false, a list of keys, or {"include": [...]} / {"exclude": [...]}.</summary>
    private static Func<JsonObject?, JsonNode?>? WithPayload(JsonNode? node, bool byDefault, string prefix = "")
    {
        static JsonNode? Copy(JsonObject? p) => p?.DeepClone();
        switch (node)
        {
            case null: return byDefault ? Copy : null;
            case JsonValue v when v.GetValueKind() is JsonValueKind.True: return Copy;
            case JsonValue v when v.GetValueKind() is JsonValueKind.False: return null;
            case JsonArray keys:
                var include = keys.Select((k, i) => Str(k, $"{prefix}with_payload[{i}]")!).ToHashSet(StringComparer.Ordinal);
                return p => Select(p, k => include.Contains(k));
            case JsonObject o when o["include"] is JsonArray inc:
                var incSet = inc.Select((k, i) => Str(k, $"{prefix}with_payload.include[{i}]")!).ToHashSet(StringComparer.Ordinal);
                return p => Select(p, k => incSet.Contains(k));
            case JsonObject o when o["exclude"] is JsonArray exc:
                var excSet = exc.Select((k, i) => Str(k, $"{prefix}with_payload.exclude[{i}]")!).ToHashSet(StringComparer.Ordinal);
                return p => Select(p, k => !excSet.Contains(k));
            default: throw new VectorInputException(prefix + "with_payload: true, false, a list of keys or {\"include\": [...]}");
        }
    }

    private static JsonObject? Select(JsonObject? payload, Func<string, bool> keep)
    {
        if (payload is null) return null;
        var o = new JsonObject();
        foreach (var (k, v) in payload) if (keep(k)) o[k] = v?.DeepClone();
        return o;
    }

    private static JsonObject Render(StoredPoint p, float? score, Func<JsonObject?, JsonNode?>? payload, bool vector)
    {
        var o = new JsonObject { ["id"] = p.Id.ToJson(), ["version"] = 0 };
        if (score is { } s) o["score"] = s;
        if (payload is not null) o["payload"] = payload(p.Payload) ?? new JsonObject();
        if (vector) o["vector"] = new JsonArray([.. p.Vector.Select(x => (JsonNode)x)]);
        return o;
    }

    private static JsonObject Completed() => new() { ["operation_id"] = 0, ["status"] = "completed" };

    private static IResult Run(Func<JsonNode?> action)
    {
        var clock = Stopwatch.StartNew();
        try
        {
            return Reply(200, new JsonObject { ["result"] = action(), ["status"] = "ok", ["time"] = clock.Elapsed.TotalSeconds });
        }
        catch (Exception e) when (Status(e) is { } status)
        {
            return Reply(status, new JsonObject { ["status"] = new JsonObject { ["error"] = Message(e, status) }, ["time"] = clock.Elapsed.TotalSeconds });
        }
    }

    private static async Task<IResult> RunAsync(Func<Task<JsonNode?>> action)
    {
        var clock = Stopwatch.StartNew();
        try
        {
            var result = await action().ConfigureAwait(false);
            return Reply(200, new JsonObject { ["result"] = result, ["status"] = "ok", ["time"] = clock.Elapsed.TotalSeconds });
        }
        catch (Exception e) when (Status(e) is { } status)
        {
            return Reply(status, new JsonObject { ["status"] = new JsonObject { ["error"] = Message(e, status) }, ["time"] = clock.Elapsed.TotalSeconds });
        }
    }

    private static async Task<IResult> RunAsync(HttpRequest request, CancellationToken ct, Func<JsonObject, JsonNode?> action)
    {
        var (body, refusal) = await ReadBodyAsync(request, ct).ConfigureAwait(false);
        return body is null ? refusal! : Run(() => action(body));
    }

    private static async Task<IResult> RunAsync(HttpRequest request, CancellationToken ct, Func<JsonObject, Task<JsonNode?>> action)
    {
        var (body, refusal) = await ReadBodyAsync(request, ct).ConfigureAwait(false);
        return body is null ? refusal! : await RunAsync(() => action(body)).ConfigureAwait(false);
    }

    /// <summary>The request's JSON object, or the answer refusing a body that is not one.</summary>
    private static async Task<(JsonObject? Body, IResult? Refusal)> ReadBodyAsync(HttpRequest request, CancellationToken ct)
    {
        try
        {
            var node = request.ContentLength == 0 ? new JsonObject() : await JsonNode.ParseAsync(request.Body, cancellationToken: ct).ConfigureAwait(false) ?? new JsonObject();
            return (node as JsonObject ?? throw new VectorInputException("body: a JSON object"), null);
        }
        catch (JsonException e)
        {
            return (null, Reply(400, new JsonObject { ["status"] = new JsonObject { ["error"] = "Format error in JSON body: " + e.Message }, ["time"] = 0 }));
        }
        catch (VectorInputException e)
        {
            return (null, Reply(400, new JsonObject { ["status"] = new JsonObject { ["error"] = "Wrong input: " + e.Message }, ["time"] = 0 }));
        }
    }

    private static int? Status(Exception e) => e switch
    {
        VectorNotFoundException => 404,
        VectorConflictException => 400,
        VectorInputException => 400,
        _ => null,
    };

    private static string Message(Exception e, int status) =>
        status == 404 ? "Not found: " + e.Message
        : e.Message.StartsWith("Wrong input:", StringComparison.Ordinal) ? e.Message : "Wrong input: " + e.Message;

    private static IResult Reply(int status, JsonObject body) =>
        Results.Content(body.ToJsonString(), "application/json", System.Text.Encoding.UTF8, status);
}
