using Kiln.Pipelines.Definition;
using Kiln.Pipelines.State;
using Kiln.Pipelines.Tasks;

namespace Kiln.Pipelines.Execution;

/// <summary>
/// Runs the unfinished tasks of one run until each is in a final state. All state lives in the
/// store, so another executor (a distributed engine) can take the same run over.
/// </summary>
public interface IExecutor
{
    Task<RunState> ExecuteAsync(RunExecution execution, CancellationToken cancellationToken);
}

/// <summary>Everything an executor needs for one run.</summary>
public sealed class RunExecution
{
    public required RunRecord Run { get; init; }
    public required PipelineDefinition Definition { get; init; }
    public required IPipelineStore Store { get; init; }
    public required TaskKindRegistry Kinds { get; init; }

    /// <summary>The lease owner, recorded with every attempt.</summary>
    public required string Owner { get; init; }

    /// <summary>Who held the run before this execution (a dead process when recovering), for messages.</summary>
    public string? PreviousOwner { get; init; }

    public TimeProvider Time { get; init; } = TimeProvider.System;
    public string WorkingDirectory { get; init; } = Environment.CurrentDirectory;
    public IServiceProvider? Services { get; init; }

    /// <summary>How often buffered log lines of running tasks are written to the store.</summary>
    public TimeSpan LogFlushInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Called on every task state change (progress display); must not block.</summary>
    public Action<TaskStateChange>? OnTaskStateChanged { get; init; }
}

/// <summary>A task of a run moved to <see cref="State"/>.</summary>
public sealed record TaskStateChange(string RunId, string Task, TaskState State, int Attempt, string? Error);
