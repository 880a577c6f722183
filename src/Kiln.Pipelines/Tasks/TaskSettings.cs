using System.Globalization;
using System.Text.Json.Nodes;
using Kiln.Core;
using Kiln.Core.Packaging;
using Kiln.Pipelines.Definition;

namespace Kiln.Pipelines.Tasks;

/// <summary>
/// Load-time checks and run-time readers for task settings, shared by the task kinds of every area.
/// A setting that holds a <c>{{ ... }}</c> reference is checked only when the task runs, once its value is known.
/// </summary>
public static class TaskSettings
{
    /// <summary>The setting every kind that reads models accepts: the tracking store that resolves models:/ and runs:/ URIs.</summary>
    public const string TrackingUriKey = "tracking_uri";

    /// <summary>Required settings present, and no setting the kind does not know (with the list of those it does).</summary>
    public static IEnumerable<TaskConfigError> Check(TaskDefinition task, string kind, string[] required, string[] optional)
    {
        foreach (var r in required)
            if (task.Config[r] is null) yield return new TaskConfigError(null, $"kind {kind} needs '{r}'");
        foreach (var (key, _) in task.Config)
            if (!required.Contains(key) && !optional.Contains(key) && key != TrackingUriKey)
                yield return new TaskConfigError(key, $"is not a setting of kind {kind} ({string.Join(", ", required.Concat(optional).Append(TrackingUriKey))})");
    }

    /// <summary>A setting's value at run time; an empty one fails the attempt.</summary>
    public static string Required(TaskContext c, string key) =>
        c.GetString(key) is { Length: > 0 } v ? v : throw new TaskFailedException($"'{key}' is empty");

    /// <summary>A number as a task output (round-trip text, invariant culture).</summary>
    public static string Output(double value) => value.ToString("R", CultureInfo.InvariantCulture);

    /// <summary>A count as a task output.</summary>
    public static string Output(long value) => value.ToString(CultureInfo.InvariantCulture);

    public static bool IsReference(JsonNode? node) =>
        node is JsonValue v && v.TryGetValue<string>(out var s) && s.Contains("{{", StringComparison.Ordinal);

    /// <summary>The literal text of a setting (a string, number or boolean), or null when absent or a reference.</summary>
    public static string? Literal(TaskDefinition task, string key) => task.Config[key] switch
    {
        null => null,
        var n when IsReference(n) => null,
        JsonValue v when v.TryGetValue<string>(out var s) => s,
        JsonValue v => v.ToJsonString(),
        _ => null,
    };

    public static IEnumerable<TaskConfigError> Bool(TaskDefinition task, string key)
    {
        var node = task.Config[key];
        if (node is null || IsReference(node)) yield break;
        if (node is JsonValue v && (v.TryGetValue<bool>(out _) || (v.TryGetValue<string>(out var s) && ParseBool(s) is not null))) yield break;
        yield return new TaskConfigError(key, $"must be true or false, not {node.ToJsonString()}");
    }

    public static IEnumerable<TaskConfigError> Int(TaskDefinition task, string key, int min)
    {
        var node = task.Config[key];
        if (node is null || IsReference(node)) yield break;
        var text = Literal(task, key);
        if (text is null || !int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) || n < min)
            yield return new TaskConfigError(key, $"must be a whole number of at least {min}, not {node.ToJsonString()}");
    }

    public static IEnumerable<TaskConfigError> Number(TaskDefinition task, string key, double min, double max)
    {
        var node = task.Config[key];
        if (node is null || IsReference(node)) yield break;
        var text = Literal(task, key);
        if (text is null || !double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var n) || n < min || n > max)
            yield return new TaskConfigError(key, $"must be {Range(min, max)}, not {node.ToJsonString()}");
    }

    private static string Range(double min, double max) => max == double.MaxValue
        ? $"a number of at least {min.ToString(CultureInfo.InvariantCulture)}"
        : $"a number from {min.ToString(CultureInfo.InvariantCulture)} to {max.ToString(CultureInfo.InvariantCulture)}";

    public static IEnumerable<TaskConfigError> OneOf(TaskDefinition task, string key, params string[] allowed)
    {
        var node = task.Config[key];
        if (node is null || IsReference(node)) yield break;
        var text = Literal(task, key);
        if (text is null || !allowed.Contains(text))
            yield return new TaskConfigError(key, $"must be one of {string.Join(", ", allowed)}, not {node.ToJsonString()}");
    }

    /// <summary>A list setting: a YAML sequence of strings, or one comma-separated string.</summary>
    public static IEnumerable<TaskConfigError> List(TaskDefinition task, string key)
    {
        var node = task.Config[key];
        if (node is null or JsonValue) yield break;
        if (node is JsonArray a && a.All(x => x is JsonValue)) yield break;
        yield return new TaskConfigError(key, "must be a list of names or one comma-separated string");
    }

    public static IEnumerable<TaskConfigError> Time(TaskDefinition task, string key)
    {
        var text = Literal(task, key);
        if (text is not null && ParseTime(text) is null)
            yield return new TaskConfigError(key, $"'{text}' is not a time (ISO 8601, e.g. 2024-05-01T00:00:00Z, or now)");
    }

    public static bool? ParseBool(string text) => text.Trim().ToLowerInvariant() switch
    {
        "true" or "yes" or "1" => true,
        "false" or "no" or "0" or "" => false,
        _ => null,
    };

    public static DateTime? ParseTime(string text)
    {
        if (text.Trim().Equals("now", StringComparison.OrdinalIgnoreCase)) return DateTime.UtcNow;
        return DateTime.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal, out var t) ? t : null;
    }

    // Run time: the values are resolved; a bad one fails the attempt naming the setting.

    public static bool GetBool(TaskContext c, string key, bool fallback)
    {
        var text = c.GetString(key);
        if (text is null) return fallback;
        return ParseBool(text) ?? throw new TaskFailedException($"'{key}' is '{text}', not true or false");
    }

    public static int GetInt(TaskContext c, string key, int fallback, int min)
    {
        var text = c.GetString(key);
        if (string.IsNullOrWhiteSpace(text)) return fallback;
        return int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) && n >= min
            ? n : throw new TaskFailedException($"'{key}' is '{text}', not a whole number of at least {min}");
    }

    public static double? GetNumber(TaskContext c, string key, double min, double max)
    {
        var text = c.GetString(key);
        if (string.IsNullOrWhiteSpace(text)) return null;
        return double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var n) && n >= min && n <= max
            ? n : throw new TaskFailedException($"'{key}' is '{text}', not {Range(min, max)}");
    }

    public static string? GetOneOf(TaskContext c, string key, params string[] allowed)
    {
        var text = c.GetString(key);
        if (string.IsNullOrWhiteSpace(text)) return null;
        return allowed.Contains(text.Trim()) ? text.Trim() : throw new TaskFailedException($"'{key}' is '{text}', not one of {string.Join(", ", allowed)}");
    }

    public static DateTime GetTime(TaskContext c, string key, string fallback)
    {
        var text = c.GetString(key) is { Length: > 0 } t ? t : fallback;
        return ParseTime(text) ?? throw new TaskFailedException($"'{key}' is '{text}', not a time (ISO 8601, e.g. 2024-05-01T00:00:00Z, or now)");
    }

    public static string[] GetList(TaskContext c, string key) => c.Config[key] switch
    {
        null => [],
        JsonArray a => [.. a.Select(x => x?.ToString() ?? "").SelectMany(Split)],
        var n => Split(c.GetString(key) ?? n.ToJsonString()),
    };

    private static string[] Split(string s) => s.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    /// <summary>A file path relative to the run's working directory; URIs (scheme://) and connection strings are left as they are.</summary>
    public static string LocalPath(TaskContext c, string location) =>
        location.Contains("://", StringComparison.Ordinal) || location.StartsWith("Host=", StringComparison.OrdinalIgnoreCase)
            ? location
            : Path.GetFullPath(location, c.WorkingDirectory);

    /// <summary>Where a task keeps what it writes by default: .kiln/pipeline-runs/RUN/TASK under the working directory.</summary>
    public static string TaskDirectory(TaskContext c) => Path.Combine(c.WorkingDirectory, ".kiln", "pipeline-runs", c.RunId, c.Task.Name);

    /// <summary>
    /// A model location as a package directory: a path (or file:// URI) relative to the working directory, or a
    /// models:/NAME/VERSION, models:/NAME@ALIAS or runs:/ URI resolved by the host's <see cref="ITaskModelResolver"/>
    /// (Kiln.Tracking's, through the task's tracking store).
    /// </summary>
    public static async Task<ResolvedModel> ResolveModelAsync(TaskContext c, string key)
    {
        var uri = Required(c, key);
        if (DirectoryModelLocator.IsRegistryUri(uri))
        {
            var resolver = c.Services?.GetService(typeof(ITaskModelResolver)) as ITaskModelResolver
                ?? throw new TaskFailedException($"'{key}' {uri}: this host has no model registry to resolve registry URIs");
            return await resolver.ResolveAsync(c, key, uri).ConfigureAwait(false);
        }
        try
        {
            return await new DirectoryModelLocator(c.WorkingDirectory).ResolveAsync(uri, c.CancellationToken).ConfigureAwait(false);
        }
        catch (KilnException e)
        {
            throw new TaskFailedException($"'{key}' {e.Message}", e);
        }
    }

    /// <summary>Runs a body that reports bad input as KilnException, turning those into clean task failures.</summary>
    public static async Task<T> CleanAsync<T>(Func<Task<T>> body, Func<string, string>? rewrite = null)
    {
        try
        {
            return await body().ConfigureAwait(false);
        }
        catch (Exception e) when (e is KilnException or IOException or InvalidDataException or UnauthorizedAccessException)
        {
            var message = e.Message.ReplaceLineEndings(" ");
            throw new TaskFailedException(rewrite is null ? message : rewrite(message), e);
        }
    }
}
