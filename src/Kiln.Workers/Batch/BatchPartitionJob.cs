using System.Text.Json;
using System.Text.Json.Serialization;
using Hangfire;
using Kiln.Batch;
using Kiln.Batch.Sinks;
using Kiln.Core;
using Kiln.Core.Packaging;
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
public sealed class BatchPartitionJob
{
    /// <summary>
    /// Scores the partition and commits its part by an atomic rename (a second run of the same partition renames
    /// over the first: one copy). Not retried by Hangfire: a failure is the job's, and the coordinator reports it;
    /// a killed worker's partition is not a failure and runs again after the invisibility timeout.
    /// </summary>
    [AutomaticRetry(Attempts = 0, OnAttemptsExceeded = AttemptsExceededAction.Fail)]
    public async Task<string> RunAsync(PartitionJobArgs args, CancellationToken cancellationToken)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var stores = DirectoryModelLocator.IsRegistryUri(args.Model) ? TrackingStores.Open(args.TrackingUri) : null;
        await using var storesScope = (stores ?? (IAsyncDisposable)NoStores.Instance).ConfigureAwait(false);
        IModelLocator locator = stores is null ? new DirectoryModelLocator() : new RegistryModelLocator(stores);
        var resolved = await locator.ResolveAsync(args.Model, cancellationToken).ConfigureAwait(false);
        var sha = ModelPackage.Sha256OfFile(Path.Combine(resolved.PackageDirectory, PackageManifest.FileName));
        if (!string.Equals(sha, args.ModelSha256, StringComparison.Ordinal))
            throw new KilnException($"{args.Model}: the package this worker finds (kiln.json {sha[..12]}) is not the one the job was planned with ({args.ModelSha256[..Math.Min(12, args.ModelSha256.Length)]})");
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
            Locator = locator,
            Resolved = resolved,
        });
        var result = await job.RunAsync(cancellationToken).ConfigureAwait(false);
        var outcome = new PartitionOutcome
        {
            Worker = WorkerIdentity.Name,
            Parts = [.. result.Parts ?? []],
            Seconds = Math.Round(clock.Elapsed.TotalSeconds, 3),
        };
        return JsonSerializer.Serialize(outcome, WorkerJson.Default.PartitionOutcome);
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
