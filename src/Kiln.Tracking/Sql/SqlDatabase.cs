using System.Data.Common;
using Kiln.Storage;

namespace Kiln.Tracking.Sql;

/// <summary>
/// The tracking area's view of the metadata database (<see cref="MetadataDatabase"/>): its schema comes
/// up to date on first use, unique violations become <see cref="TrackingException"/>s, and metric
/// points are inserted the fastest way each engine allows.
/// </summary>
public sealed class SqlDatabase : IAsyncDisposable
{
    private readonly bool _ownsDatabase;
    private volatile bool _ready;

    public SqlDatabase(MetadataDatabase database, bool ownsDatabase)
    {
        Database = database;
        _ownsDatabase = ownsDatabase;
    }

    /// <summary>The shared database underneath.</summary>
    public MetadataDatabase Database { get; }

    public bool IsPostgres => Database.IsPostgres;

    /// <summary>Where the data lives, for messages (never a password).</summary>
    public string Description => Database.Description;

    /// <summary>Opens SQLite: a file path; its folder is created. WAL mode, 30 s busy timeout.</summary>
    public static SqlDatabase Sqlite(string path) => new(MetadataDatabase.Sqlite(path), ownsDatabase: true);

    /// <summary>Opens PostgreSQL from an Npgsql connection string or a postgresql:// URI.</summary>
    public static SqlDatabase Postgres(string connectionStringOrUri) => new(MetadataDatabase.Open(connectionStringOrUri), ownsDatabase: true);

    /// <summary>Opens a connection to a database whose tracking schema is in place.</summary>
    public async ValueTask<DbConnection> OpenAsync(CancellationToken ct)
    {
        if (!_ready)
        {
            await Database.EnsureSchemaAsync(TrackingSchema.Area, ct).ConfigureAwait(false);
            // MLflow's Default experiment, id 0; written again after a restart only when it is missing.
            await Database.WriteAsync(async (c, tx) =>
            {
                using var cmd = c.Command(tx, TrackingSchema.DefaultExperiment, ("now", DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()));
                await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            }, ct).ConfigureAwait(false);
            _ready = true;
        }
        return await Database.OpenConnectionAsync(ct).ConfigureAwait(false);
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
    public async Task<T> WriteAsync<T>(Func<DbConnection, DbTransaction, Task<T>> body, CancellationToken ct)
    {
        if (!_ready) await (await OpenAsync(ct).ConfigureAwait(false)).DisposeAsync().ConfigureAwait(false);
        try
        {
            return await Database.WriteAsync(body, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (Database.Dialect.IsUniqueViolation(e))
        {
            throw TrackingException.Exists("the resource already exists (a concurrent request created it)");
        }
    }

    public Task WriteAsync(Func<DbConnection, DbTransaction, Task> body, CancellationToken ct) =>
        WriteAsync<bool>(async (c, tx) =>
        {
            await body(c, tx).ConfigureAwait(false);
            return true;
        }, ct);

    /// <summary>Inserts metric points into the history table inside the caller's transaction.</summary>
    internal Task InsertMetricsAsync(DbConnection c, DbTransaction tx, string runId, IReadOnlyList<Metric> metrics, CancellationToken ct) =>
        IsPostgres ? InsertMetricsPostgresAsync(c, tx, runId, metrics, ct) : InsertMetricsSqliteAsync(c, tx, runId, metrics, ct);

    private static async Task InsertMetricsSqliteAsync(DbConnection c, DbTransaction tx, string runId, IReadOnlyList<Metric> metrics, CancellationToken ct)
    {
        // One prepared statement re-executed per point: SQLite runs in-process, so a call costs microseconds.
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

    private static async Task InsertMetricsPostgresAsync(DbConnection c, DbTransaction tx, string runId, IReadOnlyList<Metric> metrics, CancellationToken ct)
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

    public ValueTask DisposeAsync() => _ownsDatabase ? Database.DisposeAsync() : ValueTask.CompletedTask;
}

/// <summary>The tracking area's tables in kiln_schema ("tracking"), numbered from 1.</summary>
internal static class TrackingSchema
{
    public static readonly SchemaArea Area = new("tracking", "experiments", [new Migration(1, Version1)]);

    /// <summary>Version 1: the schema of every kiln.db made before kiln_schema, with the dialect tokens.</summary>
    internal const string Version1 = """
        CREATE TABLE experiments (
            experiment_id {ID},
            name TEXT NOT NULL UNIQUE,
            artifact_location TEXT,
            lifecycle_stage TEXT NOT NULL,
            creation_time {BIGINT} NOT NULL,
            last_update_time {BIGINT} NOT NULL);
        CREATE TABLE experiment_tags (
            experiment_id {BIGINT} NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
            PRIMARY KEY (experiment_id, key)) {WITHOUT_ROWID};
        CREATE TABLE runs (
            run_id TEXT PRIMARY KEY,
            experiment_id {BIGINT} NOT NULL,
            run_name TEXT NOT NULL,
            user_id TEXT NOT NULL,
            status TEXT NOT NULL,
            start_time {BIGINT} NOT NULL,
            end_time {BIGINT},
            lifecycle_stage TEXT NOT NULL,
            artifact_uri TEXT NOT NULL);
        CREATE INDEX runs_experiment ON runs (experiment_id, start_time);
        CREATE TABLE params (
            run_id TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
            PRIMARY KEY (run_id, key)) {WITHOUT_ROWID};
        CREATE TABLE tags (
            run_id TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
            PRIMARY KEY (run_id, key)) {WITHOUT_ROWID};
        CREATE TABLE metrics (
            run_id TEXT NOT NULL, key TEXT NOT NULL, step {BIGINT} NOT NULL, timestamp {BIGINT} NOT NULL,
            value {DOUBLE}, is_nan INTEGER NOT NULL);
        CREATE INDEX metrics_run_key ON metrics (run_id, key);
        CREATE TABLE latest_metrics (
            run_id TEXT NOT NULL, key TEXT NOT NULL, step {BIGINT} NOT NULL, timestamp {BIGINT} NOT NULL,
            value {DOUBLE}, is_nan INTEGER NOT NULL,
            PRIMARY KEY (run_id, key)) {WITHOUT_ROWID};
        CREATE INDEX latest_metrics_key_value ON latest_metrics (key, value);
        CREATE TABLE registered_models (
            name TEXT PRIMARY KEY,
            creation_time {BIGINT} NOT NULL,
            last_updated_time {BIGINT} NOT NULL,
            description TEXT);
        CREATE TABLE registered_model_tags (
            name TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
            PRIMARY KEY (name, key));
        CREATE TABLE model_versions (
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
        CREATE INDEX model_versions_run ON model_versions (run_id);
        CREATE TABLE model_version_tags (
            name TEXT NOT NULL, version INTEGER NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
            PRIMARY KEY (name, version, key));
        CREATE TABLE model_aliases (
            name TEXT NOT NULL, alias TEXT NOT NULL, version INTEGER NOT NULL,
            PRIMARY KEY (name, alias));
        CREATE TABLE alias_history (
            id {ID},
            name TEXT NOT NULL,
            alias TEXT NOT NULL,
            action TEXT NOT NULL,
            from_version INTEGER,
            to_version INTEGER,
            user_id TEXT NOT NULL,
            timestamp {BIGINT} NOT NULL);
        CREATE INDEX alias_history_model ON alias_history (name, alias, id)
        """;

    /// <summary>MLflow's Default experiment, id 0.</summary>
    internal const string DefaultExperiment = """
        INSERT INTO experiments (experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time)
        SELECT 0, 'Default', NULL, 'active', @now, @now
        WHERE NOT EXISTS (SELECT 1 FROM experiments WHERE experiment_id = 0)
        """;
}

/// <summary>Tracking's reader helper on top of Kiln.Storage's <see cref="DbCommands"/>.</summary>
internal static class TrackingReaderExtensions
{
    /// <summary>A metric value: NULL with is_nan set is NaN (SQLite cannot store NaN).</summary>
    public static double MetricValue(this DbDataReader r, int valueColumn, int isNanColumn) =>
        r.Int32(isNanColumn) == 1 || r.IsDBNull(valueColumn) ? double.NaN : r.GetDouble(valueColumn);
}
