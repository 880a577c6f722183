namespace Kiln.Core.Data;

/// <summary>
/// Parquet files as <see cref="DataTable"/>s, through Kiln's one reader (<see cref="ParquetFile"/>) and one writer
/// (<see cref="ParquetTableWriter"/>): only the requested columns are read, row groups and columns in parallel when
/// there is enough to read to pay for the threads.
/// </summary>
public static class ParquetTable
{
    /// <summary>Row groups with fewer cells than this (in a window read together) are read on one thread.</summary>
    private const long ParallelCells = 200_000;

    /// <summary>The column names of a Parquet file.</summary>
    public static Task<IReadOnlyList<string>> ReadColumnNamesAsync(string path, CancellationToken ct = default)
    {
        using var file = ParquetFile.Open(path);
        return Task.FromResult<IReadOnlyList<string>>([.. file.Fields.Select(f => f.Name)]);
    }

    /// <summary>The top-level columns of a Parquet file with their types.</summary>
    public static IReadOnlyList<ParquetField> ReadSchema(string path)
    {
        using var file = ParquetFile.Open(path);
        return file.Fields;
    }

    /// <summary>Rows per row group, for sharding and progress.</summary>
    public static Task<long[]> ReadRowGroupSizesAsync(string path, CancellationToken ct = default)
    {
        using var file = ParquetFile.Open(path);
        return Task.FromResult(file.RowGroupRows);
    }

    /// <summary>
    /// Reads the requested columns of the whole file into one table: each column is allocated once at the file's row
    /// count and every row group's chunk is read straight into its place (row groups and columns in parallel), so the
    /// managed memory is the result's and no copy per row group is made. Reports rows read as row groups finish.
    /// </summary>
    public static async Task<DataTable> ReadAllAsync(string path, IReadOnlyList<ColumnRequest> requests, IProgress<long>? rowsRead = null,
        CancellationToken ct = default)
    {
        var file = ParquetFile.Open(path);
        var extra = new List<ParquetFile>();
        try
        {
            var fields = requests.Select(r => file.Readable(r.Name)).ToArray();
            var groups = file.RowGroupRows;
            var firstRows = new int[groups.Length];
            long total = 0;
            for (var g = 0; g < groups.Length; g++)
            {
                firstRows[g] = checked((int)total);
                total += groups[g];
            }
            var table = new DataTable(checked((int)total));
            var columns = requests.Select((r, i) =>
                r.Type == ColumnType.Numeric ? (Column)new NumericColumn(r.Name, new double[total])
                : fields[i].Type == ParquetValueType.Timestamp ? new TimestampColumn(r.Name, new long[total], fields[i].Utc)
                : new TextColumn(r.Name, new string?[total])).ToArray();
            foreach (var c in columns) table.Add(c);
            var left = new int[groups.Length];
            Array.Fill(left, requests.Count);
            long done = 0;
            // Row-group-major order keeps the readers on neighbouring chunks and finishes groups for progress.
            await ReadItemsAsync(path, file, extra, groups.Length * requests.Count, total * requests.Count, (reader, item) =>
            {
                ct.ThrowIfCancellationRequested();
                var (g, r) = Math.DivRem(item, requests.Count);
                reader.ReadColumn(g, fields[r], columns[r], firstRows[g]);
                if (Interlocked.Decrement(ref left[g]) == 0) rowsRead?.Report(Interlocked.Add(ref done, groups[g]));
            }, ct).ConfigureAwait(false);
            return table;
        }
        finally
        {
            file.Dispose();
            foreach (var f in extra) f.Dispose();
        }
    }

    /// <summary>Reads the requested columns of every row group, one table per row group.</summary>
    public static async IAsyncEnumerable<DataTable> ReadRowGroupsAsync(string path, IReadOnlyList<ColumnRequest> requests,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct = default)
    {
        await foreach (var (_, _, table) in ReadRowGroupsAsync(path, requests, static _ => true, ct).ConfigureAwait(false)) yield return table;
    }

    /// <summary>
    /// Reads the requested columns of the row groups <paramref name="include"/> accepts (by index), one table per
    /// row group, with the group's index and the 0-based file row of its first row; skipped groups are not read.
    /// A requested column that is missing, nested or of a type Kiln cannot read is refused before anything is read.
    /// </summary>
    public static async IAsyncEnumerable<(int RowGroup, long FirstRow, DataTable Table)> ReadRowGroupsAsync(string path,
        IReadOnlyList<ColumnRequest> requests, Func<int, bool> include,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct = default)
    {
        var file = ParquetFile.Open(path);
        var extra = new List<ParquetFile>();
        try
        {
            var fields = requests.Select(r => file.Readable(r.Name)).ToArray();
            var groups = new List<(int Group, long FirstRow)>();
            long rowBase = 0;
            for (var g = 0; g < file.RowGroupCount; g++)
            {
                if (include(g)) groups.Add((g, rowBase));
                rowBase += file.RowGroupRows[g];
            }
            var threads = Math.Max(1, Math.Min(Environment.ProcessorCount, 4));
            for (var start = 0; start < groups.Count; start += threads)
            {
                ct.ThrowIfCancellationRequested();
                var window = groups.GetRange(start, Math.Min(threads, groups.Count - start));
                long cells = 0;
                foreach (var (g, _) in window) cells += file.RowGroupRows[g] * requests.Count;
                var columns = new Column[window.Count][];
                for (var i = 0; i < window.Count; i++) columns[i] = new Column[requests.Count];
                var items = window.Count * requests.Count;
                await ReadItemsAsync(path, file, extra, items, cells, (reader, item) =>
                {
                    var (i, r) = Math.DivRem(item, requests.Count);
                    columns[i][r] = reader.ReadColumn(window[i].Group, fields[r], requests[r].Type, window[i].FirstRow);
                }, ct).ConfigureAwait(false);
                for (var i = 0; i < window.Count; i++)
                {
                    var table = new DataTable(checked((int)file.RowGroupRows[window[i].Group]));
                    foreach (var c in columns[i]) table.Add(c);
                    yield return (window[i].Group, window[i].FirstRow, table);
                }
            }
        }
        finally
        {
            file.Dispose();
            foreach (var f in extra) f.Dispose();
        }
    }

    /// <summary>
    /// Runs <paramref name="read"/> for items 0..<paramref name="items"/>-1 (column chunks): on this thread when there are
    /// fewer than <see cref="ParallelCells"/> cells, else on up to four threads, each with a reader of its own (opened
    /// into <paramref name="extra"/>, which the caller disposes), taking the next item as it finishes one.
    /// </summary>
    private static async Task ReadItemsAsync(string path, ParquetFile file, List<ParquetFile> extra, int items, long cells,
        Action<ParquetFile, int> read, CancellationToken ct)
    {
        var threads = Math.Max(1, Math.Min(Environment.ProcessorCount, 4));
        var workers = cells < ParallelCells ? 1 : Math.Min(threads, items);
        if (workers <= 1)
        {
            for (var item = 0; item < items; item++) read(file, item);
            return;
        }
        while (extra.Count < workers - 1) extra.Add(ParquetFile.Open(path));
        var next = -1;
        var tasks = new Task[workers];
        for (var w = 0; w < workers; w++)
        {
            var reader = w == 0 ? file : extra[w - 1];
            tasks[w] = Task.Run(() =>
            {
                for (var item = Interlocked.Increment(ref next); item < items; item = Interlocked.Increment(ref next)) read(reader, item);
            }, ct);
        }
        await Task.WhenAll(tasks).ConfigureAwait(false);
    }

    /// <summary>Writes a table as one Parquet file with one row group (numbers as nullable doubles, text as strings, timestamps as timestamps).</summary>
    public static Task WriteAsync(DataTable table, Stream stream, CancellationToken ct = default)
    {
        ParquetTableWriter.Write(table, stream);
        return Task.CompletedTask;
    }

    /// <summary>Writes a table to a Parquet file.</summary>
    public static async Task WriteAsync(DataTable table, string path, CancellationToken ct = default)
    {
        var stream = File.Create(path);
        await using var streamScope = stream.ConfigureAwait(false);
        await WriteAsync(table, stream, ct).ConfigureAwait(false);
    }
}
