using System.Text.Json;
using Kiln.Batch.Validation;
using Kiln.Core;
using Kiln.Core.Data;
using Kiln.Storage.Objects;

namespace Kiln.Batch.Sinks;

/// <summary>
/// Parquet parts under an S3 location (s3://BUCKET/PREFIX), laid out as <see cref="ParquetDirectorySink"/> lays out a
/// directory: part-&lt;file&gt;-&lt;partition&gt;.parquet and the shard's manifest. A part is written to a local
/// temporary file and committed by one upload to its final key (a multipart upload when large), which S3 makes visible
/// whole or not at all; the manifest, rewritten as one object after each commit, names only parts that are there. A
/// partition run twice writes the same key twice and leaves one copy. Rejected rows are written locally and uploaded
/// under _rejects/ when the job finishes. For one partition of a distributed job (<paramref name="partitionOnly"/>) no
/// manifest is read or written: the part's upload is the commit, and the job's coordinator writes the manifest.
/// </summary>
internal sealed class S3ParquetSink(S3Storage storage, bool partitionOnly = false) : IBatchSink
{
    private readonly S3Storage _storage = storage;
    private readonly string _staging = Directory.CreateTempSubdirectory("kiln-batch-s3-").FullName;
    private readonly List<PartRecord> _committed = [];
    private readonly SemaphoreSlim _gate = new(1, 1);
    private BatchManifest? _manifest;
    private string _manifestKey = "";
    private ParquetColumn[] _schema = [];

    public string Uri => _storage.Location.ToString();

    public string DefaultRejectsDirectory => Path.Combine(_staging, "_rejects");

    public string RejectsLocation(string directory) =>
        directory == DefaultRejectsDirectory ? _storage.Location.Child("_rejects").ToString() : directory;

    /// <summary>The parts this sink committed, in commit order.</summary>
    public IReadOnlyList<PartRecord> Committed
    {
        get
        {
            lock (_committed) return [.. _committed];
        }
    }

    public async Task<IReadOnlySet<PartitionId>> OpenAsync(JobIdentity job, IReadOnlyList<OutputColumn> columns, bool resume, CancellationToken ct)
    {
        // A bucket that does not exist (or refuses us) is one line before anything is scored or written.
        await _storage.CheckAsync("--output", ct).ConfigureAwait(false);
        _schema = ParquetDirectorySink.SchemaOf(columns);
        if (partitionOnly) return new HashSet<PartitionId>();
        _manifestKey = BatchManifest.FileName(job.Shard);
        var where = _storage.Location.Child(_manifestKey).ToString();
        var existing = await ReadManifestAsync(where, ct).ConfigureAwait(false);
        if (existing is not null && !resume)
            throw new KilnException($"{where}: the output already holds a batch job; pass --resume to finish it, or choose an empty prefix");
        IReadOnlySet<PartitionId> done = new HashSet<PartitionId>();
        if (existing is not null)
        {
            var present = (await _storage.ListAsync("", ct).ConfigureAwait(false)).Objects.Select(o => o.Key).ToHashSet(StringComparer.Ordinal);
            done = existing.Resume(job, columns, where, "start again under an empty prefix", present.Contains);
        }
        _manifest = existing ?? BatchManifest.Start(job, columns);
        _manifest.SkippedFiles = job.Skipped is { Count: > 0 } skipped ? [.. skipped] : null;
        await WriteManifestAsync(ct).ConfigureAwait(false);
        return done;
    }

    public Task<IPartWriter> BeginPartAsync(PartitionId partition, CancellationToken ct)
    {
        var name = partition.PartName + ".parquet";
        var tmp = Path.Combine(_staging, $".{name}.tmp-{Guid.NewGuid():N}");
        return StagedParquetPart.OpenStaging(tmp, _schema, (stream, writer) => new PartWriter(this, stream, writer, tmp, name));
    }

    public async Task FinishAsync(bool complete, CancellationToken ct)
    {
        var rejects = DefaultRejectsDirectory;
        if (Directory.Exists(rejects))
        {
            foreach (var f in Directory.EnumerateFiles(rejects, "*.csv").Order(StringComparer.Ordinal))
                await _storage.PutFileAsync("_rejects/" + Path.GetFileName(f), f, ct).ConfigureAwait(false);
        }
        if (partitionOnly) return;
        await _gate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            _manifest!.Complete = complete;
        }
        finally
        {
            _gate.Release();
        }
        await WriteManifestAsync(ct).ConfigureAwait(false);
    }

    private async Task RecordAsync(PartRecord record, CancellationToken ct)
    {
        lock (_committed) _committed.Add(record);
        if (partitionOnly) return;
        await _gate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            _manifest!.Parts.RemoveAll(p => p.FileIndex == record.FileIndex && p.Partition == record.Partition);
            _manifest.Parts.Add(record);
            _manifest.Parts.Sort((a, b) => new PartitionId(a.FileIndex, a.Partition).CompareTo(new PartitionId(b.FileIndex, b.Partition)));
        }
        finally
        {
            _gate.Release();
        }
        await WriteManifestAsync(ct).ConfigureAwait(false);
    }

    /// <summary>The manifest as one object: a PUT replaces it whole, so a reader never sees half of one.</summary>
    private async Task WriteManifestAsync(CancellationToken ct)
    {
        await _gate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            var m = _manifest!;
            m.Rows = m.Parts.Sum(p => p.Rows);
            m.Rejected = m.Parts.Sum(p => p.Rejected);
            m.UnseenCategories = m.Parts.Sum(p => p.UnseenCategories);
            m.UpdatedAt = DateTimeOffset.UtcNow;
            using var body = new MemoryStream(JsonSerializer.SerializeToUtf8Bytes(m, BatchJsonContext.Default.BatchManifest));
            await _storage.PutAsync(_manifestKey, body, long.MaxValue, () => new KilnException("manifest too large"), ct).ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
    }

    private async Task<BatchManifest?> ReadManifestAsync(string where, CancellationToken ct)
    {
        var s = await _storage.OpenReadAsync(_manifestKey, ct).ConfigureAwait(false);
        if (s is null) return null;
        await using (s.ConfigureAwait(false))
        {
            try
            {
                return await JsonSerializer.DeserializeAsync(s, BatchJsonContext.Default.BatchManifest, ct).ConfigureAwait(false);
            }
            catch (JsonException e)
            {
                throw new KilnException($"{where}: invalid manifest ({e.Message})", e);
            }
        }
    }

    public ValueTask DisposeAsync()
    {
        try
        {
            Directory.Delete(_staging, recursive: true);
        }
        catch (IOException)
        {
        }
        _gate.Dispose();
        _storage.Dispose();
        return ValueTask.CompletedTask;
    }

    /// <summary>A part uploaded to its final key when committed.</summary>
    private sealed class PartWriter(S3ParquetSink sink, FileStream stream, ParquetTableWriter writer, string tmp, string name)
        : StagedParquetPart(stream, writer, tmp, sink._storage.Location.Child(name).ToString(), syncToDisk: false)
    {
        protected override async Task<string> PublishAsync(CancellationToken ct)
        {
            // The commit: one upload to the final key, visible whole once it completes.
            await sink._storage.PutFileAsync(name, Staging, ct).ConfigureAwait(false);
            File.Delete(Staging);
            return name;
        }

        protected override Task RecordAsync(PartRecord record, CancellationToken ct) => sink.RecordAsync(record, ct);
    }
}
