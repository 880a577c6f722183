using System.Text.Json.Nodes;
using Kiln.Pipelines.Tasks;

namespace Kiln.Pipelines.Definition;

/// <summary>
/// Defines a pipeline in C#:
/// <code>
/// var p = new PipelineBuilder("nightly")
///     .Parameter("day", "2024-01-01")
///     .Task("fetch", "shell", new() { ["command"] = "echo {{ params.day }}" })
///     .Step("count", ctx => ..., dependsOn: ["fetch"])
///     .Build(kinds);
/// </code>
/// </summary>
public sealed class PipelineBuilder
{
    private readonly string _name;
    private readonly List<ParameterDefinition> _parameters = [];
    private readonly List<TaskDefinition> _tasks = [];
    private readonly List<CronTrigger> _schedules = [];
    private readonly List<string> _events = [];
    private int _maxConcurrency = 4;
    private string? _description;

    public PipelineBuilder(string name) => _name = name;

    public PipelineBuilder Describe(string description)
    {
        _description = description;
        return this;
    }

    /// <summary>Declares a parameter; a null default makes it required.</summary>
    public PipelineBuilder Parameter(string name, string? defaultValue = null, string? description = null)
    {
        _parameters.Add(new ParameterDefinition(name, defaultValue, description));
        return this;
    }

    public PipelineBuilder MaxConcurrency(int limit)
    {
        _maxConcurrency = limit;
        return this;
    }

    /// <summary>Adds a task of a registered kind.</summary>
    public PipelineBuilder Task(string name, string kind, JsonObject? config = null, IEnumerable<string>? dependsOn = null,
        RetryPolicy? retry = null, TimeSpan? timeout = null, bool cache = false)
    {
        _tasks.Add(new TaskDefinition
        {
            Name = name,
            Kind = kind,
            Config = config ?? [],
            DependsOn = dependsOn?.ToList() ?? [],
            Retry = retry ?? RetryPolicy.None,
            Timeout = timeout,
            Cache = cache,
        });
        return this;
    }

    /// <summary>Adds a C# step; its return value becomes the task's outputs.</summary>
    public PipelineBuilder Step(string name, Func<TaskContext, Task<IReadOnlyDictionary<string, string>>> body,
        IEnumerable<string>? dependsOn = null, RetryPolicy? retry = null, TimeSpan? timeout = null, JsonObject? config = null)
    {
        _tasks.Add(new TaskDefinition
        {
            Name = name,
            Kind = "csharp",
            Config = config ?? [],
            DependsOn = dependsOn?.ToList() ?? [],
            Retry = retry ?? RetryPolicy.None,
            Timeout = timeout,
            Step = body,
        });
        return this;
    }

    /// <summary>Runs on a cron schedule (five fields, or six with seconds) in a time zone (UTC when null).</summary>
    public PipelineBuilder Schedule(string cron, TimeZoneInfo? timeZone = null, MissedRunPolicy missed = MissedRunPolicy.Skip)
    {
        _schedules.Add(new CronTrigger(cron, timeZone ?? TimeZoneInfo.Utc, missed));
        return this;
    }

    /// <summary>Starts on the named event (<see cref="Execution.PipelineEngine.TriggerByEventAsync"/>).</summary>
    public PipelineBuilder OnEvent(string eventName)
    {
        _events.Add(eventName);
        return this;
    }

    /// <summary>Validates and returns the pipeline; throws <see cref="PipelineValidationException"/> like the YAML loader.</summary>
    public PipelineDefinition Build(TaskKindRegistry kinds)
    {
        var def = new PipelineDefinition
        {
            Name = _name,
            Description = _description,
            Parameters = [.. _parameters],
            Tasks = [.. _tasks],
            Schedules = [.. _schedules],
            Events = [.. _events],
            MaxConcurrency = _maxConcurrency,
        };
        PipelineValidator.Validate(def, kinds);
        return def;
    }
}
