using System.Text.Json;
using Hangfire;
using Hangfire.Common;
using Hangfire.States;
using Kiln.Batch;
using Kiln.Batch.Distributed;
using Kiln.Core;

namespace Kiln.Workers.Batch;

/// <summary>Progress of a distributed batch job, for the coordinator's bar.</summary>
public sealed record DistributedProgress(int Partitions, int Done, int Running, long Rows, int Workers);

/// <summary>What a distributed batch job did.</summary>
public sealed record DistributedResult(string Output, int Partitions, long Rows, long Rejected, double Seconds, IReadOnlyDictionary<string, int> PartitionsByWorker);

/// <summary>
/// The coordinator of a distributed batch job: enqueues one Hangfire job per planned partition on the <c>batch</c>
/// queue, follows them, and commits the output's manifest once every partition has committed its part. A partition
/// that fails fails the job: the jobs not yet run are deleted (running ones are cancelled by Hangfire), and the parts
/// already committed are removed, so a failed job leaves no partial output.
/// </summary>
public static class DistributedBatchRunner
{
    /// <summary>How long a failing or cancelled job waits for partitions still running to stop before cleaning up.</summary>
    public static TimeSpan StopWait { get; set; } = TimeSpan.FromSeconds(60);

    public static async Task<DistributedResult> RunAsync(JobStorage storage, DistributedPlan plan, BatchOptions options, string? trackingUri,
        Action<DistributedProgress>? progress, CancellationToken ct)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var startedAt = DateTimeOffset.UtcNow;
        if (!plan.OutputIsS3) Directory.CreateDirectory(plan.Output);
        var client = new BackgroundJobClient(storage);
        var ids = new string[plan.Partitions.Count];
        for (var i = 0; i < ids.Length; i++)
        {
            var p = plan.Partitions[i];
            var args = new PartitionJobArgs
            {
                Model = plan.PinnedModel,
                ModelSha256 = plan.ModelSha256,
                TrackingUri = trackingUri,
                Input = plan.Input,
                Output = plan.Output,
                Keep = [.. options.Keep],
                SkipBadRows = options.OnBadRow == BadRowPolicy.Skip,
                BatchRows = options.BatchRows,
                Threads = options.Threads,
                FileIndex = p.FileIndex,
                Index = p.Index,
                ByteStart = p.ByteStart,
                ByteEnd = p.ByteEnd,
                File = p.File,
            };
            ids[i] = client.Create(Job.FromExpression<BatchPartitionJob>(j => j.RunAsync(args, CancellationToken.None)), new EnqueuedState(KilnQueues.Batch));
        }

        var outcomes = new PartitionOutcome?[ids.Length];
        var monitoring = storage.GetMonitoringApi();
        var workers = 0;
        var lastServerCheck = DateTime.MinValue;
        try
        {
            while (true)
            {
                ct.ThrowIfCancellationRequested();
                int done = 0, running = 0;
                long rows = 0;
                using (var connection = storage.GetConnection())
                {
                    for (var i = 0; i < ids.Length; i++)
                    {
                        if (outcomes[i] is { } known)
                        {
                            done++;
                            rows += known.Parts.Sum(p => p.Rows);
                            continue;
                        }
                        var state = connection.GetStateData(ids[i]);
                        switch (state?.Name)
                        {
                            case "Succeeded":
                                var json = SerializationHelper.Deserialize<string>(state.Data["Result"]);
                                var outcome = JsonSerializer.Deserialize(json, WorkerJson.Default.PartitionOutcome)
                                    ?? throw new KilnException($"partition {plan.Partitions[i]}: the worker returned no result");
                                outcomes[i] = outcome;
                                done++;
                                rows += outcome.Parts.Sum(p => p.Rows);
                                break;
                            case "Failed":
                                var message = state.Data.TryGetValue("ExceptionMessage", out var m) ? m : state.Reason ?? "failed";
                                throw new PartitionFailedException($"partition {plan.Partitions[i]} failed: {message}");
                            case "Deleted":
                                throw new PartitionFailedException($"partition {plan.Partitions[i]}: its job {ids[i]} was deleted (from the dashboard?)");
                            case "Processing":
                                running++;
                                break;
                        }
                    }
                }
                if (DateTime.UtcNow - lastServerCheck > TimeSpan.FromSeconds(2))
                {
                    lastServerCheck = DateTime.UtcNow;
                    workers = monitoring.Servers().Count(s => s.Queues.Contains(KilnQueues.Batch));
                }
                progress?.Invoke(new DistributedProgress(ids.Length, done, running, rows, workers));
                if (done == ids.Length) break;
                await Task.Delay(TimeSpan.FromMilliseconds(250), ct).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is PartitionFailedException or OperationCanceledException)
        {
            await AbandonAsync(storage, client, ids, plan).ConfigureAwait(false);
            throw;
        }

        var parts = outcomes.SelectMany(o => o!.Parts).ToList();
        await DistributedBatch.CommitAsync(plan, parts, startedAt, ct).ConfigureAwait(false);
        var byWorker = outcomes.GroupBy(o => o!.Worker).ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal);
        return new DistributedResult(plan.Output, ids.Length, parts.Sum(p => p.Rows), parts.Sum(p => p.Rejected), Math.Round(clock.Elapsed.TotalSeconds, 3), byWorker);
    }

    /// <summary>Deletes the job's unfinished partitions, waits for running ones to stop, then removes what was committed.</summary>
    private static async Task AbandonAsync(JobStorage storage, BackgroundJobClient client, string[] ids, DistributedPlan plan)
    {
        foreach (var id in ids) client.Delete(id);
        var deadline = DateTime.UtcNow + StopWait;
        while (DateTime.UtcNow < deadline)
        {
            var running = 0;
            using (var connection = storage.GetConnection())
            {
                foreach (var id in ids) if (connection.GetStateData(id)?.Name == ProcessingState.StateName) running++;
            }
            if (running == 0) break;
            await Task.Delay(250, CancellationToken.None).ConfigureAwait(false);
        }
        await DistributedBatch.AbandonAsync(plan, CancellationToken.None).ConfigureAwait(false);
    }
}

/// <summary>A partition of a distributed job failed; the message names it and the worker's error.</summary>
public sealed class PartitionFailedException(string message) : KilnException(message);
