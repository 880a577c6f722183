using Microsoft.Data.Sqlite;

namespace Kiln.Pipelines.State;

/// <summary>The embedded store: one SQLite file in WAL mode with a busy timeout, shared with the other Kiln areas.</summary>
public sealed class SqlitePipelineStore : SqlPipelineStore
{
    private readonly SqliteConnection _connection;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private bool _opened;

    /// <param name="path">The database file (created with its directory when missing).</param>
    public SqlitePipelineStore(string path)
    {
        Path = System.IO.Path.GetFullPath(path);
        var dir = System.IO.Path.GetDirectoryName(Path);
        if (!string.IsNullOrEmpty(dir)) Directory.CreateDirectory(dir);
        _connection = new SqliteConnection(new SqliteConnectionStringBuilder
        {
            DataSource = Path,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Cache = SqliteCacheMode.Private,
            DefaultTimeout = 30,
            Pooling = false,
        }.ToString());
    }

    public string Path { get; }

    protected override IReadOnlyList<string> Schema { get; } =
    [
        """
        CREATE TABLE IF NOT EXISTS pipeline_runs (
            run_id TEXT PRIMARY KEY, pipeline TEXT NOT NULL, state TEXT NOT NULL, trigger_kind TEXT NOT NULL,
            params_json TEXT NOT NULL, definition TEXT, source_path TEXT, created_at TEXT NOT NULL,
            started_at TEXT, finished_at TEXT, error TEXT, owner TEXT, lease_expires_ms INTEGER,
            cancel_requested INTEGER NOT NULL DEFAULT 0, scheduled_for TEXT)
        """,
        "CREATE INDEX IF NOT EXISTS pipeline_runs_by_pipeline ON pipeline_runs (pipeline, created_at)",
        "CREATE INDEX IF NOT EXISTS pipeline_runs_by_state ON pipeline_runs (state)",
        """
        CREATE TABLE IF NOT EXISTS pipeline_tasks (
            run_id TEXT NOT NULL, task TEXT NOT NULL, kind TEXT NOT NULL, state TEXT NOT NULL, depends_on TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0, started_at TEXT, finished_at TEXT, outputs_json TEXT, error TEXT,
            cache_key TEXT, cached INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (run_id, task))
        """,
        """
        CREATE TABLE IF NOT EXISTS pipeline_attempts (
            run_id TEXT NOT NULL, task TEXT NOT NULL, attempt INTEGER NOT NULL, state TEXT NOT NULL,
            started_at TEXT NOT NULL, finished_at TEXT, error TEXT, owner TEXT, PRIMARY KEY (run_id, task, attempt))
        """,
        """
        CREATE TABLE IF NOT EXISTS pipeline_logs (
            id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL, task TEXT NOT NULL, attempt INTEGER NOT NULL,
            at TEXT NOT NULL, stream TEXT NOT NULL, line TEXT NOT NULL)
        """,
        "CREATE INDEX IF NOT EXISTS pipeline_logs_by_run ON pipeline_logs (run_id, task, id)",
        "CREATE TABLE IF NOT EXISTS pipeline_cache (cache_key TEXT PRIMARY KEY, outputs_json TEXT NOT NULL, run_id TEXT NOT NULL, task TEXT NOT NULL, created_at TEXT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS pipeline_schedules (schedule_key TEXT PRIMARY KEY, last_fire TEXT NOT NULL)",
    ];

    protected override async ValueTask<ConnectionLease> ConnectAsync(CancellationToken cancellationToken)
    {
        // One connection per store, used by one operation at a time (SqliteConnection is not thread-safe);
        // other processes on the same file are handled by WAL and the busy timeout.
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (!_opened)
            {
                await _connection.OpenAsync(cancellationToken).ConfigureAwait(false);
                using (var cmd = _connection.CreateCommand())
                {
                    cmd.CommandText = "PRAGMA journal_mode=WAL; PRAGMA busy_timeout=30000; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;";
                    await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                }
                _opened = true;
            }
        }
        catch
        {
            _gate.Release();
            throw;
        }
        return new ConnectionLease(_connection, () => _gate.Release());
    }

    public override async ValueTask DisposeAsync()
    {
        await _connection.DisposeAsync().ConfigureAwait(false);
        _gate.Dispose();
    }
}
