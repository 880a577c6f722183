using Npgsql;

namespace Kiln.Pipelines.State;

/// <summary>The store at scale: PostgreSQL through one shared <see cref="NpgsqlDataSource"/>.</summary>
public sealed class PostgresPipelineStore : SqlPipelineStore
{
    private readonly NpgsqlDataSource _dataSource;
    private readonly bool _ownsDataSource;

    public PostgresPipelineStore(string connectionString) : this(NpgsqlDataSource.Create(connectionString), ownsDataSource: true) { }

    public PostgresPipelineStore(NpgsqlDataSource dataSource, bool ownsDataSource = false)
    {
        _dataSource = dataSource;
        _ownsDataSource = ownsDataSource;
    }

    protected override IReadOnlyList<string> Schema { get; } =
    [
        """
        CREATE TABLE IF NOT EXISTS pipeline_runs (
            run_id TEXT PRIMARY KEY, pipeline TEXT NOT NULL, state TEXT NOT NULL, trigger_kind TEXT NOT NULL,
            params_json TEXT NOT NULL, definition TEXT, source_path TEXT, created_at TEXT NOT NULL,
            started_at TEXT, finished_at TEXT, error TEXT, owner TEXT, lease_expires_ms BIGINT,
            cancel_requested BIGINT NOT NULL DEFAULT 0, scheduled_for TEXT)
        """,
        "CREATE INDEX IF NOT EXISTS pipeline_runs_by_pipeline ON pipeline_runs (pipeline, created_at)",
        "CREATE INDEX IF NOT EXISTS pipeline_runs_by_state ON pipeline_runs (state)",
        """
        CREATE TABLE IF NOT EXISTS pipeline_tasks (
            run_id TEXT NOT NULL, task TEXT NOT NULL, kind TEXT NOT NULL, state TEXT NOT NULL, depends_on TEXT NOT NULL,
            attempts BIGINT NOT NULL DEFAULT 0, started_at TEXT, finished_at TEXT, outputs_json TEXT, error TEXT,
            cache_key TEXT, cached BIGINT NOT NULL DEFAULT 0, PRIMARY KEY (run_id, task))
        """,
        """
        CREATE TABLE IF NOT EXISTS pipeline_attempts (
            run_id TEXT NOT NULL, task TEXT NOT NULL, attempt BIGINT NOT NULL, state TEXT NOT NULL,
            started_at TEXT NOT NULL, finished_at TEXT, error TEXT, owner TEXT, PRIMARY KEY (run_id, task, attempt))
        """,
        """
        CREATE TABLE IF NOT EXISTS pipeline_logs (
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, run_id TEXT NOT NULL, task TEXT NOT NULL, attempt BIGINT NOT NULL,
            at TEXT NOT NULL, stream TEXT NOT NULL, line TEXT NOT NULL)
        """,
        "CREATE INDEX IF NOT EXISTS pipeline_logs_by_run ON pipeline_logs (run_id, task, id)",
        "CREATE TABLE IF NOT EXISTS pipeline_cache (cache_key TEXT PRIMARY KEY, outputs_json TEXT NOT NULL, run_id TEXT NOT NULL, task TEXT NOT NULL, created_at TEXT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS pipeline_schedules (schedule_key TEXT PRIMARY KEY, last_fire TEXT NOT NULL)",
    ];

    public override async Task InitializeAsync(CancellationToken cancellationToken = default)
    {
        // Serialize schema creation across processes: concurrent CREATE TABLE IF NOT EXISTS can collide in PostgreSQL.
        using var c = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        using var tx = await c.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        using (var lockCmd = new NpgsqlCommand("SELECT pg_advisory_xact_lock(7316001)", c, tx))
        {
            await lockCmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
        foreach (var sql in Schema) await ExecAsync(c, tx, sql, cancellationToken).ConfigureAwait(false);
        await tx.CommitAsync(cancellationToken).ConfigureAwait(false);
    }

    protected override async ValueTask<ConnectionLease> ConnectAsync(CancellationToken cancellationToken)
    {
        var c = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        return new ConnectionLease(c, c.Dispose);
    }

    public override async ValueTask DisposeAsync()
    {
        if (_ownsDataSource) await _dataSource.DisposeAsync().ConfigureAwait(false);
    }
}
