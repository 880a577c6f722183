using System.Data.Common;
using System.Globalization;
using System.Text.Json;
using Kiln.Storage;

namespace Kiln.Pipelines.State;

/// <summary>
/// The pipeline state store on the metadata database (<see cref="MetadataDatabase"/>): one class for SQLite and
/// PostgreSQL, whose SQL both accept; the tables are the "pipelines" area of kiln_schema.
/// </summary>
public sealed class SqlPipelineStore : IPipelineStore
{
    private const string RunColumns = "run_id, pipeline, state, trigger_kind, params_json, definition, source_path, created_at, started_at, finished_at, error, owner, lease_expires_ms, cancel_requested, scheduled_for";
    private const string TaskColumns = "run_id, task, kind, state, depends_on, attempts, started_at, finished_at, outputs_json, error, cache_key, cached";

    private readonly bool _ownsDatabase;

    /// <summary>The PostgreSQL channel an attempt's end is notified on (the run id as payload), at the commit of its record.</summary>
    public const string AttemptChannel = "kiln_pipeline_attempts";

    /// <param name="database">The metadata database.</param>
    /// <param name="ownsDatabase">Dispose the database with the store (false when a host shares it).</param>
    public SqlPipelineStore(MetadataDatabase database, bool ownsDatabase = false)
    {
        Database = database;
        _ownsDatabase = ownsDatabase;
    }

    /// <summary>The database underneath.</summary>
    public MetadataDatabase Database { get; }

    /// <summary>The newest version of the pipelines area's tables this build creates or upgrades to.</summary>
    public static int SchemaVersion => Schema.LatestVersion;

    /// <summary>The pipelines area: version 1 is the schema of every kiln.db made before kiln_schema.</summary>
    internal static readonly SchemaArea Schema = new("pipelines", "pipeline_runs",
    [
        new Migration(1, """
            CREATE TABLE pipeline_runs (
                run_id TEXT PRIMARY KEY, pipeline TEXT NOT NULL, state TEXT NOT NULL, trigger_kind TEXT NOT NULL,
                params_json TEXT NOT NULL, definition TEXT, source_path TEXT, created_at TEXT NOT NULL,
                started_at TEXT, finished_at TEXT, error TEXT, owner TEXT, lease_expires_ms {BIGINT},
                cancel_requested {BIGINT} NOT NULL DEFAULT 0, scheduled_for TEXT);
            CREATE INDEX pipeline_runs_by_pipeline ON pipeline_runs (pipeline, created_at);
            CREATE INDEX pipeline_runs_by_state ON pipeline_runs (state);
            CREATE TABLE pipeline_tasks (
                run_id TEXT NOT NULL, task TEXT NOT NULL, kind TEXT NOT NULL, state TEXT NOT NULL, depends_on TEXT NOT NULL,
                attempts {BIGINT} NOT NULL DEFAULT 0, started_at TEXT, finished_at TEXT, outputs_json TEXT, error TEXT,
                cache_key TEXT, cached {BIGINT} NOT NULL DEFAULT 0, PRIMARY KEY (run_id, task));
            CREATE TABLE pipeline_attempts (
                run_id TEXT NOT NULL, task TEXT NOT NULL, attempt {BIGINT} NOT NULL, state TEXT NOT NULL,
                started_at TEXT NOT NULL, finished_at TEXT, error TEXT, owner TEXT, PRIMARY KEY (run_id, task, attempt));
            CREATE TABLE pipeline_logs (
                id {ID}, run_id TEXT NOT NULL, task TEXT NOT NULL, attempt {BIGINT} NOT NULL,
                at TEXT NOT NULL, stream TEXT NOT NULL, line TEXT NOT NULL);
            CREATE INDEX pipeline_logs_by_run ON pipeline_logs (run_id, task, id);
            CREATE TABLE pipeline_cache (cache_key TEXT PRIMARY KEY, outputs_json TEXT NOT NULL, run_id TEXT NOT NULL, task TEXT NOT NULL, created_at TEXT NOT NULL);
            CREATE TABLE pipeline_schedules (schedule_key TEXT PRIMARY KEY, last_fire TEXT NOT NULL)
            """),
        // Alertmanager notifications already acted on (fingerprint and start time), so a re-delivery starts nothing.
        new Migration(2, """
            CREATE TABLE pipeline_alert_deliveries (alert_key TEXT PRIMARY KEY, event TEXT NOT NULL, received_at TEXT NOT NULL)
            """),
        // The process group an attempt's commands run in (PGID@HOST), killed before the task is run again.
        new Migration(3, """
            ALTER TABLE pipeline_attempts ADD COLUMN process_group TEXT
            """),
    ]);

    public Task InitializeAsync(CancellationToken cancellationToken = default) => Database.EnsureSchemaAsync(Schema, cancellationToken);

    /// <summary>A pooled connection for a read.</summary>
    private async ValueTask<DbConnection> ConnectAsync(CancellationToken cancellationToken)
    {
        await InitializeAsync(cancellationToken).ConfigureAwait(false);
        return await Database.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>A connection held as the process's one writer until disposed.</summary>
    private async ValueTask<WriterLease> ConnectWriteAsync(CancellationToken cancellationToken)
    {
        await InitializeAsync(cancellationToken).ConfigureAwait(false);
        return await Database.LeaseWriterAsync(cancellationToken).ConfigureAwait(false);
    }

    public async Task CreateRunAsync(RunRecord run, IReadOnlyList<TaskRecord> tasks, CancellationToken cancellationToken = default)
    {
        using var c = await ConnectWriteAsync(cancellationToken).ConfigureAwait(false);
        using var tx = await c.Connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        await ExecAsync(c.Connection, tx,
            $"INSERT INTO pipeline_runs ({RunColumns}) VALUES (@run_id, @pipeline, @state, @trigger, @params, @definition, @source_path, @created_at, @started_at, @finished_at, @error, @owner, @lease, @cancel, @scheduled_for)",
            cancellationToken,
            ("run_id", run.RunId), ("pipeline", run.Pipeline), ("state", run.State.Name()), ("trigger", run.Trigger),
            ("params", JsonSerializer.Serialize(run.Parameters, PipelineJson.Default.IReadOnlyDictionaryStringString)),
            ("definition", run.DefinitionText), ("source_path", run.SourcePath), ("created_at", Time(run.CreatedAt)),
            ("started_at", Time(run.StartedAt)), ("finished_at", Time(run.FinishedAt)), ("error", run.Error), ("owner", run.Owner),
            ("lease", run.LeaseExpires?.ToUnixTimeMilliseconds()), ("cancel", run.CancelRequested ? 1L : 0L), ("scheduled_for", Time(run.ScheduledFor))).ConfigureAwait(false);

        // Multi-row inserts in chunks: one round trip per 200 tasks (PostgreSQL) and few statements (SQLite).
        const int Chunk = 200;
        for (var offset = 0; offset < tasks.Count; offset += Chunk)
        {
            var n = Math.Min(Chunk, tasks.Count - offset);
            using var cmd = c.Connection.CreateCommand();
            cmd.Transaction = tx;
            var sql = new System.Text.StringBuilder($"INSERT INTO pipeline_tasks ({TaskColumns}) VALUES ");
            cmd.AddParameter("run_id", run.RunId);
            for (var i = 0; i < n; i++)
            {
                var t = tasks[offset + i];
                if (i > 0) sql.Append(", ");
                sql.Append(CultureInfo.InvariantCulture, $"(@run_id, @t{i}, @k{i}, @s{i}, @d{i}, 0, NULL, NULL, NULL, NULL, NULL, 0)");
                cmd.AddParameter($"t{i}", t.Task);
                cmd.AddParameter($"k{i}", t.Kind);
                cmd.AddParameter($"s{i}", t.State.Name());
                cmd.AddParameter($"d{i}", string.Join(',', t.DependsOn));
            }
            cmd.CommandText = sql.ToString();
            await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
        await tx.CommitAsync(cancellationToken).ConfigureAwait(false);
    }

    public async Task<RunRecord?> GetRunAsync(string runId, CancellationToken cancellationToken = default)
    {
        var list = await QueryAsync($"SELECT {RunColumns} FROM pipeline_runs WHERE run_id = @id", ReadRun, cancellationToken, ("id", runId)).ConfigureAwait(false);
        return list.Count == 0 ? null : list[0];
    }

    public Task<IReadOnlyList<RunRecord>> ListRunsAsync(string? pipeline = null, RunState? state = null, int limit = 50, CancellationToken cancellationToken = default)
    {
        var where = new List<string>();
        if (pipeline is not null) where.Add("pipeline = @pipeline");
        if (state is not null) where.Add("state = @state");
        var sql = $"SELECT {RunColumns} FROM pipeline_runs {(where.Count > 0 ? "WHERE " + string.Join(" AND ", where) : "")} ORDER BY created_at DESC, run_id DESC LIMIT @limit";
        return QueryAsync(sql, ReadRun, cancellationToken, ("pipeline", pipeline), ("state", state?.Name()), ("limit", (long)limit));
    }

    public Task<IReadOnlyList<TaskRecord>> GetTasksAsync(string runId, CancellationToken cancellationToken = default) =>
        QueryAsync($"SELECT {TaskColumns} FROM pipeline_tasks WHERE run_id = @id ORDER BY started_at IS NULL, started_at, task", ReadTask, cancellationToken, ("id", runId));

    public async Task<TaskRecord?> GetTaskAsync(string runId, string task, CancellationToken cancellationToken = default)
    {
        var list = await QueryAsync($"SELECT {TaskColumns} FROM pipeline_tasks WHERE run_id = @id AND task = @task", ReadTask, cancellationToken, ("id", runId), ("task", task)).ConfigureAwait(false);
        return list.Count == 0 ? null : list[0];
    }

    public Task<IReadOnlyList<AttemptRecord>> GetAttemptsAsync(string runId, string? task = null, CancellationToken cancellationToken = default) =>
        QueryAsync(
            $"SELECT run_id, task, attempt, state, started_at, finished_at, error, owner, process_group FROM pipeline_attempts WHERE run_id = @id {(task is null ? "" : "AND task = @task")} ORDER BY started_at, task, attempt",
            r => new AttemptRecord(r.GetString(0), r.GetString(1), (int)r.GetInt64(2), r.GetString(3), ParseTime(r.GetString(4)),
                r.IsDBNull(5) ? null : ParseTime(r.GetString(5)), r.IsDBNull(6) ? null : r.GetString(6), r.IsDBNull(7) ? null : r.GetString(7),
                r.IsDBNull(8) ? null : r.GetString(8)),
            cancellationToken, ("id", runId), ("task", task));

    public Task<IReadOnlyList<LogRecord>> GetLogsAsync(string runId, string? task = null, long afterId = 0, int limit = 10_000, CancellationToken cancellationToken = default) =>
        QueryAsync(
            $"SELECT id, run_id, task, attempt, at, stream, line FROM pipeline_logs WHERE run_id = @id AND id > @after {(task is null ? "" : "AND task = @task")} ORDER BY id LIMIT @limit",
            r => new LogRecord(r.GetInt64(0), r.GetString(1), r.GetString(2), (int)r.GetInt64(3), ParseTime(r.GetString(4)), r.GetString(5), r.GetString(6)),
            cancellationToken, ("id", runId), ("after", afterId), ("task", task), ("limit", (long)limit));

    public async Task SetRunStateAsync(string runId, RunState state, DateTimeOffset at, string? error = null, CancellationToken cancellationToken = default)
    {
        using var c = await ConnectWriteAsync(cancellationToken).ConfigureAwait(false);
        var sql = state switch
        {
            RunState.Running => "UPDATE pipeline_runs SET state = @state, started_at = COALESCE(started_at, @at), finished_at = NULL, error = NULL WHERE run_id = @id",
            _ when state.IsTerminal() => "UPDATE pipeline_runs SET state = @state, finished_at = @at, error = @error WHERE run_id = @id",
            _ => "UPDATE pipeline_runs SET state = @state WHERE run_id = @id",
        };
        await ExecAsync(c.Connection, null, sql, cancellationToken, ("state", state.Name()), ("at", Time(at)), ("error", error), ("id", runId)).ConfigureAwait(false);
    }

    public async Task SetTaskStateAsync(string runId, string task, TaskState state, DateTimeOffset at, string? error = null, CancellationToken cancellationToken = default)
    {
        using var c = await ConnectWriteAsync(cancellationToken).ConfigureAwait(false);
        var sql = state.IsTerminal()
            ? "UPDATE pipeline_tasks SET state = @state, finished_at = @at, error = @error WHERE run_id = @id AND task = @task"
            : "UPDATE pipeline_tasks SET state = @state, finished_at = NULL, error = @error WHERE run_id = @id AND task = @task";
        await ExecAsync(c.Connection, null, sql, cancellationToken, ("state", state.Name()), ("at", Time(at)), ("error", error), ("id", runId), ("task", task)).ConfigureAwait(false);
    }

    public async Task StartAttemptAsync(string runId, string task, int attempt, DateTimeOffset at, string? owner, CancellationToken cancellationToken = default)
    {
        using var c = await ConnectWriteAsync(cancellationToken).ConfigureAwait(false);
        using var tx = await c.Connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        await ExecAsync(c.Connection, tx,
            "INSERT INTO pipeline_attempts (run_id, task, attempt, state, started_at, finished_at, error, owner) VALUES (@id, @task, @attempt, 'running', @at, NULL, NULL, @owner)",
            cancellationToken, ("id", runId), ("task", task), ("attempt", (long)attempt), ("at", Time(at)), ("owner", owner)).ConfigureAwait(false);
        await ExecAsync(c.Connection, tx,
            "UPDATE pipeline_tasks SET state = 'running', attempts = @attempt, started_at = COALESCE(started_at, @at), finished_at = NULL, error = NULL WHERE run_id = @id AND task = @task",
            cancellationToken, ("attempt", (long)attempt), ("at", Time(at)), ("id", runId), ("task", task)).ConfigureAwait(false);
        await tx.CommitAsync(cancellationToken).ConfigureAwait(false);
    }

    public Task QueueAttemptAsync(string runId, string task, int attempt, DateTimeOffset at, CancellationToken cancellationToken = default) =>
        ExecAtomicAsync(
            "INSERT INTO pipeline_attempts (run_id, task, attempt, state, started_at, finished_at, error, owner) VALUES (@id, @task, @attempt, 'queued', @at, NULL, NULL, NULL); " +
            "UPDATE pipeline_tasks SET state = 'running', attempts = @attempt, started_at = COALESCE(started_at, @at), finished_at = NULL, error = NULL WHERE run_id = @id AND task = @task",
            cancellationToken, ("id", runId), ("task", task), ("attempt", (long)attempt), ("at", Time(at)));

    public async Task<bool> TryClaimAttemptAsync(string runId, string task, int attempt, string owner, DateTimeOffset at, CancellationToken cancellationToken = default)
    {
        using var c = await ConnectWriteAsync(cancellationToken).ConfigureAwait(false);
        return await ExecAsync(c.Connection, null,
            "UPDATE pipeline_attempts SET state = 'running', owner = @owner, started_at = @at WHERE run_id = @id AND task = @task AND attempt = @attempt AND state = 'queued' " +
            "AND EXISTS (SELECT 1 FROM pipeline_runs r WHERE r.run_id = @id AND r.cancel_requested = 0 AND r.state NOT IN ('succeeded', 'failed', 'cancelled'))",
            cancellationToken, ("owner", owner), ("at", Time(at)), ("id", runId), ("task", task), ("attempt", (long)attempt)).ConfigureAwait(false) == 1;
    }

    public async Task<bool> TryTakeOverAttemptAsync(string runId, string task, int attempt, string deadOwner, string error, string owner, DateTimeOffset at,
        CancellationToken cancellationToken = default)
    {
        using var c = await ConnectWriteAsync(cancellationToken).ConfigureAwait(false);
        using var tx = await c.Connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        var n = await ExecAsync(c.Connection, tx,
            "UPDATE pipeline_attempts SET state = 'interrupted', finished_at = @at, error = @error WHERE run_id = @id AND task = @task AND attempt = @attempt AND state = 'running' AND owner = @dead",
            cancellationToken, ("at", Time(at)), ("error", error), ("id", runId), ("task", task), ("attempt", (long)attempt), ("dead", deadOwner)).ConfigureAwait(false);
        if (n != 1)
        {
            await tx.RollbackAsync(cancellationToken).ConfigureAwait(false);
            return false;
        }
        await ExecAsync(c.Connection, tx,
            "INSERT INTO pipeline_attempts (run_id, task, attempt, state, started_at, finished_at, error, owner) VALUES (@id, @task, @attempt, 'running', @at, NULL, NULL, @owner)",
            cancellationToken, ("id", runId), ("task", task), ("attempt", (long)attempt + 1), ("at", Time(at)), ("owner", owner)).ConfigureAwait(false);
        await ExecAsync(c.Connection, tx,
            "UPDATE pipeline_tasks SET state = 'running', attempts = @attempt, finished_at = NULL, error = NULL WHERE run_id = @id AND task = @task",
            cancellationToken, ("attempt", (long)attempt + 1), ("id", runId), ("task", task)).ConfigureAwait(false);
        await tx.CommitAsync(cancellationToken).ConfigureAwait(false);
        return true;
    }

    public async Task SetAttemptProcessGroupAsync(string runId, string task, int attempt, string processGroup, CancellationToken cancellationToken = default)
    {
        using var c = await ConnectWriteAsync(cancellationToken).ConfigureAwait(false);
        await ExecAsync(c.Connection, null, "UPDATE pipeline_attempts SET process_group = @group WHERE run_id = @id AND task = @task AND attempt = @attempt",
            cancellationToken, ("group", processGroup), ("id", runId), ("task", task), ("attempt", (long)attempt)).ConfigureAwait(false);
    }

    public Task EndAttemptAsync(AttemptEnd end, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(end);
        var terminal = end.TaskState.IsTerminal();
        var sql = new System.Text.StringBuilder();
        if (end.Attempt > 0)
            sql.Append("UPDATE pipeline_attempts SET state = @attempt_state, finished_at = @at, error = @error WHERE run_id = @id AND task = @task AND attempt = @attempt; ");
        sql.Append(CultureInfo.InvariantCulture,
            $"UPDATE pipeline_tasks SET state = @state, finished_at = {(terminal ? "@at" : "NULL")}, started_at = COALESCE(started_at, @at), error = @error, outputs_json = COALESCE(@outputs, outputs_json), cache_key = COALESCE(@cache_key, cache_key), cached = @cached WHERE run_id = @id AND task = @task");
        // Whoever waits for this attempt (a distributed run's coordinator) is told when the end commits.
        if (Database.IsPostgres) sql.Append("; SELECT pg_notify('" + AttemptChannel + "', @id)");
        return ExecAtomicAsync(sql.ToString(), cancellationToken,
            ("attempt_state", end.AttemptState), ("state", end.TaskState.Name()), ("at", Time(end.At)), ("error", end.Error),
            ("outputs", end.Outputs is null ? null : JsonSerializer.Serialize(end.Outputs, PipelineJson.Default.IReadOnlyDictionaryStringString)),
            ("cache_key", end.CacheKey), ("cached", end.Cached ? 1L : 0L), ("id", end.RunId), ("task", end.Task), ("attempt", (long)end.Attempt));
    }

    public async Task AppendLogsAsync(IReadOnlyList<LogLine> lines, CancellationToken cancellationToken = default)
    {
        if (lines.Count == 0) return;
        using var c = await ConnectWriteAsync(cancellationToken).ConfigureAwait(false);
        using var tx = await c.Connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        using var cmd = c.Connection.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = "INSERT INTO pipeline_logs (run_id, task, attempt, at, stream, line) VALUES (@run_id, @task, @attempt, @at, @stream, @line)";
        var pRun = cmd.AddParameter("run_id", "");
        var pTask = cmd.AddParameter("task", "");
        var pAttempt = cmd.AddParameter("attempt", 0L);
        var pAt = cmd.AddParameter("at", "");
        var pStream = cmd.AddParameter("stream", "");
        var pLine = cmd.AddParameter("line", "");
        foreach (var l in lines)
        {
            pRun.Value = l.RunId;
            pTask.Value = l.Task;
            pAttempt.Value = (long)l.Attempt;
            pAt.Value = Time(l.At);
            pStream.Value = l.Stream;
            // PostgreSQL text cannot hold NUL; a binary-ish log line is stored without it.
            pLine.Value = l.Line.Contains('\0', StringComparison.Ordinal) ? l.Line.Replace("\0", "", StringComparison.Ordinal) : l.Line;
            await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
        await tx.CommitAsync(cancellationToken).ConfigureAwait(false);
    }

    public async Task<bool> TryAcquireLeaseAsync(string runId, string owner, DateTimeOffset now, DateTimeOffset expires, string? deadOwner = null, CancellationToken cancellationToken = default)
    {
        using var c = await ConnectWriteAsync(cancellationToken).ConfigureAwait(false);
        var n = await ExecAsync(c.Connection, null,
            "UPDATE pipeline_runs SET owner = @owner, lease_expires_ms = @expires WHERE run_id = @id AND (owner IS NULL OR owner = @owner OR lease_expires_ms IS NULL OR lease_expires_ms < @now OR owner = @dead)",
            cancellationToken, ("owner", owner), ("expires", expires.ToUnixTimeMilliseconds()), ("id", runId), ("now", now.ToUnixTimeMilliseconds()), ("dead", deadOwner)).ConfigureAwait(false);
        return n == 1;
    }

    public async Task<LeaseStatus> RenewLeaseAsync(string runId, string owner, DateTimeOffset expires, CancellationToken cancellationToken = default)
    {
        using var c = await ConnectWriteAsync(cancellationToken).ConfigureAwait(false);
        var n = await ExecAsync(c.Connection, null, "UPDATE pipeline_runs SET lease_expires_ms = @expires WHERE run_id = @id AND owner = @owner",
            cancellationToken, ("expires", expires.ToUnixTimeMilliseconds()), ("id", runId), ("owner", owner)).ConfigureAwait(false);
        using var cmd = c.Connection.CreateCommand();
        cmd.CommandText = "SELECT cancel_requested FROM pipeline_runs WHERE run_id = @id";
        cmd.AddParameter("id", runId);
        var cancel = Convert.ToInt64(await cmd.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) ?? 0L, CultureInfo.InvariantCulture) != 0;
        return new LeaseStatus(n == 1, cancel);
    }

    public async Task ReleaseLeaseAsync(string runId, string owner, CancellationToken cancellationToken = default)
    {
        using var c = await ConnectWriteAsync(cancellationToken).ConfigureAwait(false);
        await ExecAsync(c.Connection, null, "UPDATE pipeline_runs SET owner = NULL, lease_expires_ms = NULL WHERE run_id = @id AND owner = @owner",
            cancellationToken, ("id", runId), ("owner", owner)).ConfigureAwait(false);
    }

    public async Task<bool> RequestCancelAsync(string runId, bool cancel = true, CancellationToken cancellationToken = default)
    {
        using var c = await ConnectWriteAsync(cancellationToken).ConfigureAwait(false);
        return await ExecAsync(c.Connection, null, "UPDATE pipeline_runs SET cancel_requested = @cancel WHERE run_id = @id",
            cancellationToken, ("cancel", cancel ? 1L : 0L), ("id", runId)).ConfigureAwait(false) == 1;
    }

    public async Task<CacheEntry?> GetCacheAsync(string key, CancellationToken cancellationToken = default)
    {
        var list = await QueryAsync("SELECT cache_key, outputs_json, run_id, task, created_at FROM pipeline_cache WHERE cache_key = @key",
            r => new CacheEntry(r.GetString(0), ParseOutputs(r.GetString(1)), r.GetString(2), r.GetString(3), ParseTime(r.GetString(4))),
            cancellationToken, ("key", key)).ConfigureAwait(false);
        return list.Count == 0 ? null : list[0];
    }

    public async Task PutCacheAsync(CacheEntry entry, CancellationToken cancellationToken = default)
    {
        using var c = await ConnectWriteAsync(cancellationToken).ConfigureAwait(false);
        await ExecAsync(c.Connection, null,
            "INSERT INTO pipeline_cache (cache_key, outputs_json, run_id, task, created_at) VALUES (@key, @outputs, @run, @task, @at) " +
            "ON CONFLICT (cache_key) DO UPDATE SET outputs_json = excluded.outputs_json, run_id = excluded.run_id, task = excluded.task, created_at = excluded.created_at",
            cancellationToken, ("key", entry.Key), ("outputs", JsonSerializer.Serialize(entry.Outputs, PipelineJson.Default.IReadOnlyDictionaryStringString)),
            ("run", entry.RunId), ("task", entry.Task), ("at", Time(entry.CreatedAt))).ConfigureAwait(false);
    }

    public async Task<DateTimeOffset?> GetScheduleCursorAsync(string key, CancellationToken cancellationToken = default)
    {
        var list = await QueryAsync("SELECT last_fire FROM pipeline_schedules WHERE schedule_key = @key", r => ParseTime(r.GetString(0)),
            cancellationToken, ("key", key)).ConfigureAwait(false);
        return list.Count == 0 ? null : list[0];
    }

    public async Task SetScheduleCursorAsync(string key, DateTimeOffset at, CancellationToken cancellationToken = default)
    {
        using var c = await ConnectWriteAsync(cancellationToken).ConfigureAwait(false);
        await ExecAsync(c.Connection, null,
            "INSERT INTO pipeline_schedules (schedule_key, last_fire) VALUES (@key, @at) ON CONFLICT (schedule_key) DO UPDATE SET last_fire = excluded.last_fire",
            cancellationToken, ("key", key), ("at", Time(at))).ConfigureAwait(false);
    }

    public async Task<bool> TryClaimAlertAsync(string key, string eventName, DateTimeOffset at, CancellationToken cancellationToken = default)
    {
        using var c = await ConnectWriteAsync(cancellationToken).ConfigureAwait(false);
        return await ExecAsync(c.Connection, null,
            "INSERT INTO pipeline_alert_deliveries (alert_key, event, received_at) VALUES (@key, @event, @at) ON CONFLICT (alert_key) DO NOTHING",
            cancellationToken, ("key", key), ("event", eventName), ("at", Time(at))).ConfigureAwait(false) == 1;
    }

    public async Task ReleaseAlertAsync(string key, CancellationToken cancellationToken = default)
    {
        using var c = await ConnectWriteAsync(cancellationToken).ConfigureAwait(false);
        await ExecAsync(c.Connection, null, "DELETE FROM pipeline_alert_deliveries WHERE alert_key = @key", cancellationToken, ("key", key)).ConfigureAwait(false);
    }

    public ValueTask DisposeAsync() => _ownsDatabase ? Database.DisposeAsync() : ValueTask.CompletedTask;

    // ---- helpers ----------------------------------------------------------------------------

    private static RunRecord ReadRun(DbDataReader r) => new()
    {
        RunId = r.GetString(0),
        Pipeline = r.GetString(1),
        State = StateNames.ParseRun(r.GetString(2)),
        Trigger = r.GetString(3),
        Parameters = ParseOutputs(r.GetString(4)),
        DefinitionText = r.IsDBNull(5) ? null : r.GetString(5),
        SourcePath = r.IsDBNull(6) ? null : r.GetString(6),
        CreatedAt = ParseTime(r.GetString(7)),
        StartedAt = r.IsDBNull(8) ? null : ParseTime(r.GetString(8)),
        FinishedAt = r.IsDBNull(9) ? null : ParseTime(r.GetString(9)),
        Error = r.IsDBNull(10) ? null : r.GetString(10),
        Owner = r.IsDBNull(11) ? null : r.GetString(11),
        LeaseExpires = r.IsDBNull(12) ? null : DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(12)),
        CancelRequested = r.GetInt64(13) != 0,
        ScheduledFor = r.IsDBNull(14) ? null : ParseTime(r.GetString(14)),
    };

    private static TaskRecord ReadTask(DbDataReader r) => new()
    {
        RunId = r.GetString(0),
        Task = r.GetString(1),
        Kind = r.GetString(2),
        State = StateNames.ParseTask(r.GetString(3)),
        DependsOn = r.IsDBNull(4) || r.GetString(4).Length == 0 ? [] : r.GetString(4).Split(','),
        Attempts = (int)r.GetInt64(5),
        StartedAt = r.IsDBNull(6) ? null : ParseTime(r.GetString(6)),
        FinishedAt = r.IsDBNull(7) ? null : ParseTime(r.GetString(7)),
        Outputs = r.IsDBNull(8) ? null : ParseOutputs(r.GetString(8)),
        Error = r.IsDBNull(9) ? null : r.GetString(9),
        CacheKey = r.IsDBNull(10) ? null : r.GetString(10),
        Cached = r.GetInt64(11) != 0,
    };

    private static IReadOnlyDictionary<string, string> ParseOutputs(string json) =>
        JsonSerializer.Deserialize(json, PipelineJson.Default.IReadOnlyDictionaryStringString) ?? new Dictionary<string, string>();

    /// <summary>Times are stored as ISO 8601 UTC text with a fixed width, so text order is time order.</summary>
    private static string? Time(DateTimeOffset? t) => t?.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", CultureInfo.InvariantCulture);

    private static DateTimeOffset ParseTime(string s) => DateTimeOffset.Parse(s, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal);

    private async Task<IReadOnlyList<T>> QueryAsync<T>(string sql, Func<DbDataReader, T> read, CancellationToken cancellationToken, params (string Name, object? Value)[] args)
    {
        using var c = await ConnectAsync(cancellationToken).ConfigureAwait(false);
        using var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        foreach (var (n, v) in args)
        {
            if (sql.Contains("@" + n, StringComparison.Ordinal)) cmd.AddParameter(n, v);
        }
        var result = new List<T>();
        using var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false)) result.Add(read(reader));
        return result;
    }

    /// <summary>
    /// Runs statements (separated by ';') as one unit on the process's writer: on PostgreSQL one batch, which is one round
    /// trip and its own implicit transaction; on SQLite inside a transaction. Returns the rows affected.
    /// </summary>
    private async Task<int> ExecAtomicAsync(string sql, CancellationToken cancellationToken, params (string Name, object? Value)[] args)
    {
        using var c = await ConnectWriteAsync(cancellationToken).ConfigureAwait(false);
        if (Database.IsPostgres) return await ExecAsync(c.Connection, null, sql, cancellationToken, args).ConfigureAwait(false);
        using var tx = await c.Connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        var n = await ExecAsync(c.Connection, tx, sql, cancellationToken, args).ConfigureAwait(false);
        await tx.CommitAsync(cancellationToken).ConfigureAwait(false);
        return n;
    }

    /// <summary>Runs one statement; returns the rows affected.</summary>
    private static async Task<int> ExecAsync(DbConnection connection, DbTransaction? tx, string sql, CancellationToken cancellationToken, params (string Name, object? Value)[] args)
    {
        using var cmd = connection.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = sql;
        foreach (var (n, v) in args)
        {
            if (sql.Contains("@" + n, StringComparison.Ordinal)) cmd.AddParameter(n, v);
        }
        return await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }
}
