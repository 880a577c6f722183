using System.Data.Common;
using System.Globalization;
using System.Text;
using Kiln.Storage;
using Kiln.Tracking.Search;

namespace Kiln.Tracking.Sql;

/// <summary>The tracking store on SQLite or PostgreSQL.</summary>
public sealed class SqlTrackingStore(SqlDatabase db) : ITrackingStore
{
    private const string RunColumns = "r.run_id, r.run_name, r.experiment_id, r.user_id, r.status, r.start_time, r.end_time, r.artifact_uri, r.lifecycle_stage";
    private const string ExperimentColumns = "experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time";

    /// <summary>The tag MLflow keeps a run's name in.</summary>
    public const string RunNameTag = "mlflow.runName";

    internal static long Now() => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();

    public async Task<string> CreateExperimentAsync(string name, string? artifactLocation = null, IReadOnlyList<KeyValue>? tags = null,
        CancellationToken ct = default)
    {
        Limits.ValidateExperimentName(name);
        if (tags is not null) foreach (var t in tags) Limits.ValidateTag(t);
        return await db.WriteAsync(async (c, tx) =>
        {
            var existing = await c.ScalarAsync(tx, "SELECT lifecycle_stage FROM experiments WHERE name = @n", ct, ("n", name)).ConfigureAwait(false);
            if (existing is string stage)
                throw TrackingException.Exists(stage == LifecycleStage.Deleted
                    ? $"experiment '{name}' already exists in deleted state; restore it or permanently delete it first"
                    : $"experiment '{name}' already exists");
            var now = Now();
            var id = Convert.ToInt64(await c.ScalarAsync(tx, """
                INSERT INTO experiments (name, artifact_location, lifecycle_stage, creation_time, last_update_time)
                VALUES (@n, @a, 'active', @t, @t) RETURNING experiment_id
                """, ct, ("n", name), ("a", string.IsNullOrEmpty(artifactLocation) ? null : artifactLocation.TrimEnd('/')), ("t", now)).ConfigureAwait(false),
                CultureInfo.InvariantCulture);
            foreach (var t in tags ?? [])
            {
                await c.ExecAsync(tx, "INSERT INTO experiment_tags (experiment_id, key, value) VALUES (@e, @k, @v)", ct,
                    ("e", id), ("k", t.Key), ("v", t.Value)).ConfigureAwait(false);
            }
            return id.ToString(CultureInfo.InvariantCulture);
        }, ct).ConfigureAwait(false);
    }

    public Task<Experiment> GetExperimentAsync(string experimentId, CancellationToken ct = default) =>
        db.ReadAsync(async c => await LoadExperimentAsync(c, null, ParseExperimentId(experimentId), ct).ConfigureAwait(false)
            ?? throw TrackingException.NotFound($"no experiment with id {experimentId}"), ct);

    public Task<Experiment?> GetExperimentByNameAsync(string name, CancellationToken ct = default) =>
        db.ReadAsync(async c =>
        {
            var id = await c.ScalarAsync(null, "SELECT experiment_id FROM experiments WHERE name = @n", ct, ("n", name)).ConfigureAwait(false);
            return id is null ? null : await LoadExperimentAsync(c, null, Convert.ToInt64(id, CultureInfo.InvariantCulture), ct).ConfigureAwait(false);
        }, ct);

    public Task<Page<Experiment>> SearchExperimentsAsync(ExperimentQuery query, CancellationToken ct = default)
    {
        Limits.ValidateMaxResults(query.MaxResults);
        var offset = PageToken.Decode(query.PageToken);
        return db.ReadAsync(async c =>
        {
            var sql = new StringBuilder($"SELECT {ExperimentColumns} FROM experiments WHERE {StageCondition("lifecycle_stage", query.ViewType)}");
            var ps = new List<(string, object?)>();
            if (!string.IsNullOrEmpty(query.NameLike))
            {
                sql.Append(" AND name LIKE @name");
                ps.Add(("name", query.NameLike));
            }
            sql.Append(" ORDER BY experiment_id LIMIT @limit OFFSET @offset");
            ps.Add(("limit", (long)query.MaxResults + 1));
            ps.Add(("offset", offset));
            var rows = await c.QueryAsync(null, sql.ToString(), ReadExperiment, ct, [.. ps]).ConfigureAwait(false);
            var more = rows.Count > query.MaxResults;
            if (more) rows.RemoveAt(rows.Count - 1);
            var result = new List<Experiment>(rows.Count);
            foreach (var e in rows) result.Add(e with { Tags = await LoadExperimentTagsAsync(c, long.Parse(e.ExperimentId, CultureInfo.InvariantCulture), ct).ConfigureAwait(false) });
            return new Page<Experiment>(result, more ? PageToken.Encode(offset + query.MaxResults) : null);
        }, ct);
    }

    public async Task RenameExperimentAsync(string experimentId, string newName, CancellationToken ct = default)
    {
        Limits.ValidateExperimentName(newName);
        var id = ParseExperimentId(experimentId);
        await db.WriteAsync(async (c, tx) =>
        {
            var e = await RequireExperimentAsync(c, tx, id, ct).ConfigureAwait(false);
            if (e.LifecycleStage != LifecycleStage.Active) throw new TrackingException(ErrorCode.InvalidState, $"experiment {experimentId} is deleted; restore it before renaming");
            var other = await c.ScalarAsync(tx, "SELECT experiment_id FROM experiments WHERE name = @n", ct, ("n", newName)).ConfigureAwait(false);
            if (other is not null && Convert.ToInt64(other, CultureInfo.InvariantCulture) != id) throw TrackingException.Exists($"experiment '{newName}' already exists");
            await c.ExecAsync(tx, "UPDATE experiments SET name = @n, last_update_time = @t WHERE experiment_id = @e", ct,
                ("n", newName), ("t", Now()), ("e", id)).ConfigureAwait(false);
        }, ct).ConfigureAwait(false);
    }

    public Task DeleteExperimentAsync(string experimentId, CancellationToken ct = default) =>
        SetExperimentStageAsync(experimentId, LifecycleStage.Deleted, ct);

    public Task RestoreExperimentAsync(string experimentId, CancellationToken ct = default) =>
        SetExperimentStageAsync(experimentId, LifecycleStage.Active, ct);

    private async Task SetExperimentStageAsync(string experimentId, string stage, CancellationToken ct)
    {
        var id = ParseExperimentId(experimentId);
        if (id == 0 && stage == LifecycleStage.Deleted) throw TrackingException.Invalid("the Default experiment (id 0) cannot be deleted");
        await db.WriteAsync(async (c, tx) =>
        {
            var e = await RequireExperimentAsync(c, tx, id, ct).ConfigureAwait(false);
            if (stage == LifecycleStage.Active && e.LifecycleStage == LifecycleStage.Active)
                throw new TrackingException(ErrorCode.InvalidState, $"experiment {experimentId} is not deleted");
            var now = Now();
            await c.ExecAsync(tx, "UPDATE experiments SET lifecycle_stage = @s, last_update_time = @t WHERE experiment_id = @e", ct,
                ("s", stage), ("t", now), ("e", id)).ConfigureAwait(false);
            // As MLflow: deleting an experiment deletes its runs, restoring restores them.
            await c.ExecAsync(tx, "UPDATE runs SET lifecycle_stage = @s WHERE experiment_id = @e", ct, ("s", stage), ("e", id)).ConfigureAwait(false);
        }, ct).ConfigureAwait(false);
    }

    public async Task SetExperimentTagAsync(string experimentId, string key, string value, CancellationToken ct = default)
    {
        Limits.ValidateTag(new KeyValue(key, value));
        var id = ParseExperimentId(experimentId);
        await db.WriteAsync(async (c, tx) =>
        {
            var e = await RequireExperimentAsync(c, tx, id, ct).ConfigureAwait(false);
            if (e.LifecycleStage != LifecycleStage.Active) throw new TrackingException(ErrorCode.InvalidState, $"experiment {experimentId} is deleted");
            await c.ExecAsync(tx, """
                INSERT INTO experiment_tags (experiment_id, key, value) VALUES (@e, @k, @v)
                ON CONFLICT (experiment_id, key) DO UPDATE SET value = excluded.value
                """, ct, ("e", id), ("k", key), ("v", value)).ConfigureAwait(false);
        }, ct).ConfigureAwait(false);
    }

    public async Task<Run> CreateRunAsync(CreateRun request, CancellationToken ct = default)
    {
        var expId = ParseExperimentId(request.ExperimentId);
        var tags = new List<KeyValue>(request.Tags ?? []);
        foreach (var t in tags) Limits.ValidateTag(t);
        var runName = request.RunName;
        var nameTag = tags.FindLast(t => t.Key == RunNameTag);
        if (string.IsNullOrEmpty(runName)) runName = nameTag?.Value;
        else if (nameTag is not null && nameTag.Value != runName)
            throw TrackingException.Invalid($"run_name '{runName}' differs from the {RunNameTag} tag '{nameTag.Value}'");
        if (string.IsNullOrEmpty(runName)) runName = RunNames.Generate();
        tags.RemoveAll(t => t.Key == RunNameTag);
        tags.Add(new KeyValue(RunNameTag, runName));
        if (request.UserId is not null) tags.Add(new KeyValue("mlflow.user", request.UserId));
        var runId = Guid.NewGuid().ToString("N");
        await db.WriteAsync(async (c, tx) =>
        {
            var e = await RequireExperimentAsync(c, tx, expId, ct).ConfigureAwait(false);
            if (e.LifecycleStage != LifecycleStage.Active)
                throw new TrackingException(ErrorCode.InvalidState, $"experiment {request.ExperimentId} is deleted; runs cannot be created in it");
            var artifactUri = $"{e.ArtifactLocation}/{runId}/artifacts";
            await c.ExecAsync(tx, """
                INSERT INTO runs (run_id, experiment_id, run_name, user_id, status, start_time, end_time, lifecycle_stage, artifact_uri)
                VALUES (@id, @e, @n, @u, 'RUNNING', @s, NULL, 'active', @a)
                """, ct, ("id", runId), ("e", expId), ("n", runName), ("u", request.UserId ?? "unknown"),
                ("s", request.StartTime ?? Now()), ("a", artifactUri)).ConfigureAwait(false);
            await UpsertTagsAsync(c, tx, runId, tags, ct).ConfigureAwait(false);
        }, ct).ConfigureAwait(false);
        return await GetRunAsync(runId, ct).ConfigureAwait(false);
    }

    public Task<Run> GetRunAsync(string runId, CancellationToken ct = default) =>
        db.ReadAsync(async c =>
        {
            var infos = await c.QueryAsync(null, $"SELECT {RunColumns} FROM runs r WHERE r.run_id = @id", ReadRunInfo, ct, ("id", runId)).ConfigureAwait(false);
            if (infos.Count == 0) throw RunNotFound(runId);
            var runs = await LoadRunDataAsync(c, infos, ct).ConfigureAwait(false);
            return runs[0];
        }, ct);

    public async Task<RunInfo> UpdateRunAsync(string runId, string? status, long? endTime, string? runName, CancellationToken ct = default)
    {
        if (status is not null && !RunStatus.IsValid(status))
            throw TrackingException.Invalid($"invalid run status '{status}' (use RUNNING, SCHEDULED, FINISHED, FAILED or KILLED)");
        if (runName is not null) Limits.ValidateTag(new KeyValue(RunNameTag, runName));
        return await db.WriteAsync(async (c, tx) =>
        {
            var info = await RequireActiveRunAsync(c, tx, runId, ct).ConfigureAwait(false);
            var sets = new List<string>();
            var ps = new List<(string, object?)> { ("id", runId) };
            if (status is not null) { sets.Add("status = @s"); ps.Add(("s", status)); }
            if (endTime is not null) { sets.Add("end_time = @e"); ps.Add(("e", endTime.Value)); }
            if (!string.IsNullOrEmpty(runName))
            {
                sets.Add("run_name = @n");
                ps.Add(("n", runName));
                await UpsertTagsAsync(c, tx, runId, [new KeyValue(RunNameTag, runName)], ct).ConfigureAwait(false);
            }
            if (sets.Count > 0)
                await c.ExecAsync(tx, $"UPDATE runs SET {string.Join(", ", sets)} WHERE run_id = @id", ct, [.. ps]).ConfigureAwait(false);
            return info with
            {
                Status = status ?? info.Status,
                EndTime = endTime ?? info.EndTime,
                RunName = string.IsNullOrEmpty(runName) ? info.RunName : runName,
            };
        }, ct).ConfigureAwait(false);
    }

    public Task DeleteRunAsync(string runId, CancellationToken ct = default) => SetRunStageAsync(runId, LifecycleStage.Deleted, ct);

    public Task RestoreRunAsync(string runId, CancellationToken ct = default) => SetRunStageAsync(runId, LifecycleStage.Active, ct);

    private Task SetRunStageAsync(string runId, string stage, CancellationToken ct) =>
        db.WriteAsync(async (c, tx) =>
        {
            var n = await c.ExecAsync(tx, "UPDATE runs SET lifecycle_stage = @s WHERE run_id = @id", ct, ("s", stage), ("id", runId)).ConfigureAwait(false);
            if (n == 0) throw RunNotFound(runId);
        }, ct);

    public async Task LogBatchAsync(string runId, IReadOnlyList<Metric>? metrics, IReadOnlyList<KeyValue>? @params,
        IReadOnlyList<KeyValue>? tags, CancellationToken ct = default)
    {
        Limits.ValidateBatch(metrics, @params, tags);
        await db.WriteAsync(async (c, tx) =>
        {
            var info = await RequireActiveRunAsync(c, tx, runId, ct).ConfigureAwait(false);
            if (@params is { Count: > 0 }) await InsertParamsAsync(c, tx, runId, @params, ct).ConfigureAwait(false);
            if (metrics is { Count: > 0 })
            {
                await db.InsertMetricsAsync(c, tx, runId, metrics, ct).ConfigureAwait(false);
                await UpsertLatestAsync(c, tx, runId, metrics, ct).ConfigureAwait(false);
            }
            if (tags is { Count: > 0 })
            {
                await UpsertTagsAsync(c, tx, runId, tags, ct).ConfigureAwait(false);
                var name = tags.LastOrDefault(t => t.Key == RunNameTag);
                if (name is not null && name.Value != info.RunName)
                    await c.ExecAsync(tx, "UPDATE runs SET run_name = @n WHERE run_id = @id", ct, ("n", name.Value), ("id", runId)).ConfigureAwait(false);
            }
        }, ct).ConfigureAwait(false);
    }

    private static async Task InsertParamsAsync(DbConnection c, DbTransaction tx, string runId, IReadOnlyList<KeyValue> ps, CancellationToken ct)
    {
        using var insert = c.Command(tx, "INSERT INTO params (run_id, key, value) VALUES (@r, @k, @v) ON CONFLICT (run_id, key) DO NOTHING",
            ("r", runId), ("k", ""), ("v", ""));
        foreach (var p in ps)
        {
            insert.Parameters[1].Value = p.Key;
            insert.Parameters[2].Value = p.Value;
            if (await insert.ExecuteNonQueryAsync(ct).ConfigureAwait(false) == 1) continue;
            var old = (string?)await c.ScalarAsync(tx, "SELECT value FROM params WHERE run_id = @r AND key = @k", ct, ("r", runId), ("k", p.Key)).ConfigureAwait(false);
            if (old != p.Value)
                throw TrackingException.Invalid($"param '{p.Key}' of run {runId} was already logged with value '{Limits.Shorten(old ?? "")}'; params are immutable, the new value '{Limits.Shorten(p.Value)}' is refused");
        }
    }

    private static async Task UpsertLatestAsync(DbConnection c, DbTransaction tx, string runId, IReadOnlyList<Metric> metrics, CancellationToken ct)
    {
        // MLflow's latest value: the highest step, then the latest timestamp.
        var latest = new Dictionary<string, Metric>(StringComparer.Ordinal);
        foreach (var m in metrics)
        {
            if (!latest.TryGetValue(m.Key, out var cur) || m.Step > cur.Step || (m.Step == cur.Step && m.Timestamp >= cur.Timestamp))
                latest[m.Key] = m;
        }
        using var cmd = c.Command(tx, """
            INSERT INTO latest_metrics (run_id, key, step, timestamp, value, is_nan) VALUES (@r, @k, @s, @t, @v, @n)
            ON CONFLICT (run_id, key) DO UPDATE SET step = excluded.step, timestamp = excluded.timestamp, value = excluded.value, is_nan = excluded.is_nan
            WHERE excluded.step > latest_metrics.step OR (excluded.step = latest_metrics.step AND excluded.timestamp >= latest_metrics.timestamp)
            """, ("r", runId), ("k", ""), ("s", 0L), ("t", 0L), ("v", 0.0), ("n", 0));
        foreach (var m in latest.Values)
        {
            cmd.Parameters[1].Value = m.Key;
            cmd.Parameters[2].Value = m.Step;
            cmd.Parameters[3].Value = m.Timestamp;
            cmd.Parameters[4].Value = double.IsNaN(m.Value) ? DBNull.Value : m.Value;
            cmd.Parameters[5].Value = double.IsNaN(m.Value) ? 1 : 0;
            await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }
    }

    private static async Task UpsertTagsAsync(DbConnection c, DbTransaction tx, string runId, IReadOnlyList<KeyValue> tags, CancellationToken ct)
    {
        using var cmd = c.Command(tx, """
            INSERT INTO tags (run_id, key, value) VALUES (@r, @k, @v)
            ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value
            """, ("r", runId), ("k", ""), ("v", ""));
        foreach (var t in tags)
        {
            cmd.Parameters[1].Value = t.Key;
            cmd.Parameters[2].Value = t.Value;
            await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }
    }

    public Task DeleteTagAsync(string runId, string key, CancellationToken ct = default) =>
        db.WriteAsync(async (c, tx) =>
        {
            await RequireActiveRunAsync(c, tx, runId, ct).ConfigureAwait(false);
            var n = await c.ExecAsync(tx, "DELETE FROM tags WHERE run_id = @r AND key = @k", ct, ("r", runId), ("k", key)).ConfigureAwait(false);
            if (n == 0) throw TrackingException.NotFound($"no tag '{key}' on run {runId}");
        }, ct);

    public Task<IReadOnlyList<Metric>> GetMetricHistoryAsync(string runId, string key, CancellationToken ct = default) =>
        db.ReadAsync<IReadOnlyList<Metric>>(async c =>
        {
            var exists = await c.ScalarAsync(null, "SELECT 1 FROM runs WHERE run_id = @r", ct, ("r", runId)).ConfigureAwait(false);
            if (exists is null) throw RunNotFound(runId);
            return await c.QueryAsync(null, "SELECT key, value, is_nan, timestamp, step FROM metrics WHERE run_id = @r AND key = @k ORDER BY step, timestamp",
                r => new Metric(r.GetString(0), r.MetricValue(1, 2), r.Int64(3), r.Int64(4)), ct, ("r", runId), ("k", key)).ConfigureAwait(false);
        }, ct);

    public Task<Page<Run>> SearchRunsAsync(RunQuery query, CancellationToken ct = default)
    {
        Limits.ValidateMaxResults(query.MaxResults);
        var offset = PageToken.Decode(query.PageToken);
        var filters = SearchFilter.Parse(query.Filter);
        var order = SearchFilter.ParseOrderBy(query.OrderBy);
        var expIds = new List<long>();
        foreach (var e in query.ExperimentIds) expIds.Add(ParseExperimentId(e));
        if (expIds.Count == 0) return Task.FromResult(new Page<Run>([], null));

        var sql = new StringBuilder($"SELECT {RunColumns} FROM runs r");
        var where = new StringBuilder();
        var ps = new List<(string, object?)>();
        string P(object value)
        {
            var name = "p" + ps.Count.ToString(CultureInfo.InvariantCulture);
            ps.Add((name, value));
            return "@" + name;
        }

        var orderSql = new List<string>();
        for (var i = 0; i < order.Count; i++)
        {
            var o = order[i];
            var dir = o.Ascending ? "ASC" : "DESC";
            string column;
            switch (o.Kind)
            {
                case EntityKind.Metric:
                    var filtered = filters.Where(f => f.Kind == EntityKind.Metric).ToList();
                    var same = filtered.FindIndex(f => f.Key == o.Key);
                    if (same >= 0)
                    {
                        // The filter already joins this metric (never NULL there): order by that join.
                        orderSql.Add($"f{same.ToString(CultureInfo.InvariantCulture)}.value {dir}");
                        continue;
                    }
                    sql.Append(CultureInfo.InvariantCulture, $" LEFT JOIN latest_metrics o{i} ON o{i}.run_id = r.run_id AND o{i}.key = {P(o.Key)}");
                    column = $"o{i}.value";
                    break;
                case EntityKind.Param:
                    sql.Append(CultureInfo.InvariantCulture, $" LEFT JOIN params o{i} ON o{i}.run_id = r.run_id AND o{i}.key = {P(o.Key)}");
                    column = $"o{i}.value";
                    break;
                case EntityKind.Tag:
                    sql.Append(CultureInfo.InvariantCulture, $" LEFT JOIN tags o{i} ON o{i}.run_id = r.run_id AND o{i}.key = {P(o.Key)}");
                    column = $"o{i}.value";
                    break;
                default:
                    column = AttributeColumn(o.Key);
                    break;
            }
            // Runs without the value sort last either way, as in MLflow.
            orderSql.Add($"CASE WHEN {column} IS NULL THEN 1 ELSE 0 END, {column} {dir}");
        }
        if (!order.Any(o => o.Kind == EntityKind.Attribute && o.Key is "start_time" or "created")) orderSql.Add("r.start_time DESC");
        orderSql.Add("r.run_id");

        var joins = 0;
        var filterJoins = new StringBuilder();
        where.Append(" WHERE r.experiment_id IN (").AppendJoin(", ", expIds.Select(e => P(e))).Append(')');
        where.Append(" AND ").Append(StageCondition("r.lifecycle_stage", query.ViewType));
        foreach (var f in filters)
        {
            where.Append(" AND ");
            switch (f.Kind)
            {
                case EntityKind.Metric:
                    // A join, not EXISTS: (run_id, key) is unique, and the planner may then drive the
                    // search from the (key, value) index instead of probing every run.
                    var alias = "f" + joins.ToString(CultureInfo.InvariantCulture);
                    joins++;
                    filterJoins.Append(CultureInfo.InvariantCulture,
                        $" JOIN latest_metrics {alias} ON {alias}.run_id = r.run_id AND {alias}.key = {P(f.Key)} AND {alias}.is_nan = 0 AND {alias}.value {f.Op} {P(f.Value)}");
                    where.Append("1 = 1");
                    break;
                case EntityKind.Param:
                    where.Append(CultureInfo.InvariantCulture,
                        $"EXISTS (SELECT 1 FROM params x WHERE x.run_id = r.run_id AND x.key = {P(f.Key)} AND {Compare("x.value", f.Op, P(f.Value))})");
                    break;
                case EntityKind.Tag:
                    where.Append(CultureInfo.InvariantCulture,
                        $"EXISTS (SELECT 1 FROM tags x WHERE x.run_id = r.run_id AND x.key = {P(f.Key)} AND {Compare("x.value", f.Op, P(f.Value))})");
                    break;
                default:
                    var column = AttributeColumn(f.Key);
                    if (f.Value is List<string> list)
                    {
                        if (list.Count == 0) where.Append(f.Op == "IN" ? "1 = 0" : "1 = 1");
                        else where.Append(column).Append(f.Op == "IN" ? " IN (" : " NOT IN (").AppendJoin(", ", list.Select(v => P(v))).Append(')');
                    }
                    else if (f.Value is double d)
                    {
                        where.Append(Compare(column, f.Op, P((long)d)));
                    }
                    else
                    {
                        where.Append(Compare(column, f.Op, P(f.Value)));
                    }
                    break;
            }
        }
        // Filter joins first: SQLite does not move inner joins ahead of a LEFT JOIN.
        sql.Insert($"SELECT {RunColumns} FROM runs r".Length, filterJoins.ToString());
        sql.Append(where).Append(" ORDER BY ").AppendJoin(", ", orderSql)
            .Append(" LIMIT ").Append(P((long)query.MaxResults + 1)).Append(" OFFSET ").Append(P(offset));
        var text = sql.ToString();
        return db.ReadAsync(async c =>
        {
            var infos = await c.QueryAsync(null, text, ReadRunInfo, ct, [.. ps]).ConfigureAwait(false);
            var more = infos.Count > query.MaxResults;
            if (more) infos.RemoveAt(infos.Count - 1);
            var runs = await LoadRunDataAsync(c, infos, ct).ConfigureAwait(false);
            return new Page<Run>(runs, more ? PageToken.Encode(offset + query.MaxResults) : null);
        }, ct);
    }

    private static string Compare(string column, string op, string parameter) => op switch
    {
        "ILIKE" => $"LOWER({column}) LIKE LOWER({parameter})",
        _ => $"{column} {op} {parameter}",
    };

    private static string AttributeColumn(string key) => key switch
    {
        "run_id" => "r.run_id",
        "run_name" => "r.run_name",
        "status" => "r.status",
        "user_id" => "r.user_id",
        "artifact_uri" => "r.artifact_uri",
        "lifecycle_stage" => "r.lifecycle_stage",
        "start_time" or "created" => "r.start_time",
        "end_time" => "r.end_time",
        _ => throw TrackingException.Invalid($"unknown run attribute '{key}'"),
    };

    private static string StageCondition(string column, ViewType view) => view switch
    {
        ViewType.DeletedOnly => $"{column} = 'deleted'",
        ViewType.All => "1 = 1",
        _ => $"{column} = 'active'",
    };

    private static async Task<List<Run>> LoadRunDataAsync(DbConnection c, List<RunInfo> infos, CancellationToken ct)
    {
        var result = new List<Run>(infos.Count);
        if (infos.Count == 0) return result;
        var metrics = new Dictionary<string, List<Metric>>(StringComparer.Ordinal);
        var @params = new Dictionary<string, List<KeyValue>>(StringComparer.Ordinal);
        var tags = new Dictionary<string, List<KeyValue>>(StringComparer.Ordinal);
        foreach (var i in infos)
        {
            metrics[i.RunId] = [];
            @params[i.RunId] = [];
            tags[i.RunId] = [];
        }
        // Chunks keep the parameter count well under SQLite's limit.
        for (var start = 0; start < infos.Count; start += 500)
        {
            var chunk = infos.Skip(start).Take(500).ToList();
            var names = string.Join(", ", chunk.Select((_, i) => "@r" + i.ToString(CultureInfo.InvariantCulture)));
            var ps = chunk.Select((info, i) => ("r" + i.ToString(CultureInfo.InvariantCulture), (object?)info.RunId)).ToArray();
            using (var cmd = c.Command(null, $"SELECT run_id, key, value, is_nan, timestamp, step FROM latest_metrics WHERE run_id IN ({names}) ORDER BY key", ps))
            using (var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false))
            {
                while (await r.ReadAsync(ct).ConfigureAwait(false))
                    metrics[r.GetString(0)].Add(new Metric(r.GetString(1), r.MetricValue(2, 3), r.Int64(4), r.Int64(5)));
            }
            using (var cmd = c.Command(null, $"SELECT run_id, key, value FROM params WHERE run_id IN ({names}) ORDER BY key", ps))
            using (var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false))
            {
                while (await r.ReadAsync(ct).ConfigureAwait(false)) @params[r.GetString(0)].Add(new KeyValue(r.GetString(1), r.GetString(2)));
            }
            using (var cmd = c.Command(null, $"SELECT run_id, key, value FROM tags WHERE run_id IN ({names}) ORDER BY key", ps))
            using (var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false))
            {
                while (await r.ReadAsync(ct).ConfigureAwait(false)) tags[r.GetString(0)].Add(new KeyValue(r.GetString(1), r.GetString(2)));
            }
        }
        foreach (var i in infos) result.Add(new Run(i, new RunData(metrics[i.RunId], @params[i.RunId], tags[i.RunId])));
        return result;
    }

    private static RunInfo ReadRunInfo(DbDataReader r) => new(
        r.GetString(0), r.GetString(1), r.Int64(2).ToString(CultureInfo.InvariantCulture), r.GetString(3), r.GetString(4),
        r.Int64(5), r.NullableInt64(6), r.GetString(7), r.GetString(8));

    private static Experiment ReadExperiment(DbDataReader r)
    {
        var id = r.Int64(0).ToString(CultureInfo.InvariantCulture);
        return new Experiment(id, r.GetString(1), r.NullableString(2) ?? $"mlflow-artifacts:/{id}", r.GetString(3), r.Int64(4), r.Int64(5), []);
    }

    private static async Task<Experiment?> LoadExperimentAsync(DbConnection c, DbTransaction? tx, long id, CancellationToken ct)
    {
        var rows = await c.QueryAsync(tx, $"SELECT {ExperimentColumns} FROM experiments WHERE experiment_id = @e", ReadExperiment, ct, ("e", id)).ConfigureAwait(false);
        if (rows.Count == 0) return null;
        return rows[0] with { Tags = await LoadExperimentTagsAsync(c, id, ct, tx).ConfigureAwait(false) };
    }

    private static Task<List<KeyValue>> LoadExperimentTagsAsync(DbConnection c, long id, CancellationToken ct, DbTransaction? tx = null) =>
        c.QueryAsync(tx, "SELECT key, value FROM experiment_tags WHERE experiment_id = @e ORDER BY key",
            r => new KeyValue(r.GetString(0), r.GetString(1)), ct, ("e", id));

    private static async Task<Experiment> RequireExperimentAsync(DbConnection c, DbTransaction tx, long id, CancellationToken ct) =>
        await LoadExperimentAsync(c, tx, id, ct).ConfigureAwait(false)
        ?? throw TrackingException.NotFound($"no experiment with id {id.ToString(CultureInfo.InvariantCulture)}");

    private static async Task<RunInfo> RequireActiveRunAsync(DbConnection c, DbTransaction tx, string runId, CancellationToken ct)
    {
        var rows = await c.QueryAsync(tx, $"SELECT {RunColumns} FROM runs r WHERE r.run_id = @id", ReadRunInfo, ct, ("id", runId)).ConfigureAwait(false);
        if (rows.Count == 0) throw RunNotFound(runId);
        if (rows[0].LifecycleStage != LifecycleStage.Active)
            throw TrackingException.Invalid($"run {runId} is deleted: the run must be in the 'active' state to be changed");
        return rows[0];
    }

    private static TrackingException RunNotFound(string runId) => TrackingException.NotFound($"run '{runId}' not found");

    internal static long ParseExperimentId(string? id)
    {
        if (string.IsNullOrEmpty(id)) throw TrackingException.Invalid("experiment_id is missing");
        if (!long.TryParse(id, NumberStyles.None, CultureInfo.InvariantCulture, out var v))
            throw TrackingException.Invalid($"invalid experiment_id '{Limits.Shorten(id)}': experiment ids are integers");
        return v;
    }
}

/// <summary>Readable generated run names, as MLflow gives runs without one.</summary>
internal static class RunNames
{
    private static readonly string[] Adjectives = ["amber", "bold", "brisk", "calm", "clever", "dapper", "eager", "gentle", "keen", "lucky", "merry", "nimble", "quiet", "rare", "sunny", "swift", "tidy", "vivid", "wise", "zesty"];
    private static readonly string[] Nouns = ["ant", "bass", "crane", "deer", "eel", "finch", "gull", "hare", "ibis", "jay", "kiwi", "lark", "moth", "newt", "owl", "puma", "quail", "robin", "seal", "wren"];

    public static string Generate() =>
        $"{Adjectives[Random.Shared.Next(Adjectives.Length)]}-{Nouns[Random.Shared.Next(Nouns.Length)]}-{Random.Shared.Next(1000).ToString(CultureInfo.InvariantCulture)}";
}
