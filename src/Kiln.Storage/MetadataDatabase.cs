using System.Data.Common;
using System.Globalization;
using Kiln.Core;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace Kiln.Storage;

/// <summary>
/// The metadata database of a process (kiln.db): SQLite in WAL mode with a busy timeout and one writer
/// queue, or one shared <see cref="NpgsqlDataSource"/>. Tracking, pipelines and features all open it
/// through here; each area brings its numbered migrations (<see cref="EnsureSchemaAsync"/>).
/// </summary>
public abstract class MetadataDatabase : IAsyncDisposable
{
    private readonly SemaphoreSlim _schemaLock = new(1, 1);
    private readonly HashSet<string> _ready = new(StringComparer.Ordinal);

    private protected MetadataDatabase(StorageLocation location) => Location = location;

    /// <summary>Where the data lives.</summary>
    public StorageLocation Location { get; }

    /// <summary>Where the data lives, for messages (never a password).</summary>
    public string Description => Location.Display;

    public abstract SqlDialect Dialect { get; }

    public bool IsPostgres => Dialect == SqlDialect.Postgres;

    /// <summary>Opens the database a location names; an http(s):// location is not a database and is refused.</summary>
    public static MetadataDatabase Open(StorageLocation location) => location.Kind switch
    {
        StorageKind.Sqlite => new SqliteMetadataDatabase(location),
        StorageKind.Postgres => new PostgresMetadataDatabase(location),
        _ => throw new KilnException($"{location.Display}: a server URL is not a database; this command needs a directory, sqlite:///FILE or postgresql://..."),
    };

    /// <summary>Parses <paramref name="location"/> (docs/cli.md#locations) and opens it.</summary>
    public static MetadataDatabase Open(string location, string option = "location") => Open(StorageLocation.Parse(location, option));

    /// <summary>A SQLite file (its folder is created).</summary>
    public static MetadataDatabase Sqlite(string path) => new SqliteMetadataDatabase(StorageLocation.SqliteFile(path));

    /// <summary>Opens a pooled connection (SQLite: busy timeout set; the WAL journal is set once per database).</summary>
    public abstract ValueTask<DbConnection> OpenConnectionAsync(CancellationToken ct);

    /// <summary>Makes sure the area's tables are at the newest version this build knows; runs once per area per instance.</summary>
    public async Task EnsureSchemaAsync(SchemaArea area, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(area);
        lock (_ready)
        {
            if (_ready.Contains(area.Name)) return;
        }
        await _schemaLock.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            lock (_ready)
            {
                if (_ready.Contains(area.Name)) return;
            }
            await WithWriterAsync(() => MigrateAsync(area, ct), ct).ConfigureAwait(false);
            lock (_ready) _ready.Add(area.Name);
        }
        finally
        {
            _schemaLock.Release();
        }
    }

    /// <summary>The version recorded for an area, or null when kiln_schema has no row for it (or does not exist).</summary>
    public async Task<int?> SchemaVersionAsync(string area, CancellationToken ct)
    {
        var c = await OpenConnectionAsync(ct).ConfigureAwait(false);
        await using (c.ConfigureAwait(false))
        {
            if (!await TableExistsAsync(c, null, "kiln_schema", ct).ConfigureAwait(false)) return null;
            return await CurrentVersionAsync(c, null, area, ct).ConfigureAwait(false);
        }
    }

    /// <summary>Runs a read on a pooled connection.</summary>
    public async Task<T> ReadAsync<T>(Func<DbConnection, Task<T>> body, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(body);
        var c = await OpenConnectionAsync(ct).ConfigureAwait(false);
        await using (c.ConfigureAwait(false))
        {
            return await body(c).ConfigureAwait(false);
        }
    }

    /// <summary>Runs a write in one transaction, behind the writer queue on SQLite: it commits when the body returns and rolls back when it throws.</summary>
    public Task<T> WriteAsync<T>(Func<DbConnection, DbTransaction, Task<T>> body, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(body);
        return WithWriterAsync(async () =>
        {
            var c = await OpenConnectionAsync(ct).ConfigureAwait(false);
            await using (c.ConfigureAwait(false))
            {
                var tx = await c.BeginTransactionAsync(ct).ConfigureAwait(false);
                await using (tx.ConfigureAwait(false))
                {
                    var result = await body(c, tx).ConfigureAwait(false);
                    await tx.CommitAsync(ct).ConfigureAwait(false);
                    return result;
                }
            }
        }, ct);
    }

    public Task WriteAsync(Func<DbConnection, DbTransaction, Task> body, CancellationToken ct) =>
        WriteAsync<bool>(async (c, tx) =>
        {
            await body(c, tx).ConfigureAwait(false);
            return true;
        }, ct);

    /// <summary>
    /// A connection held as this process's only writer (SQLite) until disposed, for a store that runs its
    /// own statements and transactions; on PostgreSQL it is a plain pooled connection.
    /// </summary>
    public async Task<WriterLease> LeaseWriterAsync(CancellationToken ct)
    {
        var slot = await EnterWriterAsync(ct).ConfigureAwait(false);
        try
        {
            return new WriterLease(await OpenConnectionAsync(ct).ConfigureAwait(false), slot);
        }
        catch
        {
            slot?.Dispose();
            throw;
        }
    }

    /// <summary>Waits for the writer slot (SQLite); null where no queue is needed (PostgreSQL).</summary>
    private protected abstract ValueTask<IDisposable?> EnterWriterAsync(CancellationToken ct);

    private async Task<T> WithWriterAsync<T>(Func<Task<T>> body, CancellationToken ct)
    {
        var slot = await EnterWriterAsync(ct).ConfigureAwait(false);
        try
        {
            return await body().ConfigureAwait(false);
        }
        finally
        {
            slot?.Dispose();
        }
    }

    private async Task<bool> MigrateAsync(SchemaArea area, CancellationToken ct)
    {
        var c = await OpenConnectionAsync(ct).ConfigureAwait(false);
        await using (c.ConfigureAwait(false))
        {
            // SQLite's transactions here begin IMMEDIATE (the write lock), PostgreSQL takes an advisory lock:
            // several processes starting on one database migrate it once, one after the other.
            var tx = await c.BeginTransactionAsync(ct).ConfigureAwait(false);
            await using (tx.ConfigureAwait(false))
            {
                await LockSchemaAsync(c, tx, ct).ConfigureAwait(false);
                await ExecAsync(c, tx, "CREATE TABLE IF NOT EXISTS kiln_schema (area TEXT NOT NULL, version INTEGER NOT NULL, applied_at TEXT NOT NULL, note TEXT, PRIMARY KEY (area, version))", ct).ConfigureAwait(false);
                var current = await CurrentVersionAsync(c, tx, area.Name, ct).ConfigureAwait(false);
                if (current is null && await TableExistsAsync(c, tx, area.AdoptTable, ct).ConfigureAwait(false))
                {
                    // Made by a Kiln from before kiln_schema: its tables are version 1; record that and keep the data.
                    await RecordAsync(c, tx, area.Name, 1, "adopted", ct).ConfigureAwait(false);
                    current = 1;
                }
                var known = area.LatestVersion;
                if (current > known)
                    throw new KilnException($"{Description}: {area.Name} schema version {current} is newer than this kiln (knows {known}); upgrade kiln");
                foreach (var m in area.Migrations.Where(m => m.Version > (current ?? 0)).OrderBy(m => m.Version))
                {
                    var sql = IsPostgres && m.PostgresSql is not null ? m.PostgresSql : m.Sql;
                    foreach (var statement in Dialect.Ddl(sql).Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
                        await ExecAsync(c, tx, statement, ct).ConfigureAwait(false);
                    await RecordAsync(c, tx, area.Name, m.Version, null, ct).ConfigureAwait(false);
                }
                await tx.CommitAsync(ct).ConfigureAwait(false);
            }
        }
        return true;
    }

    private protected virtual Task LockSchemaAsync(DbConnection c, DbTransaction tx, CancellationToken ct) => Task.CompletedTask;

    private static async Task<int?> CurrentVersionAsync(DbConnection c, DbTransaction? tx, string area, CancellationToken ct)
    {
        using var cmd = c.Command(tx, "SELECT max(version) FROM kiln_schema WHERE area = @a", ("a", area));
        var v = await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false);
        return v is null or DBNull ? null : Convert.ToInt32(v, CultureInfo.InvariantCulture);
    }

    private async Task<bool> TableExistsAsync(DbConnection c, DbTransaction? tx, string table, CancellationToken ct)
    {
        using var cmd = c.Command(tx, Dialect.TableExistsQuery, ("t", table));
        return Convert.ToInt64(await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false), CultureInfo.InvariantCulture) > 0;
    }

    private static async Task RecordAsync(DbConnection c, DbTransaction tx, string area, int version, string? note, CancellationToken ct)
    {
        using var cmd = c.Command(tx, "INSERT INTO kiln_schema (area, version, applied_at, note) VALUES (@a, @v, @t, @n)",
            ("a", area), ("v", version), ("t", DateTime.UtcNow.ToString("O", CultureInfo.InvariantCulture)), ("n", note));
        await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
    }

    private static async Task ExecAsync(DbConnection c, DbTransaction? tx, string sql, CancellationToken ct)
    {
        using var cmd = c.Command(tx, sql);
        await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
    }


    public virtual ValueTask DisposeAsync()
    {
        _schemaLock.Dispose();
        GC.SuppressFinalize(this);
        return ValueTask.CompletedTask;
    }
}

internal sealed class SqliteMetadataDatabase : MetadataDatabase
{
    private readonly string _connectionString;

    // SQLite has one writer at a time: queueing this process's writers here instead of in SQLite's busy
    // loop keeps many concurrent writers fair and fast; the busy timeout covers other processes.
    private readonly SemaphoreSlim _writer = new(1, 1);
    private volatile bool _walSet;

    public SqliteMetadataDatabase(StorageLocation location) : base(location)
    {
        var path = location.SqlitePath!;
        var dir = Path.GetDirectoryName(path);
        if (!string.IsNullOrEmpty(dir)) Directory.CreateDirectory(dir);
        _connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = path,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Pooling = true,
            DefaultTimeout = 30,
        }.ToString();
    }

    public override SqlDialect Dialect => SqlDialect.Sqlite;

    public override async ValueTask<DbConnection> OpenConnectionAsync(CancellationToken ct)
    {
        var c = new SqliteConnection(_connectionString);
        try
        {
            await c.OpenAsync(ct).ConfigureAwait(false);
            using var cmd = c.CreateCommand();
            cmd.CommandText = "PRAGMA busy_timeout = 30000; " + (_walSet ? "" : "PRAGMA journal_mode = WAL; ") + "PRAGMA synchronous = NORMAL; PRAGMA case_sensitive_like = ON;";
            await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            _walSet = true;
            return c;
        }
        catch (SqliteException e)
        {
            await c.DisposeAsync().ConfigureAwait(false);
            throw new KilnException($"{Description}: cannot open ({e.Message})", e);
        }
    }

    private protected override async ValueTask<IDisposable?> EnterWriterAsync(CancellationToken ct)
    {
        await _writer.WaitAsync(ct).ConfigureAwait(false);
        return new Releaser(_writer);
    }

    private sealed class Releaser(SemaphoreSlim semaphore) : IDisposable
    {
        private int _released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0) semaphore.Release();
        }
    }

    public override async ValueTask DisposeAsync()
    {
        _writer.Dispose();
        // Pooled connections keep the file open (and the WAL around); release them.
        using (var c = new SqliteConnection(_connectionString)) SqliteConnection.ClearPool(c);
        await base.DisposeAsync().ConfigureAwait(false);
    }
}

internal sealed class PostgresMetadataDatabase : MetadataDatabase
{
    private readonly NpgsqlDataSource _source;

    public PostgresMetadataDatabase(StorageLocation location) : base(location) => _source = NpgsqlDataSource.Create(location.PostgresConnectionString!);

    public override SqlDialect Dialect => SqlDialect.Postgres;

    public override async ValueTask<DbConnection> OpenConnectionAsync(CancellationToken ct)
    {
        try
        {
            return await _source.OpenConnectionAsync(ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is NpgsqlException or System.Net.Sockets.SocketException or TimeoutException)
        {
            throw new KilnException($"{Description}: cannot connect ({e.Message.Split('\n')[0]})", e);
        }
    }

    private protected override ValueTask<IDisposable?> EnterWriterAsync(CancellationToken ct) => ValueTask.FromResult<IDisposable?>(null);

    private protected override async Task LockSchemaAsync(DbConnection c, DbTransaction tx, CancellationToken ct)
    {
        using var cmd = c.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = "SELECT pg_advisory_xact_lock(7368283)";
        await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
    }

    public override async ValueTask DisposeAsync()
    {
        await _source.DisposeAsync().ConfigureAwait(false);
        await base.DisposeAsync().ConfigureAwait(false);
    }
}

/// <summary>A connection held with the writer slot; disposing it closes the connection and frees the slot.</summary>
public sealed class WriterLease : IDisposable
{
    private readonly IDisposable? _slot;

    internal WriterLease(DbConnection connection, IDisposable? slot)
    {
        Connection = connection;
        _slot = slot;
    }

    public DbConnection Connection { get; }

    public void Dispose()
    {
        Connection.Dispose();
        _slot?.Dispose();
    }
}
