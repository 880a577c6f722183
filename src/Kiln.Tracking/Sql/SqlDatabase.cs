using System.Data.Common;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace Kiln.Tracking.Sql;

/// <summary>
/// The metadata database behind the SQL stores: SQLite (WAL, busy timeout, one writer at a time in
/// this process) or PostgreSQL (one shared NpgsqlDataSource). The few dialect differences live here.
/// </summary>
public abstract class SqlDatabase : IAsyncDisposable
{
    private readonly SemaphoreSlim _schemaLock = new(1, 1);
    private volatile bool _ready;

    public abstract bool IsPostgres { get; }

    /// <summary>Where the data lives, for messages (never a password).</summary>
    public abstract string Description { get; }

    /// <summary>Opens SQLite: a file path; its folder is created. WAL mode, 30 s busy timeout.</summary>
    public static SqlDatabase Sqlite(string path) => new SqliteDatabase(path);

    /// <summary>Opens PostgreSQL from an Npgsql connection string or a postgresql:// URI.</summary>
    public static SqlDatabase Postgres(string connectionStringOrUri) => new PostgresDatabase(connectionStringOrUri);

    protected abstract ValueTask<DbConnection> OpenRawAsync(CancellationToken ct);

    protected abstract Task MigrateAsync(DbConnection connection, CancellationToken ct);

    internal abstract bool IsUniqueViolation(Exception e);

    /// <summary>Replaces the type tokens of the schema script with this dialect's types.</summary>
    internal abstract string Ddl(string sql);

    /// <summary>Inserts metric points into the history table inside the caller's transaction.</summary>
    internal abstract Task InsertMetricsAsync(DbConnection c, DbTransaction tx, string runId, IReadOnlyList<Metric> metrics, CancellationToken ct);

    /// <summary>Opens a connection to a database whose schema is in place.</summary>
    public async ValueTask<DbConnection> OpenAsync(CancellationToken ct)
    {
        var c = await OpenRawAsync(ct).ConfigureAwait(false);
        if (_ready) return c;
        try
        {
            await _schemaLock.WaitAsync(ct).ConfigureAwait(false);
            try
            {
                if (!_ready)
                {
                    await MigrateAsync(c, ct).ConfigureAwait(false);
                    _ready = true;
                }
            }
            finally
            {
                _schemaLock.Release();
            }
            return c;
        }
        catch
        {
            await c.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Runs a read.</summary>
    public async Task<T> ReadAsync<T>(Func<DbConnection, Task<T>> body, CancellationToken ct)
    {
        var c = await OpenAsync(ct).ConfigureAwait(false);
        await using (c.ConfigureAwait(false))
        {
            return await body(c).ConfigureAwait(false);
        }
    }

    /// <summary>Runs a write in one transaction: it commits when the body returns and rolls back when it throws.</summary>
    public virtual async Task<T> WriteAsync<T>(Func<DbConnection, DbTransaction, Task<T>> body, CancellationToken ct)
    {
        var c = await OpenAsync(ct).ConfigureAwait(false);
        await using (c.ConfigureAwait(false))
        {
            var tx = await c.BeginTransactionAsync(ct).ConfigureAwait(false);
            await using (tx.ConfigureAwait(false))
            {
                T result;
                try
                {
                    result = await body(c, tx).ConfigureAwait(false);
                }
                catch (Exception e) when (IsUniqueViolation(e))
                {
                    throw TrackingException.Exists("the resource already exists (a concurrent request created it)");
                }
                await tx.CommitAsync(ct).ConfigureAwait(false);
                return result;
            }
        }
    }

    public Task WriteAsync(Func<DbConnection, DbTransaction, Task> body, CancellationToken ct) =>
        WriteAsync<bool>(async (c, tx) =>
        {
            await body(c, tx).ConfigureAwait(false);
            return true;
        }, ct);

    protected async Task RunScriptAsync(DbConnection c, DbTransaction? tx, string script, CancellationToken ct)
    {
        foreach (var statement in Ddl(script).Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            using var cmd = c.Command(tx, statement);
            await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }
    }

    public virtual ValueTask DisposeAsync()
    {
        _schemaLock.Dispose();
        GC.SuppressFinalize(this);
        return ValueTask.CompletedTask;
    }

    /// <summary>The schema, with {ID}, {BIGINT}, {DOUBLE} for the dialect's types.</summary>
    internal const string Schema = """
        CREATE TABLE IF NOT EXISTS experiments (
            experiment_id {ID},
            name TEXT NOT NULL UNIQUE,
            artifact_location TEXT,
            lifecycle_stage TEXT NOT NULL,
            creation_time {BIGINT} NOT NULL,
            last_update_time {BIGINT} NOT NULL);
        CREATE TABLE IF NOT EXISTS experiment_tags (
            experiment_id {BIGINT} NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
            PRIMARY KEY (experiment_id, key));
        CREATE TABLE IF NOT EXISTS runs (
            run_id TEXT PRIMARY KEY,
            experiment_id {BIGINT} NOT NULL,
            run_name TEXT NOT NULL,
            user_id TEXT NOT NULL,
            status TEXT NOT NULL,
            start_time {BIGINT} NOT NULL,
            end_time {BIGINT},
            lifecycle_stage TEXT NOT NULL,
            artifact_uri TEXT NOT NULL);
        CREATE INDEX IF NOT EXISTS runs_experiment ON runs (experiment_id, start_time);
        CREATE TABLE IF NOT EXISTS params (
            run_id TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
            PRIMARY KEY (run_id, key));
        CREATE TABLE IF NOT EXISTS tags (
            run_id TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
            PRIMARY KEY (run_id, key));
        CREATE TABLE IF NOT EXISTS metrics (
            run_id TEXT NOT NULL, key TEXT NOT NULL, step {BIGINT} NOT NULL, timestamp {BIGINT} NOT NULL,
            value {DOUBLE}, is_nan INTEGER NOT NULL);
        CREATE INDEX IF NOT EXISTS metrics_run_key ON metrics (run_id, key);
        CREATE TABLE IF NOT EXISTS latest_metrics (
            run_id TEXT NOT NULL, key TEXT NOT NULL, step {BIGINT} NOT NULL, timestamp {BIGINT} NOT NULL,
            value {DOUBLE}, is_nan INTEGER NOT NULL,
            PRIMARY KEY (run_id, key));
        CREATE INDEX IF NOT EXISTS latest_metrics_key_value ON latest_metrics (key, value);
        CREATE TABLE IF NOT EXISTS registered_models (
            name TEXT PRIMARY KEY,
            creation_time {BIGINT} NOT NULL,
            last_updated_time {BIGINT} NOT NULL,
            description TEXT);
        CREATE TABLE IF NOT EXISTS registered_model_tags (
            name TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
            PRIMARY KEY (name, key));
        CREATE TABLE IF NOT EXISTS model_versions (
            name TEXT NOT NULL,
            version INTEGER NOT NULL,
            creation_time {BIGINT} NOT NULL,
            last_updated_time {BIGINT} NOT NULL,
            description TEXT,
            user_id TEXT NOT NULL,
            current_stage TEXT NOT NULL,
            source TEXT NOT NULL,
            run_id TEXT,
            status TEXT NOT NULL,
            PRIMARY KEY (name, version));
        CREATE INDEX IF NOT EXISTS model_versions_run ON model_versions (run_id);
        CREATE TABLE IF NOT EXISTS model_version_tags (
            name TEXT NOT NULL, version INTEGER NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
            PRIMARY KEY (name, version, key));
        CREATE TABLE IF NOT EXISTS model_aliases (
            name TEXT NOT NULL, alias TEXT NOT NULL, version INTEGER NOT NULL,
            PRIMARY KEY (name, alias));
        CREATE TABLE IF NOT EXISTS alias_history (
            id {ID},
            name TEXT NOT NULL,
            alias TEXT NOT NULL,
            action TEXT NOT NULL,
            from_version INTEGER,
            to_version INTEGER,
            user_id TEXT NOT NULL,
            timestamp {BIGINT} NOT NULL);
        CREATE INDEX IF NOT EXISTS alias_history_model ON alias_history (name, alias, id)
        """;

    /// <summary>MLflow's Default experiment, id 0.</summary>
    internal const string DefaultExperiment = """
        INSERT INTO experiments (experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time)
        SELECT 0, 'Default', NULL, 'active', @now, @now
        WHERE NOT EXISTS (SELECT 1 FROM experiments WHERE experiment_id = 0)
        """;
}

internal sealed class SqliteDatabase : SqlDatabase
{
    private readonly string _connectionString;
    private readonly string _path;

    // SQLite has one writer at a time: queueing writers here instead of in SQLite's busy loop keeps
    // many concurrent writers fair and fast; the busy timeout covers other processes.
    private readonly SemaphoreSlim _writer = new(1, 1);

    public SqliteDatabase(string path)
    {
        _path = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(_path);
        if (!string.IsNullOrEmpty(dir)) Directory.CreateDirectory(dir);
        _connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = _path,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Pooling = true,
            DefaultTimeout = 30,
        }.ToString();
    }

    public override bool IsPostgres => false;

    public override string Description => $"sqlite:{_path}";

    protected override async ValueTask<DbConnection> OpenRawAsync(CancellationToken ct)
    {
        var c = new SqliteConnection(_connectionString);
        await c.OpenAsync(ct).ConfigureAwait(false);
        using var cmd = c.Command(null, "PRAGMA busy_timeout = 30000; PRAGMA synchronous = NORMAL; PRAGMA case_sensitive_like = ON;");
        await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        return c;
    }

    protected override async Task MigrateAsync(DbConnection c, CancellationToken ct)
    {
        using (var wal = c.Command(null, "PRAGMA journal_mode = WAL;"))
        {
            await wal.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }
        using var tx = await c.BeginTransactionAsync(ct).ConfigureAwait(false);
        await RunScriptAsync(c, tx, Schema, ct).ConfigureAwait(false);
        using (var cmd = c.Command(tx, DefaultExperiment, ("now", DateTimeOffset.UtcNow.ToUnixTimeMilliseconds())))
        {
            await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }
        await tx.CommitAsync(ct).ConfigureAwait(false);
    }

    public override async Task<T> WriteAsync<T>(Func<DbConnection, DbTransaction, Task<T>> body, CancellationToken ct)
    {
        await _writer.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            return await base.WriteAsync(body, ct).ConfigureAwait(false);
        }
        finally
        {
            _writer.Release();
        }
    }

    internal override bool IsUniqueViolation(Exception e) =>
        e is SqliteException { SqliteErrorCode: 19, SqliteExtendedErrorCode: 2067 or 1555 };

    internal override string Ddl(string sql) => sql
        .Replace("{ID}", "INTEGER PRIMARY KEY AUTOINCREMENT", StringComparison.Ordinal)
        .Replace("{BIGINT}", "INTEGER", StringComparison.Ordinal)
        .Replace("{DOUBLE}", "REAL", StringComparison.Ordinal);

    internal override async Task InsertMetricsAsync(DbConnection c, DbTransaction tx, string runId, IReadOnlyList<Metric> metrics, CancellationToken ct)
    {
        using var cmd = c.Command(tx, "INSERT INTO metrics (run_id, key, step, timestamp, value, is_nan) VALUES (@r, @k, @s, @t, @v, @n)",
            ("r", runId), ("k", ""), ("s", 0L), ("t", 0L), ("v", 0.0), ("n", 0));
        var ps = cmd.Parameters;
        await cmd.PrepareAsync(ct).ConfigureAwait(false);
        foreach (var m in metrics)
        {
            ps[1].Value = m.Key;
            ps[2].Value = m.Step;
            ps[3].Value = m.Timestamp;
            ps[4].Value = double.IsNaN(m.Value) ? DBNull.Value : m.Value;
            ps[5].Value = double.IsNaN(m.Value) ? 1 : 0;
            await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }
    }

    public override async ValueTask DisposeAsync()
    {
        _writer.Dispose();
        // Pooled connections keep the file open (and the WAL around); release them.
        SqliteConnection.ClearPool(new SqliteConnection(_connectionString));
        await base.DisposeAsync().ConfigureAwait(false);
    }
}

internal sealed class PostgresDatabase : SqlDatabase
{
    private readonly NpgsqlDataSource _source;
    private readonly string _description;

    public PostgresDatabase(string connectionStringOrUri)
    {
        var cs = connectionStringOrUri.Contains("://", StringComparison.Ordinal) ? FromUri(connectionStringOrUri) : connectionStringOrUri;
        var builder = new NpgsqlConnectionStringBuilder(cs);
        _description = $"postgresql://{builder.Host}:{builder.Port}/{builder.Database}";
        _source = NpgsqlDataSource.Create(builder);
    }

    public override bool IsPostgres => true;

    public override string Description => _description;

    /// <summary>postgresql://user:password@host:port/database?key=value → an Npgsql connection string.</summary>
    internal static string FromUri(string uri)
    {
        if (!Uri.TryCreate(uri, UriKind.Absolute, out var u) || u.Scheme is not ("postgresql" or "postgres"))
            throw TrackingException.Invalid($"invalid PostgreSQL URI '{uri}': expected postgresql://user:password@host:port/database");
        var b = new NpgsqlConnectionStringBuilder
        {
            Host = u.Host,
            Port = u.IsDefaultPort || u.Port <= 0 ? 5432 : u.Port,
            Database = Uri.UnescapeDataString(u.AbsolutePath.TrimStart('/')) is { Length: > 0 } db ? db : "postgres",
        };
        if (u.UserInfo.Length > 0)
        {
            var parts = u.UserInfo.Split(':', 2);
            b.Username = Uri.UnescapeDataString(parts[0]);
            if (parts.Length == 2) b.Password = Uri.UnescapeDataString(parts[1]);
        }
        foreach (var pair in u.Query.TrimStart('?').Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var kv = pair.Split('=', 2);
            if (kv.Length == 2) b[Uri.UnescapeDataString(kv[0])] = Uri.UnescapeDataString(kv[1]);
        }
        return b.ToString();
    }

    protected override async ValueTask<DbConnection> OpenRawAsync(CancellationToken ct) =>
        await _source.OpenConnectionAsync(ct).ConfigureAwait(false);

    protected override async Task MigrateAsync(DbConnection c, CancellationToken ct)
    {
        using var tx = await c.BeginTransactionAsync(ct).ConfigureAwait(false);
        // Several processes may start on an empty database at once: one creates the schema.
        using (var l = c.Command(tx, "SELECT pg_advisory_xact_lock(7368283)"))
        {
            await l.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }
        await RunScriptAsync(c, tx, Schema, ct).ConfigureAwait(false);
        using (var cmd = c.Command(tx, DefaultExperiment, ("now", DateTimeOffset.UtcNow.ToUnixTimeMilliseconds())))
        {
            await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }
        await tx.CommitAsync(ct).ConfigureAwait(false);
    }

    internal override bool IsUniqueViolation(Exception e) => e is PostgresException { SqlState: "23505" };

    internal override string Ddl(string sql) => sql
        .Replace("{ID}", "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY", StringComparison.Ordinal)
        .Replace("{BIGINT}", "BIGINT", StringComparison.Ordinal)
        .Replace("{DOUBLE}", "DOUBLE PRECISION", StringComparison.Ordinal);

    internal override async Task InsertMetricsAsync(DbConnection c, DbTransaction tx, string runId, IReadOnlyList<Metric> metrics, CancellationToken ct)
    {
        // One round trip for the whole batch: arrays unnested server-side.
        var n = metrics.Count;
        var keys = new string[n];
        var steps = new long[n];
        var times = new long[n];
        var values = new double?[n];
        var nans = new int[n];
        for (var i = 0; i < n; i++)
        {
            var m = metrics[i];
            keys[i] = m.Key;
            steps[i] = m.Step;
            times[i] = m.Timestamp;
            values[i] = double.IsNaN(m.Value) ? null : m.Value;
            nans[i] = double.IsNaN(m.Value) ? 1 : 0;
        }
        using var cmd = c.Command(tx, """
            INSERT INTO metrics (run_id, key, step, timestamp, value, is_nan)
            SELECT @r, k, s, t, v, n FROM unnest(@k, @s, @t, @v, @n) AS x(k, s, t, v, n)
            """, ("r", runId), ("k", keys), ("s", steps), ("t", times), ("v", values), ("n", nans));
        await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
    }

    public override async ValueTask DisposeAsync()
    {
        await _source.DisposeAsync().ConfigureAwait(false);
        await base.DisposeAsync().ConfigureAwait(false);
    }
}

internal static class DbExtensions
{
    public static DbCommand Command(this DbConnection c, DbTransaction? tx, string sql, params ReadOnlySpan<(string Name, object? Value)> parameters)
    {
        var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        cmd.Transaction = tx;
        foreach (var (name, value) in parameters) cmd.AddParameter(name, value);
        return cmd;
    }

    public static void AddParameter(this DbCommand cmd, string name, object? value)
    {
        var p = cmd.CreateParameter();
        p.ParameterName = name;
        p.Value = value ?? DBNull.Value;
        cmd.Parameters.Add(p);
    }

    public static async Task<int> ExecAsync(this DbConnection c, DbTransaction? tx, string sql, CancellationToken ct,
        params (string Name, object? Value)[] parameters)
    {
        using var cmd = c.Command(tx, sql, parameters);
        return await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
    }

    public static async Task<object?> ScalarAsync(this DbConnection c, DbTransaction? tx, string sql, CancellationToken ct,
        params (string Name, object? Value)[] parameters)
    {
        using var cmd = c.Command(tx, sql, parameters);
        var v = await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false);
        return v is DBNull ? null : v;
    }

    public static async Task<List<T>> QueryAsync<T>(this DbConnection c, DbTransaction? tx, string sql, Func<DbDataReader, T> map,
        CancellationToken ct, params (string Name, object? Value)[] parameters)
    {
        using var cmd = c.Command(tx, sql, parameters);
        return await cmd.QueryAsync(map, ct).ConfigureAwait(false);
    }

    public static async Task<List<T>> QueryAsync<T>(this DbCommand cmd, Func<DbDataReader, T> map, CancellationToken ct)
    {
        var list = new List<T>();
        using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        while (await r.ReadAsync(ct).ConfigureAwait(false)) list.Add(map(r));
        return list;
    }

    public static string? NullableString(this DbDataReader r, int i) => r.IsDBNull(i) ? null : r.GetString(i);

    public static long? NullableInt64(this DbDataReader r, int i) => r.IsDBNull(i) ? null : Convert.ToInt64(r.GetValue(i), System.Globalization.CultureInfo.InvariantCulture);

    public static long Int64(this DbDataReader r, int i) => Convert.ToInt64(r.GetValue(i), System.Globalization.CultureInfo.InvariantCulture);

    public static int Int32(this DbDataReader r, int i) => Convert.ToInt32(r.GetValue(i), System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>A metric value: NULL with is_nan set is NaN (SQLite cannot store NaN).</summary>
    public static double MetricValue(this DbDataReader r, int valueColumn, int isNanColumn) =>
        r.Int32(isNanColumn) == 1 || r.IsDBNull(valueColumn) ? double.NaN : r.GetDouble(valueColumn);
}
