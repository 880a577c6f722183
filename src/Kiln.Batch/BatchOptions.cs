using Kiln.Core;
using Kiln.Core.Packaging;

namespace Kiln.Batch;

/// <summary>What to do with a row that fails validation.</summary>
public enum BadRowPolicy
{
    /// <summary>Stop the job with the row's source, number and column.</summary>
    Fail,

    /// <summary>Leave the row out of the output, write it with the reason to the rejects directory and count it.</summary>
    Skip,
}

/// <summary>What to do with an input file that cannot be read or lacks the model's columns.</summary>
public enum BadFilePolicy
{
    /// <summary>Stop the job before any row is scored, naming the file and the column.</summary>
    Fail,

    /// <summary>Leave the file out, list it in the result and the manifest, and score the others.</summary>
    Skip,
}

/// <summary>This process's share of a job: partitions whose shard key mod <see cref="Count"/> equals <see cref="Index"/>.</summary>
public readonly record struct ShardSpec(int Index, int Count)
{
    public static ShardSpec All { get; } = new(0, 1);

    /// <summary>Parses "i/N" with 0 &lt;= i &lt; N.</summary>
    public static ShardSpec Parse(string text)
    {
        var slash = text.IndexOf('/', StringComparison.Ordinal);
        if (slash > 0
            && int.TryParse(text.AsSpan(0, slash), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var i)
            && int.TryParse(text.AsSpan(slash + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var n)
            && n >= 1 && i < n)
        {
            return new ShardSpec(i, n);
        }
        throw new KilnException($"--shard '{text}': expected i/N with 0 <= i < N (for example 0/3)");
    }

    public bool Owns(PartitionId partition) => (partition.FileIndex + partition.Index) % Count == Index;

    public override string ToString() => $"{Index}/{Count}";
}

/// <summary>Everything a batch job needs: where from, where to, and how.</summary>
public sealed class BatchOptions
{
    public required string Model { get; init; }

    public required string Input { get; init; }

    public required string Output { get; init; }

    /// <summary>Input columns copied to the output beside the predictions (ids).</summary>
    public IReadOnlyList<string> Keep { get; init; } = [];

    /// <summary>For table sinks: the column to upsert by (must be one of <see cref="Keep"/>).</summary>
    public string? Key { get; init; }

    public ShardSpec Shard { get; init; } = ShardSpec.All;

    public BadRowPolicy OnBadRow { get; init; } = BadRowPolicy.Fail;

    /// <summary>A bad file among many (unreadable, missing columns): fail the job (default) or skip and list it.</summary>
    public BadFilePolicy OnBadFile { get; init; } = BadFilePolicy.Fail;

    public bool Resume { get; init; }

    /// <summary>Rows per unit of scoring work (and per output row group).</summary>
    public int BatchRows { get; init; } = 65_536;

    /// <summary>Rows per partition for sources without natural partitions (CSV files, SQL tables and queries).</summary>
    public int PartitionRows { get; init; } = 1_000_000;

    /// <summary>Scoring threads; 0 means one per core.</summary>
    public int Threads { get; init; }

    /// <summary>Where rejected rows go; default: &lt;output&gt;/_rejects for a directory sink, ./_rejects/&lt;table&gt; for a table sink.</summary>
    public string? RejectsDirectory { get; init; }

    /// <summary>Where <see cref="Model"/> is resolved (default: package directories only; the CLI plugs in the registry's).</summary>
    public IModelLocator Locator { get; init; } = new DirectoryModelLocator();

    /// <summary>
    /// One partition of a distributed job (what a <c>kiln worker</c> runs): only it is read and scored, its part is
    /// committed by an atomic rename, and no manifest is written (the job's coordinator writes it once every
    /// partition is done). Null for an ordinary job.
    /// </summary>
    public BatchPartition? Partition { get; init; }

    /// <summary>The model already resolved by the caller (a pipeline task resolves once and reports the version it pinned); null: resolve <see cref="Model"/>.</summary>
    public ResolvedModel? Resolved { get; init; }

    /// <summary>
    /// A scorer already open on <see cref="Resolved"/>'s package (a worker keeps one per pinned model for the partitions it
    /// runs): the job scores with it and leaves it open. Null: the job loads the package and opens its own.
    /// </summary>
    public Kiln.Scoring.IScorer? Scorer { get; init; }

    internal void Validate()
    {
        if (BatchRows < 1) throw new KilnException($"--batch-rows {BatchRows}: must be at least 1");
        if (PartitionRows < 1) throw new KilnException($"--partition-rows {PartitionRows}: must be at least 1");
        if (Threads < 0) throw new KilnException($"--threads {Threads}: must be 0 (one per core) or more");
        if (Key is not null && !Keep.Contains(Key)) throw new KilnException($"--key {Key}: the key must also be a --keep column");
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var k in Keep) if (!seen.Add(k)) throw new KilnException($"--keep: column '{k}' is named twice");
    }
}

/// <summary>
/// One planned partition of a distributed batch job: a Parquet row group (<see cref="Index"/> of file
/// <see cref="FileIndex"/>) or a byte range of a CSV file (<see cref="ByteStart"/> to <see cref="ByteEnd"/>, at line starts).
/// </summary>
public sealed record BatchPartition(int FileIndex, int Index, long? ByteStart = null, long? ByteEnd = null, string? File = null)
{
    public PartitionId Id => new(FileIndex, Index);

    public override string ToString() => ByteStart is { } s ? $"{FileIndex}-{Index} (bytes {s}-{ByteEnd})" : $"{FileIndex}-{Index}";
}
