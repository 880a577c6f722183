namespace Kiln.Storage.Tests;

/// <summary>The tables as the Kiln before kiln_schema made them (copied from that version's code), to test adoption.</summary>
internal static class OldSchema
{
    /// <summary>Tracking, with the dialect tokens {ID}, {BIGINT}, {DOUBLE}, {WITHOUT_ROWID}.</summary>
    public const string Tracking = """
        CREATE TABLE IF NOT EXISTS experiments (
        experiment_id {ID},
        name TEXT NOT NULL UNIQUE,
        artifact_location TEXT,
        lifecycle_stage TEXT NOT NULL,
        creation_time {BIGINT} NOT NULL,
        last_update_time {BIGINT} NOT NULL);
        CREATE TABLE IF NOT EXISTS experiment_tags (
        experiment_id {BIGINT} NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
        PRIMARY KEY (experiment_id, key)) {WITHOUT_ROWID};
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
        PRIMARY KEY (run_id, key)) {WITHOUT_ROWID};
        CREATE TABLE IF NOT EXISTS tags (
        run_id TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
        PRIMARY KEY (run_id, key)) {WITHOUT_ROWID};
        CREATE TABLE IF NOT EXISTS metrics (
        run_id TEXT NOT NULL, key TEXT NOT NULL, step {BIGINT} NOT NULL, timestamp {BIGINT} NOT NULL,
        value {DOUBLE}, is_nan INTEGER NOT NULL);
        CREATE INDEX IF NOT EXISTS metrics_run_key ON metrics (run_id, key);
        CREATE TABLE IF NOT EXISTS latest_metrics (
        run_id TEXT NOT NULL, key TEXT NOT NULL, step {BIGINT} NOT NULL, timestamp {BIGINT} NOT NULL,
        value {DOUBLE}, is_nan INTEGER NOT NULL,
        PRIMARY KEY (run_id, key)) {WITHOUT_ROWID};
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

    public const string PipelinesSqlite = """
        CREATE TABLE IF NOT EXISTS pipeline_runs (
        run_id TEXT PRIMARY KEY, pipeline TEXT NOT NULL, state TEXT NOT NULL, trigger_kind TEXT NOT NULL,
        params_json TEXT NOT NULL, definition TEXT, source_path TEXT, created_at TEXT NOT NULL,
        started_at TEXT, finished_at TEXT, error TEXT, owner TEXT, lease_expires_ms INTEGER,
        cancel_requested INTEGER NOT NULL DEFAULT 0, scheduled_for TEXT);
        CREATE INDEX IF NOT EXISTS pipeline_runs_by_pipeline ON pipeline_runs (pipeline, created_at);
        CREATE INDEX IF NOT EXISTS pipeline_runs_by_state ON pipeline_runs (state);
        CREATE TABLE IF NOT EXISTS pipeline_tasks (
        run_id TEXT NOT NULL, task TEXT NOT NULL, kind TEXT NOT NULL, state TEXT NOT NULL, depends_on TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0, started_at TEXT, finished_at TEXT, outputs_json TEXT, error TEXT,
        cache_key TEXT, cached INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (run_id, task));
        CREATE TABLE IF NOT EXISTS pipeline_attempts (
        run_id TEXT NOT NULL, task TEXT NOT NULL, attempt INTEGER NOT NULL, state TEXT NOT NULL,
        started_at TEXT NOT NULL, finished_at TEXT, error TEXT, owner TEXT, PRIMARY KEY (run_id, task, attempt));
        CREATE TABLE IF NOT EXISTS pipeline_logs (
        id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL, task TEXT NOT NULL, attempt INTEGER NOT NULL,
        at TEXT NOT NULL, stream TEXT NOT NULL, line TEXT NOT NULL);
        CREATE INDEX IF NOT EXISTS pipeline_logs_by_run ON pipeline_logs (run_id, task, id);
        CREATE TABLE IF NOT EXISTS pipeline_cache (cache_key TEXT PRIMARY KEY, outputs_json TEXT NOT NULL, run_id TEXT NOT NULL, task TEXT NOT NULL, created_at TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS pipeline_schedules (schedule_key TEXT PRIMARY KEY, last_fire TEXT NOT NULL)
        """;

    public const string PipelinesPostgres = """
        CREATE TABLE IF NOT EXISTS pipeline_runs (
        run_id TEXT PRIMARY KEY, pipeline TEXT NOT NULL, state TEXT NOT NULL, trigger_kind TEXT NOT NULL,
        params_json TEXT NOT NULL, definition TEXT, source_path TEXT, created_at TEXT NOT NULL,
        started_at TEXT, finished_at TEXT, error TEXT, owner TEXT, lease_expires_ms BIGINT,
        cancel_requested BIGINT NOT NULL DEFAULT 0, scheduled_for TEXT);
        CREATE INDEX IF NOT EXISTS pipeline_runs_by_pipeline ON pipeline_runs (pipeline, created_at);
        CREATE INDEX IF NOT EXISTS pipeline_runs_by_state ON pipeline_runs (state);
        CREATE TABLE IF NOT EXISTS pipeline_tasks (
        run_id TEXT NOT NULL, task TEXT NOT NULL, kind TEXT NOT NULL, state TEXT NOT NULL, depends_on TEXT NOT NULL,
        attempts BIGINT NOT NULL DEFAULT 0, started_at TEXT, finished_at TEXT, outputs_json TEXT, error TEXT,
        cache_key TEXT, cached BIGINT NOT NULL DEFAULT 0, PRIMARY KEY (run_id, task));
        CREATE TABLE IF NOT EXISTS pipeline_attempts (
        run_id TEXT NOT NULL, task TEXT NOT NULL, attempt BIGINT NOT NULL, state TEXT NOT NULL,
        started_at TEXT NOT NULL, finished_at TEXT, error TEXT, owner TEXT, PRIMARY KEY (run_id, task, attempt));
        CREATE TABLE IF NOT EXISTS pipeline_logs (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, run_id TEXT NOT NULL, task TEXT NOT NULL, attempt BIGINT NOT NULL,
        at TEXT NOT NULL, stream TEXT NOT NULL, line TEXT NOT NULL);
        CREATE INDEX IF NOT EXISTS pipeline_logs_by_run ON pipeline_logs (run_id, task, id);
        CREATE TABLE IF NOT EXISTS pipeline_cache (cache_key TEXT PRIMARY KEY, outputs_json TEXT NOT NULL, run_id TEXT NOT NULL, task TEXT NOT NULL, created_at TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS pipeline_schedules (schedule_key TEXT PRIMARY KEY, last_fire TEXT NOT NULL)
        """;

    public const string Features = """
        CREATE TABLE IF NOT EXISTS feature_registry_versions (
        project TEXT NOT NULL, version INTEGER NOT NULL, applied_at TEXT NOT NULL, repo_path TEXT NOT NULL,
        snapshot TEXT NOT NULL, PRIMARY KEY (project, version));
        CREATE TABLE IF NOT EXISTS feature_objects (
        project TEXT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL, registry_version INTEGER NOT NULL,
        change TEXT NOT NULL, spec TEXT, PRIMARY KEY (project, kind, name, registry_version));
        CREATE TABLE IF NOT EXISTS feature_materializations (
        project TEXT NOT NULL, view TEXT NOT NULL, start_ts TEXT NOT NULL, end_ts TEXT NOT NULL,
        row_count BIGINT NOT NULL, finished_at TEXT NOT NULL)
        """;
}
