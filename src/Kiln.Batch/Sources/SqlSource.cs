using System.Data.Common;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Text;
using Kiln.Core;
using Kiln.Core.Data;

namespace Kiln.Batch.Sources;

/// <summary>
/// A table or query in SQLite or PostgreSQL, streamed through one data reader per partition.
/// A table is cut into key ranges of <c>partitionRows</c> rows (keyset: key &gt; lo AND key &lt;= hi, by the
/// table's primary key, SQLite's rowid, or ?key=COL); a query's result is cut into consecutive row
/// ranges and read in one pass (give it an ORDER BY so that a resumed run sees the same rows in the same order).
/// </summary>
internal sealed class SqlSource(SqlLocation location, int partitionRows) : IBatchSource
{
    private List<(object? Lo, object? Hi, long Rows, long FirstRow)>? _ranges;
    private string? _key;

    public string Uri => location.Display + (location.Table is not null ? "?table=" + location.Table : "?query=" + location.Query);

    public bool Untyped => false;

    private string From => location.Table is not null ? SqlLocation.Quote(location.Table) : $"({location.Query}) AS kiln_q";

    public async Task<IReadOnlyList<SourceSchema>> InspectAsync(CancellationToken ct)
    {
        var connection = await location.OpenAsync(ct).ConfigureAwait(false);
        await using var connectionScope = connection.ConfigureAwait(false);
        var command = connection.CreateCommand();
        await using var commandScope = command.ConfigureAwait(false);
        command.CommandText = $"SELECT * FROM {From} LIMIT 0";
        var columns = new List<SourceColumn>();
        try
        {
            var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
            await using var readerScope = reader.ConfigureAwait(false);
            for (var i = 0; i < reader.FieldCount; i++) columns.Add(new SourceColumn(reader.GetName(i), KindOf(reader, i)));
        }
        catch (DbException e)
        {
            throw new KilnException($"{Uri}: cannot read ({e.Message})", e);
        }
        return [new SourceSchema(Uri, columns)];
    }

    public Task<string> FingerprintAsync(CancellationToken ct) =>
        Task.FromResult("sql:" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(Uri + "\n" + partitionRows))));

    public async Task<long?> CountRowsAsync(Func<PartitionId, bool> wanted, CancellationToken ct)
    {
        if (location.Table is null) return null;
        var ranges = await RangesAsync(ct).ConfigureAwait(false);
        long total = 0;
        for (var i = 0; i < ranges.Count; i++) if (wanted(new PartitionId(0, i))) total += ranges[i].Rows;
        return total;
    }

    public async IAsyncEnumerable<SourceChunk> ReadAsync(IReadOnlyList<ColumnRequest> requests, Func<PartitionId, bool> wanted, int batchRows,
        [EnumeratorCancellation] CancellationToken ct)
    {
        var select = string.Join(", ", requests.Select(r => SqlLocation.Quote(r.Name)));
        var connection = await location.OpenAsync(ct).ConfigureAwait(false);
        await using var connectionScope = connection.ConfigureAwait(false);
        if (location.Table is not null)
        {
            var ranges = await RangesAsync(ct).ConfigureAwait(false);
            var key = SqlLocation.Quote(_key!);
            for (var p = 0; p < ranges.Count; p++)
            {
                var id = new PartitionId(0, p);
                if (!wanted(id)) continue;
                var (lo, hi, _, firstRow) = ranges[p];
                var command = connection.CreateCommand();
                await using var commandScope = command.ConfigureAwait(false);
                var where = new List<string>();
                if (lo is not null) { where.Add($"{key} > @lo"); AddParameter(command, "lo", lo); }
                if (hi is not null) { where.Add($"{key} <= @hi"); AddParameter(command, "hi", hi); }
                command.CommandText = $"SELECT {select} FROM {From}" + (where.Count > 0 ? " WHERE " + string.Join(" AND ", where) : "") + $" ORDER BY {key}";
                var reader = await ExecuteAsync(command, ct).ConfigureAwait(false);
                await using var readerScope = reader.ConfigureAwait(false);
                var row = firstRow;
                while (true)
                {
                    var table = await ReadRowsAsync(reader, requests, batchRows, ct).ConfigureAwait(false);
                    var end = table.RowCount < batchRows;
                    yield return new SourceChunk(id, Uri, row, table, end);
                    row += table.RowCount;
                    if (end) break;
                }
            }
            yield break;
        }

        var queryCommand = connection.CreateCommand();
        await using (queryCommand.ConfigureAwait(false))
        {
            var command = queryCommand;
            command.CommandText = $"SELECT {select} FROM {From}";
            var reader = await ExecuteAsync(command, ct).ConfigureAwait(false);
            await using var readerScope = reader.ConfigureAwait(false);
            long row = 0;
            for (var partition = 0; ; partition++)
            {
                var id = new PartitionId(0, partition);
                var want = wanted(id);
                var remaining = partitionRows;
                var any = false;
                while (remaining > 0)
                {
                    var ask = Math.Min(batchRows, remaining);
                    var table = await ReadRowsAsync(reader, requests, ask, ct).ConfigureAwait(false);
                    if (table.RowCount == 0 && !any && partition > 0) yield break;
                    var end = table.RowCount < ask || table.RowCount == remaining;
                    if (want) yield return new SourceChunk(id, Uri, row, table, end);
                    any = true;
                    row += table.RowCount;
                    remaining -= table.RowCount;
                    if (table.RowCount < ask) yield break;
                }
            }
        }
    }

    private async Task<DbDataReader> ExecuteAsync(DbCommand command, CancellationToken ct)
    {
        try
        {
            return await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
        }
        catch (DbException e)
        {
            throw new KilnException($"{Uri}: cannot read ({e.Message})", e);
        }
    }

    /// <summary>Cuts the table into key ranges of partitionRows rows: each boundary is the key partitionRows rows after the last.</summary>
    private async Task<List<(object? Lo, object? Hi, long Rows, long FirstRow)>> RangesAsync(CancellationToken ct)
    {
        if (_ranges is not null) return _ranges;
        var connection = await location.OpenAsync(ct).ConfigureAwait(false);
        await using var connectionScope = connection.ConfigureAwait(false);
        _key = location.Key ?? await DefaultKeyAsync(connection, ct).ConfigureAwait(false);
        var key = SqlLocation.Quote(_key);
        var ranges = new List<(object?, object?, long, long)>();
        object? lo = null;
        long first = 0;
        try
        {
            while (true)
            {
                var command = connection.CreateCommand();
                await using var commandScope = command.ConfigureAwait(false);
                command.CommandText = $"SELECT {key} FROM {From}" + (lo is null ? "" : $" WHERE {key} > @lo") + $" ORDER BY {key} LIMIT 1 OFFSET {partitionRows - 1}";
                if (lo is not null) AddParameter(command, "lo", lo);
                var hi = await command.ExecuteScalarAsync(ct).ConfigureAwait(false);
                if (hi is null or DBNull) break;
                ranges.Add((lo, hi, partitionRows, first));
                first += partitionRows;
                lo = hi;
            }
            var count = connection.CreateCommand();
            await using var countScope = count.ConfigureAwait(false);
            count.CommandText = $"SELECT COUNT(*) FROM {From}" + (lo is null ? "" : $" WHERE {key} > @lo");
            if (lo is not null) AddParameter(count, "lo", lo);
            var rest = Convert.ToInt64(await count.ExecuteScalarAsync(ct).ConfigureAwait(false), CultureInfo.InvariantCulture);
            if (rest > 0 || ranges.Count == 0) ranges.Add((lo, null, rest, first));
        }
        catch (DbException e)
        {
            throw new KilnException($"{Uri}: cannot read key column '{_key}' ({e.Message})", e);
        }
        return _ranges = ranges;
    }

    private async Task<string> DefaultKeyAsync(DbConnection connection, CancellationToken ct)
    {
        if (location.Dialect == SqlDialect.Sqlite) return "rowid";
        var command = connection.CreateCommand();
        await using var commandScope = command.ConfigureAwait(false);
        command.CommandText = """
            SELECT a.attname FROM pg_index i
            JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
            WHERE i.indrelid = @t::regclass AND i.indisprimary
            """;
        AddParameter(command, "t", SqlLocation.Quote(location.Table!));
        var keys = new List<string>();
        try
        {
            var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
            await using var readerScope = reader.ConfigureAwait(false);
            while (await reader.ReadAsync(ct).ConfigureAwait(false)) keys.Add(reader.GetString(0));
        }
        catch (DbException e)
        {
            throw new KilnException($"{Uri}: cannot read the table ({e.Message})", e);
        }
        return keys.Count == 1 ? keys[0]
            : throw new KilnException($"{Uri}: the table has no single-column primary key to partition by; add &key=COLUMN (a unique, ordered column)");
    }

    private static void AddParameter(DbCommand command, string name, object value)
    {
        var p = command.CreateParameter();
        p.ParameterName = name;
        p.Value = value;
        command.Parameters.Add(p);
    }

    private static async Task<DataTable> ReadRowsAsync(DbDataReader reader, IReadOnlyList<ColumnRequest> requests, int maxRows, CancellationToken ct)
    {
        var ordinals = new int[requests.Count];
        for (var j = 0; j < ordinals.Length; j++) ordinals[j] = reader.GetOrdinal(requests[j].Name);
        var capacity = Math.Min(maxRows, 4096);
        var numbers = new double[requests.Count][];
        var text = new string?[requests.Count][];
        for (var j = 0; j < requests.Count; j++)
        {
            if (requests[j].Type == ColumnType.Numeric) numbers[j] = new double[capacity];
            else text[j] = new string?[capacity];
        }
        var rows = 0;
        while (rows < maxRows && await reader.ReadAsync(ct).ConfigureAwait(false))
        {
            if (rows == capacity)
            {
                capacity = Math.Min(maxRows, capacity * 2);
                for (var j = 0; j < requests.Count; j++)
                {
                    if (numbers[j] is not null) Array.Resize(ref numbers[j], capacity);
                    if (text[j] is not null) Array.Resize(ref text[j], capacity);
                }
            }
            for (var j = 0; j < requests.Count; j++)
            {
                var o = ordinals[j];
                var value = reader.IsDBNull(o) ? null : reader.GetValue(o);
                if (requests[j].Type == ColumnType.Text)
                {
                    text[j][rows] = value switch
                    {
                        null => null,
                        string s => s,
                        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
                        _ => value.ToString(),
                    };
                    continue;
                }
                double number;
                switch (value)
                {
                    case null: number = double.NaN; break;
                    case double d: number = d; break;
                    case float f: number = f; break;
                    case long l: number = l; break;
                    case int i: number = i; break;
                    case short s: number = s; break;
                    case decimal m: number = (double)m; break;
                    case bool b: number = b ? 1 : 0; break;
                    case string s when NumericColumn.TryParseCell(s, out var parsed): number = parsed; break;
                    default:
                        // Text in a numeric column (SQLite stores what it is given): keep the column as text
                        // for this chunk, so the validator can name the bad row.
                        if (text[j] is null)
                        {
                            text[j] = new string?[numbers[j].Length];
                            for (var r = 0; r < rows; r++) text[j][r] = double.IsNaN(numbers[j][r]) ? null : numbers[j][r].ToString("R", CultureInfo.InvariantCulture);
                        }
                        text[j][rows] = value is IFormattable fv ? fv.ToString(null, CultureInfo.InvariantCulture) : value.ToString();
                        continue;
                }
                numbers[j][rows] = number;
                if (text[j] is not null) text[j][rows] = double.IsNaN(number) ? null : number.ToString("R", CultureInfo.InvariantCulture);
            }
            rows++;
        }
        var table = new DataTable(rows);
        for (var j = 0; j < requests.Count; j++)
        {
            table.Add(text[j] is not null ? new TextColumn(requests[j].Name, text[j]) : new NumericColumn(requests[j].Name, numbers[j]));
        }
        return table;
    }

    private ValueKind KindOf(DbDataReader reader, int i)
    {
        if (location.Dialect == SqlDialect.Sqlite)
        {
            string declared;
            try { declared = reader.GetDataTypeName(i).ToUpperInvariant(); }
            catch (InvalidOperationException) { return ValueKind.Unknown; }
            // SQLite's type affinity rules, in their order.
            if (declared.Contains("INT", StringComparison.Ordinal)) return ValueKind.Integer;
            if (declared.Contains("CHAR", StringComparison.Ordinal) || declared.Contains("CLOB", StringComparison.Ordinal) || declared.Contains("TEXT", StringComparison.Ordinal)) return ValueKind.Text;
            if (declared.Contains("REAL", StringComparison.Ordinal) || declared.Contains("FLOA", StringComparison.Ordinal) || declared.Contains("DOUB", StringComparison.Ordinal)) return ValueKind.Real;
            // NUMERIC, BLOB or nothing declared: any value may appear; checked row by row.
            return ValueKind.Unknown;
        }
        var t = reader.GetFieldType(i);
        if (t == typeof(double) || t == typeof(float) || t == typeof(decimal)) return ValueKind.Real;
        if (t == typeof(long) || t == typeof(int) || t == typeof(short) || t == typeof(bool)) return ValueKind.Integer;
        return ValueKind.Text;
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
