using System.Globalization;

namespace Kiln.Core.PredictionLog;

/// <summary>One date partition of one model version in the prediction log.</summary>
/// <param name="Directory">LOG_DIR/model=M/version=V/date=D.</param>
/// <param name="Version">The version as its directory spells it (<see cref="PredictionLogLayout.SafeName"/> of the served version).</param>
/// <param name="Date">The UTC date of the rows inside.</param>
public sealed record LogPartition(string Directory, string Version, DateOnly Date);

/// <summary>
/// The prediction log's layout, written by kiln serve and read by monitoring, kiln drift, pipeline tasks and the
/// feedback store: its column names, and its partitions LOG_DIR/model=M/version=V/date=YYYY-MM-DD (docs/serving.md,
/// "Prediction log"). Spelled here once so that writer and readers cannot disagree.
/// </summary>
public static class PredictionLogLayout
{
    /// <summary>The id of the request a row came from (the id feedback joins on).</summary>
    public const string RequestId = "request_id";

    /// <summary>When the row was scored (UTC).</summary>
    public const string Timestamp = "timestamp";

    /// <summary>The served model's name.</summary>
    public const string Model = "model";

    /// <summary>The version that scored the row.</summary>
    public const string Version = "version";

    /// <summary>The protocol the request came in by.</summary>
    public const string Protocol = "protocol";

    /// <summary>The row's index inside its request.</summary>
    public const string Row = "row";

    /// <summary>The predicted label (classification) or value (regression).</summary>
    public const string Prediction = "prediction";

    /// <summary>The probability of the prediction (classification) or the predicted value (regression).</summary>
    public const string Value = "value";

    /// <summary>Comma-separated notes on the row (for example unseen categories).</summary>
    public const string Flags = "flags";

    /// <summary>Input column X is logged as input_X.</summary>
    public const string InputPrefix = "input_";

    /// <summary>A multiclass model logs class C's probability as probability_C.</summary>
    public const string ProbabilityPrefix = "probability_";

    /// <summary>The columns every log file has besides the inputs and probabilities.</summary>
    public static IReadOnlySet<string> FixedColumns { get; } = new HashSet<string>(StringComparer.Ordinal)
        { RequestId, Timestamp, Model, Version, Protocol, Row, Prediction, Value, Flags };

    private const string ModelKey = "model=";
    private const string VersionKey = "version=";
    private const string DateKey = "date=";
    private const string DateFormat = "yyyy-MM-dd";

    /// <summary>A name as a partition directory spells it: '/', '\', '=' and control characters become '_'.</summary>
    public static string SafeName(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        var chars = name.ToCharArray();
        for (var i = 0; i < chars.Length; i++) if (chars[i] is '/' or '\\' or '=' || char.IsControl(chars[i])) chars[i] = '_';
        return new string(chars);
    }

    /// <summary>LOG_DIR/model=M: every version and date of one model.</summary>
    public static string ModelDirectory(string logDirectory, string model) => Path.Combine(logDirectory, ModelKey + SafeName(model));

    /// <summary>LOG_DIR/model=M/version=V/date=D: where the rows of one version scored on one UTC date are written.</summary>
    public static string PartitionDirectory(string logDirectory, string model, string version, DateOnly date) =>
        Path.Combine(ModelDirectory(logDirectory, model), VersionKey + SafeName(version), DateDirectoryName(date));

    /// <summary>date=YYYY-MM-DD (the feedback store partitions by the same key).</summary>
    public static string DateDirectoryName(DateOnly date) => DateKey + date.ToString(DateFormat, CultureInfo.InvariantCulture);

    /// <summary>The date of a date=YYYY-MM-DD directory (a path or a name); false for anything else.</summary>
    public static bool TryParseDateDirectory(string directory, out DateOnly date)
    {
        var name = Path.GetFileName(directory);
        date = default;
        return name.StartsWith(DateKey, StringComparison.Ordinal)
            && DateOnly.TryParseExact(name.AsSpan(DateKey.Length), DateFormat, CultureInfo.InvariantCulture, DateTimeStyles.None, out date);
    }

    /// <summary>The date=YYYY-MM-DD directories directly under <paramref name="directory"/> (others are ignored), with their dates.</summary>
    public static IEnumerable<(string Directory, DateOnly Date)> DateDirectories(string directory)
    {
        foreach (var d in Directory.EnumerateDirectories(directory, DateKey + "*"))
            if (TryParseDateDirectory(d, out var date)) yield return (d, date);
    }

    /// <summary>The model names a log directory holds (as their directories spell them), in ordinal order.</summary>
    public static IReadOnlyList<string> Models(string logDirectory) =>
        !Directory.Exists(logDirectory) ? []
            : [.. Directory.EnumerateDirectories(logDirectory, ModelKey + "*").Select(d => Path.GetFileName(d)[ModelKey.Length..]).Order(StringComparer.Ordinal)];

    /// <summary>
    /// The partitions of <paramref name="model"/> (one <paramref name="version"/>, or all when null) whose date lies in
    /// [<paramref name="first"/>, <paramref name="last"/>]: partitions outside are never listed, so a window reads only its days.
    /// </summary>
    public static IReadOnlyList<LogPartition> Partitions(string logDirectory, string model, string? version, DateOnly first, DateOnly last)
    {
        var result = new List<LogPartition>();
        var modelDir = ModelDirectory(logDirectory, model);
        if (!Directory.Exists(modelDir)) return result;
        var wanted = version is null ? null : SafeName(version);
        foreach (var versionDir in Directory.EnumerateDirectories(modelDir, VersionKey + "*"))
        {
            var v = Path.GetFileName(versionDir)[VersionKey.Length..];
            if (wanted is not null && v != wanted) continue;
            foreach (var (dateDir, date) in DateDirectories(versionDir))
                if (date >= first && date <= last) result.Add(new LogPartition(dateDir, v, date));
        }
        result.Sort((a, b) => string.CompareOrdinal(a.Directory, b.Directory));
        return result;
    }

    /// <summary>The partitions holding rows of the UTC window [from, to).</summary>
    public static IReadOnlyList<LogPartition> Partitions(string logDirectory, string model, string? version, DateTimeOffset from, DateTimeOffset to) =>
        to <= from ? []
            : Partitions(logDirectory, model, version, DateOnly.FromDateTime(from.UtcDateTime), DateOnly.FromDateTime(to.UtcDateTime.AddTicks(-1)));

    /// <summary>The complete Parquet files of a partition directory: files being written are hidden (.part-….parquet.inprogress) and skipped.</summary>
    public static IEnumerable<string> CompleteFiles(string directory) =>
        Directory.EnumerateFiles(directory, "*.parquet").Where(f => !Path.GetFileName(f).StartsWith('.'));
}
