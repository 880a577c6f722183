using System.Globalization;

namespace Kiln.Monitoring.Feedback;

/// <summary>What a compaction did.</summary>
public sealed record FeedbackCompaction
{
    /// <summary>Date folders whose files were merged.</summary>
    public int Dates { get; init; }

    /// <summary>Small files merged (and deleted).</summary>
    public int FilesMerged { get; init; }

    /// <summary>Files written (one per date folder merged).</summary>
    public int FilesWritten { get; init; }

    /// <summary>Label rows in the merged files.</summary>
    public long LabelsRead { get; init; }

    /// <summary>Label rows kept: one per (request id, row), the last received.</summary>
    public long LabelsKept { get; init; }

    /// <summary>Date folders left alone because their files changed under the compaction (another compaction ran).</summary>
    public int DatesSkipped { get; init; }

    /// <summary>One line for logs and the CLI.</summary>
    public string Describe()
    {
        var text = string.Create(CultureInfo.InvariantCulture,
            $"{FilesMerged} file(s) in {Dates} date folder(s) merged into {FilesWritten}: {LabelsRead} label row(s), {LabelsKept} kept");
        return DatesSkipped > 0 ? text + string.Create(CultureInfo.InvariantCulture, $"; {DatesSkipped} date folder(s) skipped (changed meanwhile)") : text;
    }
}

/// <summary>
/// Merges the small feedback files of each date folder (LOG_DIR/_feedback/date=D/) into one file holding the last
/// label received for each (request id, row), with its own received_at and timestamp. Crash-safe and safe beside
/// writers and readers:
/// <list type="bullet">
/// <item>Only the files listed when the compaction starts are merged; files written meanwhile are left for the next one.</item>
/// <item>The merged file is written under a hidden name, flushed to disk and renamed into place before any input is
/// deleted. A crash before the rename leaves the inputs as they were; after it, a reader sees the merged file and some
/// inputs, and gets the same labels, because a label is chosen by the largest received_at whichever file holds it
/// (the merged file repeats rows, it never invents or drops one).</item>
/// <item>Labels are kept per date folder, so a window still reads only the days it needs.</item>
/// </list>
/// </summary>
public static class FeedbackCompactor
{
    /// <summary>Hidden files of a write that crashed are removed when they are older than this.</summary>
    public static readonly TimeSpan StaleTemporaryAge = TimeSpan.FromHours(1);

    /// <summary>Files a compaction would merge now: those in date folders that hold two or more.</summary>
    public static int CompactableFiles(FeedbackStore store)
    {
        ArgumentNullException.ThrowIfNull(store);
        var n = 0;
        foreach (var files in ByDate(store).Values)
            if (files.Count > 1) n += files.Count;
        return n;
    }

    /// <summary>Compacts every date folder holding two or more files.</summary>
    public static Task<FeedbackCompaction> CompactAsync(FeedbackStore store, CancellationToken ct = default) => CompactAsync(store, null, ct);

    /// <param name="store">The store.</param>
    /// <param name="afterRename">Tests: called after a merged file is in place and before its inputs are deleted (a crash there).</param>
    /// <param name="ct">Cancellation.</param>
    internal static async Task<FeedbackCompaction> CompactAsync(FeedbackStore store, Func<string, IReadOnlyList<string>, Task>? afterRename, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(store);
        int dates = 0, merged = 0, written = 0, skipped = 0;
        long read = 0, kept = 0;
        foreach (var (dir, files) in ByDate(store))
        {
            RemoveStaleTemporaries(dir);
            if (files.Count < 2) continue;
            ct.ThrowIfCancellationRequested();
            // Last received wins, as readers apply it (ties: later file, later row).
            var labels = new Dictionary<(string, int), int>();
            var rows = new List<(FeedbackFileContents File, int Row)>();
            var complete = true;
            foreach (var file in files)
            {
                FeedbackFileContents contents;
                try
                {
                    contents = await FeedbackStore.ReadFileAsync(file, ct).ConfigureAwait(false);
                }
                catch (FileNotFoundException)
                {
                    // Another compaction merged it: leave this folder to the next run.
                    complete = false;
                    break;
                }
                read += contents.Count;
                for (var i = 0; i < contents.Count; i++)
                {
                    var key = (contents.RequestIds[i], contents.Rows[i]);
                    if (labels.TryGetValue(key, out var at) && rows[at].File.ReceivedAt[rows[at].Row] > contents.ReceivedAt[i]) continue;
                    if (labels.TryGetValue(key, out at)) rows[at] = (contents, i);
                    else
                    {
                        labels[key] = rows.Count;
                        rows.Add((contents, i));
                    }
                }
            }
            if (!complete)
            {
                skipped++;
                continue;
            }
            // In order of receipt (stable: ties keep their order), as if the labels had been posted one by one.
            var order = Enumerable.Range(0, rows.Count).OrderBy(i => rows[i].File.ReceivedAt[rows[i].Row]).ToArray();
            var output = new FeedbackFileContents(order.Length);
            var last = DateTime.MinValue;
            for (var j = 0; j < order.Length; j++)
            {
                var (file, row) = rows[order[j]];
                output.RequestIds[j] = file.RequestIds[row];
                output.Rows[j] = file.Rows[row];
                output.Labels[j] = file.Labels[row];
                output.Timestamps[j] = file.Timestamps[row];
                output.ReceivedAt[j] = file.ReceivedAt[row];
                if (file.ReceivedAt[row] > last) last = file.ReceivedAt[row];
            }
            // Named after the latest receipt it holds: it sorts among the files as its newest label would. Inputs without
            // a single label (no request id or label in any row) need no replacement.
            if (output.Count > 0)
            {
                var path = await FeedbackStore.WriteFileAsync(dir, last, output, ct).ConfigureAwait(false);
                written++;
                if (afterRename is not null) await afterRename(path, files).ConfigureAwait(false);
            }
            foreach (var file in files)
            {
                try
                {
                    File.Delete(file);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    // Left in place: the next compaction merges it again (same labels, no harm).
                    _ = e;
                }
            }
            dates++;
            merged += files.Count;
            kept += output.Count;
        }
        return new FeedbackCompaction { Dates = dates, FilesMerged = merged, FilesWritten = written, LabelsRead = read, LabelsKept = kept, DatesSkipped = skipped };
    }

    /// <summary>The complete files of each date folder, in order of receipt.</summary>
    private static SortedDictionary<string, List<string>> ByDate(FeedbackStore store)
    {
        var result = new SortedDictionary<string, List<string>>(StringComparer.Ordinal);
        foreach (var file in store.Files())
        {
            var dir = Path.GetDirectoryName(file)!;
            if (!result.TryGetValue(dir, out var list)) result[dir] = list = [];
            list.Add(file);
        }
        return result;
    }

    private static void RemoveStaleTemporaries(string dir)
    {
        try
        {
            foreach (var f in Directory.EnumerateFiles(dir, ".*" + FeedbackStore.TempSuffix))
            {
                if (DateTime.UtcNow - File.GetLastWriteTimeUtc(f) > StaleTemporaryAge) File.Delete(f);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _ = e;
        }
    }
}
