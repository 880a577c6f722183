using Kiln.Batch.Sources;
using Kiln.Batch.Validation;
using Kiln.Core;
using Kiln.Core.Data;

namespace Kiln.Batch.Sinks;

/// <summary>Who the job is: the output of one model over one input, so a resumed run can refuse a different one.</summary>
internal sealed record JobIdentity(string ModelUri, string ModelName, string? ModelVersion, string ModelSha256, string InputUri,
    string InputFingerprint, ShardSpec Shard, IReadOnlyList<SkippedFile>? Skipped = null)
{
    /// <summary>One string for the model and the input (not the shard: shards share a job).</summary>
    public string Key => Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(
        System.Text.Encoding.UTF8.GetBytes($"{ModelSha256}\n{InputFingerprint}")))[..32];
}

/// <summary>A finished part, as the manifest records it.</summary>
public sealed class PartRecord
{
    public required int FileIndex { get; init; }

    public required int Partition { get; init; }

    /// <summary>The input file or table the rows came from.</summary>
    public required string Source { get; init; }

    /// <summary>The 0-based row of the source where the partition starts.</summary>
    public required long FirstRow { get; init; }

    /// <summary>Rows written (input rows less rejected rows).</summary>
    public required long Rows { get; init; }

    public long Rejected { get; init; }

    public long UnseenCategories { get; init; }

    /// <summary>The part's file name in a directory sink.</summary>
    public string? File { get; init; }
}

/// <summary>Where scored rows go: one part per partition, each committed atomically.</summary>
internal interface IBatchSink : IAsyncDisposable
{
    string Uri { get; }

    /// <summary>Where rejected rows are written when the user did not say.</summary>
    string DefaultRejectsDirectory { get; }

    /// <summary>Prepares the sink (creates the directory or table) and returns the parts already done by this job (used by --resume).</summary>
    Task<IReadOnlySet<PartitionId>> OpenAsync(JobIdentity job, IReadOnlyList<OutputColumn> columns, bool resume, CancellationToken ct);

    Task<IPartWriter> BeginPartAsync(PartitionId partition, CancellationToken ct);

    /// <summary>Records the end of the job (all of this shard's partitions done, or not).</summary>
    Task FinishAsync(bool complete, CancellationToken ct);

    /// <summary>Where the user finds the rejects written to a directory (a sink that moves them elsewhere says where).</summary>
    string RejectsLocation(string directory) => directory;
}

/// <summary>Writes one part; nothing is visible until <see cref="CommitAsync"/>.</summary>
internal interface IPartWriter : IAsyncDisposable
{
    Task WriteAsync(DataTable rows, CancellationToken ct);

    Task CommitAsync(PartRecord record, CancellationToken ct);
}

/// <summary>Chooses the sink from the output's URI scheme.</summary>
internal static class BatchSinks
{
    public static IBatchSink Open(string output, string? key, bool partitionOnly = false)
    {
        if (output.StartsWith("sqlite:", StringComparison.OrdinalIgnoreCase)
            || output.StartsWith("postgresql:", StringComparison.OrdinalIgnoreCase)
            || output.StartsWith("postgres:", StringComparison.OrdinalIgnoreCase))
        {
            var location = SqlLocation.Parse(output, "--output");
            if (location.Table is null) throw new KilnException($"--output {output}: name the table to write (?table=NAME)");
            if (partitionOnly) throw new KilnException($"--output {output}: a distributed job writes a directory of Parquet parts, not a table");
            return new SqlTableSink(location, key);
        }
        if (Kiln.Storage.Objects.S3Location.IsS3(output))
        {
            if (key is not null) throw new KilnException("--key applies to table outputs only; a Parquet output is keyed by its parts");
            return new S3ParquetSink(Kiln.Storage.Objects.S3Storage.Open(output, "--output"), partitionOnly);
        }
        if (output.Contains("://", StringComparison.Ordinal) && !output.StartsWith("file://", StringComparison.Ordinal))
            throw new KilnException($"--output {output}: unknown scheme (use a directory, s3://BUCKET/PREFIX, sqlite:///path.db?table=T or postgresql://...?table=T)");
        if (key is not null) throw new KilnException("--key applies to table outputs only; a Parquet directory is keyed by its parts");
        if (output.StartsWith("file://", StringComparison.Ordinal)) output = new Uri(output).LocalPath;
        return new ParquetDirectorySink(Path.GetFullPath(output), partitionOnly);
    }
}
