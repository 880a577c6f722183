using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Text;
using Kiln.Core.Data;

namespace Kiln.Batch.Sources;

/// <summary>
/// CSV and Parquet files (a file, a directory or a glob, in path order). A Parquet file's partitions
/// are its row groups; a CSV file's are consecutive ranges of <c>partitionRows</c> data rows, or, for one
/// partition of a distributed job (<paramref name="only"/>), the byte range it was planned as.
/// </summary>
internal sealed class FileSource(string location, IReadOnlyList<string> files, int partitionRows, BatchPartition? only = null) : IBatchSource
{
    public string Uri => location;

    public bool Untyped => files.Any(DataSources.IsCsv);

    public IReadOnlyList<string> Files => files;

    private readonly HashSet<int> _skipped = [];

    public async Task<IReadOnlyList<SourceSchema>> InspectAsync(CancellationToken ct)
    {
        var result = new List<SourceSchema>(files.Count);
        foreach (var file in files)
        {
            ct.ThrowIfCancellationRequested();
            try
            {
                if (DataSources.IsParquet(file))
                {
                    var columns = ParquetTable.ReadSchema(file).Select(f => new SourceColumn(f.Name, KindOf(f), f.Nullable) { Unsupported = f.Type == ParquetValueType.Unsupported ? f.Unsupported : null }).ToList();
                    result.Add(new SourceSchema(file, columns));
                }
                else
                {
                    result.Add(new SourceSchema(file, [.. CsvTableReader.ReadHeader(file).Select(h => new SourceColumn(h, ValueKind.Unknown))]));
                }
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // The schema check decides: fail the job with this error, or skip the file (--on-bad-file skip).
                result.Add(new SourceSchema(file, []) { Failure = e });
            }
        }
        return result;
    }

    /// <summary>Leaves these files (skipped as bad) out of counting and reading; their partitions never appear.</summary>
    public void Skip(IEnumerable<string> skipped)
    {
        var set = skipped.ToHashSet(StringComparer.Ordinal);
        for (var f = 0; f < files.Count; f++) if (set.Contains(files[f])) _skipped.Add(f);
    }

    public Task<string> FingerprintAsync(CancellationToken ct)
    {
        var sb = new StringBuilder();
        foreach (var file in files)
        {
            var info = new FileInfo(file);
            sb.Append(file).Append('\0').Append(info.Length).Append('\0').Append(info.LastWriteTimeUtc.Ticks).Append('\n');
        }
        return Task.FromResult("files:" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(sb.ToString()))));
    }

    public async Task<long?> CountRowsAsync(Func<PartitionId, bool> wanted, CancellationToken ct)
    {
        long total = 0;
        for (var f = 0; f < files.Count; f++)
        {
            if (_skipped.Contains(f)) continue;
            if (!DataSources.IsParquet(files[f])) return null;
            var sizes = await ParquetTable.ReadRowGroupSizesAsync(files[f], ct).ConfigureAwait(false);
            for (var g = 0; g < sizes.Length; g++) if (wanted(new PartitionId(f, g))) total += sizes[g];
        }
        return total;
    }

    public async IAsyncEnumerable<SourceChunk> ReadAsync(IReadOnlyList<ColumnRequest> requests, Func<PartitionId, bool> wanted, int batchRows,
        [EnumeratorCancellation] CancellationToken ct)
    {
        if (only is not null)
        {
            await foreach (var chunk in ReadPartitionAsync(only, requests, batchRows, ct).ConfigureAwait(false)) yield return chunk;
            yield break;
        }
        for (var f = 0; f < files.Count; f++)
        {
            if (_skipped.Contains(f)) continue;
            var file = files[f];
            if (DataSources.IsParquet(file))
            {
                var fileIndex = f;
                var groups = 0;
                await foreach (var (group, firstRow, table) in ParquetTable.ReadRowGroupsAsync(file, requests, g => wanted(new PartitionId(fileIndex, g)), ct).ConfigureAwait(false))
                {
                    groups++;
                    yield return new SourceChunk(new PartitionId(f, group), file, firstRow, table, EndOfPartition: true);
                }
                // A file without row groups still gets its (empty) part, so the output names every input file.
                if (groups == 0 && wanted(new PartitionId(f, 0)) && (await ParquetTable.ReadRowGroupSizesAsync(file, ct).ConfigureAwait(false)).Length == 0)
                    yield return new SourceChunk(new PartitionId(f, 0), file, 0, EmptyTable(requests), EndOfPartition: true);
                continue;
            }
            await foreach (var chunk in ReadCsvAsync(f, file, requests, wanted, batchRows, ct).ConfigureAwait(false)) yield return chunk;
        }
    }

    private async IAsyncEnumerable<SourceChunk> ReadCsvAsync(int fileIndex, string file, IReadOnlyList<ColumnRequest> requests,
        Func<PartitionId, bool> wanted, int batchRows, [EnumeratorCancellation] CancellationToken ct)
    {
        await Task.Yield(); // CSV parsing is synchronous; do not run it on the caller's stack
        using var csv = CsvTableReader.Open(file, requests);
        long row = 0;
        for (var partition = 0; ; partition++)
        {
            var id = new PartitionId(fileIndex, partition);
            var want = wanted(id);
            var remaining = partitionRows;
            var any = false;
            while (remaining > 0)
            {
                var ask = Math.Min(batchRows, remaining);
                var table = csv.ReadBatch(ask, ct);
                var end = table.RowCount < ask || table.RowCount == remaining;
                if (table.RowCount == 0 && !any && partition > 0) yield break; // the previous partition ended the file exactly
                if (want) yield return new SourceChunk(id, file, row, table, end, () => csv.Recycle(table));
                else csv.Recycle(table);
                any = true;
                row += table.RowCount;
                remaining -= table.RowCount;
                if (table.RowCount < ask) yield break;
            }
        }
    }

    /// <summary>
    /// One partition of a distributed job: only its file is opened (the planner named it, so a file that appeared
    /// or vanished beside it changes nothing), and only its row group or byte range is read.
    /// </summary>
    private async IAsyncEnumerable<SourceChunk> ReadPartitionAsync(BatchPartition p, IReadOnlyList<ColumnRequest> requests, int batchRows,
        [EnumeratorCancellation] CancellationToken ct)
    {
        var file = p.File ?? files[p.FileIndex];
        if (!File.Exists(file)) throw new Kiln.Core.KilnException($"{file}: the input file of partition {p} has vanished since the job was planned");
        if (p is { ByteStart: { } start, ByteEnd: { } end })
        {
            await foreach (var chunk in ReadCsvRangeAsync(p.Id, file, requests, start, end, batchRows, ct).ConfigureAwait(false)) yield return chunk;
            yield break;
        }
        var any = false;
        await foreach (var (_, firstRow, table) in ParquetTable.ReadRowGroupsAsync(file, requests, g => g == p.Index, ct).ConfigureAwait(false))
        {
            any = true;
            yield return new SourceChunk(p.Id, file, firstRow, table, EndOfPartition: true);
        }
        if (!any)
        {
            if (p.Index != 0 || (await ParquetTable.ReadRowGroupSizesAsync(file, ct).ConfigureAwait(false)).Length != 0)
                throw new Kiln.Core.KilnException($"{file}: row group {p.Index} of partition {p} is not in the file any more; it changed since the job was planned");
            yield return new SourceChunk(p.Id, file, 0, EmptyTable(requests), EndOfPartition: true);
        }
    }

    /// <summary>One byte range of a CSV file as one partition; row numbers (in rejects) count from the range's first line.</summary>
    private static async IAsyncEnumerable<SourceChunk> ReadCsvRangeAsync(PartitionId id, string file, IReadOnlyList<ColumnRequest> requests,
        long start, long end, int batchRows, [EnumeratorCancellation] CancellationToken ct)
    {
        await Task.Yield();
        if (new FileInfo(file).Length < end)
            throw new Kiln.Core.KilnException($"{file}: the file is shorter than when partition {id} was planned (it ends before byte {end}); it changed since");
        using var csv = CsvTableReader.OpenRange(file, requests, start, end);
        long row = 0;
        while (true)
        {
            var table = csv.ReadBatch(batchRows, ct);
            var last = table.RowCount < batchRows;
            yield return new SourceChunk(id, file, row, table, last, () => csv.Recycle(table));
            row += table.RowCount;
            if (last) yield break;
        }
    }

    internal static DataTable EmptyTable(IReadOnlyList<ColumnRequest> requests)
    {
        var t = new DataTable(0);
        foreach (var r in requests) t.Add(r.Type == ColumnType.Numeric ? new NumericColumn(r.Name, []) : new TextColumn(r.Name, []));
        return t;
    }

    private static ValueKind KindOf(ParquetField f) => f.Type switch
    {
        ParquetValueType.Double or ParquetValueType.Float or ParquetValueType.Decimal => ValueKind.Real,
        ParquetValueType.Int32 => ValueKind.Integer32,
        ParquetValueType.Int64 => ValueKind.Integer,
        ParquetValueType.Boolean => ValueKind.Boolean,
        ParquetValueType.Timestamp => f.Utc ? ValueKind.Timestamp : ValueKind.LocalTimestamp,
        _ => ValueKind.Text,
    };

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
