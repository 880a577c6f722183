using Kiln.Core;
using Kiln.Core.PredictionLog;
using Kiln.Monitoring.Feedback;
using Kiln.Storage.Objects;

namespace Kiln.Monitoring.Windows;

/// <summary>
/// Reads a prediction log kept in a bucket (kiln serve --log-dir s3://BUCKET/PREFIX): the partitions a window needs
/// (model=/version=/date=, listed in the bucket, pruned by date as on a local disk) and, for the feedback join, the
/// _feedback/date= folders are copied into a local mirror, which the window's readers then read like any log
/// directory. Objects in the log are whole files written once under unique names, so a file already mirrored with
/// the same size is not fetched again; a mirrored file whose object is gone (retention, feedback compaction) is
/// removed, so the mirror's partitions hold exactly what the bucket lists.
/// </summary>
public static class S3LogMirror
{
    /// <summary>True when a log directory is an s3:// location.</summary>
    public static bool IsS3(string logDirectory) => S3Location.IsS3(logDirectory);

    /// <summary>
    /// Where the log at an s3:// location is mirrored: $KILN_LOG_CACHE, else ~/.cache/kiln/prediction-log, then
    /// BUCKET/PREFIX. A local directory is its own answer.
    /// </summary>
    public static string LocalDirectory(string logDirectory)
    {
        if (!IsS3(logDirectory)) return logDirectory;
        var location = S3Location.Parse(logDirectory, "--log-dir");
        var root = Environment.GetEnvironmentVariable("KILN_LOG_CACHE") is { Length: > 0 } env ? env
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "kiln", "prediction-log");
        return Path.GetFullPath(Path.Combine(root, location.Bucket, Path.Combine(location.Prefix.Split('/', StringSplitOptions.RemoveEmptyEntries))));
    }

    /// <summary>
    /// The window itself when its log is local; for a log in a bucket, the window over a local mirror that holds the
    /// window's partitions (and the feedback received on or after <paramref name="feedbackSince"/>, when given).
    /// A bucket that does not exist or cannot be reached is one line naming the location.
    /// </summary>
    public static async Task<LogWindow> LocalizeAsync(LogWindow window, DateOnly? feedbackSince, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(window);
        if (!IsS3(window.LogDirectory)) return window;
        var local = LocalDirectory(window.LogDirectory);
        Directory.CreateDirectory(local);
        using var storage = S3Storage.Open(window.LogDirectory, "--log-dir");
        var first = DateOnly.FromDateTime(window.From.UtcDateTime);
        var last = DateOnly.FromDateTime(window.To.UtcDateTime.AddTicks(-1));
        var wanted = window.Version is null ? null : PredictionLogLayout.SafeName(window.Version);
        var modelDir = PredictionLogLayout.ModelDirectory("", window.Model);
        // One recursive listing per prefix (continuation tokens followed), pruned here by version and date: listings by
        // delimiter would list fewer keys on S3 but are not answered alike by every S3-compatible server.
        var partitions = new SortedDictionary<string, List<S3Entry>>(StringComparer.Ordinal);
        if (wanted is not null)
        {
            // One version: only the window's days are listed.
            for (var day = first; day <= last; day = day.AddDays(1))
            {
                var dateDir = $"{modelDir}/version={wanted}/{PredictionLogLayout.DateDirectoryName(day)}";
                partitions[dateDir] = [.. await storage.ListAllAsync(dateDir, ct).ConfigureAwait(false)];
            }
        }
        else
        {
            foreach (var entry in await storage.ListAllAsync(modelDir, ct).ConfigureAwait(false))
            {
                // model=M/version=V/date=D/FILE: anything at another depth is not part of the log.
                var parts = entry.Key.Split('/');
                if (parts.Length != 4 || !parts[1].StartsWith("version=", StringComparison.Ordinal)) continue;
                if (!PredictionLogLayout.TryParseDateDirectory(parts[2], out var date) || date < first || date > last) continue;
                Add(partitions, $"{parts[0]}/{parts[1]}/{parts[2]}", entry);
            }
        }
        if (feedbackSince is { } since)
        {
            foreach (var entry in await storage.ListAllAsync(FeedbackStore.DirectoryName, ct).ConfigureAwait(false))
            {
                var parts = entry.Key.Split('/');
                if (parts.Length != 3 || !PredictionLogLayout.TryParseDateDirectory(parts[1], out var date) || date < since) continue;
                Add(partitions, $"{parts[0]}/{parts[1]}", entry);
            }
        }
        // Partitions mirrored before whose objects are all gone now are emptied too.
        foreach (var p in PredictionLogLayout.Partitions(local, window.Model, window.Version, first, last))
            partitions.TryAdd(Relative(local, p.Directory), []);
        var feedbackRoot = Path.Combine(local, FeedbackStore.DirectoryName);
        if (feedbackSince is { } from && Directory.Exists(feedbackRoot))
        {
            foreach (var (dateDir, date) in PredictionLogLayout.DateDirectories(feedbackRoot))
                if (date >= from) partitions.TryAdd(Relative(local, dateDir), []);
        }
        foreach (var (directory, objects) in partitions) await MirrorAsync(storage, directory, objects, local, ct).ConfigureAwait(false);
        return new LogWindow(local, window.Model, window.From, window.To, window.Version);
    }

    private static void Add(SortedDictionary<string, List<S3Entry>> partitions, string directory, S3Entry entry)
    {
        if (!partitions.TryGetValue(directory, out var list)) partitions[directory] = list = [];
        list.Add(entry);
    }

    /// <summary>Makes LOCAL/DIR hold exactly the complete Parquet files the bucket lists under DIR.</summary>
    private static async Task MirrorAsync(S3Storage storage, string directory, List<S3Entry> objects, string localRoot, CancellationToken ct)
    {
        var localDir = Path.Combine(localRoot, Path.Combine(directory.Split('/')));
        Directory.CreateDirectory(localDir);
        var listed = new HashSet<string>(StringComparer.Ordinal);
        foreach (var entry in objects)
        {
            var name = LastSegment(entry.Key);
            // Only complete log files: anything hidden or not Parquet is not part of the log.
            if (name.StartsWith('.') || !name.EndsWith(".parquet", StringComparison.Ordinal)) continue;
            listed.Add(name);
            var target = Path.Combine(localDir, name);
            if (File.Exists(target) && new FileInfo(target).Length == entry.Size) continue;
            await DownloadAsync(storage, entry.Key, target, ct).ConfigureAwait(false);
        }
        foreach (var file in Directory.EnumerateFiles(localDir, "*.parquet"))
        {
            if (!listed.Contains(Path.GetFileName(file))) File.Delete(file);
        }
    }

    /// <summary>Fetches an object under a hidden name and renames it into place, so a reader never sees half a file.</summary>
    private static async Task DownloadAsync(S3Storage storage, string key, string target, CancellationToken ct)
    {
        var temp = Path.Combine(Path.GetDirectoryName(target)!, $".{Path.GetFileName(target)}.{Guid.NewGuid():N}.download");
        try
        {
            var source = await storage.OpenReadAsync(key, ct).ConfigureAwait(false);
            if (source is null) return; // deleted since the listing: not part of the log any more
            await using (source.ConfigureAwait(false))
            {
                var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true);
                await using (file.ConfigureAwait(false))
                {
                    try
                    {
                        await source.CopyToAsync(file, ct).ConfigureAwait(false);
                    }
                    catch (Exception e) when (e is IOException or Amazon.Runtime.AmazonClientException)
                    {
                        throw new KilnException($"{storage.Describe()}: reading '{key}' failed: {e.Message}", e);
                    }
                }
            }
            File.Move(temp, target, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }

    private static string Relative(string root, string directory) => Path.GetRelativePath(root, directory).Replace(Path.DirectorySeparatorChar, '/');

    private static string LastSegment(string key) => key[(key.LastIndexOf('/') + 1)..];
}
