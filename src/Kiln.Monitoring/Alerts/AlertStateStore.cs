using System.Text.Json;
using System.Text.Json.Serialization;

namespace Kiln.Monitoring.Alerts;

/// <summary>The remembered state of one alert instance (a rule and a series) that is pending, firing or resolving.</summary>
public sealed record AlertSnapshot
{
    public required string Rule { get; init; }

    public required IReadOnlyDictionary<string, string> Labels { get; init; }

    /// <summary><c>pending</c>, <c>firing</c> or <c>resolving</c>.</summary>
    public required string State { get; init; }

    public DateTimeOffset? PendingSince { get; init; }

    public DateTimeOffset? FiringSince { get; init; }

    public DateTimeOffset? ClearSince { get; init; }

    /// <summary>The last value seen (null when none or NaN).</summary>
    public double? LastValue { get; init; }
}

/// <summary>
/// Alert state on disk (a small JSON file, by default LOG_DIR/_monitor/alerts.json), so that a restarted monitor keeps
/// its firing alerts (and sends their resolved notification later, never a second firing one) and its pending timers.
/// Written atomically (a temporary file in the same folder, flushed, then renamed over the old one): a crash leaves the
/// old file or the new one, never half of one.
/// </summary>
public sealed class AlertStateStore(string path)
{
    public const int FormatVersion = 1;

    /// <summary>The file name under the state directory.</summary>
    public const string FileName = "alerts.json";

    public string Path { get; } = path;

    /// <summary>Writes the snapshots (replacing the file).</summary>
    public void Save(IReadOnlyList<AlertSnapshot> alerts, DateTimeOffset savedAt)
    {
        var full = System.IO.Path.GetFullPath(Path);
        var dir = System.IO.Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(dir);
        var bytes = JsonSerializer.SerializeToUtf8Bytes(new AlertStateFile { Version = FormatVersion, SavedAt = savedAt, Alerts = [.. alerts] },
            AlertStateJsonContext.Default.AlertStateFile);
        Kiln.Core.AtomicFile.WriteAllBytes(full, bytes);
    }

    /// <summary>
    /// Reads the snapshots. No file: an empty list. A file that cannot be read or is not a state file: an empty list and
    /// a <paramref name="problem"/> saying why (the caller logs it and starts afresh; never an exception).
    /// </summary>
    public IReadOnlyList<AlertSnapshot> Load(out string? problem)
    {
        problem = null;
        try
        {
            if (!File.Exists(Path)) return [];
            var file = JsonSerializer.Deserialize(File.ReadAllBytes(Path), AlertStateJsonContext.Default.AlertStateFile);
            if (file is null) problem = "the file holds null";
            else if (file.Version != FormatVersion) problem = $"format version {file.Version} is not {FormatVersion}";
            else if (file.Alerts is null) problem = "'alerts' is missing";
            else return file.Alerts;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or JsonException or NotSupportedException)
        {
            problem = e.Message;
        }
        return [];
    }
}

internal sealed record AlertStateFile
{
    public int Version { get; init; }

    public DateTimeOffset SavedAt { get; init; }

    public List<AlertSnapshot>? Alerts { get; init; }
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, WriteIndented = true,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(AlertStateFile))]
internal sealed partial class AlertStateJsonContext : JsonSerializerContext;
