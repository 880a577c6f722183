using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Reflection;
using Hangfire;
using Hangfire.Server;
using Kiln.Batch;
using Kiln.Workers.Batch;

namespace Kiln.Workers;

/// <summary>
/// A worker's instruments on its meter (its /metrics): jobs ended by queue and outcome, their duration, jobs running
/// now against the concurrency, scorer loads, and the batch instruments kiln server also has (rows and parts of the
/// partitions it scores). Labels are closed sets: queue names and outcomes, never a job, model or file.
/// </summary>
public sealed class WorkerMetrics
{
    public WorkerMetrics(Meter meter, int concurrency)
    {
        ArgumentNullException.ThrowIfNull(meter);
        Jobs = meter.CreateCounter<long>("kiln.worker.jobs", null, "Jobs this worker ended, by queue and outcome (succeeded, failed, cancelled: handed back by a stop).");
        Duration = meter.CreateHistogram<double>("kiln.worker.job.duration", "s", "Time a job ran on this worker, by queue and outcome.");
        Busy = meter.CreateUpDownCounter<int>("kiln.worker.busy", null, "Jobs running now on this worker, by queue (at most kiln_worker_concurrency in all).");
        meter.CreateObservableGauge("kiln.worker.concurrency", () => concurrency, null, "Jobs this worker runs at once (--concurrency).");
        ScorerLoads = meter.CreateCounter<long>("kiln.worker.scorer.loads", null,
            "Scorers partition jobs asked for: loaded (package read, pipeline built) or reused from the worker's cache.");
        Batch = new BatchMetrics(meter);
    }

    public Counter<long> Jobs { get; }

    public Histogram<double> Duration { get; }

    public UpDownCounter<int> Busy { get; }

    /// <summary>Scorers asked for by outcome: loaded, or reused from <see cref="ScorerCache"/>.</summary>
    public Counter<long> ScorerLoads { get; }

    /// <summary>Rows and parts of the partitions this worker scores (kiln_batch_rows_total, kiln_batch_parts_total).</summary>
    public BatchMetrics Batch { get; }

    /// <summary>The queue a job was enqueued to: its own, else its method's [Queue], else Hangfire's default.</summary>
    public static string QueueOf(Hangfire.Common.Job job)
    {
        ArgumentNullException.ThrowIfNull(job);
        return job.Queue ?? job.Method.GetCustomAttribute<QueueAttribute>()?.Queue ?? "default";
    }
}

/// <summary>Counts and times every job a worker performs (a Hangfire server filter).</summary>
internal sealed class WorkerMetricsFilter(WorkerMetrics metrics) : IServerFilter
{
    private const string StartedKey = "kiln.started";

    public void OnPerforming(PerformingContext context)
    {
        context.Items[StartedKey] = Stopwatch.GetTimestamp();
        metrics.Busy.Add(1, new KeyValuePair<string, object?>("queue", WorkerMetrics.QueueOf(context.BackgroundJob.Job)));
    }

    public void OnPerformed(PerformedContext context)
    {
        var queue = new KeyValuePair<string, object?>("queue", WorkerMetrics.QueueOf(context.BackgroundJob.Job));
        metrics.Busy.Add(-1, queue);
        var outcome = new KeyValuePair<string, object?>("outcome",
            context.Canceled || context.Exception is OperationCanceledException ? "cancelled" : context.Exception is not null && !context.ExceptionHandled ? "failed" : "succeeded");
        metrics.Jobs.Add(1, queue, outcome);
        if (context.Items.TryGetValue(StartedKey, out var started) && started is long t0)
            metrics.Duration.Record(Stopwatch.GetElapsedTime(t0).TotalSeconds, queue, outcome);
    }
}
