using System.Globalization;
using Kiln.Core;
using Kiln.Core.PredictionLog;

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
}

/// <summary>One complete prediction log file, with the version and date of its partition.</summary>
public sealed record LogFile(string Path, string Version, DateOnly Date);

/// <summary>Finds the complete log files of a window, pruning partitions by their date=.</summary>
public static class PredictionLogFiles
{
    public static IReadOnlyList<LogFile> Find(LogWindow window)
    {
        if (!Directory.Exists(window.LogDirectory)) throw new KilnException($"{window.LogDirectory}: the log directory does not exist");
        var files = new List<LogFile>();
        foreach (var p in PredictionLogLayout.Partitions(window.LogDirectory, window.Model, window.Version, window.From, window.To))
            foreach (var file in PredictionLogLayout.CompleteFiles(p.Directory)) files.Add(new LogFile(file, p.Version, p.Date));
        files.Sort((a, b) => string.CompareOrdinal(a.Path, b.Path));
        return files;
    }
}
