using System.Globalization;
using System.IO.Compression;
using System.Numerics.Tensors;
using System.Text.Json.Nodes;
using Kiln.Vectors.Filtering;
using Kiln.Vectors.Index;
using Kiln.Vectors.Storage;

namespace Kiln.Vectors;

/// <summary>A point to insert or replace.</summary>
public sealed record PointInput(PointId Id, float[] Vector, JsonObject? Payload);

/// <summary>A stored point; its vector is normalised for cosine collections, as Qdrant stores it.</summary>
public sealed record StoredPoint(PointId Id, float[] Vector, JsonObject? Payload, ulong Slot);

/// <summary>One live point as read from the slot table (made on demand; the table keeps no object per point).</summary>
internal readonly record struct PointEntry(PointId Id, JsonObject? Payload, ulong Slot);

/// <summary>A search hit: Qdrant's score (cosine similarity, dot product, or Euclidean distance).</summary>
public sealed record ScoredPoint(StoredPoint Point, float Score);

/// <summary>Which path answered a search (reported in tests and the CLI).</summary>
public enum SearchPath
{
    Graph,
    FilteredGraph,
    ExactScan,
}

/// <summary>Where a filter's selectivity estimate came from: a payload index's counts, or a sample of points.</summary>
public enum SelectivityEstimate
{
    None,
    PayloadIndex,
    Sample,
}

/// <summary>A search request in Kiln's terms.</summary>
public sealed record SearchRequest(float[] Vector, int Limit)
{
    public PointFilter? Filter { get; init; }
    public int Offset { get; init; }
    public float? ScoreThreshold { get; init; }
    public bool Exact { get; init; }

    /// <summary>Whether each hit carries its vector (read back from the graph); without it <see cref="StoredPoint.Vector"/> is empty.</summary>
    public bool WithVector { get; init; } = true;
}

/// <summary>
/// One collection: ids and payloads in memory, an HNSW graph (USearch) that holds the vectors (the only copy of
/// them), a write-ahead log and snapshots on disk. Writers are serialised and logged before they are applied; searches run beside each other and
/// beside the logging of the next write.
/// </summary>
public sealed class VectorCollection : IDisposable
{
    private const string CurrentFile = "CURRENT";
    private const int PointsWithoutVectors = -2;
    private readonly object _writeGate = new();
    private readonly ReaderWriterLockSlim _lock = new(LockRecursionPolicy.NoRecursion);
    // Ids, payloads and the id map per slot (the slot is the point's key in the graph, which holds its vector).
    private SlotTable _table = new();
    private readonly Dictionary<string, PayloadIndex> _payloadIndexes = new(StringComparer.Ordinal);

    // The keys with a full-text (text) payload index: a text match on them compares words, elsewhere substrings.
    private IReadOnlySet<string> _textKeys = new HashSet<string>(StringComparer.Ordinal);
    private readonly string _directory;
    private HnswIndex _index;
    private readonly WriteAheadLog _wal;
    private long _writesSinceSnapshot;
    private bool _disposed;

    // Where a changed configuration is recorded (the store's catalog row) before it takes effect; changes queue here.
    private readonly Func<CollectionConfig, CancellationToken, Task>? _persist;
    private readonly SemaphoreSlim _configGate = new(1, 1);

    private VectorCollection(string name, string directory, CollectionConfig config, Func<CollectionConfig, CancellationToken, Task>? persist)
    {
        Name = name;
        _directory = directory;
        Config = config;
        _persist = persist;
        _index = NewIndex();
        _wal = new WriteAheadLog(Path.Combine(directory, "wal"));
    }

    public string Name { get; }

    public CollectionConfig Config { get; private set; }

    /// <summary>Writes after which a snapshot is taken in the background (0: only when asked).</summary>
    public long SnapshotEvery { get; set; } = 50_000;

    public SearchPath LastSearchPath { get; private set; }

    /// <summary>How the last filtered search estimated its filter's selectivity.</summary>
    public SelectivityEstimate LastEstimate { get; private set; }

    /// <summary>Threads that add a batch's vectors to the graph side by side (USearch's concurrent adds).</summary>
    public int BuildThreads { get; set; } = Environment.ProcessorCount;

    public int Count
    {
        get
        {
            _lock.EnterReadLock();
            try { return _table.Count; }
            finally { _lock.ExitReadLock(); }
        }
    }

    /// <summary>Slots of deleted or replaced points still held by the graph until compaction.</summary>
    public int DeletedSlots
    {
        get
        {
            _lock.EnterReadLock();
            try { return _table.Slots - _table.Count; }
            finally { _lock.ExitReadLock(); }
        }
    }

    public long IndexMemoryBytes => _index.MemoryBytes;

    /// <summary>The SIMD target of the graph's distance function (USearch's usearch_hardware_acceleration), e.g. "genoa"
    /// (AVX-512 BF16) for a bfloat16 graph on a CPU that has it.</summary>
    public string IndexHardwareAcceleration => _index.HardwareAcceleration;

    /// <summary>Bytes of the managed slot table (ids, live flags, payload references, id map; not the payloads themselves).</summary>
    internal long SlotTableBytes
    {
        get
        {
            _lock.EnterReadLock();
            try { return _table.Bytes; }
            finally { _lock.ExitReadLock(); }
        }
    }

    /// <summary>The graph itself, for the benchmark's breakdown of a search.</summary>
    internal HnswIndex Graph => _index;

    /// <summary>Makes an empty collection's directory (its write-ahead log folder); the configuration is the catalog's.</summary>
    internal static void CreateDirectory(string directory)
    {
        Directory.CreateDirectory(directory);
        Directory.CreateDirectory(Path.Combine(directory, "wal"));
    }

    /// <summary>Opens the collection in <paramref name="directory"/> with the catalog's configuration: loads the
    /// snapshot and replays the log. <paramref name="persist"/> records a changed configuration (null: read only).</summary>
    internal static VectorCollection Open(string name, string directory, CollectionConfig config, Func<CollectionConfig, CancellationToken, Task>? persist)
    {
        var c = new VectorCollection(name, directory, config, persist);
        try
        {
            c.Recover();
        }
        catch
        {
            c.Dispose();
            throw;
        }
        return c;
    }

    private HnswIndex NewIndex() => new(Config.Dimension, Config.Distance, Config.Datatype, Config.Hnsw);

    // ---- writes ----

    /// <summary>Checks every point first (nothing is written when one is bad), logs them, then applies them.</summary>
    public void Upsert(IReadOnlyList<PointInput> points, string field = "points")
    {
        var prepared = new PointInput[points.Count];
        for (var i = 0; i < points.Count; i++)
        {
            // The payload is copied through its JSON text: the caller may go on changing its object, and every
            // stored payload then reads alike whether it came over HTTP, from a file or from the log.
            var payload = points[i].Payload is { } o ? JsonNode.Parse(o.ToJsonString())!.AsObject() : null;
            prepared[i] = new PointInput(points[i].Id, PrepareVector(points[i].Vector, $"{field}[{i}].vector"), payload);
        }
        if (prepared.Length == 0) return;
        using var buffer = new MemoryStream();
        using (var w = new BinaryWriter(buffer, System.Text.Encoding.UTF8, leaveOpen: true))
        {
            w.Write((byte)1);
            w.Write(prepared.Length);
            foreach (var p in prepared) PointCodec.WritePoint(w, p.Id, p.Vector, p.Payload);
        }
        lock (_writeGate)
        {
            ThrowIfDisposed();
            _wal.Append(buffer.GetBuffer().AsSpan(0, (int)buffer.Length), Config.WalFsync);
            _lock.EnterWriteLock();
            try
            {
                ApplyUpserts(prepared);
            }
            finally { _lock.ExitWriteLock(); }
            AfterWrite(prepared.Length);
        }
    }

    /// <summary>Deletes the points with these ids (unknown ids are ignored, as in Qdrant); returns how many existed.</summary>
    public int Delete(IReadOnlyCollection<PointId> ids)
    {
        if (ids.Count == 0) return 0;
        lock (_writeGate)
        {
            ThrowIfDisposed();
            return DeleteLocked(ids);
        }
    }

    /// <summary>Deletes every point matching the filter; returns how many.</summary>
    public int Delete(PointFilter filter)
    {
        lock (_writeGate)
        {
            ThrowIfDisposed();
            List<PointId> ids;
            _lock.EnterReadLock();
            try
            {
                filter = filter.For(_textKeys);
                ids = [.. LiveEntries().Where(p => filter.Matches(p.Id, p.Payload)).Select(p => p.Id)];
            }
            finally { _lock.ExitReadLock(); }
            return ids.Count == 0 ? 0 : DeleteLocked(ids);
        }
    }

    private int DeleteLocked(IReadOnlyCollection<PointId> ids)
    {
        using var buffer = new MemoryStream();
        using (var w = new BinaryWriter(buffer, System.Text.Encoding.UTF8, leaveOpen: true))
        {
            w.Write((byte)2);
            w.Write(ids.Count);
            foreach (var id in ids) PointCodec.WriteId(w, id);
        }
        _wal.Append(buffer.GetBuffer().AsSpan(0, (int)buffer.Length), Config.WalFsync);
        var deleted = 0;
        _lock.EnterWriteLock();
        try
        {
            foreach (var id in ids) if (ApplyDelete(id)) deleted++;
        }
        finally { _lock.ExitWriteLock(); }
        AfterWrite(ids.Count);
        return deleted;
    }

    /// <summary>Declares a payload index: recorded in the catalog first, then built from the live points.</summary>
    public Task CreatePayloadIndexAsync(string field, PayloadSchemaType type, CancellationToken ct = default)
    {
        if (string.IsNullOrWhiteSpace(field)) throw new VectorInputException("field_name: a payload key is required");
        return ChangeConfigAsync(c => c with { PayloadIndexes = new Dictionary<string, PayloadSchemaType>(c.PayloadIndexes, StringComparer.Ordinal) { [field] = type } },
            () => RebuildPayloadIndexes(), ct);
    }

    /// <summary>Drops a payload index: removed from the catalog first, then from memory.</summary>
    public Task DeletePayloadIndexAsync(string field, CancellationToken ct = default) =>
        ChangeConfigAsync(c =>
        {
            if (!c.PayloadIndexes.ContainsKey(field)) throw new VectorNotFoundException($"field_name: no payload index on '{field}'");
            var indexes = new Dictionary<string, PayloadSchemaType>(c.PayloadIndexes, StringComparer.Ordinal);
            indexes.Remove(field);
            return c with { PayloadIndexes = indexes };
        }, () =>
        {
            _payloadIndexes.Remove(field);
            _textKeys = TextKeys();
        }, ct);

    /// <summary>One configuration change at a time: the new configuration is recorded (a failure changes nothing),
    /// then takes effect under the write lock.</summary>
    private async Task ChangeConfigAsync(Func<CollectionConfig, CollectionConfig> change, Action apply, CancellationToken ct)
    {
        await _configGate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            ThrowIfDisposed();
            var next = change(Config);
            if (_persist is not null) await _persist(next, ct).ConfigureAwait(false);
            lock (_writeGate)
            {
                ThrowIfDisposed();
                Config = next;
                _lock.EnterWriteLock();
                try { apply(); }
                finally { _lock.ExitWriteLock(); }
            }
        }
        finally
        {
            _configGate.Release();
        }
    }

    /// <summary>Builds the payload indexes' lookup tables from the live points.
    /// Call under the write lock (or before the collection is shared).</summary>
    private void RebuildPayloadIndexes()
    {
        _payloadIndexes.Clear();
        _textKeys = TextKeys();
        foreach (var (field, type) in Config.PayloadIndexes)
        {
            var ix = new PayloadIndex(field, type);
            foreach (var slot in _table.LiveSlots()) ix.Add(slot, _table.PayloadAt(slot));
            _payloadIndexes[field] = ix;
        }
    }

    private HashSet<string> TextKeys() =>
        Config.PayloadIndexes.Where(kv => kv.Value == PayloadSchemaType.Text).Select(kv => PointFilter.NormalKey(kv.Key)).ToHashSet(StringComparer.Ordinal);

    private void AfterWrite(int writes)
    {
        _writesSinceSnapshot += writes;
        if (SnapshotEvery > 0 && _writesSinceSnapshot >= SnapshotEvery)
        {
            _writesSinceSnapshot = 0;
            _ = Task.Run(() =>
            {
                try { Snapshot(); }
                catch (ObjectDisposedException) { }
            });
        }
    }

    /// <summary>Replaced points leave the graph first; the new slots are numbered in order, then their vectors go into
    /// the graph in one reserved batch (on <see cref="BuildThreads"/> threads when the batch is large).</summary>
    private void ApplyUpserts(IReadOnlyList<PointInput> points)
    {
        var adds = new List<(ulong Slot, float[] Vector)>(points.Count);
        foreach (var p in points)
        {
            if (_table.TryGetSlot(p.Id, out var old))
            {
                if (!IsPending(adds, (ulong)old)) _index.Remove((ulong)old);
                foreach (var ix in _payloadIndexes.Values) ix.Remove(old, _table.PayloadAt(old));
                _table.Kill(old);
            }
            var slot = _table.Add(p.Id, p.Payload);
            foreach (var ix in _payloadIndexes.Values) ix.Add(slot, p.Payload);
            adds.Add(((ulong)slot, p.Vector));
        }
        // A point upserted twice in one batch keeps its last version only; the earlier one never reaches the graph.
        adds.RemoveAll(a => !_table.IsLive((int)a.Slot));
        _index.AddMany(adds, BuildThreads);
    }

    /// <summary>Whether the slot was numbered earlier in the same batch (and so is not in the graph yet).</summary>
    private static bool IsPending(List<(ulong Slot, float[] Vector)> adds, ulong slot) =>
        adds.Count > 0 && slot >= adds[0].Slot;

    private bool ApplyDelete(PointId id)
    {
        if (!_table.TryGetSlot(id, out var old)) return false;
        _index.Remove((ulong)old);
        foreach (var ix in _payloadIndexes.Values) ix.Remove(old, _table.PayloadAt(old));
        _table.Kill(old);
        return true;
    }

    internal float[] PrepareVector(float[]? vector, string field)
    {
        if (vector is null) throw new VectorInputException($"{field}: a vector is required");
        if (vector.Length != Config.Dimension)
        {
            throw new VectorInputException($"{field}: expected dim: {Config.Dimension}, got {vector.Length}");
        }
        for (var i = 0; i < vector.Length; i++)
        {
            if (!float.IsFinite(vector[i])) throw new VectorInputException($"{field}[{i}]: components must be finite numbers, got {vector[i].ToString(CultureInfo.InvariantCulture)}");
        }
        if (Config.Distance != Distance.Cosine) return CheckRange(vector, field);
        var norm = TensorPrimitives.Norm(vector);
        var copy = new float[vector.Length];
        if (norm > 0) TensorPrimitives.Divide(vector, norm, copy);
        return copy;
    }

    /// <summary>A float16 or bfloat16 graph would store a component beyond its type's largest finite value as infinity
    /// (and then answer NaN distances), so such components are refused; cosine vectors are normalised first and always fit.</summary>
    private float[] CheckRange(float[] vector, string field)
    {
        var (limit, name) = Config.Datatype switch
        {
            VectorDatatype.Float16 => ((float)Half.MaxValue, "float16"),
            // bfloat16's largest finite value, 0x7F7F << 16 (float32's exponent, 8 significant bits).
            VectorDatatype.BFloat16 => (BitConverter.UInt32BitsToSingle(0x7F7F_0000), "bfloat16"),
            _ => (float.MaxValue, "float32"),
        };
        for (var i = 0; i < vector.Length; i++)
        {
            if (Math.Abs(vector[i]) > limit)
            {
                throw new VectorInputException(string.Create(CultureInfo.InvariantCulture,
                    $"{field}[{i}]: a {name} collection holds components within ±{limit:G9}, got {vector[i]:R}"));
            }
        }
        return vector;
    }

    /// <summary>Sets the graph's search candidate list size (ef) for the searches that follow: higher is slower and more exact.</summary>
    public void SetSearchExpansion(int ef)
    {
        if (ef < 1) throw new VectorInputException($"ef: must be at least 1, got {ef}");
        _lock.EnterWriteLock();
        try { _index.SetExpansionSearch(ef); }
        finally { _lock.ExitWriteLock(); }
    }

    // ---- reads ----

    public IReadOnlyList<StoredPoint> Get(IEnumerable<PointId> ids)
    {
        _lock.EnterReadLock();
        try
        {
            var found = new List<StoredPoint>();
            foreach (var id in ids) if (_table.TryGetSlot(id, out var slot)) found.Add(Materialize(EntryAt(slot)));
            return found;
        }
        finally { _lock.ExitReadLock(); }
    }

    /// <summary>Every live point in slot order, read under the lock in pages (for export and copying).</summary>
    public IEnumerable<StoredPoint> All(int pageSize = 1024)
    {
        var from = 0;
        while (true)
        {
            var page = new List<StoredPoint>(pageSize);
            _lock.EnterReadLock();
            try
            {
                for (; from < _table.Slots && page.Count < pageSize; from++)
                {
                    if (_table.IsLive(from)) page.Add(Materialize(EntryAt(from)));
                }
            }
            finally { _lock.ExitReadLock(); }
            foreach (var p in page) yield return p;
            if (page.Count < pageSize) yield break;
        }
    }

    /// <summary>The live point in a slot. Call under the read or write lock.</summary>
    private PointEntry EntryAt(int slot) => new(_table.IdAt(slot), _table.PayloadAt(slot), (ulong)slot);

    /// <summary>The point in a slot, or null when the slot is out of range or holds no live point.</summary>
    private PointEntry? LiveEntry(ulong slot) => slot < (ulong)_table.Slots && _table.IsLive((int)slot) ? EntryAt((int)slot) : null;

    /// <summary>Every live point in slot order. Call under the read or write lock.</summary>
    private IEnumerable<PointEntry> LiveEntries() => _table.LiveSlots().Select(EntryAt);

    /// <summary>The point with its vector read back from the graph. Call under the read or write lock.</summary>
    private StoredPoint Materialize(PointEntry p)
    {
        var vector = new float[Config.Dimension];
        if (!_index.TryGet(p.Slot, vector)) throw new InvalidOperationException($"vector of point {p.Id} is missing from the graph (slot {p.Slot})");
        return new StoredPoint(p.Id, vector, p.Payload, p.Slot);
    }

    public int CountMatching(PointFilter? filter)
    {
        _lock.EnterReadLock();
        try
        {
            if (filter is null) return _table.Count;
            filter = filter.For(_textKeys);
            var n = 0;
            if (IndexedCandidates(filter) is { } candidates)
            {
                foreach (var slot in candidates) if (LiveEntry((ulong)slot) is { } p && filter.Matches(p.Id, p.Payload)) n++;
                return n;
            }
            foreach (var p in LiveEntries()) if (filter.Matches(p.Id, p.Payload)) n++;
            return n;
        }
        finally { _lock.ExitReadLock(); }
    }

    /// <summary>Points in id order from <paramref name="offset"/> (inclusive), and the id to continue from.</summary>
    public (IReadOnlyList<StoredPoint> Points, PointId? Next) Scroll(PointFilter? filter, PointId? offset, int limit)
    {
        if (limit < 1) throw new VectorInputException("limit: must be at least 1");
        _lock.EnterReadLock();
        try
        {
            filter = filter?.For(_textKeys);
            var matching = LiveEntries()
                .Where(p => (offset is null || p.Id.CompareTo(offset.Value) >= 0) && (filter is null || filter.Matches(p.Id, p.Payload)))
                .OrderBy(p => p.Id)
                .Take(limit + 1)
                .ToList();
            PointId? next = matching.Count > limit ? matching[limit].Id : null;
            if (matching.Count > limit) matching.RemoveAt(limit);
            return (matching.ConvertAll(Materialize), next);
        }
        finally { _lock.ExitReadLock(); }
    }

    public IReadOnlyList<ScoredPoint> Search(SearchRequest request, string field = "vector")
    {
        var query = CheckSearch(request, field, "");
        _lock.EnterReadLock();
        try { return SearchLocked(request, query); }
        finally { _lock.ExitReadLock(); }
    }

    /// <summary>Answers many searches in one call, each as <see cref="Search"/> would, under one hold of the read lock.
    /// Every request is checked first: a bad one refuses the whole batch, naming it (<c>searches[3].vector: ...</c>).</summary>
    public IReadOnlyList<IReadOnlyList<ScoredPoint>> SearchBatch(IReadOnlyList<SearchRequest> requests, string field = "searches")
    {
        var queries = new float[requests.Count][];
        for (var i = 0; i < requests.Count; i++)
        {
            var prefix = $"{field}[{i}].";
            queries[i] = CheckSearch(requests[i] ?? throw new VectorInputException($"{field}[{i}]: a search is required"), prefix + "vector", prefix);
        }
        var results = new IReadOnlyList<ScoredPoint>[requests.Count];
        _lock.EnterReadLock();
        try
        {
            for (var i = 0; i < requests.Count; i++) results[i] = SearchLocked(requests[i], queries[i]);
        }
        finally { _lock.ExitReadLock(); }
        return results;
    }

    private float[] CheckSearch(SearchRequest request, string vectorField, string prefix)
    {
        if (request.Limit < 1) throw new VectorInputException($"{prefix}limit: must be at least 1");
        if (request.Offset < 0) throw new VectorInputException($"{prefix}offset: must not be negative");
        return PrepareVector(request.Vector, vectorField);
    }

    /// <summary>One search under the read lock, the query already checked (and normalised for cosine).</summary>
    private List<ScoredPoint> SearchLocked(SearchRequest request, float[] query)
    {
        var need = request.Limit + request.Offset;
        var live = _table.Count;
        if (live == 0) return [];
        List<Hit> hits;
        var filter = request.Filter?.For(_textKeys);
        if (request.Exact || live <= Config.FullScanThreshold || (filter is not null && PreferExact(filter, need, live)))
        {
            hits = ExactScan(query, need, filter);
            LastSearchPath = SearchPath.ExactScan;
        }
        else
        {
            hits = GraphSearch(query, need, filter);
            LastSearchPath = filter is null ? SearchPath.Graph : SearchPath.FilteredGraph;
            if (hits.Count < Math.Min(need, live))
            {
                // The graph found fewer than asked for: either fewer points match, or the walk stopped early.
                // The exact scan tells which, so a filtered search never returns fewer results than match.
                hits = ExactScan(query, need, filter);
                LastSearchPath = SearchPath.ExactScan;
            }
        }
        var result = new List<ScoredPoint>(Math.Max(0, hits.Count - request.Offset));
        for (var i = request.Offset; i < hits.Count; i++)
        {
            var h = hits[i];
            if (request.ScoreThreshold is { } t && (Config.Distance == Distance.Euclid ? h.Score > t : h.Score < t)) continue;
            var point = request.WithVector ? Materialize(h.Entry) : new StoredPoint(h.Entry.Id, [], h.Entry.Payload, h.Entry.Slot);
            result.Add(new ScoredPoint(point, h.Score));
        }
        return result;
    }

    /// <summary>Estimates the filter's selectivity on a sample: too few matches for the graph walk to find them
    /// quickly, and the exact scan over the matching points is both cheaper and exact.</summary>
    private bool PreferExact(PointFilter filter, int need, int live)
    {
        if (IndexedCount(filter) is { } bound)
        {
            // A payload index counts the points holding the matched values: an upper bound on the matches.
            LastEstimate = SelectivityEstimate.PayloadIndex;
            return bound < Math.Max(Config.FullScanThreshold, 10.0 * need) || bound < live * 0.02;
        }
        LastEstimate = SelectivityEstimate.Sample;
        const int SampleSize = 400;
        var rng = new Random(unchecked((int)live * 31 + need));
        int sampled = 0, matched = 0;
        for (var tries = 0; sampled < SampleSize && tries < SampleSize * 4; tries++)
        {
            if (LiveEntry((ulong)rng.Next(_table.Slots)) is not { } p) continue;
            sampled++;
            if (filter.Matches(p.Id, p.Payload)) matched++;
        }
        if (sampled == 0) return true;
        var estimated = (double)matched / sampled * live;
        return estimated < Math.Max(Config.FullScanThreshold, 10.0 * need) || matched < SampleSize * 0.02;
    }

    /// <summary>The smallest count a payload index gives for one of the filter's index terms, or null without one.</summary>
    private int? IndexedCount(PointFilter filter)
    {
        int? best = null;
        foreach (var term in filter.Terms)
        {
            if (TermCount(term) is { } n && (best is null || n < best)) best = n;
        }
        return best;
    }

    /// <summary>The slots of the most selective indexed term (a superset of the matching points), in slot order, or null.</summary>
    private List<int>? IndexedCandidates(PointFilter filter)
    {
        IndexTerm? best = null;
        var bestCount = 0;
        foreach (var term in filter.Terms)
        {
            if (TermCount(term) is { } n && (best is null || n < bestCount)) (best, bestCount) = (term, n);
        }
        if (best is null) return null;
        var slots = new HashSet<int>(TermSlots(best)!);
        var list = slots.ToList();
        list.Sort();
        return list;
    }

    /// <summary>How many slots the payload indexes give for a term (one of a should's terms: their sum), or null when
    /// a key has no index that can answer it.</summary>
    private int? TermCount(IndexTerm term)
    {
        if (term is AnyTerm any)
        {
            var total = 0;
            foreach (var t in any.Options)
            {
                if (TermCount(t) is not { } n) return null;
                total += n;
            }
            return total;
        }
        return _payloadIndexes.TryGetValue(KeyOf(term), out var ix) ? ix.Count(term) : null;
    }

    private IEnumerable<int>? TermSlots(IndexTerm term) => term is AnyTerm any
        ? any.Options.SelectMany(t => TermSlots(t)!)
        : _payloadIndexes[KeyOf(term)].Slots(term);

    private static string KeyOf(IndexTerm term) => term switch
    {
        MatchTerm m => m.Key,
        RangeTerm r => r.Key,
        TextTerm t => t.Key,
        _ => throw new ArgumentException("a should term has no single key", nameof(term)),
    };

    /// <summary>A candidate before its vector is read back for the answer.</summary>
    private readonly record struct Hit(PointEntry Entry, float Score);

    /// <summary>Results asked of the graph up to which its answer buffers live on the stack.</summary>
    private const int StackResults = 128;

    private List<Hit> GraphSearch(float[] query, int need, PointFilter? filter)
    {
        // float32 graphs: USearch's distance is the score in another form (computed on the same float32 components as the
        // exact scan's), so no vector is read back. float16 and bfloat16 graphs compare a rounded copy of the query with
        // rounded vectors, so their hits are scored again from the float32 query, as the exact scan scores them; and since
        // the rounding can put a true neighbour just behind the need-th place, they take up to twice as many of the walk's
        // candidates (never more than ef, so the walk itself is unchanged), score them all and keep the best.
        var fromDistance = Config.Datatype == VectorDatatype.Float32;
        var take = fromDistance ? need : Math.Max(need, Math.Min(2 * need, _index.ExpansionSearch));
        Span<ulong> slots = take <= StackResults ? stackalloc ulong[take] : new ulong[take];
        Span<float> distances = take <= StackResults ? stackalloc float[take] : new float[take];
        Func<ulong, bool>? accept = null;
        if (filter is not null)
        {
            // With an indexed term, a slot outside its candidates is refused before the filter is evaluated.
            bool[]? candidate = null;
            if (IndexedCandidates(filter) is { } candidates)
            {
                candidate = new bool[_table.Slots];
                foreach (var slot in candidates) candidate[slot] = true;
            }
            accept = slot =>
            {
                if (candidate is not null && (slot >= (ulong)candidate.Length || !candidate[slot])) return false;
                return LiveEntry(slot) is { } p && filter.Matches(p.Id, p.Payload);
            };
        }
        var found = _index.Search(query, take, slots, distances, accept);
        var hits = new List<Hit>(found);
        Span<float> vector = fromDistance ? default : Config.Dimension <= 1024 ? stackalloc float[Config.Dimension] : new float[Config.Dimension];
        for (var i = 0; i < found; i++)
        {
            if (LiveEntry(slots[i]) is not { } p) continue;
            if (fromDistance)
            {
                hits.Add(new Hit(p, ScoreOf(distances[i])));
                continue;
            }
            if (!_index.TryGet(p.Slot, vector)) continue;
            hits.Add(new Hit(p, Score(query, vector)));
        }
        Sort(hits);
        if (hits.Count > need) hits.RemoveRange(need, hits.Count - need);
        return hits;
    }

    /// <summary>Qdrant's score from USearch's distance: l2sq for Euclid, 1 - dot product for Dot, 1 - cosine for Cosine.</summary>
    private float ScoreOf(float distance) => Config.Distance == Distance.Euclid ? MathF.Sqrt(Math.Max(0, distance)) : 1 - distance;

    /// <summary>Scores every live (matching) point from the vectors in the graph, keeping the best <paramref name="need"/>.</summary>
    private List<Hit> ExactScan(float[] query, int need, PointFilter? filter)
    {
        var hits = new List<Hit>();
        var vector = new float[Config.Dimension];
        IEnumerable<PointEntry?> scan = filter is not null && IndexedCandidates(filter) is { } candidates
            ? candidates.Select(slot => LiveEntry((ulong)slot))
            : LiveEntries().Select(p => (PointEntry?)p);
        foreach (var e in scan)
        {
            if (e is not { } p || (filter is not null && !filter.Matches(p.Id, p.Payload))) continue;
            if (!_index.TryGet(p.Slot, vector)) continue;
            hits.Add(new Hit(p, Score(query, vector)));
        }
        Sort(hits);
        if (hits.Count > need) hits.RemoveRange(need, hits.Count - need);
        return hits;
    }

    private void Sort(List<Hit> hits)
    {
        if (Config.Distance == Distance.Euclid) hits.Sort((a, b) => a.Score.CompareTo(b.Score) is var c && c != 0 ? c : a.Entry.Id.CompareTo(b.Entry.Id));
        else hits.Sort((a, b) => b.Score.CompareTo(a.Score) is var c && c != 0 ? c : a.Entry.Id.CompareTo(b.Entry.Id));
    }

    /// <summary>Qdrant's score: the dot product (cosine on normalised vectors) or the Euclidean distance.</summary>
    public float Score(ReadOnlySpan<float> a, ReadOnlySpan<float> b) =>
        Config.Distance == Distance.Euclid ? TensorPrimitives.Distance(a, b) : TensorPrimitives.Dot(a, b);

    // ---- durability ----

    /// <summary>Writes the graph and the points to a new snapshot directory and drops the log it covers.
    /// Writers wait meanwhile; searches go on.</summary>
    public void Snapshot()
    {
        lock (_writeGate)
        {
            ThrowIfDisposed();
            var segment = _wal.Rotate();
            var name = "snapshot-" + segment.ToString("D10", CultureInfo.InvariantCulture);
            var dir = Path.Combine(_directory, name);
            var tmp = dir + ".tmp";
            if (Directory.Exists(tmp)) Directory.Delete(tmp, true);
            Directory.CreateDirectory(tmp);
            _lock.EnterReadLock();
            try
            {
                _index.Save(Path.Combine(tmp, "index.usearch"));
                using var f = new FileStream(Path.Combine(tmp, "points.bin"), FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20);
                using (var w = new BinaryWriter(f, System.Text.Encoding.UTF8, leaveOpen: true))
                {
                    // The vectors are in index.usearch; points.bin holds ids and payloads per slot.
                    w.Write(PointsWithoutVectors);
                    w.Write(_table.Slots);
                    for (var slot = 0; slot < _table.Slots; slot++)
                    {
                        var live = _table.IsLive(slot);
                        w.Write(live);
                        if (live) PointCodec.WriteEntry(w, _table.IdAt(slot), _table.PayloadAt(slot));
                    }
                }
                f.Flush(true);
            }
            finally { _lock.ExitReadLock(); }
            FsyncFile(Path.Combine(tmp, "index.usearch"));
            if (Directory.Exists(dir)) Directory.Delete(dir, true);
            Directory.Move(tmp, dir);
            var current = Path.Combine(_directory, CurrentFile);
            File.WriteAllText(current + ".tmp", name);
            FsyncFile(current + ".tmp");
            File.Move(current + ".tmp", current, overwrite: true);
            _wal.DropBefore(segment);
            foreach (var old in Directory.EnumerateDirectories(_directory, "snapshot-*"))
            {
                if (Path.GetFileName(old) != name) Directory.Delete(old, true);
            }
            _writesSinceSnapshot = 0;
        }
    }

    /// <summary>Writes the whole collection as one zip file: its configuration (collection.json) and a snapshot taken now (the graph with
    /// the vectors, and the ids and payloads). <see cref="VectorStore.RestoreAsync"/> makes a collection from it.</summary>
    public void Export(Stream output)
    {
        lock (_writeGate)
        {
            // Monitor is re-entrant: the snapshot is taken under the same hold, so no later snapshot replaces it meanwhile.
            Snapshot();
            var snapshot = Path.Combine(_directory, File.ReadAllText(Path.Combine(_directory, CurrentFile)).Trim());
            using var zip = new ZipArchive(output, ZipArchiveMode.Create, leaveOpen: true);
            // The export's own copy of the configuration (the store keeps it in the catalog).
            using (var entry = new StreamWriter(zip.CreateEntry(ExportConfig, CompressionLevel.Fastest).Open())) entry.Write(Config.ToJson().ToJsonString());
            zip.CreateEntryFromFile(Path.Combine(snapshot, "index.usearch"), ExportIndex, CompressionLevel.Fastest);
            zip.CreateEntryFromFile(Path.Combine(snapshot, "points.bin"), ExportPoints, CompressionLevel.Fastest);
        }
    }

    internal const string ExportConfig = "collection.json";
    internal const string ExportIndex = "index.usearch";
    internal const string ExportPoints = "points.bin";

    /// <summary>Lays an exported file out as a collection directory whose snapshot is the exported one; returns its configuration.</summary>
    internal static CollectionConfig Unpack(Stream input, string directory, string field)
    {
        ZipArchive zip;
        try { zip = new ZipArchive(input, ZipArchiveMode.Read, leaveOpen: true); }
        catch (InvalidDataException e) { throw new VectorInputException($"{field}: not a Kiln collection export (a zip file): {e.Message}"); }
        using (zip)
        {
            ZipArchiveEntry Entry(string name) =>
                zip.GetEntry(name) ?? throw new VectorInputException($"{field}: not a Kiln collection export: {name} is missing");
            var configEntry = Entry(ExportConfig);
            CollectionConfig config;
            try
            {
                using var text = new StreamReader(configEntry.Open());
                config = CollectionConfig.FromJson(JsonNode.Parse(text.ReadToEnd())!.AsObject());
            }
            catch (Exception e) when (e is System.Text.Json.JsonException or NullReferenceException or InvalidOperationException or FormatException or KeyNotFoundException)
            {
                throw new VectorInputException($"{field}: {ExportConfig} is not a collection configuration: {e.Message}");
            }
            var snapshot = Path.Combine(directory, "snapshot-" + 1.ToString("D10", CultureInfo.InvariantCulture));
            Directory.CreateDirectory(snapshot);
            Directory.CreateDirectory(Path.Combine(directory, "wal"));
            Entry(ExportIndex).ExtractToFile(Path.Combine(snapshot, "index.usearch"));
            Entry(ExportPoints).ExtractToFile(Path.Combine(snapshot, "points.bin"));
            FsyncFile(Path.Combine(snapshot, "index.usearch"));
            FsyncFile(Path.Combine(snapshot, "points.bin"));
            File.WriteAllText(Path.Combine(directory, CurrentFile), Path.GetFileName(snapshot));
            FsyncFile(Path.Combine(directory, CurrentFile));
            return config;
        }
    }

    /// <summary>Rebuilds the graph from the live points only, reclaiming the slots of deleted ones, then snapshots.</summary>
    public void Compact()
    {
        lock (_writeGate)
        {
            ThrowIfDisposed();
            var fresh = NewIndex();
            List<(ulong Slot, float[] Vector)> adds;
            var renumbered = new SlotTable();
            _lock.EnterReadLock();
            try
            {
                adds = new List<(ulong, float[])>(_table.Count);
                renumbered.Reserve(_table.Count);
                foreach (var slot in _table.LiveSlots())
                {
                    var vector = new float[Config.Dimension];
                    _index.TryGet((ulong)slot, vector);
                    adds.Add(((ulong)renumbered.Add(_table.IdAt(slot), _table.PayloadAt(slot)), vector));
                }
            }
            finally { _lock.ExitReadLock(); }
            fresh.AddMany(adds, BuildThreads);
            _lock.EnterWriteLock();
            try
            {
                var old = _index;
                _index = fresh;
                _table = renumbered;
                RebuildPayloadIndexes();
                old.Dispose();
            }
            finally { _lock.ExitWriteLock(); }
        }
        Snapshot();
    }

    private void Recover()
    {
        long fromSegment = 1;
        var current = Path.Combine(_directory, CurrentFile);
        if (File.Exists(current))
        {
            var name = File.ReadAllText(current).Trim();
            fromSegment = long.Parse(name["snapshot-".Length..], CultureInfo.InvariantCulture);
            var dir = Path.Combine(_directory, name);
            _index.Load(Path.Combine(dir, "index.usearch"));
            using var f = new FileStream(Path.Combine(dir, "points.bin"), FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20);
            using var r = new BinaryReader(f);
            var n = r.ReadInt32();
            // Snapshots before the vectors moved into the graph alone start with the count and keep a vector per point.
            var withVectors = n != PointsWithoutVectors;
            if (!withVectors) n = r.ReadInt32();
            _table.Reserve(n);
            for (var i = 0; i < n; i++)
            {
                if (!r.ReadBoolean())
                {
                    _table.AddDead();
                    continue;
                }
                var (id, payload) = withVectors ? Drop(PointCodec.ReadPoint(r)) : PointCodec.ReadEntry(r);
                _table.Add(id, payload);
            }
        }
        foreach (var record in WriteAheadLog.Read(Path.Combine(_directory, "wal"), fromSegment))
        {
            using var r = new BinaryReader(new MemoryStream(record));
            var op = r.ReadByte();
            var n = r.ReadInt32();
            if (op == 1)
            {
                var points = new PointInput[n];
                for (var i = 0; i < n; i++)
                {
                    var (id, vector, payload) = PointCodec.ReadPoint(r);
                    points[i] = new PointInput(id, vector, payload);
                }
                ApplyUpserts(points);
            }
            else
            {
                for (var i = 0; i < n; i++) ApplyDelete(PointCodec.ReadId(r));
            }
        }

        _table.TrimExcess();
        RebuildPayloadIndexes();

        static (PointId, JsonObject?) Drop((PointId Id, float[] Vector, JsonObject? Payload) p) => (p.Id, p.Payload);
    }

    private static void FsyncFile(string path)
    {
        using var f = new FileStream(path, FileMode.Open, FileAccess.ReadWrite);
        f.Flush(true);
    }

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_disposed, this);

    public void Dispose()
    {
        lock (_writeGate)
        {
            if (_disposed) return;
            _disposed = true;
            _wal.Dispose();
            _lock.EnterWriteLock();
            try { _index.Dispose(); }
            finally { _lock.ExitWriteLock(); }
        }
    }
}
