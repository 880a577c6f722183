using Kiln.Core.Packaging;
using Kiln.Scoring;

namespace Kiln.Workers.Batch;

/// <summary>A model resolved and opened once by a worker: where its package is, and its scorer.</summary>
public sealed record LoadedScorer(ResolvedModel Resolved, IScorer Scorer);

/// <summary>
/// The scorers a worker process has opened, kept for the next partitions of the same job (or of a later job with the
/// same pinned model): loading a package and building its pipeline costs far more than scoring a small partition.
/// Keyed by what the coordinator pinned (models:/NAME/VERSION and the SHA-256 of the package's kiln.json), so an
/// alias that moves, or a package directory replaced by another, is a new key. Bounded: the least recently used
/// scorer beyond <see cref="Capacity"/> is closed once no job uses it. Jobs running at once share one scorer (scorers
/// are safe to call from many threads), and a key being loaded is loaded once, the other jobs waiting for it.
/// </summary>
public sealed class ScorerCache(int capacity = 4)
{
    private readonly Lock _lock = new();

    /// <summary>Most recently used first.</summary>
    private readonly LinkedList<Entry> _order = new();
    private readonly Dictionary<string, LinkedListNode<Entry>> _entries = new(StringComparer.Ordinal);
    private long _loads;
    private long _reuses;

    /// <summary>The cache of this process (a worker's partition jobs share it).</summary>
    public static ScorerCache Shared { get; } = new();

    /// <summary>Scorers kept open at most (those in use by a job are closed when it ends).</summary>
    public int Capacity { get; } = capacity >= 1 ? capacity : throw new ArgumentOutOfRangeException(nameof(capacity), "at least 1");

    /// <summary>Packages loaded and scorers opened since the process started.</summary>
    public long Loads => Interlocked.Read(ref _loads);

    /// <summary>Acquisitions served by a scorer already open (or being opened by another job).</summary>
    public long Reuses => Interlocked.Read(ref _reuses);

    /// <summary>Keys held now, most recently used first.</summary>
    public IReadOnlyList<string> Keys
    {
        get
        {
            lock (_lock) return [.. _order.Select(e => e.Key)];
        }
    }

    /// <summary>
    /// The scorer for <paramref name="key"/>, opened by <paramref name="load"/> if no job has opened it. Dispose the lease
    /// when the job is done with it. A load that fails is not kept: the next acquisition tries again.
    /// </summary>
    public async Task<ScorerLease> AcquireAsync(string key, Func<CancellationToken, Task<LoadedScorer>> load, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(load);
        Entry entry;
        var loading = false;
        lock (_lock)
        {
            if (_entries.TryGetValue(key, out var node))
            {
                entry = node.Value;
                _order.Remove(node);
                _order.AddFirst(node);
                Interlocked.Increment(ref _reuses);
            }
            else
            {
                entry = new Entry(key);
                _entries[key] = _order.AddFirst(entry);
                loading = true;
                Interlocked.Increment(ref _loads);
            }
            entry.Leases++;
        }
        if (loading)
        {
            // The load is shared by every job that asks meanwhile, so one job's cancellation must not fail the others'.
            entry.Start(load);
        }
        var lease = new ScorerLease(this, entry);
        try
        {
            lease.Loaded = await entry.Task.WaitAsync(ct).ConfigureAwait(false);
            lease.Fresh = loading;
            return lease;
        }
        catch
        {
            lock (_lock)
            {
                // A failed load leaves no entry behind (unless another load of the key has replaced it already).
                if (entry.Task.IsFaulted || entry.Task.IsCanceled) Forget(entry);
            }
            lease.Dispose();
            throw;
        }
        finally
        {
            lock (_lock) EvictBeyondCapacity();
        }
    }

    /// <summary>Closes every scorer not in use and forgets every key (the others close when their jobs end).</summary>
    public void Clear()
    {
        lock (_lock)
        {
            foreach (var e in _order.ToList()) Forget(e);
        }
    }

    internal void Release(Entry entry)
    {
        lock (_lock)
        {
            entry.Leases--;
            if (entry.Leases == 0 && entry.Evicted) entry.Close();
        }
    }

    private void EvictBeyondCapacity()
    {
        var node = _order.Last;
        while (_entries.Count > Capacity && node is not null)
        {
            var previous = node.Previous;
            Forget(node.Value);
            node = previous;
        }
    }

    /// <summary>Removes the entry; its scorer is closed now if unused, else by the last lease.</summary>
    private void Forget(Entry entry)
    {
        if (entry.Evicted) return;
        entry.Evicted = true;
        if (_entries.TryGetValue(entry.Key, out var node) && ReferenceEquals(node.Value, entry))
        {
            _entries.Remove(entry.Key);
            _order.Remove(node);
        }
        if (entry.Leases == 0) entry.Close();
    }

    internal sealed class Entry(string key)
    {
        public string Key { get; } = key;

        private readonly TaskCompletionSource<LoadedScorer> _loaded = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task<LoadedScorer> Task => _loaded.Task;

        /// <summary>Jobs holding the scorer (guarded by the cache's lock).</summary>
        public int Leases { get; set; }

        /// <summary>No longer in the cache: the last lease closes the scorer.</summary>
        public bool Evicted { get; set; }

        /// <summary>Runs the load; every job that asked for the key meanwhile waits for it.</summary>
        public void Start(Func<CancellationToken, Task<LoadedScorer>> load) => _ = System.Threading.Tasks.Task.Run(async () =>
        {
            try
            {
                _loaded.TrySetResult(await load(CancellationToken.None).ConfigureAwait(false));
            }
            catch (Exception e)
            {
                _loaded.TrySetException(e);
            }
        });

        public void Close()
        {
            // Evicted while still loading (its only job gave up waiting): closed once the load ends.
            _ = Task.ContinueWith(t =>
            {
                if (t.IsCompletedSuccessfully) t.Result.Scorer.Dispose();
            }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }
    }
}

/// <summary>A job's use of a cached scorer; disposing it hands the scorer back to the cache.</summary>
public sealed class ScorerLease : IDisposable
{
    private readonly ScorerCache _cache;
    private readonly ScorerCache.Entry _entry;
    private int _disposed;

    internal ScorerLease(ScorerCache cache, ScorerCache.Entry entry)
    {
        _cache = cache;
        _entry = entry;
    }

    /// <summary>The resolved model and its open scorer.</summary>
    public LoadedScorer Loaded { get; internal set; } = null!;

    /// <summary>True when this acquisition loaded the package (false: an open scorer was reused).</summary>
    public bool Fresh { get; internal set; }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0) _cache.Release(_entry);
    }
}
