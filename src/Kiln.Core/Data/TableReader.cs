namespace Kiln.Core.Data;

/// <summary>Reads CSV and Parquet files (as resolved by <see cref="DataSources"/>) into tables.</summary>
public static class TableReader
{
    /// <summary>Column names of a CSV or Parquet file.</summary>
    public static async Task<IReadOnlyList<string>> ReadColumnNamesAsync(string path, CancellationToken ct = default) =>
        DataSources.IsParquet(path)
            ? await ParquetTable.ReadColumnNamesAsync(path, ct).ConfigureAwait(false)
            : CsvTableReader.ReadHeader(path);

    /// <summary>Streams a file as tables of at most about <paramref name="batchRows"/> rows (a Parquet row group is never split).</summary>
    public static async IAsyncEnumerable<DataTable> ReadBatchesAsync(string path, IReadOnlyList<ColumnRequest> requests, int batchRows = 65536,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct = default)
    {
        if (DataSources.IsParquet(path))
        {
            await foreach (var t in ParquetTable.ReadRowGroupsAsync(path, requests, ct).ConfigureAwait(false)) yield return t;
            yield break;
        }
        using var csv = CsvTableReader.Open(path, requests);
        while (true)
        {
            var t = csv.ReadBatch(batchRows, ct);
            if (t.RowCount == 0) yield break;
            yield return t;
        }
    }

    /// <summary>Reads every file whole and concatenates them; reports rows read so far.</summary>
    public static async Task<DataTable> ReadAllAsync(IReadOnlyList<string> files, IReadOnlyList<ColumnRequest> requests,
        IProgress<long>? rowsRead = null, CancellationToken ct = default)
    {
        // One Parquet file (the common case) is read straight into its columns.
        if (files.Count == 1 && DataSources.IsParquet(files[0]))
            return await ParquetTable.ReadAllAsync(files[0], requests, rowsRead, ct).ConfigureAwait(false);
        var parts = new List<DataTable>();
        long rows = 0;
        foreach (var file in files)
        {
            await foreach (var t in ReadBatchesAsync(file, requests, 1 << 18, ct).ConfigureAwait(false))
            {
                parts.Add(t);
                rows += t.RowCount;
                rowsRead?.Report(rows);
            }
        }
        if (parts.Count == 0)
        {
            var empty = new DataTable(0);
            foreach (var r in requests) empty.Add(r.Type == ColumnType.Numeric ? new NumericColumn(r.Name, []) : new TextColumn(r.Name, []));
            return empty;
        }
        return DataTable.Concat(parts);
    }
}
