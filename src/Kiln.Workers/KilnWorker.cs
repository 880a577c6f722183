using System.Globalization;
using Hangfire;
using Hangfire.Common;

namespace Kiln.Workers;

/// <summary>What a <c>kiln worker</c> process serves.</summary>
public sealed class WorkerOptions
{
    /// <summary>The queues served, in priority order: <c>batch</c> (partitions of distributed batch jobs) and <c>pipelines</c>.</summary>
    public IReadOnlyList<string> Queues { get; init; } = [KilnQueues.Batch, KilnQueues.Pipelines];

    /// <summary>Jobs run at once by this process.</summary>
    public int Concurrency { get; init; } = Math.Max(1, Environment.ProcessorCount);

    /// <summary>How long a stop waits for running jobs before they are handed back to the queue.</summary>
    public TimeSpan ShutdownTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>The name other processes see (the dashboard, a partition's record); default kiln-worker:HOST:PID.</summary>
    public string Name { get; init; } = string.Create(CultureInfo.InvariantCulture, $"kiln-worker:{Environment.MachineName}:{Environment.ProcessId}");

    /// <summary>Where the worker counts its jobs, rows and scorer loads (its /metrics); null: nowhere.</summary>
    public WorkerMetrics? Metrics { get; init; }

    /// <summary>The scorers the worker's partition jobs share (loaded once per pinned model).</summary>
    public Batch.ScorerCache Scorers { get; init; } = Batch.ScorerCache.Shared;

    /// <summary>The pipeline store, task kinds and services the pipelines queue's jobs run with; null: this worker refuses them.</summary>
    public Pipelines.PipelineWorker? Pipelines { get; init; }
}

/// <summary>The queues Kiln enqueues to.</summary>
public static class KilnQueues
{
    public const string Batch = "batch";
    public const string Pipelines = "pipelines";

    public static IReadOnlyList<string> All { get; } = [Batch, Pipelines];
}

/// <summary>
/// A Hangfire server in this process: takes jobs from the queues until stopped. A stop (SIGTERM) lets running jobs
/// finish within <see cref="WorkerOptions.ShutdownTimeout"/>; jobs still running then are cancelled and handed back
/// to their queue for another worker. A killed worker's jobs come back after the storage's invisibility timeout.
/// </summary>
public static class KilnWorker
{
    /// <summary>Runs until <paramref name="stop"/> is signalled, then shuts down gracefully.</summary>
    public static async Task RunAsync(JobStorage storage, WorkerOptions options, Action<string>? started, CancellationToken stop)
    {
        foreach (var q in options.Queues)
        {
            if (!KilnQueues.All.Contains(q)) throw new Kiln.Core.KilnException($"--queues {q}: unknown queue (Kiln's queues: {string.Join(", ", KilnQueues.All)})");
        }
        if (options.Queues.Contains(KilnQueues.Pipelines) && options.Pipelines is null)
            throw new Kiln.Core.KilnException("--queues pipelines: this worker has no pipeline store to run tasks with");
        if (options.Concurrency < 1) throw new Kiln.Core.KilnException($"--concurrency {options.Concurrency}: must be at least 1");
        var filters = new JobFilterCollection();
        if (options.Metrics is { } metrics) filters.Add(new WorkerMetricsFilter(metrics));
        var server = new BackgroundJobServer(new BackgroundJobServerOptions
        {
            Activator = new WorkerJobActivator(options),
            FilterProvider = new JobFilterProviderCollection(JobFilterProviders.Providers, filters),
            ServerName = options.Name,
            Queues = [.. options.Queues],
            WorkerCount = options.Concurrency,
            // A stop lets running jobs go on for StopTimeout (their cancellation token is not signalled before);
            // after that they are cancelled and handed back, and the server is gone a few seconds later.
            StopTimeout = options.ShutdownTimeout,
            ShutdownTimeout = options.ShutdownTimeout + TimeSpan.FromSeconds(5),
        }, storage);
        started?.Invoke(options.Name);
        try
        {
            await Task.Delay(Timeout.Infinite, stop).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
        server.SendStop();
        await server.WaitForShutdownAsync(CancellationToken.None).ConfigureAwait(false);
        server.Dispose();
    }
}

/// <summary>Makes Kiln's jobs with the worker's scorer cache and metrics; any other job type as Hangfire would.</summary>
internal sealed class WorkerJobActivator(WorkerOptions options) : JobActivator
{
    public override object ActivateJob(Type jobType) =>
        jobType == typeof(Batch.BatchPartitionJob) ? new Batch.BatchPartitionJob(options.Scorers, options.Metrics)
        : jobType == typeof(Pipelines.PipelineTaskJob) ? new Pipelines.PipelineTaskJob(options.Pipelines)
        : base.ActivateJob(jobType);
}
