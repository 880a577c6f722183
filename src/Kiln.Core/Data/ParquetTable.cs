using Parquet;
using Parquet.Schema;

namespace Kiln.Core.Data;

/// <summary>Reads Parquet row groups into <see cref="DataTable"/>s and writes tables as Parquet.</summary>
public static class ParquetTable
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
        var reader = await OpenAsync(path, ct).ConfigureAwait(false);
        await using var readerScope = reader.ConfigureAwait(false);
        var fields = reader.Schema.GetDataFields();
        var selected = new DataField[requests.Count];
        for (var r = 0; r < requests.Count; r++)
        {
            selected[r] = Array.Find(fields, f => f.Name == requests[r].Name)
                ?? throw new KilnException($"{path}: column '{requests[r].Name}' is missing (the file has: {string.Join(", ", fields.Select(f => f.Name))})");
        }
        long rowBase = 0;
        for (var g = 0; g < reader.RowGroupCount; g++)
        {
            using var rg = reader.OpenRowGroupReader(g);
            var rows = checked((int)rg.RowCount);
            var table = new DataTable(rows);
            for (var r = 0; r < requests.Count; r++)
            {
                table.Add(await ReadColumnAsync(rg, selected[r], requests[r], rows, path, rowBase, ct).ConfigureAwait(false));
            }
            rowBase += rows;
            yield return table;
        }
    }

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

    private static async Task<Column> ReadColumnAsync(ParquetRowGroupReader rg, DataField field, ColumnRequest request, int rows,
        string path, long rowBase, CancellationToken ct)
    {
        var type = field.ClrType;
        if (type == typeof(string) || type == typeof(ReadOnlyMemory<char>))
        {
            var s = new string?[rows];
            await rg.ReadAsync(field, s.AsMemory(), null, ct).ConfigureAwait(false);
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
        if (type == typeof(double)) numbers = await ReadAsDouble<double>(rg, field, rows, v => v, ct).ConfigureAwait(false);
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
