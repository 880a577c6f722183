using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using Kiln.Core;
using Kiln.Core.Data;
using Kiln.Core.PredictionLog;
using Kiln.Monitoring.Windows;

namespace Kiln.Monitoring.Feedback;

/// <summary>A ground-truth label for one logged prediction: (request id, row within the request) → label.</summary>
public readonly record struct FeedbackItem(string RequestId, int Row, string Label, DateTimeOffset? Timestamp = null);

/// <summary>The label a store holds for a prediction, and when it was received.</summary>
public readonly record struct StoredLabel(string Label, DateTime ReceivedAt);

/// <summary>
/// Delayed labels, stored beside the prediction log as append-only Parquet files under
/// LOG_DIR/_feedback/date=YYYY-MM-DD/ (the UTC date of receipt). Each write is one file, written under a hidden
/// temporary name, flushed to disk and renamed into place, so a reader never sees half a file and a write that
/// returned is durable. Any number of writers (replicas) may share the directory. When a (request id, row) has
/// several labels, the one received last wins.
/// </summary>
public sealed class FeedbackStore
{
    public const string DirectoryName = "_feedback";
    private const int RowGroupSize = 100_000;

    private static readonly ParquetColumn[] Columns =
    [
        new("request_id", ParquetColumnKind.Text, true),
        new("row", ParquetColumnKind.Int32, false),
        new("label", ParquetColumnKind.Text, true),
        new("timestamp", ParquetColumnKind.Timestamp, true),
        new("received_at", ParquetColumnKind.Timestamp, false),
    ];

    public FeedbackStore(string logDirectory)
    {
        if (string.IsNullOrWhiteSpace(logDirectory)) throw new KilnException("the log directory is empty");
        LogDirectory = logDirectory;
    }

    public string LogDirectory { get; }

    public string Root => Path.Combine(LogDirectory, DirectoryName);

    /// <summary>Stores labels as one new file; returns its path. Durable when it returns.</summary>
    public async Task<string> AppendAsync(IReadOnlyList<FeedbackItem> items, DateTime? receivedAt = null, CancellationToken ct = default)
    {
        if (items.Count == 0) throw new ArgumentException("no feedback to store", nameof(items));
        var received = Monotonic((receivedAt ?? DateTime.UtcNow).ToUniversalTime());
        var contents = new FeedbackFileContents(items.Count);
        for (var i = 0; i < items.Count; i++)
        {
            var item = items[i];
            contents.RequestIds[i] = item.RequestId;
            contents.Rows[i] = item.Row;
            contents.Labels[i] = item.Label;
            contents.Timestamps[i] = item.Timestamp?.UtcDateTime;
            contents.ReceivedAt[i] = received;
        }
        return await WriteFileAsync(DateDirectory(received), received, contents, ct).ConfigureAwait(false);
    }

    /// <summary>LOG_DIR/_feedback/date=YYYY-MM-DD for a UTC time of receipt.</summary>
    internal string DateDirectory(DateTime received) =>
        Path.Combine(Root, PredictionLogLayout.DateDirectoryName(DateOnly.FromDateTime(received)));

    /// <summary>
    /// Writes rows as a new feedback file in <paramref name="dir"/>, named after <paramref name="nameTime"/>: under a hidden
    /// temporary name, flushed to disk, then renamed into place. Returns the final path.
    /// </summary>
    internal static async Task<string> WriteFileAsync(string dir, DateTime nameTime, FeedbackFileContents contents, CancellationToken ct)
    {
        Directory.CreateDirectory(dir);
        // The name sorts by time of receipt, so readers apply files in order.
        var name = $"feedback-{nameTime:yyyyMMdd'T'HHmmss'.'fffffff'Z'}-{Guid.NewGuid():N}.parquet";
        var temp = Path.Combine(dir, "." + name + TempSuffix);
        var final = Path.Combine(dir, name);
        try
        {
            var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16);
            await using (stream.ConfigureAwait(false))
            {
                using (var writer = new ParquetTableWriter(stream, Columns))
                {
                    var count = contents.Count;
                    for (var start = 0; start < count; start += RowGroupSize)
                    {
                        var n = Math.Min(RowGroupSize, count - start);
                        writer.BeginRowGroup(n);
                        writer.WriteText(contents.RequestIds.AsSpan(start, n)!);
                        writer.WriteInt32(contents.Rows.AsSpan(start, n));
                        writer.WriteText(contents.Labels.AsSpan(start, n)!);
                        writer.WriteTimestamp(contents.Timestamps.AsSpan(start, n));
                        writer.WriteTimestamp(contents.ReceivedAt.AsSpan(start, n));
                        writer.EndRowGroup();
                    }
                    writer.Finish();
                }
                await stream.FlushAsync(ct).ConfigureAwait(false);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, final);
            return final;
        }
        catch
        {
            try { File.Delete(temp); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            throw;
        }
    }

    /// <summary>The suffix of a feedback file being written (hidden: its name starts with '.').</summary>
    internal const string TempSuffix = ".inprogress";

    // The last time of receipt handed out, per feedback directory (the order only matters among one store's files).
    private static readonly ConcurrentDictionary<string, StrongBox<long>> s_lastReceived = new(StringComparer.Ordinal);

    /// <summary>
    /// Times of receipt strictly increase within a process for one store, so that two writes in the same clock tick
    /// still sort (by file name and by received_at) in the order they were made, and the later one wins.
    /// </summary>
    private DateTime Monotonic(DateTime t)
    {
        var box = s_lastReceived.GetOrAdd(Path.GetFullPath(Root), static _ => new StrongBox<long>());
        while (true)
        {
            var last = Interlocked.Read(ref box.Value);
            var next = Math.Max(t.Ticks, last + 1);
            if (Interlocked.CompareExchange(ref box.Value, next, last) == last) return new DateTime(next, DateTimeKind.Utc);
        }
    }

    /// <summary>The complete feedback files received on or after a date (all when null), in order of receipt.</summary>
    public IReadOnlyList<string> Files(DateOnly? since = null)
    {
        var files = new List<string>();
        if (!Directory.Exists(Root)) return files;
        foreach (var (dateDir, date) in PredictionLogLayout.DateDirectories(Root))
        {
            if (since is { } s && date < s) continue;
            files.AddRange(PredictionLogLayout.CompleteFiles(dateDir));
        }
        files.Sort((a, b) => string.CompareOrdinal(Path.GetFileName(a), Path.GetFileName(b)));
        return files;
    }

    /// <summary>
    /// Every label received on or after <paramref name="since"/> (UTC date; all when null), the last received winning
    /// for each (request id, row).
    /// </summary>
    public async Task<Dictionary<(string RequestId, int Row), StoredLabel>> ReadAsync(DateOnly? since = null, CancellationToken ct = default)
    {
        var labels = new Dictionary<(string, int), StoredLabel>();
        var read = new HashSet<string>(StringComparer.Ordinal);
        for (var attempt = 1; ; attempt++)
        {
            var missing = false;
            foreach (var file in Files(since))
            {
                if (read.Contains(file)) continue;
                try
                {
                    Apply(labels, await ReadFileAsync(file, ct).ConfigureAwait(false));
                    read.Add(file);
                }
                catch (FileNotFoundException) when (attempt < MaxListingAttempts)
                {
                    // Merged away by a compaction after the listing: its labels are in the compacted file, renamed into
                    // place before the inputs were deleted, which the next listing has.
                    missing = true;
                }
            }
            // Labels decide by received_at, not by the order files are applied in: reading the compacted file after
            // some of its inputs gives the same answer.
            if (!missing) return labels;
        }
    }

    /// <summary>How many times a read lists the files again when listed files vanished (compacted meanwhile).</summary>
    internal const int MaxListingAttempts = 20;

    /// <summary>
    /// Applies one file's rows to <paramref name="labels"/>: files come in order of receipt and rows in order within a
    /// file, so the later one wins, unless a row from a replica with a later clock was already applied. The outcome
    /// depends only on the set of rows (the largest received_at wins), not on which files hold them, except for exact
    /// ties of received_at, which one process never writes.
    /// </summary>
    internal static void Apply(Dictionary<(string, int), StoredLabel> labels, FeedbackFileContents file)
    {
        for (var i = 0; i < file.Count; i++)
        {
            var key = (file.RequestIds[i], file.Rows[i]);
            if (labels.TryGetValue(key, out var old) && old.ReceivedAt > file.ReceivedAt[i]) continue;
            labels[key] = new StoredLabel(file.Labels[i], file.ReceivedAt[i]);
        }
    }

    /// <summary>
    /// Reads one feedback file (rows without a request id or label are left out). A file that does not exist (any
    /// more) throws <see cref="FileNotFoundException"/>; any other failure a <see cref="KilnException"/> naming it.
    /// </summary>
    internal static Task<FeedbackFileContents> ReadFileAsync(string file, CancellationToken ct)
    {
        if (!File.Exists(file)) throw new FileNotFoundException($"{file}: no such feedback file", file);
        ParquetFile reader;
        try
        {
            reader = ParquetFile.Open(file);
        }
        catch (KilnException e) when (!File.Exists(file))
        {
            // Deleted by a compaction between the check and the open.
            throw new FileNotFoundException($"{file}: no such feedback file", file, e);
        }
        using var readerScope = reader;
        var idField = reader.Readable("request_id");
        var rowField = reader.Readable("row");
        var labelField = reader.Readable("label");
        var timestampField = reader.Find("timestamp");
        var receivedField = reader.Readable("received_at");
        var ids = new List<string>();
        var rowList = new List<int>();
        var labelList = new List<string>();
        var timeList = new List<DateTime?>();
        var receivedList = new List<DateTime>();
        for (var g = 0; g < reader.RowGroupCount; g++)
        {
            ct.ThrowIfCancellationRequested();
            var n = checked((int)reader.RowGroupRows[g]);
            var id = reader.ReadText(g, idField);
            var rows = PredictionLogReader.Ints(reader.ReadNumbers(g, rowField));
            var values = reader.ReadText(g, labelField);
            var times = timestampField is null ? null : reader.ReadTimestamps(g, timestampField);
            var received = reader.ReadTimestamps(g, receivedField);
            for (var i = 0; i < n; i++)
            {
                if (id[i] is not { } requestId || values[i] is not { } label) continue;
                ids.Add(requestId);
                rowList.Add(rows[i]);
                labelList.Add(label);
                timeList.Add(times is null || times[i] == DateTime.MinValue ? null : PredictionLogReader.Utc(times[i]));
                receivedList.Add(PredictionLogReader.Utc(received[i]));
            }
        }
        return Task.FromResult(new FeedbackFileContents([.. ids], [.. rowList], [.. labelList], [.. timeList], [.. receivedList]));
    }
}

/// <summary>The rows of one feedback file, column by column.</summary>
internal sealed class FeedbackFileContents
{
    public FeedbackFileContents(int count)
        : this(new string[count], new int[count], new string[count], new DateTime?[count], new DateTime[count])
    {
    }

    public FeedbackFileContents(string[] requestIds, int[] rows, string[] labels, DateTime?[] timestamps, DateTime[] receivedAt)
    {
        RequestIds = requestIds;
        Rows = rows;
        Labels = labels;
        Timestamps = timestamps;
        ReceivedAt = receivedAt;
    }

    public string[] RequestIds { get; }

    public int[] Rows { get; }

    public string[] Labels { get; }

    public DateTime?[] Timestamps { get; }

    public DateTime[] ReceivedAt { get; }

    public int Count => RequestIds.Length;
}
