using Kiln.Core;
using Kiln.Core.Data;

namespace Kiln.Batch.Sinks;

/// <summary>
/// One part of a Parquet sink, written to a hidden staging file and made visible whole by the sink's own publish step:
/// a rename into place (<see cref="ParquetDirectorySink"/>) or one upload to the final key (<see cref="S3ParquetSink"/>).
/// The writing, closing and clean-up are the same for both: a part never committed leaves no staging file behind.
/// </summary>
internal abstract class StagedParquetPart : IPartWriter
{
    private readonly FileStream _stream;
    private readonly ParquetTableWriter _writer;
    private readonly string _shownAs;
    private readonly bool _syncToDisk;
    private bool _closed;
    private bool _committing;

    /// <param name="staging">The staging file (already created by <see cref="OpenStaging"/>).</param>
    /// <param name="shownAs">The part's final name, for error messages.</param>
    /// <param name="syncToDisk">Flush the staging file to disk before publishing (a rename must not publish unwritten data).</param>
    protected StagedParquetPart(FileStream stream, ParquetTableWriter writer, string staging, string shownAs, bool syncToDisk)
    {
        _stream = stream;
        _writer = writer;
        Staging = staging;
        _shownAs = shownAs;
        _syncToDisk = syncToDisk;
    }

    /// <summary>The staging file's path.</summary>
    protected string Staging { get; }

    /// <summary>Creates the staging file and its Parquet writer, and hands both to <paramref name="make"/>; nothing is left behind on failure.</summary>
    public static async Task<IPartWriter> OpenStaging(string staging, ParquetColumn[] schema, Func<FileStream, ParquetTableWriter, IPartWriter> make)
    {
        var stream = new FileStream(staging, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 << 16);
        try
        {
            return make(stream, new ParquetTableWriter(stream, schema));
        }
        catch
        {
            await stream.DisposeAsync().ConfigureAwait(false);
            File.Delete(staging);
            throw;
        }
    }

    public Task WriteAsync(DataTable rows, CancellationToken ct)
    {
        if (rows.RowCount == 0) return Task.CompletedTask;
        try
        {
            _writer.WriteRowGroup(rows);
        }
        catch (InvalidOperationException e)
        {
            throw new KilnException($"{_shownAs}: {e.Message}", e);
        }
        return Task.CompletedTask;
    }

    public async Task CommitAsync(PartRecord record, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(record);
        _committing = true;
        await CloseAsync().ConfigureAwait(false);
        var file = await PublishAsync(ct).ConfigureAwait(false);
        await RecordAsync(new PartRecord
        {
            FileIndex = record.FileIndex,
            Partition = record.Partition,
            Source = record.Source,
            FirstRow = record.FirstRow,
            Rows = record.Rows,
            Rejected = record.Rejected,
            UnseenCategories = record.UnseenCategories,
            File = file,
        }, ct).ConfigureAwait(false);
    }

    /// <summary>Makes the closed staging file the part, visible whole (the staging file is gone afterwards); returns the part's name for the manifest.</summary>
    protected abstract Task<string> PublishAsync(CancellationToken ct);

    /// <summary>Records the committed part in the sink (and its manifest).</summary>
    protected abstract Task RecordAsync(PartRecord record, CancellationToken ct);

    private async Task CloseAsync()
    {
        if (_closed) return;
        _closed = true;
        try
        {
            if (_committing) _writer.Finish();
        }
        finally
        {
            _writer.Dispose();
        }
        if (_syncToDisk)
        {
            await _stream.FlushAsync().ConfigureAwait(false);
            _stream.Flush(flushToDisk: true);
        }
        await _stream.DisposeAsync().ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        await CloseAsync().ConfigureAwait(false);
        if (File.Exists(Staging)) File.Delete(Staging);
        GC.SuppressFinalize(this);
    }
}
