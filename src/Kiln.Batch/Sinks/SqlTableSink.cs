using System.Data.Common;
using System.Globalization;
using Kiln.Batch.Sources;
using Kiln.Batch.Validation;
using Kiln.Core;
using Kiln.Core.Data;
using Npgsql;
using NpgsqlTypes;

namespace Kiln.Batch.Sinks;

/// <summary>
/// A SQLite or PostgreSQL table, created when missing. Each part is written in one transaction
/// together with its row in kiln_batch_parts, so a part is either wholly in the table or not at all;
/// --resume skips the parts recorded there. With a key the rows are upserted (ON CONFLICT … DO UPDATE),
/// so scoring the same rows twice leaves one row per key. PostgreSQL rows travel by COPY … BINARY.
/// </summary>
internal sealed class SqlTableSink(SqlLocation location, string? key) : IBatchSink
{
    private readonly SqlLocation _location = location;
    private readonly string? _key = key;
    public const string PartsTable = "kiln_batch_parts";

    private DbConnection? _connection;
    private IReadOnlyList<OutputColumn> _columns = [];
    private JobIdentity? _job;
    private bool _stagingCreated;

    private string Table => _location.Table!;

    public string Uri => _location.Display + "?table=" + Table;

    public string DefaultRejectsDirectory => Path.GetFullPath(Path.Combine("_rejects", Table));

    public async Task<IReadOnlySet<PartitionId>> OpenAsync(JobIdentity job, IReadOnlyList<OutputColumn> columns, bool resume, CancellationToken ct)
    {
        _job = job;
        _columns = columns;
        _connection = await _location.OpenAsync(ct).ConfigureAwait(false);
        var pg = _location.Dialect == SqlDialect.Postgres;
        try
        {
            await ExecuteAsync($"""
                CREATE TABLE IF NOT EXISTS {PartsTable} (
                  sink_table TEXT NOT NULL, job TEXT NOT NULL, file_index INTEGER NOT NULL, partition_index INTEGER NOT NULL,
                  source TEXT, first_row BIGINT, rows BIGINT NOT NULL, rejected BIGINT NOT NULL, unseen_categories BIGINT,
                  model TEXT, done_at TEXT NOT NULL,
                  PRIMARY KEY (sink_table, job, file_index, partition_index))
                """, ct).ConfigureAwait(false);

            var existing = await ExistingColumnsAsync(ct).ConfigureAwait(false);
            if (existing.Count == 0)
            {
                var defs = columns.Select(c => $"{SqlLocation.Quote(c.Name)} {SqlType(c.Kind, pg)}" + (c.Name == _key ? " NOT NULL" : "")).ToList();
                if (_key is not null) defs.Add($"PRIMARY KEY ({SqlLocation.Quote(_key)})");
                await ExecuteAsync($"CREATE TABLE IF NOT EXISTS {SqlLocation.Quote(Table)} ({string.Join(", ", defs)})", ct).ConfigureAwait(false);
            }
            else
            {
                foreach (var c in columns)
                {
                    if (!existing.Contains(c.Name))
                        throw new KilnException($"{Uri}: the table exists but has no column '{c.Name}' (it has: {string.Join(", ", existing)}); write to a new table");
                }
            }

            var done = new HashSet<PartitionId>();
            var command = _connection.CreateCommand();
            await using var commandScope = command.ConfigureAwait(false);
            command.CommandText = $"SELECT file_index, partition_index FROM {PartsTable} WHERE sink_table = @t AND job = @j";
            Add(command, "t", Table);
            Add(command, "j", job.Key);
            var partsReader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
            await using (partsReader.ConfigureAwait(false))
            {
                var reader = partsReader;
                while (await reader.ReadAsync(ct).ConfigureAwait(false))
                    done.Add(new PartitionId(Convert.ToInt32(reader.GetValue(0), CultureInfo.InvariantCulture), Convert.ToInt32(reader.GetValue(1), CultureInfo.InvariantCulture)));
            }
            if (resume) return done;
            if (_key is null && done.Any(job.Shard.Owns))
                throw new KilnException($"{Uri}: the table already holds rows of this job; pass --resume to finish it, or --key COL to upsert");
            return new HashSet<PartitionId>();
        }
        catch (DbException e)
        {
            throw new KilnException($"{Uri}: {e.Message}", e);
        }
    }

    public async Task<IPartWriter> BeginPartAsync(PartitionId partition, CancellationToken ct)
    {
        var transaction = await _connection!.BeginTransactionAsync(ct).ConfigureAwait(false);
        if (_location.Dialect == SqlDialect.Postgres && _key is not null)
        {
            if (!_stagingCreated)
            {
                await ExecuteAsync($"CREATE TEMP TABLE IF NOT EXISTS kiln_stage AS SELECT {ColumnList()} FROM {SqlLocation.Quote(Table)} WITH NO DATA", ct, transaction).ConfigureAwait(false);
                _stagingCreated = true;
            }
            await ExecuteAsync("TRUNCATE kiln_stage", ct, transaction).ConfigureAwait(false);
        }
        return new PartWriter(this, transaction);
    }

    public Task FinishAsync(bool complete, CancellationToken ct) => Task.CompletedTask;

    public async ValueTask DisposeAsync()
    {
        if (_connection is not null) await _connection.DisposeAsync().ConfigureAwait(false);
    }

    private string ColumnList() => string.Join(", ", _columns.Select(c => SqlLocation.Quote(c.Name)));

    private string UpsertClause() => _key is null ? "" :
        $" ON CONFLICT ({SqlLocation.Quote(_key)}) DO UPDATE SET " +
        string.Join(", ", _columns.Where(c => c.Name != _key).Select(c => $"{SqlLocation.Quote(c.Name)} = excluded.{SqlLocation.Quote(c.Name)}"));

    private static string SqlType(ValueKind kind, bool pg) => kind switch
    {
        ValueKind.Integer or ValueKind.Integer32 or ValueKind.Boolean => "BIGINT",
        ValueKind.Real => pg ? "DOUBLE PRECISION" : "REAL",
        _ => "TEXT",
    };

    private async Task<HashSet<string>> ExistingColumnsAsync(CancellationToken ct)
    {
        var command = _connection!.CreateCommand();
        await using var commandScope = command.ConfigureAwait(false);
        var names = Table.Split('.');
        if (_location.Dialect == SqlDialect.Sqlite)
        {
            command.CommandText = "SELECT name FROM pragma_table_info(@t)";
            Add(command, "t", names[^1]);
        }
        else
        {
            command.CommandText = names.Length > 1
                ? "SELECT column_name FROM information_schema.columns WHERE table_schema = @s AND table_name = @t ORDER BY ordinal_position"
                : "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = @t ORDER BY ordinal_position";
            Add(command, "t", names[^1]);
            if (names.Length > 1) Add(command, "s", names[0]);
        }
        var result = new HashSet<string>(StringComparer.Ordinal);
        var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
        await using var readerScope = reader.ConfigureAwait(false);
        while (await reader.ReadAsync(ct).ConfigureAwait(false)) result.Add(reader.GetString(0));
        return result;
    }

    private async Task ExecuteAsync(string sql, CancellationToken ct, DbTransaction? transaction = null)
    {
        var command = _connection!.CreateCommand();
        await using var commandScope = command.ConfigureAwait(false);
        command.CommandText = sql;
        command.Transaction = transaction;
        await command.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
    }

    private static void Add(DbCommand command, string name, object? value)
    {
        var p = command.CreateParameter();
        p.ParameterName = name;
        p.Value = value ?? DBNull.Value;
        command.Parameters.Add(p);
    }

    private static object? Cell(Column column, ValueKind kind, int row) => column switch
    {
        NumericColumn n when double.IsNaN(n.Values[row]) => null,
        NumericColumn n when kind is ValueKind.Integer or ValueKind.Integer32 or ValueKind.Boolean => (long)n.Values[row],
        NumericColumn n => n.Values[row],
        TextColumn t => t.Values[row],
        TimestampColumn s => s.Format(row), // a TEXT column, as timestamps always were here
        _ => null,
    };

    private sealed class PartWriter(SqlTableSink sink, DbTransaction transaction) : IPartWriter
    {
        private DbCommand? _insert;
        private bool _done;

        public async Task WriteAsync(DataTable rows, CancellationToken ct)
        {
            if (rows.RowCount == 0) return;
            try
            {
                if (sink._location.Dialect == SqlDialect.Postgres) await CopyAsync(rows, ct).ConfigureAwait(false);
                else await InsertAsync(rows, ct).ConfigureAwait(false);
            }
            catch (DbException e)
            {
                throw new KilnException($"{sink.Uri}: {e.Message}", e);
            }
        }

        private async Task CopyAsync(DataTable rows, CancellationToken ct)
        {
            var target = sink._key is null ? SqlLocation.Quote(sink.Table) : "kiln_stage";
            var connection = (NpgsqlConnection)sink._connection!;
            var importer = await connection.BeginBinaryImportAsync($"COPY {target} ({sink.ColumnList()}) FROM STDIN (FORMAT BINARY)", ct).ConfigureAwait(false);
            await using var importerScope = importer.ConfigureAwait(false);
            var columns = sink._columns.Select(c => rows[c.Name]).ToArray();
            for (var r = 0; r < rows.RowCount; r++)
            {
                await importer.StartRowAsync(ct).ConfigureAwait(false);
                for (var c = 0; c < columns.Length; c++)
                {
                    var kind = sink._columns[c].Kind;
                    switch (Cell(columns[c], kind, r))
                    {
                        case null: await importer.WriteNullAsync(ct).ConfigureAwait(false); break;
                        case long l: await importer.WriteAsync(l, NpgsqlDbType.Bigint, ct).ConfigureAwait(false); break;
                        case double d: await importer.WriteAsync(d, NpgsqlDbType.Double, ct).ConfigureAwait(false); break;
                        case string s: await importer.WriteAsync(s, NpgsqlDbType.Text, ct).ConfigureAwait(false); break;
                    }
                }
            }
            await importer.CompleteAsync(ct).ConfigureAwait(false);
        }

        private async Task InsertAsync(DataTable rows, CancellationToken ct)
        {
            if (_insert is null)
            {
                _insert = sink._connection!.CreateCommand();
                _insert.Transaction = transaction;
                var names = sink._columns.Select((_, i) => "@p" + i.ToString(CultureInfo.InvariantCulture));
                _insert.CommandText = $"INSERT INTO {SqlLocation.Quote(sink.Table)} ({sink.ColumnList()}) VALUES ({string.Join(", ", names)}){sink.UpsertClause()}";
                for (var i = 0; i < sink._columns.Count; i++) Add(_insert, "p" + i.ToString(CultureInfo.InvariantCulture), null);
                await _insert.PrepareAsync(ct).ConfigureAwait(false);
            }
            var columns = sink._columns.Select(c => rows[c.Name]).ToArray();
            for (var r = 0; r < rows.RowCount; r++)
            {
                for (var c = 0; c < columns.Length; c++) _insert.Parameters[c].Value = Cell(columns[c], sink._columns[c].Kind, r) ?? DBNull.Value;
                await _insert.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            }
        }

        public async Task CommitAsync(PartRecord record, CancellationToken ct)
        {
            try
            {
                if (sink._location.Dialect == SqlDialect.Postgres && sink._key is not null)
                {
                    await sink.ExecuteAsync($"INSERT INTO {SqlLocation.Quote(sink.Table)} ({sink.ColumnList()}) SELECT {sink.ColumnList()} FROM kiln_stage{sink.UpsertClause()}", ct, transaction).ConfigureAwait(false);
                }
                var command = sink._connection!.CreateCommand();
                await using var commandScope = command.ConfigureAwait(false);
                command.Transaction = transaction;
                command.CommandText = $"""
                    INSERT INTO {PartsTable} (sink_table, job, file_index, partition_index, source, first_row, rows, rejected, unseen_categories, model, done_at)
                    VALUES (@t, @j, @f, @p, @s, @first, @rows, @rej, @unseen, @m, @at)
                    ON CONFLICT (sink_table, job, file_index, partition_index) DO UPDATE SET
                      rows = excluded.rows, rejected = excluded.rejected, unseen_categories = excluded.unseen_categories, done_at = excluded.done_at
                    """;
                Add(command, "t", sink.Table);
                Add(command, "j", sink._job!.Key);
                Add(command, "f", record.FileIndex);
                Add(command, "p", record.Partition);
                Add(command, "s", record.Source);
                Add(command, "first", record.FirstRow);
                Add(command, "rows", record.Rows);
                Add(command, "rej", record.Rejected);
                Add(command, "unseen", record.UnseenCategories);
                Add(command, "m", sink._job.ModelName + (sink._job.ModelVersion is { } v ? "/" + v : ""));
                Add(command, "at", DateTimeOffset.UtcNow.ToString("O", CultureInfo.InvariantCulture));
                await command.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
                await transaction.CommitAsync(ct).ConfigureAwait(false);
                _done = true;
            }
            catch (DbException e)
            {
                throw new KilnException($"{sink.Uri}: {e.Message}", e);
            }
        }

        public async ValueTask DisposeAsync()
        {
            if (_insert is not null) await _insert.DisposeAsync().ConfigureAwait(false);
            if (!_done)
            {
                try { await transaction.RollbackAsync().ConfigureAwait(false); }
                catch (DbException) { }
                catch (InvalidOperationException) { }
            }
            await transaction.DisposeAsync().ConfigureAwait(false);
        }
    }
}
