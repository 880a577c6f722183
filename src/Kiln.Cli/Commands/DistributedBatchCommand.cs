using System.Text.Json;
using Kiln.Batch;
using Kiln.Batch.Distributed;
using Kiln.Workers;
using Kiln.Workers.Batch;
using Spectre.Console;

namespace Kiln.Cli.Commands;

/// <summary><c>kiln batch --distributed</c>: plan, enqueue one job per partition, follow them with a bar, commit.</summary>
internal static class DistributedBatchCommand
{
    public static async Task<int> RunAsync(BatchOptions options, string db, int? partitions, bool json, CancellationToken ct)
    {
        // The database first: an unreachable one is reported before anything is planned or written.
        var storage = await WorkerStorage.OpenAsync(db, null, ct);
        var plan = await DistributedBatch.PlanAsync(options, partitions, ct);
        var tracking = Environment.GetEnvironmentVariable("KILN_TRACKING_URI") ?? ".kiln";
        if (!tracking.Contains("://", StringComparison.Ordinal)) tracking = Path.GetFullPath(tracking);
        var rows = plan.Rows is { } r ? $" ({r:N0} rows)" : "";
        Cli.Err.MarkupLineInterpolated($"[bold]{plan.PinnedModel}[/]: {plan.Partitions.Count} partitions of {plan.Input}{rows} -> {plan.Output}");
        BatchCommands.WarnSkipped(plan.SkippedFiles);

        DistributedProgress? last = null;
        var run = DistributedBatchRunner.RunAsync(storage, plan, options, tracking, p => last = p, ct);
        await ShowAsync(run, () => last);
        var result = await run;
        if (json)
        {
            Console.Out.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object>
            {
                ["output"] = result.Output,
                ["model"] = plan.PinnedModel,
                ["partitions"] = result.Partitions,
                ["rows"] = result.Rows,
                ["rejected"] = result.Rejected,
                ["seconds"] = result.Seconds,
                ["partitions_by_worker"] = result.PartitionsByWorker,
                ["skipped_files"] = (plan.SkippedFiles ?? []).Select(s => new Dictionary<string, string> { ["file"] = s.File, ["reason"] = s.Reason }).ToList(),
            }));
        }
        Cli.Err.MarkupLineInterpolated($"[green]done[/]: {result.Rows:N0} rows in {result.Partitions} partitions on {result.PartitionsByWorker.Count} worker(s) in {result.Seconds:0.0} s -> {result.Output}");
        if (result.Rejected > 0) Cli.Err.MarkupLineInterpolated($"[yellow]{result.Rejected:N0} rows rejected[/]: see {(plan.OutputIsS3 ? Kiln.Storage.Objects.S3Location.Parse(result.Output, "--output").Child("_rejects").ToString() : Path.Combine(result.Output, "_rejects"))}");
        return 0;
    }

    /// <summary>Partitions done, as a bar on a terminal or a line every few seconds otherwise; off a terminal, a notice when no worker has come.</summary>
    private static Task ShowAsync(Task run, Func<DistributedProgress?> read)
    {
        var waitingSaid = false;
        return ProgressDisplay.ShowAsync(run, "partitions",
            (task, _) =>
            {
                if (read() is not { } p) return;
                task.MaxValue = Math.Max(1, p.Partitions);
                task.Value = p.Done;
                task.Description = Markup.Escape($"{p.Done}/{p.Partitions} partitions, {p.Running} running, {p.Rows:N0} rows, {p.Workers} worker(s)");
            },
            elapsed => read() is { } p
                ? $"kiln batch: {p.Done}/{p.Partitions} partitions, {p.Running} running, {p.Rows:N0} rows, {ProgressDisplay.Rate(p.Rows, elapsed):N0} rows/s, {p.Workers} worker(s)"
                : null,
            elapsed =>
            {
                if (waitingSaid || elapsed <= TimeSpan.FromSeconds(3) || read() is not { Workers: 0 }) return;
                Console.Error.WriteLine("kiln batch: no kiln worker serves the batch queue yet; start one with kiln worker --db …");
                waitingSaid = true;
            });
    }
}
