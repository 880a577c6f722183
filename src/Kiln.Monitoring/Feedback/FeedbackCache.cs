namespace Kiln.Monitoring.Feedback;

/// <summary>
/// The labels of a feedback store, kept parsed between evaluations. Each call lists the store's files (path, length,
/// last write time): a file already read with the same length and time is not read again, a new or changed file is,
/// and a file that is gone (deleted, compacted, or older than <c>since</c>) is dropped. The merged labels follow the
/// same rule as <see cref="FeedbackStore.ReadAsync"/> (the last received wins), so the answer equals a fresh read of
/// the same files. Safe to call concurrently (two racing calls may both read a new file; the answer is the same).
/// </summary>
public sealed class FeedbackCache
{
    private readonly FeedbackStore _store;
    private State _state = new(null, [], new Dictionary<string, Entry>(StringComparer.Ordinal), new Dictionary<(string, int), StoredLabel>());
    private long _filesRead;

    public FeedbackCache(string logDirectory)
    {
        _store = new FeedbackStore(logDirectory);
    }

    public string LogDirectory => _store.LogDirectory;

    /// <summary>Feedback files parsed so far (each new or changed file once): what the cache saves shows here.</summary>
    public long FilesRead => Interlocked.Read(ref _filesRead);

    /// <summary>Raised with a file's path each time one is parsed.</summary>
    public event Action<string>? FileRead;

    /// <summary>
    /// Every label received on or after <paramref name="since"/> (UTC date; all when null), the last received winning
    /// for each (request id, row). The dictionary is shared between calls: do not change it.
    /// </summary>
    public async Task<IReadOnlyDictionary<(string RequestId, int Row), StoredLabel>> GetAsync(DateOnly? since = null, CancellationToken ct = default)
    {
        var state = Volatile.Read(ref _state);
        var read = new Dictionary<string, Entry>(StringComparer.Ordinal); // parsed in this call
        for (var attempt = 1; ; attempt++)
        {
            var (listing, vanished) = List(since);
            if (vanished && attempt < FeedbackStore.MaxListingAttempts) continue; // compacted while listing: list again
            if (attempt == 1 && state.Since == since && listing.SequenceEqual(state.Listing)) return state.Merged;
            var entries = new Dictionary<string, Entry>(listing.Count, StringComparer.Ordinal);
            var missing = false;
            foreach (var file in listing)
            {
                if ((read.TryGetValue(file.Path, out var entry) || state.Files.TryGetValue(file.Path, out entry)) && entry.File == file)
                {
                    entries[file.Path] = entry;
                    continue;
                }
                try
                {
                    entry = new Entry(file, await FeedbackStore.ReadFileAsync(file.Path, ct).ConfigureAwait(false));
                }
                catch (FileNotFoundException) when (attempt < FeedbackStore.MaxListingAttempts)
                {
                    // Compacted after the listing: the compacted file is in the next listing (what was read is kept).
                    missing = true;
                    continue;
                }
                Interlocked.Increment(ref _filesRead);
                FileRead?.Invoke(file.Path);
                read[file.Path] = entries[file.Path] = entry;
            }
            if (missing) continue;
            var merged = new Dictionary<(string, int), StoredLabel>();
            foreach (var file in listing) FeedbackStore.Apply(merged, entries[file.Path].Contents);
            // Racing calls: the last to finish wins, and each describes the files as it listed them.
            Volatile.Write(ref _state, new State(since, listing, entries, merged));
            return merged;
        }
    }

    /// <summary>The files with their lengths and write times, in order of receipt, and whether one vanished meanwhile.</summary>
    private (List<FileKey> Files, bool Vanished) List(DateOnly? since)
    {
        var files = _store.Files(since);
        var result = new List<FileKey>(files.Count);
        var vanished = false;
        foreach (var path in files)
        {
            var info = new FileInfo(path);
            if (info.Exists) result.Add(new FileKey(path, info.Length, info.LastWriteTimeUtc));
            else vanished = true;
        }
        return (result, vanished);
    }

    private readonly record struct FileKey(string Path, long Length, DateTime LastWriteUtc);

    private sealed record Entry(FileKey File, FeedbackFileContents Contents);

    private sealed record State(DateOnly? Since, List<FileKey> Listing, Dictionary<string, Entry> Files, Dictionary<(string, int), StoredLabel> Merged);
}
