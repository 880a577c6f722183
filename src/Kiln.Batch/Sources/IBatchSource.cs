using Kiln.Core;
using Kiln.Core.Data;

namespace Kiln.Batch.Sources;

/// <summary>Where a batch job reads its rows: enumerates partitions deterministically and streams the wanted ones.</summary>
internal interface IBatchSource : IAsyncDisposable
{
    /// <summary>The input as the user named it.</summary>
    string Uri { get; }

    /// <summary>Can a numeric column hold text cells (CSV)? Then numeric inputs are read as text and checked row by row when skipping bad rows.</summary>
    bool Untyped { get; }

    /// <summary>The declared columns of every file or table, checked against the signature before any row is read.</summary>
    Task<IReadOnlyList<SourceSchema>> InspectAsync(CancellationToken ct);

    /// <summary>Identifies the input's content (files' paths, sizes and times; a table's URI) so a resumed job can refuse changed input.</summary>
    Task<string> FingerprintAsync(CancellationToken ct);

    /// <summary>Rows in the wanted partitions, when known without reading them (Parquet metadata, table key ranges).</summary>
    Task<long?> CountRowsAsync(Func<PartitionId, bool> wanted, CancellationToken ct);

    /// <summary>Streams the wanted partitions in order, each as chunks of at most <paramref name="batchRows"/> rows (a Parquet row group is one chunk).</summary>
    IAsyncEnumerable<SourceChunk> ReadAsync(IReadOnlyList<ColumnRequest> requests, Func<PartitionId, bool> wanted, int batchRows, CancellationToken ct);
}

/// <summary>Chooses the source from the input's URI scheme.</summary>
internal static class BatchSources
{
    public static IBatchSource Open(string input, int partitionRows, BatchPartition? only = null)
    {
        if (input.StartsWith("sqlite:", StringComparison.OrdinalIgnoreCase)
            || input.StartsWith("postgresql:", StringComparison.OrdinalIgnoreCase)
            || input.StartsWith("postgres:", StringComparison.OrdinalIgnoreCase))
        {
            if (only is not null) throw new KilnException($"--input {input}: a distributed job reads files (CSV or Parquet), not tables");
            return new SqlSource(SqlLocation.Parse(input, "--input"), partitionRows);
        }
        if (input.Contains("://", StringComparison.Ordinal) && !input.StartsWith("file://", StringComparison.Ordinal))
            throw new KilnException($"--input {input}: unknown scheme (use a path, a glob, sqlite:///path.db?table=T or postgresql://...?table=T)");
        if (input.StartsWith("file://", StringComparison.Ordinal)) input = new Uri(input).LocalPath;
        // One partition of a distributed job reads the one file the planner named (its index stays the plan's).
        if (only?.File is { } file)
        {
            if (!File.Exists(file)) throw new KilnException($"{file}: the input file of partition {only} has vanished since the job was planned");
            return new FileSource(input, [file], partitionRows, only);
        }
        return new FileSource(input, DataSources.Resolve(input), partitionRows, only);
    }
}
