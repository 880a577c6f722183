using Kiln.Batch.Validation;
using Kiln.Core;
using Kiln.Core.Data;

namespace Kiln.Batch.Sinks;

/// <summary>
/// A directory of Parquet parts, part-&lt;file&gt;-&lt;partition&gt;.parquet, one per input partition. A part is
/// written under a hidden temporary name and renamed when complete; the manifest is rewritten (atomically)
/// after each rename, so after a crash every part named in it is whole. For one partition of a distributed job
/// (<paramref name="partitionOnly"/>) no manifest is read or written and other runs' temporary files are left alone
/// (another worker may be writing one): the part's rename is the commit, and the job's coordinator writes the manifest.
/// </summary>
internal sealed class ParquetDirectorySink(string directory, bool partitionOnly = false) : IBatchSink
{
    private readonly List<PartRecord> _committed = [];

    /// <summary>The parts this sink committed, in commit order.</summary>
    public IReadOnlyList<PartRecord> Committed
    {
        get
        {
            lock (_lock) return [.. _committed];
        }
    }

    private BatchManifest? _manifest;
    private string _manifestPath = "";
    private ParquetColumn[] _schema = [];
    private IReadOnlyList<OutputColumn> _columns = [];
    private readonly Lock _lock = new();

    public string Uri => directory;

    public string DefaultRejectsDirectory => Path.Combine(directory, "_rejects");

    public Task<IReadOnlySet<PartitionId>> OpenAsync(JobIdentity job, IReadOnlyList<OutputColumn> columns, bool resume, CancellationToken ct)
    {
        if (File.Exists(directory)) throw new KilnException($"--output {directory}: is a file; give a directory for Parquet parts");
        Directory.CreateDirectory(directory);
        _columns = columns;
        _schema = SchemaOf(columns);
        if (partitionOnly) return Task.FromResult<IReadOnlySet<PartitionId>>(new HashSet<PartitionId>());
        _manifestPath = Path.Combine(directory, BatchManifest.FileName(job.Shard));
        var existing = BatchManifest.Read(_manifestPath);
        if (existing is not null && !resume)
            throw new KilnException($"{_manifestPath}: the output already holds a batch job; pass --resume to finish it, or choose an empty directory");
        var done = existing?.Resume(job, columns, _manifestPath, "start again in an empty directory", file => File.Exists(Path.Combine(directory, file)))
            ?? new HashSet<PartitionId>();
        _manifest = existing ?? BatchManifest.Start(job, columns);
        _manifest.SkippedFiles = job.Skipped is { Count: > 0 } skipped ? [.. skipped] : null;
        // Temporary files of this shard's parts are leftovers of a killed run.
        foreach (var tmp in Directory.EnumerateFiles(directory, ".part-*.tmp-*"))
        {
            if (TryParsePart(Path.GetFileName(tmp)[1..], out var id) && job.Shard.Owns(id)) File.Delete(tmp);
        }
        Recount();
        _manifest.UpdatedAt = DateTimeOffset.UtcNow;
        _manifest.WriteAtomically(_manifestPath);
        return Task.FromResult<IReadOnlySet<PartitionId>>(done);
    }

    public Task<IPartWriter> BeginPartAsync(PartitionId partition, CancellationToken ct)
    {
        var final = Path.Combine(directory, partition.PartName + ".parquet");
        var tmp = Path.Combine(directory, $".{partition.PartName}.parquet.tmp-{Guid.NewGuid():N}");
        return StagedParquetPart.OpenStaging(tmp, _schema, (stream, writer) => new PartWriter(this, stream, writer, tmp, final));
    }

    public Task FinishAsync(bool complete, CancellationToken ct)
    {
        if (partitionOnly) return Task.CompletedTask;
        lock (_lock)
        {
            _manifest!.Complete = complete;
            _manifest.UpdatedAt = DateTimeOffset.UtcNow;
            _manifest.WriteAtomically(_manifestPath);
        }
        return Task.CompletedTask;
    }

    private void Record(PartRecord record)
    {
        lock (_lock)
        {
            _committed.Add(record);
            if (partitionOnly) return;
            _manifest!.Parts.RemoveAll(p => p.FileIndex == record.FileIndex && p.Partition == record.Partition);
            _manifest.Parts.Add(record);
            _manifest.Parts.Sort((a, b) => new PartitionId(a.FileIndex, a.Partition).CompareTo(new PartitionId(b.FileIndex, b.Partition)));
            Recount();
            _manifest.UpdatedAt = DateTimeOffset.UtcNow;
            _manifest.WriteAtomically(_manifestPath);
        }
    }

    private void Recount()
    {
        _manifest!.Rows = _manifest.Parts.Sum(p => p.Rows);
        _manifest.Rejected = _manifest.Parts.Sum(p => p.Rejected);
        _manifest.UnseenCategories = _manifest.Parts.Sum(p => p.UnseenCategories);
    }

    /// <summary>The Parquet schema of the output columns: what the input declared is written back (an INT32 stays INT32, a timestamp a timestamp).</summary>
    internal static ParquetColumn[] SchemaOf(IReadOnlyList<OutputColumn> columns) =>
    [
        .. columns.Select(c => new ParquetColumn(c.Name, c.Kind switch
        {
            ValueKind.Integer => ParquetColumnKind.Int64,
            ValueKind.Integer32 => ParquetColumnKind.Int32,
            ValueKind.Boolean => ParquetColumnKind.Boolean,
            ValueKind.Real => ParquetColumnKind.Double,
            ValueKind.Timestamp => ParquetColumnKind.Timestamp,
            ValueKind.LocalTimestamp => ParquetColumnKind.LocalTimestamp,
            _ => ParquetColumnKind.Text,
        }, c.Nullable)),
    ];

    /// <summary>Parses "part-FFFFF-PPPPP.parquet…" into its partition.</summary>
    internal static bool TryParsePart(string name, out PartitionId id)
    {
        id = default;
        var parts = name.Split('-', '.');
        if (parts.Length < 3 || parts[0] != "part") return false;
        if (!int.TryParse(parts[1], System.Globalization.CultureInfo.InvariantCulture, out var f)) return false;
        if (!int.TryParse(parts[2], System.Globalization.CultureInfo.InvariantCulture, out var p)) return false;
        id = new PartitionId(f, p);
        return true;
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    /// <summary>A part renamed into place when committed.</summary>
    private sealed class PartWriter(ParquetDirectorySink sink, FileStream stream, ParquetTableWriter writer, string tmp, string final)
        : StagedParquetPart(stream, writer, tmp, final, syncToDisk: true)
    {
        private readonly string _final = final;

        protected override Task<string> PublishAsync(CancellationToken ct)
        {
            File.Move(Staging, _final, overwrite: true);
            return Task.FromResult(Path.GetFileName(_final));
        }

        protected override Task RecordAsync(PartRecord record, CancellationToken ct)
        {
            sink.Record(record);
            return Task.CompletedTask;
        }
    }
}
