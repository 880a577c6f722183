using System.Text.Json;
using Kiln.Pipelines.Definition;
using Kiln.Pipelines.State;

namespace Kiln.Pipelines.Http;

/// <summary>POST /api/v1/pipelines/runs: a catalog pipeline by name, or a YAML definition inline.</summary>
public sealed class StartRunRequest
{
    public string? Pipeline { get; set; }
    public string? Definition { get; set; }
    /// <summary>Parameter values: strings, or numbers and booleans (taken as their JSON text).</summary>
    public Dictionary<string, JsonElement>? Params { get; set; }
}

/// <summary>POST /api/v1/pipelines/events/{name}.</summary>
public sealed class EventRequest
{
    /// <summary>
    /// The event's fields. Those named like a parameter of a pipeline become its values: strings as they are,
    /// numbers and booleans as their JSON text, lists of scalars joined with commas, objects as JSON; null is left out.
    /// </summary>
    public Dictionary<string, JsonElement>? Payload { get; set; }
}

/// <summary>Turns JSON parameter values (from a start request or an event payload) into the strings parameters hold.</summary>
public static class ParameterValues
{
    public static Dictionary<string, string>? ToStrings(Dictionary<string, JsonElement>? values)
    {
        if (values is null) return null;
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (key, value) in values)
        {
            if (Text(value) is { } text) result[key] = text;
        }
        return result;
    }

    private static string? Text(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.String => value.GetString(),
        JsonValueKind.Number => value.GetRawText(),
        JsonValueKind.True => "true",
        JsonValueKind.False => "false",
        JsonValueKind.Null or JsonValueKind.Undefined => null,
        JsonValueKind.Array when value.EnumerateArray().All(e => e.ValueKind is not (JsonValueKind.Object or JsonValueKind.Array)) =>
            string.Join(",", value.EnumerateArray().Select(Text).Where(t => t is not null)),
        _ => value.GetRawText(),
    };
}

public sealed record RunDto(string RunId, string Pipeline, string State, string Trigger, IReadOnlyDictionary<string, string> Params,
    DateTimeOffset CreatedAt, DateTimeOffset? StartedAt, DateTimeOffset? FinishedAt, string? Error, string? Owner,
    DateTimeOffset? ScheduledFor, bool CancelRequested)
{
    public static RunDto From(RunRecord r) => new(r.RunId, r.Pipeline, r.State.Name(), r.Trigger, r.Parameters, r.CreatedAt,
        r.StartedAt, r.FinishedAt, r.Error, r.Owner, r.ScheduledFor, r.CancelRequested);
}

public sealed record TaskDto(string Task, string Kind, string State, IReadOnlyList<string> DependsOn, int Attempts,
    DateTimeOffset? StartedAt, DateTimeOffset? FinishedAt, IReadOnlyDictionary<string, string>? Outputs, string? Error, bool Cached)
{
    public static TaskDto From(TaskRecord t) => new(t.Task, t.Kind, t.State.Name(), t.DependsOn, t.Attempts, t.StartedAt,
        t.FinishedAt, t.Outputs, t.Error, t.Cached);
}

public sealed record AttemptDto(string Task, int Attempt, string State, DateTimeOffset StartedAt, DateTimeOffset? FinishedAt, string? Error, string? Owner,
    string? ProcessGroup = null)
{
    public static AttemptDto From(AttemptRecord a) => new(a.Task, a.Attempt, a.State, a.StartedAt, a.FinishedAt, a.Error, a.Owner, a.ProcessGroup);
}

public sealed record RunDetailDto(RunDto Run, IReadOnlyList<TaskDto> Tasks, IReadOnlyList<AttemptDto> Attempts);

public sealed record RunListDto(IReadOnlyList<RunDto> Runs);

public sealed record LogDto(long Id, string Task, int Attempt, DateTimeOffset At, string Stream, string Line);

/// <summary>Log lines; pass <see cref="NextAfter"/> as <c>after</c> to read on.</summary>
public sealed record LogListDto(IReadOnlyList<LogDto> Logs, long NextAfter);

public sealed record ScheduleDto(string Cron, string Timezone, string Missed);

public sealed record PipelineDto(string Name, string? Description, IReadOnlyList<string> Tasks, IReadOnlyDictionary<string, string?> Parameters,
    IReadOnlyList<ScheduleDto> Schedules, IReadOnlyList<string> Events)
{
    public static PipelineDto From(PipelineDefinition p) => new(p.Name, p.Description, [.. p.Tasks.Select(t => t.Name)],
        p.Parameters.ToDictionary(x => x.Name, x => x.Default),
        [.. p.Schedules.Select(s => new ScheduleDto(s.Expression, s.TimeZone.Id, s.Missed == MissedRunPolicy.CatchUp ? "catch_up" : "skip"))],
        p.Events);
}

public sealed record PipelineListDto(IReadOnlyList<PipelineDto> Pipelines);

public sealed record EventResultDto(string Event, IReadOnlyList<RunDto> Runs);
