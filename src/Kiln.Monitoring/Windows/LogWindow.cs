using System.Globalization;
using Kiln.Core;

namespace Kiln.Monitoring.Windows;

/// <summary>
/// A time window of one model's prediction log: the rows logged under LOG_DIR/model=M/ (optionally one
/// version=V) whose timestamp t satisfies <see cref="From"/> ≤ t &lt; <see cref="To"/> (UTC).
/// </summary>
public sealed record LogWindow
{
    public LogWindow(string logDirectory, string model, DateTimeOffset from, DateTimeOffset to, string? version = null)
    {
        if (string.IsNullOrWhiteSpace(logDirectory)) throw new KilnException("the log directory is empty");
        if (string.IsNullOrWhiteSpace(model)) throw new KilnException("the model name is empty");
        if (to <= from) throw new KilnException($"the window is empty: --to {Format(to)} is not after --from {Format(from)}");
        LogDirectory = logDirectory;
        Model = model;
        From = from.ToUniversalTime();
        To = to.ToUniversalTime();
        Version = version;
    }

    public string LogDirectory { get; }

    /// <summary>The model's name as the server logs it (the served name).</summary>
    public string Model { get; }

    /// <summary>Start of the window, inclusive.</summary>
    public DateTimeOffset From { get; }

    /// <summary>End of the window, exclusive.</summary>
    public DateTimeOffset To { get; }

    /// <summary>Only this version's rows; null = every version.</summary>
    public string? Version { get; }

    /// <summary>The window [now − length, now).</summary>
    public static LogWindow Last(string logDirectory, string model, TimeSpan length, DateTimeOffset? now = null, string? version = null)
    {
        if (length <= TimeSpan.Zero) throw new KilnException($"--window must be positive; got {length}");
        var end = now ?? DateTimeOffset.UtcNow;
        return new LogWindow(logDirectory, model, end - length, end, version);
    }

    /// <summary>Parses a positive window length in the shared grammar (docs/cli.md#durations).</summary>
    public static TimeSpan ParseLength(string text) =>
        Duration.Parse(text, "--window") is { } length && length > TimeSpan.Zero ? length
            : throw new KilnException($"--window must be positive; got '{text}'");

    /// <summary>Parses a point in time: ISO 8601 (a time without offset is UTC), or "now".</summary>
    public static DateTimeOffset ParseTime(string text, string option, DateTimeOffset? now = null)
    {
        if (text.Equals("now", StringComparison.OrdinalIgnoreCase)) return now ?? DateTimeOffset.UtcNow;
        if (DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var t)) return t;
        throw new KilnException($"{option}: '{text}' is not an ISO 8601 time (e.g. 2026-11-26T08:00:00Z)");
    }

    public static string Format(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.FFFFFFF'Z'", CultureInfo.InvariantCulture);

    /// <summary>The directory name the serving log uses for a model or version ('/', '\', '=' and control characters become '_').</summary>
    public static string SafeName(string s)
    {
        var chars = s.ToCharArray();
        for (var i = 0; i < chars.Length; i++) if (chars[i] is '/' or '\\' or '=' || char.IsControl(chars[i])) chars[i] = '_';
        return new string(chars);
    }
}

/// <summary>One complete prediction log file, with the version and date of its partition.</summary>
public sealed record LogFile(string Path, string Version, DateOnly Date);

/// <summary>Finds the complete log files of a window, pruning partitions by their date=.</summary>
public static class PredictionLogFiles
{
    public static IReadOnlyList<LogFile> Find(LogWindow window)
    {
        var modelDir = Path.Combine(window.LogDirectory, "model=" + LogWindow.SafeName(window.Model));
        if (!Directory.Exists(window.LogDirectory)) throw new KilnException($"{window.LogDirectory}: the log directory does not exist");
        var files = new List<LogFile>();
        if (!Directory.Exists(modelDir)) return files;
        var first = DateOnly.FromDateTime(window.From.UtcDateTime);
        var last = DateOnly.FromDateTime(window.To.UtcDateTime.AddTicks(-1));
        foreach (var versionDir in Directory.EnumerateDirectories(modelDir, "version=*"))
        {
            var version = Path.GetFileName(versionDir)["version=".Length..];
            if (window.Version is not null && version != LogWindow.SafeName(window.Version)) continue;
            foreach (var dateDir in Directory.EnumerateDirectories(versionDir, "date=*"))
            {
                if (!DateOnly.TryParseExact(Path.GetFileName(dateDir)["date=".Length..], "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var date)) continue;
                if (date < first || date > last) continue;
                foreach (var file in Directory.EnumerateFiles(dateDir, "*.parquet"))
                {
                    // Files being written are hidden (.part-….parquet.inprogress); skip any hidden file.
                    if (Path.GetFileName(file).StartsWith('.')) continue;
                    files.Add(new LogFile(file, version, date));
                }
            }
        }
        files.Sort((a, b) => string.CompareOrdinal(a.Path, b.Path));
        return files;
    }
}
