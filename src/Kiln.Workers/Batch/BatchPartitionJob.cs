using System.Text.Json;
using System.Text.Json.Serialization;
using Hangfire;
using Kiln.Batch;
using Kiln.Batch.Sinks;
using Kiln.Core;
using Kiln.Core.Packaging;
using Kiln.Scoring;
using Kiln.Tracking;

namespace Kiln.Workers.Batch;

/// <summary>What a worker needs to score one partition: the plan's pinned model and the partition.</summary>
public sealed class PartitionJobArgs
{
    /// <summary>The pinned model (models:/NAME/VERSION, runs:/…, or a package directory).</summary>
    public string Model { get; set; } = "";

    /// <summary>SHA-256 of the package's kiln.json at planning time; a worker whose package differs refuses.</summary>
    public string ModelSha256 { get; set; } = "";

    /// <summary>Where a registry URI is resolved (the coordinator's tracking URI); null for a package directory.</summary>
    public string? TrackingUri { get; set; }

    public string Input { get; set; } = "";

    public string Output { get; set; } = "";

    public List<string> Keep { get; set; } = [];

    public bool SkipBadRows { get; set; }

    public int BatchRows { get; set; } = 65_536;

    public int Threads { get; set; }

    public int FileIndex { get; set; }

    public int Index { get; set; }

    public long? ByteStart { get; set; }

    public long? ByteEnd { get; set; }

    public string? File { get; set; }

    public BatchPartition Partition => new(FileIndex, Index, ByteStart, ByteEnd, File);
}

/// <summary>What a partition job returns (stored by Hangfire as the job's result).</summary>
public sealed class PartitionOutcome
{
    public required string Worker { get; init; }

    public required List<PartRecord> Parts { get; init; }

    public required double Seconds { get; init; }
}

/// <summary>The Hangfire job that scores one partition of a distributed batch job on a worker.</summary>
/// <param name="cache">The worker's scorers, shared by its jobs.</param>
/// <param name="metrics">The worker's instruments (rows and parts are counted while the partition is scored); null: none.</param>
public sealed class BatchPartitionJob(ScorerCache cache, WorkerMetrics? metrics)
{
    /// <summary>A job with this process's scorer cache and no metrics (what Hangfire's default activator makes).</summary>
    public BatchPartitionJob()
        : this(ScorerCache.Shared, null)
    {
    }

    /// <summary>
    /// Scores the partition and commits its part by an atomic rename (a second run of the same partition renames
    /// over the first: one copy). Not retried by Hangfire: a failure is the job's, and the coordinator reports it;
    /// a killed worker's partition is not a failure and runs again after the invisibility timeout.
    /// </summary>
    [AutomaticRetry(Attempts = 0, OnAttemptsExceeded = AttemptsExceededAction.Fail)]
    [Queue(KilnQueues.Batch)]
    public async Task<string> RunAsync(PartitionJobArgs args, CancellationToken cancellationToken)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        // The pinned model and its package's hash name the scorer: later partitions of the job (and later jobs of the
        // same version) on this worker reuse it instead of loading the package and building the pipeline again.
        var key = string.Join('\n', args.Model, args.ModelSha256, args.TrackingUri ?? "");
        using var lease = await cache.AcquireAsync(key, ct => LoadAsync(args, ct), cancellationToken).ConfigureAwait(false);
        var (resolved, scorer) = lease.Loaded;
        metrics?.ScorerLoads.Add(1, new KeyValuePair<string, object?>("outcome", lease.Fresh ? "loaded" : "reused"));
        var job = new BatchJob(new BatchOptions
        {
            Model = args.Model,
            Input = args.Input,
            Output = args.Output,
            Keep = args.Keep,
            OnBadRow = args.SkipBadRows ? BadRowPolicy.Skip : BadRowPolicy.Fail,
            BatchRows = args.BatchRows,
            Threads = args.Threads,
            Partition = args.Partition,
            Resolved = resolved,
            Scorer = scorer,
        });
        var follower = metrics?.Batch.Follow(job.Status);
        BatchResult result;
        try
        {
            var run = job.RunAsync(cancellationToken);
            // Rows are counted as they are scored, so a dashboard's rows per second follows a long partition.
            while (follower is not null && await Task.WhenAny(run, Task.Delay(TimeSpan.FromSeconds(2), CancellationToken.None)).ConfigureAwait(false) != run)
                follower.Record();
            result = await run.ConfigureAwait(false);
        }
        finally
        {
            follower?.Record();
        }
        var outcome = new PartitionOutcome
        {
            Worker = WorkerIdentity.Name,
            Parts = [.. result.Parts ?? []],
            Seconds = Math.Round(clock.Elapsed.TotalSeconds, 3),
        };
        return JsonSerializer.Serialize(outcome, WorkerJson.Default.PartitionOutcome);
    }

    /// <summary>Resolves the pinned model, checks its package is the one planned, and opens its scorer.</summary>
    private static async Task<LoadedScorer> LoadAsync(PartitionJobArgs args, CancellationToken ct)
    {
        var stores = DirectoryModelLocator.IsRegistryUri(args.Model) ? TrackingStores.Open(args.TrackingUri) : null;
        await using var storesScope = (stores ?? (IAsyncDisposable)NoStores.Instance).ConfigureAwait(false);
        IModelLocator locator = stores is null ? new DirectoryModelLocator() : new RegistryModelLocator(stores);
        var resolved = await locator.ResolveAsync(args.Model, ct).ConfigureAwait(false);
        var sha = ModelPackage.Sha256OfFile(Path.Combine(resolved.PackageDirectory, PackageManifest.FileName));
        if (!string.Equals(sha, args.ModelSha256, StringComparison.Ordinal))
            throw new KilnException($"{args.Model}: the package this worker finds (kiln.json {sha[..12]}) is not the one the job was planned with ({args.ModelSha256[..Math.Min(12, args.ModelSha256.Length)]})");
        return new LoadedScorer(resolved, Scorers.Open(resolved.PackageDirectory));
    }
}

/// <summary>This process's name as recorded with the partitions it runs.</summary>
public static class WorkerIdentity
{
    public static string Name { get; set; } = $"{Environment.MachineName}:{Environment.ProcessId}";
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(PartitionOutcome))]
internal sealed partial class WorkerJson : JsonSerializerContext;

internal sealed class NoStores : IAsyncDisposable
{
    public static NoStores Instance { get; } = new();

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
