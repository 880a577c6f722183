using System.Globalization;
using Kiln.Core;
using Kiln.Monitoring.Windows;
using Parquet;
using Parquet.Schema;

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

    private static readonly DataField RequestIdField = new DataField<string>("request_id");
    private static readonly DataField RowField = new DataField<int>("row");
    private static readonly DataField LabelField = new DataField<string>("label");
    private static readonly DataField TimestampField = new DateTimeDataField("timestamp", DateTimeFormat.Timestamp, isAdjustedToUTC: true, unit: DateTimeTimeUnit.Micros, isNullable: true);
    private static readonly DataField ReceivedField = new DateTimeDataField("received_at", DateTimeFormat.Timestamp, isAdjustedToUTC: true, unit: DateTimeTimeUnit.Micros);
    private static readonly ParquetSchema Schema = new(RequestIdField, RowField, LabelField, TimestampField, ReceivedField);

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
        var dir = Path.Combine(Root, "date=" + received.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture));
        Directory.CreateDirectory(dir);
        // The name sorts by time of receipt, so readers apply files in order.
        var name = $"feedback-{received:yyyyMMdd'T'HHmmss'.'fffffff'Z'}-{Guid.NewGuid():N}.parquet";
        var temp = Path.Combine(dir, "." + name + ".inprogress");
        var final = Path.Combine(dir, name);
        try
        {
            var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16);
            await using (stream.ConfigureAwait(false))
            {
                var writer = await ParquetWriter.CreateAsync(Schema, stream, null, false, ct).ConfigureAwait(false);
                await using (writer.ConfigureAwait(false))
                {
                    for (var start = 0; start < items.Count; start += RowGroupSize)
                    {
                        var n = Math.Min(RowGroupSize, items.Count - start);
                        var ids = new string[n];
                        var rows = new int[n];
                        var labels = new string[n];
                        var times = new DateTime?[n];
                        var receivedTimes = new DateTime[n];
                        for (var i = 0; i < n; i++)
                        {
                            var item = items[start + i];
                            ids[i] = item.RequestId;
                            rows[i] = item.Row;
                            labels[i] = item.Label;
                            times[i] = item.Timestamp?.UtcDateTime;
                            receivedTimes[i] = received;
                        }
                        using var rg = writer.CreateRowGroup();
                        await rg.WriteAsync(RequestIdField, ids, null).ConfigureAwait(false);
                        await rg.WriteAsync<int>(RowField, rows.AsMemory(), null, null, ct).ConfigureAwait(false);
                        await rg.WriteAsync(LabelField, labels, null).ConfigureAwait(false);
                        await rg.WriteAsync<DateTime>(TimestampField, times.AsMemory(), null, null, ct).ConfigureAwait(false);
                        await rg.WriteAsync<DateTime>(ReceivedField, receivedTimes.AsMemory(), null, null, ct).ConfigureAwait(false);
                    }
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

    private static long _lastReceivedTicks;

    /// <summary>
    /// Times of receipt strictly increase within a process, so that two writes in the same clock tick still sort (by
    /// file name and by received_at) in the order they were made, and the later one wins.
    /// </summary>
    private static DateTime Monotonic(DateTime t)
    {
        while (true)
        {
            var last = Interlocked.Read(ref _lastReceivedTicks);
            var next = Math.Max(t.Ticks, last + 1);
            if (Interlocked.CompareExchange(ref _lastReceivedTicks, next, last) == last) return new DateTime(next, DateTimeKind.Utc);
        }
    }

    /// <summary>The complete feedback files received on or after a date (all when null), in order of receipt.</summary>
    public IReadOnlyList<string> Files(DateOnly? since = null)
    {
        var files = new List<string>();
        if (!Directory.Exists(Root)) return files;
        foreach (var dateDir in Directory.EnumerateDirectories(Root, "date=*"))
        {
            if (!DateOnly.TryParseExact(Path.GetFileName(dateDir)["date=".Length..], "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var date)) continue;
            if (since is { } s && date < s) continue;
            foreach (var f in Directory.EnumerateFiles(dateDir, "*.parquet"))
                if (!Path.GetFileName(f).StartsWith('.')) files.Add(f);
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
        foreach (var file in Files(since))
        {
            ParquetReader reader;
            try
            {
                reader = await ParquetReader.CreateAsync(file, null, ct).ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or InvalidDataException or NotSupportedException or ArgumentException or InvalidOperationException)
            {
                throw new KilnException($"{file}: not a readable feedback file ({e.Message})", e);
            }
            await using var scope = reader.ConfigureAwait(false);
            var fields = reader.Schema.GetDataFields();
            DataField Field(string name) => Array.Find(fields, f => f.Name == name) ?? throw new KilnException($"{file}: column '{name}' is missing");
            var idField = Field("request_id");
            var rowField = Field("row");
            var labelField = Field("label");
            var receivedField = Field("received_at");
            for (var g = 0; g < reader.RowGroupCount; g++)
            {
                using var rg = reader.OpenRowGroupReader(g);
                var n = checked((int)rg.RowCount);
                var ids = await LogColumns.ReadStringsAsync(rg, idField, n, ct).ConfigureAwait(false);
                var rows = await LogColumns.ReadIntsAsync(rg, rowField, n, file, ct).ConfigureAwait(false);
                var values = await LogColumns.ReadStringsAsync(rg, labelField, n, ct).ConfigureAwait(false);
                var received = await LogColumns.ReadTimesAsync(rg, receivedField, n, file, ct).ConfigureAwait(false);
                for (var i = 0; i < n; i++)
                {
                    if (ids[i] is not { } id || values[i] is not { } label) continue;
                    var key = (id, rows[i]);
                    // Files come in order of receipt and rows in order within a file: the later one wins, unless a
                    // file from a replica with a later clock was already applied.
                    if (labels.TryGetValue(key, out var old) && old.ReceivedAt > received[i]) continue;
                    labels[key] = new StoredLabel(label, received[i]);
                }
            }
        }
        return labels;
    }
}
