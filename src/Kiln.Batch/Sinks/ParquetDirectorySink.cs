using Kiln.Batch.Validation;
using Kiln.Core;
using Kiln.Core.Data;
using Parquet;
using Parquet.Schema;

namespace Kiln.Batch.Sinks;

/// <summary>
/// A directory of Parquet parts, part-&lt;file&gt;-&lt;partition&gt;.parquet, one per input partition. A part is
/// written under a hidden temporary name and renamed when complete; the manifest is rewritten (atomically)
/// after each rename, so after a crash every part named in it is whole.
/// </summary>
internal sealed class ParquetDirectorySink(string directory) : IBatchSink
{
    private BatchManifest? _manifest;
    private string _manifestPath = "";
    private ParquetSchema? _schema;
    private IReadOnlyList<OutputColumn> _columns = [];
    private readonly Lock _lock = new();

    public string Uri => directory;

    public string DefaultRejectsDirectory => Path.Combine(directory, "_rejects");

    public Task<IReadOnlySet<PartitionId>> OpenAsync(JobIdentity job, IReadOnlyList<OutputColumn> columns, bool resume, CancellationToken ct)
    {
        if (File.Exists(directory)) throw new KilnException($"--output {directory}: is a file; give a directory for Parquet parts");
        Directory.CreateDirectory(directory);
        _columns = columns;
        _schema = new ParquetSchema(columns.Select(c => c.Kind switch
        {
            ValueKind.Integer => (Field)new DataField<long?>(c.Name),
            ValueKind.Real => new DataField<double?>(c.Name),
            _ => new DataField<string>(c.Name),
        }).ToArray());
        _manifestPath = Path.Combine(directory, BatchManifest.FileName(job.Shard));
        var existing = BatchManifest.Read(_manifestPath);
        var done = new HashSet<PartitionId>();
        if (existing is not null && !resume)
            throw new KilnException($"{_manifestPath}: the output already holds a batch job; pass --resume to finish it, or choose an empty directory");
        if (existing is not null)
        {
            if (existing.ModelSha256 != job.ModelSha256)
                throw new KilnException($"{_manifestPath}: the output was written by another model ({existing.ModelUri}); --resume needs the same model");
            if (existing.InputFingerprint != job.InputFingerprint)
                throw new KilnException($"{_manifestPath}: the input changed since the output was started ({existing.InputUri}); start again in an empty directory");
            if (!existing.Columns.Select(c => c.Name).SequenceEqual(columns.Select(c => c.Name)))
                throw new KilnException($"{_manifestPath}: the output columns ({string.Join(", ", existing.Columns.Select(c => c.Name))}) differ from this run's; pass the same --keep");
            // A part counts as done only if its file is really there.
            existing.Parts.RemoveAll(p => p.File is null || !File.Exists(Path.Combine(directory, p.File)));
            foreach (var p in existing.Parts) done.Add(new PartitionId(p.FileIndex, p.Partition));
            existing.Complete = false;
        }
        _manifest = existing ?? new BatchManifest
        {
            ModelUri = job.ModelUri,
            ModelName = job.ModelName,
            ModelVersion = job.ModelVersion,
            ModelSha256 = job.ModelSha256,
            InputUri = job.InputUri,
            InputFingerprint = job.InputFingerprint,
            Shard = job.Shard.ToString(),
            Columns = [.. columns],
            StartedAt = DateTimeOffset.UtcNow,
        };
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

    public async Task<IPartWriter> BeginPartAsync(PartitionId partition, CancellationToken ct)
    {
        var final = Path.Combine(directory, partition.PartName + ".parquet");
        var tmp = Path.Combine(directory, $".{partition.PartName}.parquet.tmp-{Guid.NewGuid():N}");
        var stream = new FileStream(tmp, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 << 16);
        try
        {
            var writer = await ParquetWriter.CreateAsync(_schema!, stream, null, false, ct).ConfigureAwait(false);
            return new PartWriter(this, stream, writer, tmp, final);
        }
        catch
        {
            await stream.DisposeAsync().ConfigureAwait(false);
            File.Delete(tmp);
            throw;
        }
    }

    public Task FinishAsync(bool complete, CancellationToken ct)
    {
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

    private sealed class PartWriter(ParquetDirectorySink sink, FileStream stream, ParquetWriter writer, string tmp, string final) : IPartWriter
    {
        private bool _committed;
        private bool _closed;

        public async Task WriteAsync(DataTable rows, CancellationToken ct)
        {
            if (rows.RowCount == 0) return;
            var fields = sink._schema!.GetDataFields();
            using var rg = writer.CreateRowGroup();
            for (var i = 0; i < fields.Length; i++)
            {
                var column = rows[fields[i].Name];
                var kind = sink._columns[i].Kind;
                switch (column)
                {
                    case NumericColumn n when kind == ValueKind.Integer:
                    {
                        var values = new long?[rows.RowCount];
                        for (var r = 0; r < values.Length; r++) values[r] = double.IsNaN(n.Values[r]) ? null : (long)n.Values[r];
                        await rg.WriteAsync<long>(fields[i], values.AsMemory(), null, null, ct).ConfigureAwait(false);
                        break;
                    }
                    case NumericColumn n:
                    {
                        var values = new double?[rows.RowCount];
                        for (var r = 0; r < values.Length; r++) values[r] = double.IsNaN(n.Values[r]) ? null : n.Values[r];
                        await rg.WriteAsync<double>(fields[i], values.AsMemory(), null, null, ct).ConfigureAwait(false);
                        break;
                    }
                    case TextColumn t:
                        await rg.WriteAsync(fields[i], new ArraySegment<string>(t.Values!, 0, rows.RowCount), null).ConfigureAwait(false);
                        break;
                }
            }
        }

        public async Task CommitAsync(PartRecord record, CancellationToken ct)
        {
            await CloseAsync().ConfigureAwait(false);
            File.Move(tmp, final, overwrite: true);
            _committed = true;
            sink.Record(new PartRecord
            {
                FileIndex = record.FileIndex,
                Partition = record.Partition,
                Source = record.Source,
                FirstRow = record.FirstRow,
                Rows = record.Rows,
                Rejected = record.Rejected,
                UnseenCategories = record.UnseenCategories,
                File = Path.GetFileName(final),
            });
        }

        private async Task CloseAsync()
        {
            if (_closed) return;
            _closed = true;
            await writer.DisposeAsync().ConfigureAwait(false);
            await stream.FlushAsync().ConfigureAwait(false);
            stream.Flush(flushToDisk: true);
            await stream.DisposeAsync().ConfigureAwait(false);
        }

        public async ValueTask DisposeAsync()
        {
            await CloseAsync().ConfigureAwait(false);
            if (!_committed) File.Delete(tmp);
        }
    }
}
