using Parquet;
using Parquet.Schema;

namespace Kiln.Core.Data;

/// <summary>Reads Parquet row groups into <see cref="DataTable"/>s and writes tables as Parquet.</summary>
public static class OldParquetTable
{
    /// <summary>The column names of a Parquet file.</summary>
    public static async Task<IReadOnlyList<string>> ReadColumnNamesAsync(string path, CancellationToken ct = default)
    {
        var reader = await OpenAsync(path, ct).ConfigureAwait(false);
        await using var readerScope = reader.ConfigureAwait(false);
        return [.. reader.Schema.GetDataFields().Select(f => f.Name)];
    }

    /// <summary>Rows per row group, for sharding and progress.</summary>
    public static async Task<long[]> ReadRowGroupSizesAsync(string path, CancellationToken ct = default)
    {
        var reader = await OpenAsync(path, ct).ConfigureAwait(false);
        await using var readerScope = reader.ConfigureAwait(false);
        var sizes = new long[reader.RowGroupCount];
        for (var i = 0; i < sizes.Length; i++)
        {
            using var rg = reader.OpenRowGroupReader(i);
            sizes[i] = rg.RowCount;
        }
        return sizes;
    }

    /// <summary>Reads the requested columns of every row group, one table per row group.</summary>
    public static async IAsyncEnumerable<DataTable> ReadRowGroupsAsync(string path, IReadOnlyList<ColumnRequest> requests,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct = default)
    {
        await foreach (var (_, _, table) in ReadRowGroupsAsync(path, requests, static _ => true, ct).ConfigureAwait(false)) yield return table;
    }

    /// <summary>
    /// Reads the requested columns of the row groups <paramref name="include"/> accepts (by index), one table per
    /// row group, with the group's index and the 0-based file row of its first row; skipped groups are not decoded.
    /// </summary>
    public static async IAsyncEnumerable<(int RowGroup, long FirstRow, DataTable Table)> ReadRowGroupsAsync(string path,
        IReadOnlyList<ColumnRequest> requests, Func<int, bool> include,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct = default)
    {
        var reader = await OpenAsync(path, ct).ConfigureAwait(false);
        await using var readerScope = reader.ConfigureAwait(false);
        // Flat text and double columns are read by Kiln's own decoder (ParquetColumnDecoder) through positional reads of this one handle.
        using var file = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.RandomAccess);
        var fields = reader.Schema.GetDataFields();
        var selected = new DataField[requests.Count];
        for (var r = 0; r < requests.Count; r++)
        {
            selected[r] = Array.Find(fields, f => f.Name == requests[r].Name)
                ?? throw new KilnException($"{path}: column '{requests[r].Name}' is missing (the file has: {string.Join(", ", fields.Select(f => f.Name))})");
        }
        // Columns are decoded in parallel, each worker through a reader (and file handle) of its own:
        // a row group reader is not safe to share between threads.
        var workers = Math.Min(Environment.ProcessorCount, requests.Count);
        var readers = new ParquetReader[Math.Max(1, workers)];
        readers[0] = reader;
        try
        {
            long rowBase = 0;
            for (var g = 0; g < reader.RowGroupCount; g++)
            {
                using var rg = reader.OpenRowGroupReader(g);
                var rows = checked((int)rg.RowCount);
                if (!include(g))
                {
                    rowBase += rows;
                    continue;
                }
                var columns = new Column[requests.Count];
                if (workers <= 1 || (long)rows * requests.Count < ParallelCells)
                {
                    for (var r = 0; r < requests.Count; r++)
                        columns[r] = await ReadColumnAsync(rg, selected[r], requests[r], rows, new(path, file, g, rowBase), ct).ConfigureAwait(false);
                }
                else
                {
                    for (var w = 1; w < readers.Length; w++) readers[w] ??= await OpenAsync(path, ct).ConfigureAwait(false);
                    var group = g;
                    var first = rowBase;
                    var tasks = new Task[readers.Length];
                    var next = -1; // columns are handed out one at a time: a text column costs far less than a double one
                    for (var w = 0; w < readers.Length; w++)
                    {
                        var worker = w;
                        tasks[w] = Task.Run(async () =>
                        {
                            using var own = readers[worker].OpenRowGroupReader(group);
                            for (var r = Interlocked.Increment(ref next); r < requests.Count; r = Interlocked.Increment(ref next))
                                columns[r] = await ReadColumnAsync(own, selected[r], requests[r], rows, new(path, file, group, first), ct).ConfigureAwait(false);
                        }, ct);
                    }
                    await Task.WhenAll(tasks).ConfigureAwait(false);
                }
                var table = new DataTable(rows);
                foreach (var c in columns) table.Add(c);
                yield return (g, rowBase, table);
                rowBase += rows;
            }
        }
        finally
        {
            for (var w = 1; w < readers.Length; w++)
                if (readers[w] is { } extra) await extra.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Row groups smaller than this many cells are decoded on one thread.</summary>
    private const long ParallelCells = 200_000;

    private static async Task<ParquetReader> OpenAsync(string path, CancellationToken ct)
    {
        if (!File.Exists(path)) throw new KilnException($"{path}: no such file");
        try
        {
            return await ParquetReader.CreateAsync(path, null, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or InvalidDataException or NotSupportedException or ArgumentException or InvalidOperationException)
        {
            throw new KilnException($"{path}: not a readable Parquet file ({e.Message})", e);
        }
    }

    /// <summary>Where a row group comes from: the file (by path, for messages, and open handle), the group's index and first row.</summary>
    private readonly record struct GroupSource(string Path, Microsoft.Win32.SafeHandles.SafeFileHandle File, int Group, long FirstRow);

    /// <summary>
    /// Set KILN_PARQUET_DECODER=parquet.net to read every column with Parquet.Net instead of Kiln's own decoder
    /// for flat text and double columns (an escape hatch, and the "before" of the monitoring benchmark).
    /// </summary>
    private static bool OwnDecoder =>
        !string.Equals(Environment.GetEnvironmentVariable("KILN_PARQUET_DECODER"), "parquet.net", StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// One text column of a row group (missing values null), decoded by Kiln's own decoder when it handles the chunk
    /// (flat UTF-8, the usual encodings and codecs), else by Parquet.Net; for readers that walk row groups themselves
    /// (the monitoring log reader). <paramref name="file"/> is a handle on <paramref name="path"/> open for positional reads.
    /// </summary>
    public static async Task<string?[]> ReadTextChunkAsync(ParquetRowGroupReader rg, DataField field, int rows,
        Microsoft.Win32.SafeHandles.SafeFileHandle file, string path, int rowGroup, CancellationToken ct = default) =>
        (OwnDecoder && rg.GetMetadata(field) is { } chunk ? ParquetColumnDecoder.TryReadText(file, path, rowGroup, chunk, field, rows, ct) : null)
            ?? await ReadTextAsync(rg, field, rows, ct).ConfigureAwait(false);

    /// <summary>
    /// One DOUBLE column of a row group (missing values NaN), decoded by Kiln's own decoder when it handles the chunk,
    /// else by Parquet.Net; see <see cref="ReadTextChunkAsync"/>.
    /// </summary>
    public static async Task<double[]> ReadDoubleChunkAsync(ParquetRowGroupReader rg, DataField field, int rows,
        Microsoft.Win32.SafeHandles.SafeFileHandle file, string path, int rowGroup, CancellationToken ct = default) =>
        (OwnDecoder && rg.GetMetadata(field) is { } chunk ? ParquetColumnDecoder.TryReadDoubles(file, path, rowGroup, chunk, field, rows, ct) : null)
            ?? await ReadDoublesAsync(rg, field, rows, ct).ConfigureAwait(false);

    /// <summary>Reads one column of a row group; whatever Parquet.Net throws on a damaged file becomes an error naming it.</summary>
    private static async Task<Column> ReadColumnAsync(ParquetRowGroupReader rg, DataField field, ColumnRequest request, int rows,
        GroupSource source, CancellationToken ct)
    {
        try
        {
            return await ReadColumnCoreAsync(rg, field, request, rows, source, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not (KilnException or OperationCanceledException or OutOfMemoryException))
        {
            throw new KilnException($"{source.Path}: column '{field.Name}', row group {source.Group}: unreadable ({e.Message})", e);
        }
    }

    private static async Task<Column> ReadColumnCoreAsync(ParquetRowGroupReader rg, DataField field, ColumnRequest request, int rows,
        GroupSource source, CancellationToken ct)
    {
        var type = field.ClrType;
        var path = source.Path;
        var rowBase = source.FirstRow;
        if (type == typeof(string) || type == typeof(ReadOnlyMemory<char>))
        {
            var s = (OwnDecoder && rg.GetMetadata(field) is { } chunk ? ParquetColumnDecoder.TryReadText(source.File, path, source.Group, chunk, field, rows, ct) : null)
                ?? await ReadTextAsync(rg, field, rows, ct).ConfigureAwait(false);
            if (request.Type == ColumnType.Text) return new TextColumn(field.Name, s);
            var values = new double[rows];
            for (var i = 0; i < rows; i++)
            {
                if (!NumericColumn.TryParseCell(s[i], out values[i]))
                    throw new KilnException($"{path}: row {rowBase + i + 1}, column '{field.Name}': '{s[i]}' is not a number");
            }
            return new NumericColumn(field.Name, values);
        }
        double[] numbers;
        if (type == typeof(double))
        {
            numbers = (OwnDecoder && rg.GetMetadata(field) is { } chunk ? ParquetColumnDecoder.TryReadDoubles(source.File, path, source.Group, chunk, field, rows, ct) : null)
                ?? await ReadDoublesAsync(rg, field, rows, ct).ConfigureAwait(false);
        }
        else if (type == typeof(float)) numbers = await ReadAsDouble<float>(rg, field, rows, v => v, ct).ConfigureAwait(false);
        else if (type == typeof(int)) numbers = await ReadAsDouble<int>(rg, field, rows, v => v, ct).ConfigureAwait(false);
        else if (type == typeof(long)) numbers = await ReadAsDouble<long>(rg, field, rows, v => v, ct).ConfigureAwait(false);
        else if (type == typeof(short)) numbers = await ReadAsDouble<short>(rg, field, rows, v => v, ct).ConfigureAwait(false);
        else if (type == typeof(byte)) numbers = await ReadAsDouble<byte>(rg, field, rows, v => v, ct).ConfigureAwait(false);
        else if (type == typeof(sbyte)) numbers = await ReadAsDouble<sbyte>(rg, field, rows, v => v, ct).ConfigureAwait(false);
        else if (type == typeof(bool)) numbers = await ReadAsDouble<bool>(rg, field, rows, v => v ? 1 : 0, ct).ConfigureAwait(false);
        else if (type == typeof(decimal)) numbers = await ReadAsDouble<decimal>(rg, field, rows, v => (double)v, ct).ConfigureAwait(false);
        else if (type == typeof(DateTime) && request.Type == ColumnType.Text)
        {
            var d = await ReadNullable<DateTime>(rg, field, rows, ct).ConfigureAwait(false);
            var s = new string?[rows];
            for (var i = 0; i < rows; i++) s[i] = d[i]?.ToString("O", System.Globalization.CultureInfo.InvariantCulture);
            return new TextColumn(field.Name, s);
        }
        else throw new KilnException($"{path}: column '{field.Name}' has type {type.Name}, which Kiln cannot read as {request.Type.ToString().ToLowerInvariant()}");

        if (request.Type == ColumnType.Numeric) return new NumericColumn(field.Name, numbers);
        var text = new string?[rows];
        for (var i = 0; i < rows; i++) text[i] = double.IsNaN(numbers[i]) ? null : numbers[i].ToString("R", System.Globalization.CultureInfo.InvariantCulture);
        return new TextColumn(field.Name, text);
    }

    private static async Task<double[]> ReadAsDouble<T>(ParquetRowGroupReader rg, DataField field, int rows, Func<T, double> convert, CancellationToken ct)
        where T : struct
    {
        var result = new double[rows];
        if (field.IsNullable)
        {
            var values = await ReadNullable<T>(rg, field, rows, ct).ConfigureAwait(false);
            for (var i = 0; i < rows; i++) result[i] = values[i] is { } v ? convert(v) : double.NaN;
        }
        else
        {
            var values = new T[rows];
            await rg.ReadAsync(field, values.AsMemory(), null, ct).ConfigureAwait(false);
            for (var i = 0; i < rows; i++) result[i] = convert(values[i]);
        }
        return result;
    }

    /// <summary>
    /// Doubles are read straight into the result: the present values arrive packed at its front, then
    /// move from the back to their rows, and missing rows become NaN.
    /// </summary>
    private static async Task<double[]> ReadDoublesAsync(ParquetRowGroupReader rg, DataField field, int rows, CancellationToken ct)
    {
        if (field.IsArray) return await ReadAsDouble<double>(rg, field, rows, v => v, ct).ConfigureAwait(false);
        var result = new double[rows];
        var levels = new int[rows];
        await rg.ReadRawAsync(field, result.AsMemory(), levels.AsMemory(), null, ct).ConfigureAwait(false);
        Spread(result, levels, field.MaxDefinitionLevel);
        return result;
    }

    /// <summary>Moves the packed present values of <paramref name="values"/> to the rows whose definition level says present.</summary>
    private static void Spread(double[] values, int[] levels, int present)
    {
        var packed = 0;
        foreach (var l in levels) if (l == present) packed++;
        if (packed == values.Length) return;
        for (var i = values.Length - 1; i >= 0; i--)
            values[i] = levels[i] == present ? values[--packed] : double.NaN;
    }

    /// <summary>
    /// Reads a text column. The same label repeated over a million rows becomes one string, not a million:
    /// categorical columns stay small and decoding does not allocate per row.
    /// </summary>
    private static async Task<string?[]> ReadTextAsync(ParquetRowGroupReader rg, DataField field, int rows, CancellationToken ct)
    {
        var result = new string?[rows];
        if (field.ClrType != typeof(ReadOnlyMemory<char>) || field.IsArray)
        {
            await rg.ReadAsync(field, result.AsMemory(), null, ct).ConfigureAwait(false);
            return result;
        }
        var raw = new ReadOnlyMemory<char>[rows];
        var levels = new int[rows];
        await rg.ReadRawAsync(field, raw.AsMemory(), levels.AsMemory(), null, ct).ConfigureAwait(false);
        var interned = new Dictionary<string, string>(StringComparer.Ordinal);
        var lookup = interned.GetAlternateLookup<ReadOnlySpan<char>>();
        var next = 0;
        for (var i = 0; i < rows; i++)
        {
            if (levels[i] != field.MaxDefinitionLevel) continue;
            var span = raw[next++].Span;
            if (span.Length > 64 || interned.Count >= 65_536)
            {
                result[i] = span.ToString();
                continue;
            }
            if (!lookup.TryGetValue(span, out var text))
            {
                text = span.ToString();
                interned[text] = text;
            }
            result[i] = text;
        }
        return result;
    }

    private static async Task<T?[]> ReadNullable<T>(ParquetRowGroupReader rg, DataField field, int rows, CancellationToken ct) where T : struct
    {
        var values = new T?[rows];
        await rg.ReadAsync(field, values.AsMemory(), null, ct).ConfigureAwait(false);
        return values;
    }

    /// <summary>Writes a table as one Parquet file with one row group (numbers as nullable doubles, text as strings).</summary>
    public static async Task WriteAsync(DataTable table, Stream stream, CancellationToken ct = default)
    {
        var fields = new List<DataField>();
        foreach (var c in table.Columns)
            fields.Add(c is NumericColumn ? new DataField<double?>(c.Name) : new DataField<string>(c.Name));
        var writer = await ParquetWriter.CreateAsync(new ParquetSchema(fields), stream, null, false, ct).ConfigureAwait(false);
        await using var writerScope = writer.ConfigureAwait(false);
        using var rg = writer.CreateRowGroup();
        for (var i = 0; i < table.Columns.Count; i++)
        {
            switch (table.Columns[i])
            {
                case NumericColumn n:
                    var values = new double?[table.RowCount];
                    for (var r = 0; r < values.Length; r++) values[r] = double.IsNaN(n.Values[r]) ? null : n.Values[r];
                    await rg.WriteAsync<double>(fields[i], values.AsMemory(), null, null, ct).ConfigureAwait(false);
                    break;
                case TextColumn t:
                    await rg.WriteAsync(fields[i], new ArraySegment<string>(t.Values!, 0, table.RowCount), null).ConfigureAwait(false);
                    break;
            }
        }
    }

    /// <summary>Writes a table to a Parquet file.</summary>
    public static async Task WriteAsync(DataTable table, string path, CancellationToken ct = default)
    {
        var stream = File.Create(path);
        await using var streamScope = stream.ConfigureAwait(false);
        await WriteAsync(table, stream, ct).ConfigureAwait(false);
    }
}
