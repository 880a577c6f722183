using System.Linq.Expressions;
using System.Runtime.CompilerServices;
using Kiln.Core;
using Microsoft.Extensions.VectorData;

namespace Kiln.Vectors.VectorData;

/// <summary>
/// Kiln's vector store behind .NET's VectorData abstraction (Microsoft.Extensions.VectorData): the same application
/// code runs on a store in this process or on kiln server's Qdrant-shaped REST API.
/// </summary>
public sealed class KilnVectorStore : Microsoft.Extensions.VectorData.VectorStore
{
    internal const string SystemName = "kiln";
    private readonly IPointBackend _backend;
    private readonly HttpClient? _ownedClient;

    /// <summary>Over a store in this process.</summary>
    public KilnVectorStore(Kiln.Vectors.VectorStore store) => _backend = new LocalBackend(store);

    /// <summary>Over the REST API of a kiln server; <paramref name="http"/>'s base address is the server.</summary>
    public KilnVectorStore(HttpClient http) => _backend = new RestBackend(http);

    /// <summary>Over the REST API of the kiln server at <paramref name="endpoint"/> (e.g. http://localhost:5000/).</summary>
    public KilnVectorStore(Uri endpoint)
    {
        _ownedClient = new HttpClient { BaseAddress = endpoint };
        _backend = new RestBackend(_ownedClient);
    }

    public override VectorStoreCollection<TKey, TRecord> GetCollection<TKey, TRecord>(string name, VectorStoreCollectionDefinition? definition = null) =>
        new KilnVectorCollection<TKey, TRecord>(_backend, name, RecordModel.For(typeof(TRecord), definition));

    public override VectorStoreCollection<object, Dictionary<string, object?>> GetDynamicCollection(string name, VectorStoreCollectionDefinition definition) =>
        new KilnVectorCollection<object, Dictionary<string, object?>>(_backend, name, RecordModel.For(typeof(Dictionary<string, object?>), definition));

    public override async IAsyncEnumerable<string> ListCollectionNamesAsync([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        foreach (var name in await Guard.Run(null, "ListCollectionNames", () => _backend.ListAsync(cancellationToken)).ConfigureAwait(false)) yield return name;
    }

    public override Task<bool> CollectionExistsAsync(string name, CancellationToken cancellationToken = default) =>
        Guard.Run(name, "CollectionExists", () => _backend.ExistsAsync(name, cancellationToken));

    public override Task EnsureCollectionDeletedAsync(string name, CancellationToken cancellationToken = default) =>
        Guard.Run(name, "EnsureCollectionDeleted", () => _backend.DeleteCollectionAsync(name, cancellationToken));

    public override object? GetService(Type serviceType, object? serviceKey = null) =>
        serviceKey is not null ? null
        : serviceType == typeof(VectorStoreMetadata) ? new VectorStoreMetadata { VectorStoreSystemName = SystemName, VectorStoreName = _backend.Where }
        : serviceType.IsInstanceOfType(this) ? this
        : null;

    protected override void Dispose(bool disposing)
    {
        if (disposing) _ownedClient?.Dispose();
        base.Dispose(disposing);
    }
}

/// <summary>A Kiln collection seen as a VectorData collection of <typeparamref name="TRecord"/>.</summary>
public sealed class KilnVectorCollection<TKey, TRecord> : VectorStoreCollection<TKey, TRecord>
    where TKey : notnull
    where TRecord : class
{
    private readonly IPointBackend _backend;
    private readonly RecordModel _model;

    internal KilnVectorCollection(IPointBackend backend, string name, RecordModel model)
    {
        _backend = backend;
        _model = model;
        Name = name;
    }

    public override string Name { get; }

    public override Task<bool> CollectionExistsAsync(CancellationToken cancellationToken = default) =>
        Guard.Run(Name, "CollectionExists", () => _backend.ExistsAsync(Name, cancellationToken));

    public override async Task EnsureCollectionExistsAsync(CancellationToken cancellationToken = default)
    {
        await Guard.Run(Name, "EnsureCollectionExists", async () =>
        {
            if (await _backend.ExistsAsync(Name, cancellationToken).ConfigureAwait(false)) return;
            if (_model.Dimensions < 1) throw new VectorInputException($"{_model.Vector.Name}: the vector property needs its dimensions");
            var indexes = new Dictionary<string, PayloadSchemaType>(StringComparer.Ordinal);
            foreach (var p in _model.Indexed)
            {
                if (RecordModel.SchemaOf(p.Type) is { } schema) indexes[p.StorageName] = schema;
            }
            var config = new CollectionConfig
            {
                Dimension = _model.Dimensions,
                Distance = _model.DistanceFunction switch
                {
                    null or Microsoft.Extensions.VectorData.DistanceFunction.CosineSimilarity => Distance.Cosine,
                    Microsoft.Extensions.VectorData.DistanceFunction.DotProductSimilarity => Distance.Dot,
                    Microsoft.Extensions.VectorData.DistanceFunction.EuclideanDistance => Distance.Euclid,
                    var other => throw new NotSupportedException($"{_model.Vector.Name}: distance function {other} (Kiln has CosineSimilarity, DotProductSimilarity and EuclideanDistance)"),
                },
                // A flat index is an exact scan at every size.
                FullScanThreshold = _model.IndexKind == Microsoft.Extensions.VectorData.IndexKind.Flat ? int.MaxValue : 1000,
                PayloadIndexes = indexes,
            };
            await _backend.CreateAsync(Name, config, cancellationToken).ConfigureAwait(false);
        }).ConfigureAwait(false);
    }

    public override Task EnsureCollectionDeletedAsync(CancellationToken cancellationToken = default) =>
        Guard.Run(Name, "EnsureCollectionDeleted", () => _backend.DeleteCollectionAsync(Name, cancellationToken));

    public override async Task<TRecord?> GetAsync(TKey key, RecordRetrievalOptions? options = null, CancellationToken cancellationToken = default)
    {
        var found = await Guard.Run(Name, "Get", () => _backend.GetAsync(Name, [RecordModel.ToPointId(key)], options?.IncludeVectors == true, cancellationToken)).ConfigureAwait(false);
        return found.Count == 0 ? null : (TRecord)_model.ToRecord(found[0], options?.IncludeVectors == true);
    }

    public override async IAsyncEnumerable<TRecord> GetAsync(IEnumerable<TKey> keys, RecordRetrievalOptions? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var ids = keys.Select(k => RecordModel.ToPointId(k)).ToList();
        var found = await Guard.Run(Name, "Get", () => _backend.GetAsync(Name, ids, options?.IncludeVectors == true, cancellationToken)).ConfigureAwait(false);
        foreach (var p in found) yield return (TRecord)_model.ToRecord(p, options?.IncludeVectors == true);
    }

    public override async IAsyncEnumerable<TRecord> GetAsync(Expression<Func<TRecord, bool>> filter, int top, FilteredRecordRetrievalOptions<TRecord>? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(top, 1);
        if (options?.OrderBy is not null) throw new NotSupportedException("order_by: Kiln returns records in id order");
        var skip = options?.Skip ?? 0;
        var json = FilterTranslator.Translate(filter, _model);
        var found = await Guard.Run(Name, "Get", () => _backend.ScrollAsync(Name, json, top + skip, options?.IncludeVectors == true, cancellationToken)).ConfigureAwait(false);
        foreach (var p in found.Skip(skip)) yield return (TRecord)_model.ToRecord(p, options?.IncludeVectors == true);
    }

    public override Task DeleteAsync(TKey key, CancellationToken cancellationToken = default) =>
        Guard.Run(Name, "Delete", () => _backend.DeleteAsync(Name, [RecordModel.ToPointId(key)], cancellationToken));

    public override Task DeleteAsync(IEnumerable<TKey> keys, CancellationToken cancellationToken = default)
    {
        var ids = keys.Select(k => RecordModel.ToPointId(k)).ToList();
        return Guard.Run(Name, "Delete", () => _backend.DeleteAsync(Name, ids, cancellationToken));
    }

    public override Task UpsertAsync(TRecord record, CancellationToken cancellationToken = default) =>
        UpsertAsync([record], cancellationToken);

    public override Task UpsertAsync(IEnumerable<TRecord> records, CancellationToken cancellationToken = default)
    {
        var points = records.Select(r => _model.ToPoint(r)).ToList();
        return points.Count == 0 ? Task.CompletedTask : Guard.Run(Name, "Upsert", () => _backend.UpsertAsync(Name, points, cancellationToken));
    }

    public override async IAsyncEnumerable<VectorSearchResult<TRecord>> SearchAsync<TInput>(TInput searchValue, int top, VectorSearchOptions<TRecord>? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(top, 1);
        var vector = searchValue switch
        {
            ReadOnlyMemory<float> m => m.ToArray(),
            float[] a => a,
            // Text is embedded here, in the caller's process, with the model Kiln ships (all-MiniLM-L6-v2).
            string text => Embeddings.TextEmbedder.Shared.Embed(text, cancellationToken),
            _ => throw new NotSupportedException($"search value: Kiln searches with a ReadOnlyMemory<float> or float[] vector, or a string to embed, not {searchValue.GetType().Name}"),
        };
        var include = options?.IncludeVectors == true;
        var json = FilterTranslator.Translate(options?.Filter, _model);
        var threshold = options?.ScoreThreshold is { } t ? (float)t : (float?)null;
        var hits = await Guard.Run(Name, "Search", () => _backend.SearchAsync(Name, vector, top, options?.Skip ?? 0, json, threshold, include, cancellationToken)).ConfigureAwait(false);
        foreach (var h in hits) yield return new VectorSearchResult<TRecord>((TRecord)_model.ToRecord(h.Point, include), h.Score);
    }

    public override object? GetService(Type serviceType, object? serviceKey = null) =>
        serviceKey is not null ? null
        : serviceType == typeof(VectorStoreCollectionMetadata) ? new VectorStoreCollectionMetadata { VectorStoreSystemName = KilnVectorStore.SystemName, CollectionName = Name }
        : serviceType.IsInstanceOfType(this) ? this
        : null;
}

/// <summary>Kiln's own errors surface as <see cref="VectorStoreException"/> naming the collection and the operation, as VectorData callers expect.</summary>
internal static class Guard
{
    public static async Task<T> Run<T>(string? collection, string operation, Func<Task<T>> action)
    {
        try
        {
            return await action().ConfigureAwait(false);
        }
        catch (Exception e) when (e is KilnException or HttpRequestException)
        {
            throw new VectorStoreException(e.Message, e) { VectorStoreSystemName = KilnVectorStore.SystemName, CollectionName = collection, OperationName = operation };
        }
    }

    public static Task Run(string? collection, string operation, Func<Task> action) =>
        Run<bool>(collection, operation, async () =>
        {
            await action().ConfigureAwait(false);
            return true;
        });
}
