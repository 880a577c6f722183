using Kiln.Core.Yaml;
using System.Text.Json.Nodes;
using Cronos;

namespace Kiln.Pipelines.Definition;

/// <summary>A validated pipeline: parameters, tasks and their dependencies, triggers.</summary>
public sealed class PipelineDefinition
{
    public required string Name { get; init; }
    public string? Description { get; init; }
    public IReadOnlyList<ParameterDefinition> Parameters { get; init; } = [];
    public IReadOnlyList<TaskDefinition> Tasks { get; init; } = [];
    public IReadOnlyList<CronTrigger> Schedules { get; init; } = [];
    public IReadOnlyList<string> Events { get; init; } = [];

    /// <summary>How many tasks of one run may execute at the same time.</summary>
    public int MaxConcurrency { get; init; } = 4;

    /// <summary>The YAML text the pipeline was loaded from (stored with each run so that it can be resumed); null for code.</summary>
    public string? SourceText { get; init; }

    /// <summary>The file the pipeline was loaded from, for messages; null for code or inline text.</summary>
    public string? SourcePath { get; init; }

    /// <summary>Where the tasks are written (the start of the file when it has no 'tasks'), for messages; none for code.</summary>
    public YamlPosition TasksAt { get; init; }

    public TaskDefinition? FindTask(string name)
    {
        foreach (var t in Tasks) if (t.Name == name) return t;
        return null;
    }

    /// <summary>The parameter values of a run: declared defaults overlaid with the given values.</summary>
    /// <exception cref="PipelineValidationException">a parameter has no default and was not given, or an unknown one was given.</exception>
    public IReadOnlyDictionary<string, string> ResolveParameters(IReadOnlyDictionary<string, string>? given)
    {
        var errors = new List<string>();
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var p in Parameters)
        {
            if (given is not null && given.TryGetValue(p.Name, out var v)) result[p.Name] = v;
            else if (p.Default is not null) result[p.Name] = p.Default;
            else errors.Add($"{Where(p.At)}parameter '{p.Name}' has no default and was not given (use --param {p.Name}=VALUE)");
        }
        if (given is not null)
        {
            foreach (var k in given.Keys)
            {
                if (!result.ContainsKey(k) && !Parameters.Any(p => p.Name == k))
                    errors.Add($"{Where(YamlPosition.None)}unknown parameter '{k}'; this pipeline declares: {(Parameters.Count == 0 ? "none" : string.Join(", ", Parameters.Select(p => p.Name)))}");
            }
        }
        if (errors.Count > 0) throw new PipelineValidationException(errors);
        return result;
    }

    internal string Where(YamlPosition at) =>
        SourcePath is null && !at.IsKnown ? $"pipeline '{Name}': " : $"{SourcePath ?? "pipeline"}{(at.IsKnown ? $":{at}" : "")}: ";
}

/// <summary>A declared parameter; <see cref="Default"/> null means the caller must give it.</summary>
public sealed record ParameterDefinition(string Name, string? Default, string? Description = null, YamlPosition At = default);

/// <summary>One task of a pipeline.</summary>
public sealed class TaskDefinition
{
    public required string Name { get; init; }
    public required string Kind { get; init; }

    /// <summary>The kind-specific settings (every key of the task that is not a reserved one).</summary>
    public JsonObject Config { get; init; } = [];

    public IReadOnlyList<string> DependsOn { get; init; } = [];
    public RetryPolicy Retry { get; init; } = RetryPolicy.None;
    public TimeSpan? Timeout { get; init; }

    /// <summary>Reuse the outputs of an earlier successful execution with the same inputs and definition.</summary>
    public bool Cache { get; init; }

    /// <summary>Where the task is in its YAML file (<see cref="YamlPosition.None"/> for code).</summary>
    public YamlPosition At { get; init; }

    /// <summary>Where each config key is, for error messages.</summary>
    public IReadOnlyDictionary<string, YamlPosition> ConfigPositions { get; init; } = new Dictionary<string, YamlPosition>();

    /// <summary>The body of a C# step (kind <c>csharp</c>); null otherwise.</summary>
    public Func<Tasks.TaskContext, Task<IReadOnlyDictionary<string, string>>>? Step { get; init; }
}

/// <summary>Retries with exponential backoff and jitter: delay n = min(initial * multiplier^(n-1), max) * (1 ± jitter).</summary>
public sealed record RetryPolicy(int MaxAttempts, TimeSpan InitialDelay, double Multiplier, TimeSpan MaxDelay, double Jitter)
{
    public static RetryPolicy None { get; } = new(1, TimeSpan.FromSeconds(1), 2, TimeSpan.FromMinutes(5), 0.2);

    /// <summary>The wait before the attempt that follows failed attempt number <paramref name="failedAttempt"/> (1-based).</summary>
    public TimeSpan DelayAfter(int failedAttempt, double random01)
    {
        var baseMs = InitialDelay.TotalMilliseconds * Math.Pow(Multiplier, Math.Max(0, failedAttempt - 1));
        baseMs = Math.Min(baseMs, MaxDelay.TotalMilliseconds);
        var factor = 1 + Jitter * (2 * random01 - 1);
        return TimeSpan.FromMilliseconds(Math.Max(0, baseMs * factor));
    }
}

/// <summary>What the scheduler does with occurrences that passed while it was not running.</summary>
public enum MissedRunPolicy
{
    /// <summary>Run only the latest missed occurrence, and only if it is recent (within the grace period).</summary>
    Skip,

    /// <summary>Run every missed occurrence, oldest first.</summary>
    CatchUp,
}

/// <summary>A cron schedule in a time zone.</summary>
public sealed record CronTrigger(string Expression, TimeZoneInfo TimeZone, MissedRunPolicy Missed, YamlPosition At = default)
{
    private CronExpression? _cron;

    public CronExpression Cron => _cron ??= CronParsing.Parse(Expression);

    /// <summary>The next occurrence strictly after <paramref name="from"/>.</summary>
    public DateTimeOffset? Next(DateTimeOffset from) => Cron.GetNextOccurrence(from, TimeZone, inclusive: false);

    /// <summary>A stable key for the scheduler's cursor.</summary>
    public string Key(string pipeline) => $"{pipeline}|{Expression}|{TimeZone.Id}";
}

internal static class CronParsing
{
    /// <summary>Five fields (minute precision) or six (with seconds first), as Cronos reads them.</summary>
    public static CronExpression Parse(string expression)
    {
        var fields = expression.Split(' ', StringSplitOptions.RemoveEmptyEntries).Length;
        return CronExpression.Parse(expression, fields == 6 ? CronFormat.IncludeSeconds : CronFormat.Standard);
    }
}
