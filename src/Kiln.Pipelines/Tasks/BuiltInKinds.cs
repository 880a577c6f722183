using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using Kiln.Pipelines.Definition;
using Kiln.Pipelines.Execution;

namespace Kiln.Pipelines.Tasks;

/// <summary>Does nothing and succeeds; its <c>outputs</c> mapping (if any) is returned as its outputs.</summary>
public sealed class NoopTaskKind : ITaskKind
{
    private static readonly IReadOnlyDictionary<string, string> s_empty = new Dictionary<string, string>();

    public string Name => "noop";

    public IEnumerable<TaskConfigError> Validate(TaskDefinition task)
    {
        foreach (var key in task.Config.Select(kv => kv.Key))
        {
            if (key != "outputs") yield return new TaskConfigError(key, "is not a setting of kind noop (it takes only 'outputs')");
        }
        if (task.Config["outputs"] is { } o && o is not JsonObject) yield return new TaskConfigError("outputs", "must be a mapping of name to value");
    }

    public Task<IReadOnlyDictionary<string, string>> ExecuteAsync(TaskContext context)
    {
        if (context.Config["outputs"] is not JsonObject o) return Task.FromResult(s_empty);
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (k, v) in o) result[k] = v is JsonValue jv && jv.TryGetValue<string>(out var s) ? s : v?.ToJsonString() ?? "";
        return Task.FromResult<IReadOnlyDictionary<string, string>>(result);
    }
}

/// <summary>A C# delegate given with the builder (<see cref="PipelineBuilder.Step"/>).</summary>
public sealed class CSharpStepTaskKind : ITaskKind
{
    public string Name => "csharp";

    public IEnumerable<TaskConfigError> Validate(TaskDefinition task)
    {
        if (task.Step is null) yield return new TaskConfigError(null, "kind csharp is only for pipelines defined in C# (PipelineBuilder.Step)");
    }

    public Task<IReadOnlyDictionary<string, string>> ExecuteAsync(TaskContext context) =>
        context.Task.Step?.Invoke(context) ?? throw new TaskFailedException("this C# step has no body (was the pipeline loaded from its stored text rather than from code?)");
}

/// <summary>
/// Runs a command through <c>/bin/sh -c</c> (or <c>cmd /c</c> on Windows). Exit code 0 succeeds.
/// stdout and stderr lines go to the task log. The script sets outputs by writing
/// <c>name=value</c> lines to the file named by <c>$KILN_OUTPUT</c>; outputs <c>exit_code</c> and
/// <c>stdout</c> (its last line) are always set.
/// </summary>
public sealed class ShellTaskKind : ITaskKind
{
    public string Name => "shell";

    public IEnumerable<TaskConfigError> Validate(TaskDefinition task)
    {
        var command = task.Config["command"];
        if (command is null) yield return new TaskConfigError(null, "kind shell needs 'command'");
        else if (command is not JsonValue v || !v.TryGetValue<string>(out _)) yield return new TaskConfigError("command", "must be a string");
        if (task.Config["env"] is { } env && env is not JsonObject) yield return new TaskConfigError("env", "must be a mapping of variable to value");
        foreach (var key in task.Config.Select(kv => kv.Key))
        {
            if (key is not ("command" or "env" or "working_directory"))
                yield return new TaskConfigError(key, "is not a setting of kind shell (command, env, working_directory)");
        }
    }

    public async Task<IReadOnlyDictionary<string, string>> ExecuteAsync(TaskContext context)
    {
        var command = context.GetString("command")!;
        var outputFile = Path.Combine(Path.GetTempPath(), $"kiln-output-{Guid.NewGuid():N}");
        // On Unix the command runs in a session of its own (setsid) under a small wrapper whose watcher kills the
        // whole group when this process's end of the stdin pipe closes: no task process outlives its runner, even
        // one killed with SIGKILL (ProcessGroups).
        var setsid = ProcessGroups.Setsid;
        var psi = OperatingSystem.IsWindows() ? new ProcessStartInfo("cmd") { ArgumentList = { "/c", command } }
            : setsid is null ? new ProcessStartInfo("/bin/sh") { ArgumentList = { "-c", command } }
            : new ProcessStartInfo(setsid) { ArgumentList = { "/bin/sh", "-c", ProcessGroups.Wrapper, "kiln-task", command } };
        psi.RedirectStandardInput = setsid is not null;
        psi.RedirectStandardOutput = true;
        psi.RedirectStandardError = true;
        psi.UseShellExecute = false;
        psi.WorkingDirectory = context.GetString("working_directory") is { Length: > 0 } wd
            ? Path.GetFullPath(wd, context.WorkingDirectory) : context.WorkingDirectory;
        psi.Environment["KILN_OUTPUT"] = outputFile;
        psi.Environment["KILN_RUN_ID"] = context.RunId;
        psi.Environment["KILN_TASK"] = context.Task.Name;
        psi.Environment["KILN_ATTEMPT"] = context.Attempt.ToString(CultureInfo.InvariantCulture);
        if (context.Config["env"] is JsonObject env)
        {
            foreach (var (k, v) in env) psi.Environment[k] = v is JsonValue jv && jv.TryGetValue<string>(out var s) ? s : v?.ToJsonString() ?? "";
        }

        string? lastLine = null;
        using var process = new Process { StartInfo = psi };
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lastLine = e.Data;
            context.Log.Info(e.Data);
        };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null) context.Log.Error(e.Data);
        };
        try
        {
            if (!process.Start()) throw new TaskFailedException("could not start /bin/sh");
            // setsid execs in place (its caller is not a group leader), so the shell's pid is the group's id.
            var group = setsid is null ? 0 : process.Id;
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            try
            {
                if (group != 0 && context.ProcessGroupStarted is { } record) await record(group).ConfigureAwait(false);
                await process.WaitForExitAsync(context.CancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (group == 0)
            {
                try { process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
                throw;
            }
            finally
            {
                // Cancelled or timed out: the whole group goes. Finished: what the command left running in its
                // group (background jobs, the watcher) ends with the task.
                if (group != 0) ProcessGroups.Kill(group);
            }
            // WaitForExitAsync returns once the output streams are drained too.
            if (process.ExitCode != 0) throw new TaskFailedException($"command exited with code {process.ExitCode}");
            var outputs = new Dictionary<string, string>(StringComparer.Ordinal)
            {
                ["exit_code"] = "0",
                ["stdout"] = lastLine ?? "",
            };
            if (File.Exists(outputFile))
            {
                foreach (var line in await File.ReadAllLinesAsync(outputFile, Encoding.UTF8, context.CancellationToken).ConfigureAwait(false))
                {
                    var eq = line.IndexOf('=', StringComparison.Ordinal);
                    if (eq > 0) outputs[line[..eq].Trim()] = line[(eq + 1)..];
                }
            }
            return outputs;
        }
        finally
        {
            try { File.Delete(outputFile); } catch (IOException) { }
        }
    }
}
