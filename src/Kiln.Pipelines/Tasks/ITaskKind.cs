using System.Text.Json.Nodes;
using Kiln.Pipelines.Definition;

namespace Kiln.Pipelines.Tasks;

/// <summary>
/// A kind of task (shell, train, register, ...). Kinds are stateless: everything an execution
/// needs comes through the <see cref="TaskContext"/>. Executions must be idempotent, because a
/// task interrupted by a crash runs again when the run resumes.
/// </summary>
public interface ITaskKind
{
    /// <summary>The name used in YAML (<c>kind: shell</c>).</summary>
    string Name { get; }

    /// <summary>Checks a task's config when the pipeline is loaded; yields nothing when it is valid.</summary>
    IEnumerable<TaskConfigError> Validate(TaskDefinition task);

    /// <summary>Runs one attempt and returns its outputs. Throw to fail the attempt
    /// (<see cref="TaskSkippedException"/> to skip the task and everything downstream of it).</summary>
    Task<IReadOnlyDictionary<string, string>> ExecuteAsync(TaskContext context);
}

/// <summary>A problem with one config key of a task (<see cref="Field"/> null for the task as a whole).</summary>
public sealed record TaskConfigError(string? Field, string Message);

/// <summary>Thrown by a task to mark itself (and its dependents) skipped rather than failed, e.g. a gate that did not pass.</summary>
public sealed class TaskSkippedException : Exception
{
    public TaskSkippedException(string reason) : base(reason) { }

    public TaskSkippedException() { }

    public TaskSkippedException(string message, Exception inner) : base(message, inner) { }
}

/// <summary>A clean task failure: the message is shown as the attempt's error without a stack trace.</summary>
public sealed class TaskFailedException : Exception
{
    public TaskFailedException(string message) : base(message) { }

    public TaskFailedException() { }

    public TaskFailedException(string message, Exception inner) : base(message, inner) { }
}

/// <summary>What one attempt of a task sees.</summary>
public sealed class TaskContext
{
    public required string RunId { get; init; }
    public required string PipelineName { get; init; }
    public required TaskDefinition Task { get; init; }

    /// <summary>1 for the first attempt.</summary>
    public required int Attempt { get; init; }

    /// <summary>The task's config with every <c>{{ ... }}</c> reference resolved.</summary>
    public required JsonObject Config { get; init; }

    public required IReadOnlyDictionary<string, string> Parameters { get; init; }

    /// <summary>The outputs of the tasks this one depends on directly, by task name.</summary>
    public required IReadOnlyDictionary<string, IReadOnlyDictionary<string, string>> Upstream { get; init; }

    /// <summary>Lines written here are stored with the attempt (<c>kiln pipeline logs</c>).</summary>
    public required ITaskLog Log { get; init; }

    /// <summary>Signalled when the run is cancelled or the task's timeout passes.</summary>
    public required CancellationToken CancellationToken { get; init; }

    /// <summary>The directory shell commands run in.</summary>
    public string WorkingDirectory { get; init; } = Environment.CurrentDirectory;

    /// <summary>Services of the host (registry clients and the like for the kinds that need them); may be null.</summary>
    public IServiceProvider? Services { get; init; }

    /// <summary>
    /// A kind that starts processes in a group of their own calls this with the group id once started, so the
    /// executor records it with the attempt (and a resumed run can kill a survivor); null when nobody records it.
    /// </summary>
    public Func<int, Task>? ProcessGroupStarted { get; init; }

    /// <summary>A config value as a string, or null when absent.</summary>
    public string? GetString(string key) => Config[key] switch
    {
        null => null,
        JsonValue v when v.TryGetValue<string>(out var s) => s,
        var n => n.ToJsonString(),
    };
}

/// <summary>The persisted log of one task attempt.</summary>
public interface ITaskLog
{
    void Info(string line);

    void Error(string line);
}
