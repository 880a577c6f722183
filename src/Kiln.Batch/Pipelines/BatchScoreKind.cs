using System.Globalization;
using System.Text.Json.Nodes;
using Kiln.Pipelines.Definition;
using Kiln.Pipelines.Tasks;

namespace Kiln.Batch.Pipelines;

/// <summary>The batch's pipeline task kinds.</summary>
public static class BatchTaskKinds
{
    public static TaskKindRegistry AddBatchKinds(this TaskKindRegistry registry) => registry.Add(new BatchScoreKind());
}

/// <summary>kind: batch_score — scores a file, directory, glob or SQL table with a model into Parquet parts or a table (kiln batch).</summary>
public sealed class BatchScoreKind : ITaskKind
{
    public string Name => "batch_score";

    public IEnumerable<TaskConfigError> Validate(TaskDefinition task)
    {
        foreach (var e in TaskSettings.Check(task, Name, ["model", "input", "output"],
            ["keep", "key", "on_bad_row", "on_bad_file", "resume", "shard", "batch_rows", "partition_rows", "threads", "rejects"])) yield return e;
        foreach (var e in TaskSettings.List(task, "keep")) yield return e;
        foreach (var e in TaskSettings.OneOf(task, "on_bad_row", "fail", "skip")) yield return e;
        foreach (var e in TaskSettings.OneOf(task, "on_bad_file", "fail", "skip")) yield return e;
        foreach (var e in TaskSettings.Bool(task, "resume")) yield return e;
        foreach (var e in TaskSettings.Int(task, "batch_rows", 1)) yield return e;
        foreach (var e in TaskSettings.Int(task, "partition_rows", 1)) yield return e;
        foreach (var e in TaskSettings.Int(task, "threads", 0)) yield return e;
        if (TaskSettings.Literal(task, "shard") is { } shard)
        {
            string? problem = null;
            try { ShardSpec.Parse(shard); }
            catch (Kiln.Core.KilnException) { problem = $"'{shard}' is not i/N with 0 <= i < N (for example 0/3)"; }
            if (problem is not null) yield return new TaskConfigError("shard", problem);
        }
        if (TaskSettings.Literal(task, "key") is { } key && task.Config["keep"] is { } keep && !TaskSettings.IsReference(keep))
        {
            var kept = keep is JsonArray a ? a.Select(x => x?.ToString() ?? "") : (keep.ToString()).Split(',', StringSplitOptions.TrimEntries);
            if (!kept.Contains(key)) yield return new TaskConfigError("key", $"'{key}' must also be a 'keep' column");
        }
    }

    public async Task<IReadOnlyDictionary<string, string>> ExecuteAsync(TaskContext c)
    {
        var resolved = await TaskSettings.ResolveModelAsync(c, "model").ConfigureAwait(false);
        var model = TaskSettings.Required(c, "model");
        var output = TaskSettings.LocalPath(c, TaskSettings.Required(c, "output"));
        // A retry (or a run resumed after a crash) finishes what the earlier attempt wrote instead of refusing its output.
        var resume = TaskSettings.GetBool(c, "resume", c.Attempt > 1);
        var options = new BatchOptions
        {
            Model = model,
            Input = TaskSettings.LocalPath(c, TaskSettings.Required(c, "input")),
            Output = output,
            Keep = TaskSettings.GetList(c, "keep"),
            Key = c.GetString("key") is { Length: > 0 } k ? k : null,
            Shard = Shard(c),
            OnBadRow = TaskSettings.GetOneOf(c, "on_bad_row", "fail", "skip") == "skip" ? BadRowPolicy.Skip : BadRowPolicy.Fail,
            OnBadFile = TaskSettings.GetOneOf(c, "on_bad_file", "fail", "skip") == "skip" ? BadFilePolicy.Skip : BadFilePolicy.Fail,
            Resume = resume,
            BatchRows = TaskSettings.GetInt(c, "batch_rows", 65_536, 1),
            PartitionRows = TaskSettings.GetInt(c, "partition_rows", 1_000_000, 1),
            Threads = TaskSettings.GetInt(c, "threads", 0, 0),
            RejectsDirectory = c.GetString("rejects") is { Length: > 0 } r ? TaskSettings.LocalPath(c, r) : null,
            Resolved = resolved,
        };
        c.Log.Info($"scoring {options.Input} with {model} into {output}{(resume ? " (resuming)" : "")}");
        var job = new BatchJob(options);
        // A host that exports metrics (kiln server) registers BatchMetrics; rows and parts are counted as they are written.
        var metrics = (c.Services?.GetService(typeof(BatchMetrics)) as BatchMetrics)?.Follow(job.Status);
        BatchResult result;
        try
        {
            result = await TaskSettings.CleanAsync(async () =>
            {
                var run = job.RunAsync(c.CancellationToken);
                while (!c.CancellationToken.IsCancellationRequested
                    && await Task.WhenAny(run, Task.Delay(TimeSpan.FromSeconds(5), c.CancellationToken)).ConfigureAwait(false) != run)
                {
                    metrics?.Record();
                    if (job.Status.Scoring) c.Log.Info($"{job.Status.RowsDone:N0} rows, {job.Status.PartsDone} parts" + (job.Status.RowsTotal is { } t ? $" of {t:N0} rows" : ""));
                }
                return await run.ConfigureAwait(false);
            }, Rewrite).ConfigureAwait(false);
        }
        catch
        {
            metrics?.Finish(succeeded: false);
            throw;
        }
        metrics?.Finish(succeeded: true);
        foreach (var skipped in result.SkippedFiles ?? []) c.Log.Info($"warning: skipped {skipped.File}: {skipped.Reason}");
        c.Log.Info($"{result.Rows:N0} rows in {result.PartsWritten} parts ({result.PartsResumed} already done), {result.Rejected:N0} rejected, in {result.Seconds:0.0} s -> {result.Output}");
        var outputs = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["output"] = result.Output,
            ["rows"] = TaskSettings.Output(result.Rows),
            ["rejected"] = TaskSettings.Output(result.Rejected),
            ["unseen_categories"] = TaskSettings.Output(result.UnseenCategories),
            ["parts_written"] = TaskSettings.Output(result.PartsWritten),
            ["parts_resumed"] = TaskSettings.Output(result.PartsResumed),
            ["package"] = resolved.PackageDirectory,
            ["model_version"] = resolved.RegistryVersion?.ToString(CultureInfo.InvariantCulture) ?? "",
        };
        if (result.RejectsDirectory is { } rejects) outputs["rejects"] = rejects;
        return outputs;
    }

    private static ShardSpec Shard(TaskContext c)
    {
        if (c.GetString("shard") is not { Length: > 0 } text) return ShardSpec.All;
        try
        {
            return ShardSpec.Parse(text);
        }
        catch (Kiln.Core.KilnException)
        {
            throw new TaskFailedException($"'shard' is '{text}', not i/N with 0 <= i < N (for example 0/3)");
        }
    }

    /// <summary>kiln batch names its options as flags; a task names them as settings.</summary>
    private static string Rewrite(string message) => message
        .Replace("pass --resume to finish it", "set 'resume: true' to finish it", StringComparison.Ordinal)
        .Replace("--batch-rows", "batch_rows", StringComparison.Ordinal).Replace("--partition-rows", "partition_rows", StringComparison.Ordinal)
        .Replace("--keep", "keep", StringComparison.Ordinal).Replace("--key", "key", StringComparison.Ordinal)
        .Replace("--threads", "threads", StringComparison.Ordinal).Replace("--resume", "resume", StringComparison.Ordinal)
        .Replace("--model", "model", StringComparison.Ordinal);
}

