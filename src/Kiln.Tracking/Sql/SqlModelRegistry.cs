using System.Data.Common;
using System.Globalization;
using Kiln.Storage;
using Kiln.Tracking.Search;

namespace Kiln.Tracking.Sql;

/// <summary>The model registry on SQLite or PostgreSQL.</summary>
public sealed class SqlModelRegistry(SqlDatabase db) : IModelRegistry
{
    private const string VersionColumns = "name, version, creation_time, last_updated_time, description, user_id, current_stage, source, run_id, status";

    private static long Now() => SqlTrackingStore.Now();

    public async Task<RegisteredModel> CreateRegisteredModelAsync(string name, string? description = null, IReadOnlyList<KeyValue>? tags = null,
        CancellationToken ct = default)
    {
        Limits.ValidateModelName(name);
        if (tags is not null) foreach (var t in tags) Limits.ValidateTag(t);
        await db.WriteAsync(async (c, tx) =>
        {
            if (await c.ScalarAsync(tx, "SELECT 1 FROM registered_models WHERE name = @n", ct, ("n", name)).ConfigureAwait(false) is not null)
                throw TrackingException.Exists($"registered model '{name}' already exists");
            var now = Now();
            await c.ExecAsync(tx, "INSERT INTO registered_models (name, creation_time, last_updated_time, description) VALUES (@n, @t, @t, @d)", ct,
                ("n", name), ("t", now), ("d", description)).ConfigureAwait(false);
            foreach (var t in tags ?? [])
            {
                await c.ExecAsync(tx, "INSERT INTO registered_model_tags (name, key, value) VALUES (@n, @k, @v) ON CONFLICT (name, key) DO UPDATE SET value = excluded.value", ct,
                    ("n", name), ("k", t.Key), ("v", t.Value)).ConfigureAwait(false);
            }
        }, ct).ConfigureAwait(false);
        return await GetRegisteredModelAsync(name, ct).ConfigureAwait(false);
    }

    public Task<RegisteredModel> GetRegisteredModelAsync(string name, CancellationToken ct = default) =>
        db.ReadAsync(async c => await LoadModelAsync(c, null, name, ct).ConfigureAwait(false)
            ?? throw ModelNotFound(name), ct);

    public async Task<RegisteredModel> RenameRegisteredModelAsync(string name, string newName, CancellationToken ct = default)
    {
        Limits.ValidateModelName(newName);
        await db.WriteAsync(async (c, tx) =>
        {
            await RequireModelAsync(c, tx, name, ct).ConfigureAwait(false);
            if (await c.ScalarAsync(tx, "SELECT 1 FROM registered_models WHERE name = @n", ct, ("n", newName)).ConfigureAwait(false) is not null)
                throw TrackingException.Exists($"registered model '{newName}' already exists");
            foreach (var table in (string[])["registered_models", "registered_model_tags", "model_versions", "model_version_tags", "model_aliases", "alias_history"])
                await c.ExecAsync(tx, $"UPDATE {table} SET name = @new WHERE name = @old", ct, ("new", newName), ("old", name)).ConfigureAwait(false);
            await c.ExecAsync(tx, "UPDATE registered_models SET last_updated_time = @t WHERE name = @n", ct, ("t", Now()), ("n", newName)).ConfigureAwait(false);
        }, ct).ConfigureAwait(false);
        return await GetRegisteredModelAsync(newName, ct).ConfigureAwait(false);
    }

    public async Task<RegisteredModel> UpdateRegisteredModelAsync(string name, string? description, CancellationToken ct = default)
    {
        await db.WriteAsync(async (c, tx) =>
        {
            var n = await c.ExecAsync(tx, "UPDATE registered_models SET description = @d, last_updated_time = @t WHERE name = @n", ct,
                ("d", description), ("t", Now()), ("n", name)).ConfigureAwait(false);
            if (n == 0) throw ModelNotFound(name);
        }, ct).ConfigureAwait(false);
        return await GetRegisteredModelAsync(name, ct).ConfigureAwait(false);
    }

    public Task DeleteRegisteredModelAsync(string name, CancellationToken ct = default) =>
        db.WriteAsync(async (c, tx) =>
        {
            await RequireModelAsync(c, tx, name, ct).ConfigureAwait(false);
            // The alias audit history is kept: it records what production served, even after a model is gone.
            foreach (var table in (string[])["registered_model_tags", "model_version_tags", "model_aliases", "model_versions", "registered_models"])
                await c.ExecAsync(tx, $"DELETE FROM {table} WHERE name = @n", ct, ("n", name)).ConfigureAwait(false);
        }, ct);

    public Task<Page<RegisteredModel>> SearchRegisteredModelsAsync(string? nameLike = null, int maxResults = 100, string? pageToken = null,
        CancellationToken ct = default)
    {
        Limits.ValidateMaxResults(maxResults, 1000);
        var offset = PageToken.Decode(pageToken);
        return db.ReadAsync(async c =>
        {
            var sql = "SELECT name FROM registered_models" + (string.IsNullOrEmpty(nameLike) ? "" : " WHERE name LIKE @like") +
                " ORDER BY name LIMIT @limit OFFSET @offset";
            var names = await c.QueryAsync(null, sql, r => r.GetString(0), ct,
                ("like", nameLike), ("limit", (long)maxResults + 1), ("offset", offset)).ConfigureAwait(false);
            var more = names.Count > maxResults;
            if (more) names.RemoveAt(names.Count - 1);
            var models = new List<RegisteredModel>(names.Count);
            foreach (var n in names)
            {
                if (await LoadModelAsync(c, null, n, ct).ConfigureAwait(false) is { } m) models.Add(m);
            }
            return new Page<RegisteredModel>(models, more ? PageToken.Encode(offset + maxResults) : null);
        }, ct);
    }

    public async Task SetRegisteredModelTagAsync(string name, string key, string value, CancellationToken ct = default)
    {
        Limits.ValidateTag(new KeyValue(key, value));
        await db.WriteAsync(async (c, tx) =>
        {
            await RequireModelAsync(c, tx, name, ct).ConfigureAwait(false);
            await c.ExecAsync(tx, "INSERT INTO registered_model_tags (name, key, value) VALUES (@n, @k, @v) ON CONFLICT (name, key) DO UPDATE SET value = excluded.value", ct,
                ("n", name), ("k", key), ("v", value)).ConfigureAwait(false);
        }, ct).ConfigureAwait(false);
    }

    public Task DeleteRegisteredModelTagAsync(string name, string key, CancellationToken ct = default) =>
        db.WriteAsync(async (c, tx) =>
        {
            await RequireModelAsync(c, tx, name, ct).ConfigureAwait(false);
            var n = await c.ExecAsync(tx, "DELETE FROM registered_model_tags WHERE name = @n AND key = @k", ct, ("n", name), ("k", key)).ConfigureAwait(false);
            if (n == 0) throw TrackingException.NotFound($"no tag '{key}' on registered model '{name}'");
        }, ct);

    public async Task<ModelVersion> CreateModelVersionAsync(CreateModelVersion request, CancellationToken ct = default)
    {
        Limits.ValidateModelName(request.Name);
        if (string.IsNullOrWhiteSpace(request.Source)) throw TrackingException.Invalid("model version source is missing");
        if (request.Tags is not null) foreach (var t in request.Tags) Limits.ValidateTag(t);
        var version = await db.WriteAsync(async (c, tx) =>
        {
            await RequireModelAsync(c, tx, request.Name, ct).ConfigureAwait(false);
            if (request.RunId is not null && await c.ScalarAsync(tx, "SELECT 1 FROM runs WHERE run_id = @r", ct, ("r", request.RunId)).ConfigureAwait(false) is null)
                throw TrackingException.NotFound($"run '{request.RunId}' not found (model version source run)");
            var max = await c.ScalarAsync(tx, "SELECT MAX(version) FROM model_versions WHERE name = @n", ct, ("n", request.Name)).ConfigureAwait(false);
            var v = max is null ? 1 : Convert.ToInt32(max, CultureInfo.InvariantCulture) + 1;
            var now = Now();
            await c.ExecAsync(tx, $"""
                INSERT INTO model_versions ({VersionColumns})
                VALUES (@n, @v, @t, @t, @d, @u, 'None', @s, @r, 'READY')
                """, ct, ("n", request.Name), ("v", v), ("t", now), ("d", request.Description), ("u", request.UserId ?? "unknown"),
                ("s", request.Source), ("r", request.RunId)).ConfigureAwait(false);
            foreach (var t in request.Tags ?? [])
            {
                await c.ExecAsync(tx, "INSERT INTO model_version_tags (name, version, key, value) VALUES (@n, @v, @k, @val) ON CONFLICT (name, version, key) DO UPDATE SET value = excluded.value", ct,
                    ("n", request.Name), ("v", v), ("k", t.Key), ("val", t.Value)).ConfigureAwait(false);
            }
            await c.ExecAsync(tx, "UPDATE registered_models SET last_updated_time = @t WHERE name = @n", ct, ("t", now), ("n", request.Name)).ConfigureAwait(false);
            return v;
        }, ct).ConfigureAwait(false);
        return await GetModelVersionAsync(request.Name, version, ct).ConfigureAwait(false);
    }

    public Task<ModelVersion> GetModelVersionAsync(string name, int version, CancellationToken ct = default) =>
        db.ReadAsync(async c => await LoadVersionAsync(c, null, name, version, ct).ConfigureAwait(false)
            ?? throw VersionNotFound(name, version), ct);

    public async Task<ModelVersion> UpdateModelVersionAsync(string name, int version, string? description, CancellationToken ct = default)
    {
        await db.WriteAsync(async (c, tx) =>
        {
            var n = await c.ExecAsync(tx, "UPDATE model_versions SET description = @d, last_updated_time = @t WHERE name = @n AND version = @v", ct,
                ("d", description), ("t", Now()), ("n", name), ("v", version)).ConfigureAwait(false);
            if (n == 0) throw VersionNotFound(name, version);
        }, ct).ConfigureAwait(false);
        return await GetModelVersionAsync(name, version, ct).ConfigureAwait(false);
    }

    public Task DeleteModelVersionAsync(string name, int version, CancellationToken ct = default) =>
        db.WriteAsync(async (c, tx) =>
        {
            var n = await c.ExecAsync(tx, "DELETE FROM model_versions WHERE name = @n AND version = @v", ct, ("n", name), ("v", version)).ConfigureAwait(false);
            if (n == 0) throw VersionNotFound(name, version);
            await c.ExecAsync(tx, "DELETE FROM model_version_tags WHERE name = @n AND version = @v", ct, ("n", name), ("v", version)).ConfigureAwait(false);
            var aliases = await c.QueryAsync(tx, "SELECT alias FROM model_aliases WHERE name = @n AND version = @v", r => r.GetString(0), ct,
                ("n", name), ("v", version)).ConfigureAwait(false);
            foreach (var alias in aliases)
            {
                await c.ExecAsync(tx, "DELETE FROM model_aliases WHERE name = @n AND alias = @a", ct, ("n", name), ("a", alias)).ConfigureAwait(false);
                await RecordAsync(c, tx, name, alias, AliasAction.Delete, version, null, "kiln (version deleted)", ct).ConfigureAwait(false);
            }
        }, ct);

    public Task<Page<ModelVersion>> SearchModelVersionsAsync(string? name = null, string? runId = null, int maxResults = 1000,
        string? pageToken = null, CancellationToken ct = default)
    {
        Limits.ValidateMaxResults(maxResults, 200_000);
        var offset = PageToken.Decode(pageToken);
        return db.ReadAsync(async c =>
        {
            var where = new List<string>();
            if (name is not null) where.Add("name = @n");
            if (runId is not null) where.Add("run_id = @r");
            var sql = $"SELECT {VersionColumns} FROM model_versions" + (where.Count > 0 ? " WHERE " + string.Join(" AND ", where) : "") +
                " ORDER BY name, version DESC LIMIT @limit OFFSET @offset";
            var rows = await c.QueryAsync(null, sql, ReadVersion, ct, ("n", name), ("r", runId), ("limit", (long)maxResults + 1), ("offset", offset)).ConfigureAwait(false);
            var more = rows.Count > maxResults;
            if (more) rows.RemoveAt(rows.Count - 1);
            var result = new List<ModelVersion>(rows.Count);
            foreach (var v in rows) result.Add(await DecorateAsync(c, null, v, ct).ConfigureAwait(false));
            return new Page<ModelVersion>(result, more ? PageToken.Encode(offset + maxResults) : null);
        }, ct);
    }

    public async Task SetModelVersionTagAsync(string name, int version, string key, string value, CancellationToken ct = default)
    {
        Limits.ValidateTag(new KeyValue(key, value));
        await db.WriteAsync(async (c, tx) =>
        {
            await RequireVersionAsync(c, tx, name, version, ct).ConfigureAwait(false);
            await c.ExecAsync(tx, "INSERT INTO model_version_tags (name, version, key, value) VALUES (@n, @v, @k, @val) ON CONFLICT (name, version, key) DO UPDATE SET value = excluded.value", ct,
                ("n", name), ("v", version), ("k", key), ("val", value)).ConfigureAwait(false);
        }, ct).ConfigureAwait(false);
    }

    public Task DeleteModelVersionTagAsync(string name, int version, string key, CancellationToken ct = default) =>
        db.WriteAsync(async (c, tx) =>
        {
            await RequireVersionAsync(c, tx, name, version, ct).ConfigureAwait(false);
            var n = await c.ExecAsync(tx, "DELETE FROM model_version_tags WHERE name = @n AND version = @v AND key = @k", ct,
                ("n", name), ("v", version), ("k", key)).ConfigureAwait(false);
            if (n == 0) throw TrackingException.NotFound($"no tag '{key}' on version {version} of model '{name}'");
        }, ct);

    public async Task<ModelVersion> TransitionStageAsync(string name, int version, string stage, bool archiveExisting, CancellationToken ct = default)
    {
        var canonical = ModelStage.Normalize(stage)
            ?? throw TrackingException.Invalid($"invalid stage '{stage}' (use None, Staging, Production or Archived)");
        await db.WriteAsync(async (c, tx) =>
        {
            await RequireVersionAsync(c, tx, name, version, ct).ConfigureAwait(false);
            var now = Now();
            if (archiveExisting && canonical is ModelStage.Staging or ModelStage.Production)
            {
                await c.ExecAsync(tx, "UPDATE model_versions SET current_stage = 'Archived', last_updated_time = @t WHERE name = @n AND current_stage = @s AND version <> @v", ct,
                    ("t", now), ("n", name), ("s", canonical), ("v", version)).ConfigureAwait(false);
            }
            await c.ExecAsync(tx, "UPDATE model_versions SET current_stage = @s, last_updated_time = @t WHERE name = @n AND version = @v", ct,
                ("s", canonical), ("t", now), ("n", name), ("v", version)).ConfigureAwait(false);
        }, ct).ConfigureAwait(false);
        return await GetModelVersionAsync(name, version, ct).ConfigureAwait(false);
    }

    public async Task SetAliasAsync(string name, string alias, int version, string? userId = null, CancellationToken ct = default)
    {
        Limits.ValidateAlias(alias);
        await db.WriteAsync(async (c, tx) =>
        {
            await RequireVersionAsync(c, tx, name, version, ct).ConfigureAwait(false);
            var current = await CurrentAsync(c, tx, name, alias, ct).ConfigureAwait(false);
            if (current == version) return;
            await c.ExecAsync(tx, "INSERT INTO model_aliases (name, alias, version) VALUES (@n, @a, @v) ON CONFLICT (name, alias) DO UPDATE SET version = excluded.version", ct,
                ("n", name), ("a", alias), ("v", version)).ConfigureAwait(false);
            await RecordAsync(c, tx, name, alias, AliasAction.Set, current, version, userId, ct).ConfigureAwait(false);
        }, ct).ConfigureAwait(false);
    }

    public Task DeleteAliasAsync(string name, string alias, string? userId = null, CancellationToken ct = default) =>
        db.WriteAsync(async (c, tx) =>
        {
            await RequireModelAsync(c, tx, name, ct).ConfigureAwait(false);
            var current = await CurrentAsync(c, tx, name, alias, ct).ConfigureAwait(false)
                ?? throw TrackingException.NotFound($"registered model '{name}' has no alias '{alias}'");
            await c.ExecAsync(tx, "DELETE FROM model_aliases WHERE name = @n AND alias = @a", ct, ("n", name), ("a", alias)).ConfigureAwait(false);
            await RecordAsync(c, tx, name, alias, AliasAction.Delete, current, null, userId, ct).ConfigureAwait(false);
        }, ct);

    public Task<ModelVersion> GetModelVersionByAliasAsync(string name, string alias, CancellationToken ct = default) =>
        db.ReadAsync(async c =>
        {
            var version = await CurrentAsync(c, null, name, alias, ct).ConfigureAwait(false);
            if (version is null)
            {
                if (await c.ScalarAsync(null, "SELECT 1 FROM registered_models WHERE name = @n", ct, ("n", name)).ConfigureAwait(false) is null)
                    throw ModelNotFound(name);
                throw TrackingException.NotFound($"registered model '{name}' has no alias '{alias}'");
            }
            return await LoadVersionAsync(c, null, name, version.Value, ct).ConfigureAwait(false) ?? throw VersionNotFound(name, version.Value);
        }, ct);

    public Task<IReadOnlyList<AliasEvent>> GetAliasHistoryAsync(string name, string? alias = null, CancellationToken ct = default) =>
        db.ReadAsync<IReadOnlyList<AliasEvent>>(async c =>
        {
            var rows = await LoadHistoryAsync(c, null, name, alias, ct).ConfigureAwait(false);
            if (rows.Count == 0 && await c.ScalarAsync(null, "SELECT 1 FROM registered_models WHERE name = @n", ct, ("n", name)).ConfigureAwait(false) is null)
                throw ModelNotFound(name);
            return rows;
        }, ct);

    public Task<AliasEvent> RollbackAliasAsync(string name, string alias, string? userId = null, CancellationToken ct = default) =>
        db.WriteAsync(async (c, tx) =>
        {
            await RequireModelAsync(c, tx, name, ct).ConfigureAwait(false);
            var current = await CurrentAsync(c, tx, name, alias, ct).ConfigureAwait(false);
            // Replay the alias's moves as a stack: a set pushes, a delete pushes "no version", a rollback pops.
            var stack = new List<int?>();
            foreach (var e in await LoadHistoryAsync(c, tx, name, alias, ct).ConfigureAwait(false))
            {
                if (e.Action == AliasAction.Rollback) { if (stack.Count > 0) stack.RemoveAt(stack.Count - 1); }
                else
                {
                    if (stack.Count == 0 && e.FromVersion is not null) stack.Add(e.FromVersion);
                    stack.Add(e.ToVersion);
                }
            }
            if (stack.Count > 0) stack.RemoveAt(stack.Count - 1);
            // Skip versions deleted since: the alias goes back to the newest earlier version that still exists.
            while (stack.Count > 0 && (stack[^1] is null || await LoadVersionAsync(c, tx, name, stack[^1]!.Value, ct).ConfigureAwait(false) is null))
                stack.RemoveAt(stack.Count - 1);
            if (stack.Count == 0)
                throw new TrackingException(ErrorCode.InvalidState, $"alias '{alias}' of model '{name}' has no earlier version to roll back to");
            var target = stack[^1]!.Value;
            await c.ExecAsync(tx, "INSERT INTO model_aliases (name, alias, version) VALUES (@n, @a, @v) ON CONFLICT (name, alias) DO UPDATE SET version = excluded.version", ct,
                ("n", name), ("a", alias), ("v", target)).ConfigureAwait(false);
            return await RecordAsync(c, tx, name, alias, AliasAction.Rollback, current, target, userId, ct).ConfigureAwait(false);
        }, ct);

    private static async Task<AliasEvent> RecordAsync(DbConnection c, DbTransaction tx, string name, string alias, string action, int? from, int? to,
        string? userId, CancellationToken ct)
    {
        var now = Now();
        var user = string.IsNullOrEmpty(userId) ? "unknown" : userId;
        var id = Convert.ToInt64(await c.ScalarAsync(tx, """
            INSERT INTO alias_history (name, alias, action, from_version, to_version, user_id, timestamp)
            VALUES (@n, @a, @act, @f, @to, @u, @t) RETURNING id
            """, ct, ("n", name), ("a", alias), ("act", action), ("f", from), ("to", to), ("u", user), ("t", now)).ConfigureAwait(false), CultureInfo.InvariantCulture);
        await c.ExecAsync(tx, "UPDATE registered_models SET last_updated_time = @t WHERE name = @n", ct, ("t", now), ("n", name)).ConfigureAwait(false);
        return new AliasEvent(id, name, alias, action, from, to, user, now);
    }

    private static Task<List<AliasEvent>> LoadHistoryAsync(DbConnection c, DbTransaction? tx, string name, string? alias, CancellationToken ct) =>
        c.QueryAsync(tx, "SELECT id, name, alias, action, from_version, to_version, user_id, timestamp FROM alias_history WHERE name = @n" +
            (alias is null ? "" : " AND alias = @a") + " ORDER BY id",
            r => new AliasEvent(r.Int64(0), r.GetString(1), r.GetString(2), r.GetString(3),
                r.IsDBNull(4) ? null : r.Int32(4), r.IsDBNull(5) ? null : r.Int32(5), r.GetString(6), r.Int64(7)),
            ct, ("n", name), ("a", alias));

    private static async Task<int?> CurrentAsync(DbConnection c, DbTransaction? tx, string name, string alias, CancellationToken ct)
    {
        var v = await c.ScalarAsync(tx, "SELECT version FROM model_aliases WHERE name = @n AND alias = @a", ct, ("n", name), ("a", alias)).ConfigureAwait(false);
        return v is null ? null : Convert.ToInt32(v, CultureInfo.InvariantCulture);
    }

    private static async Task<RegisteredModel?> LoadModelAsync(DbConnection c, DbTransaction? tx, string name, CancellationToken ct)
    {
        var rows = await c.QueryAsync(tx, "SELECT name, creation_time, last_updated_time, description FROM registered_models WHERE name = @n",
            r => new RegisteredModel(r.GetString(0), r.Int64(1), r.Int64(2), r.NullableString(3), [], [], []), ct, ("n", name)).ConfigureAwait(false);
        if (rows.Count == 0) return null;
        var tags = await c.QueryAsync(tx, "SELECT key, value FROM registered_model_tags WHERE name = @n ORDER BY key",
            r => new KeyValue(r.GetString(0), r.GetString(1)), ct, ("n", name)).ConfigureAwait(false);
        var aliases = await c.QueryAsync(tx, "SELECT alias, version FROM model_aliases WHERE name = @n ORDER BY alias",
            r => new ModelAlias(r.GetString(0), r.Int32(1)), ct, ("n", name)).ConfigureAwait(false);
        // MLflow's latest_versions: the newest version in each stage.
        var latest = await c.QueryAsync(tx, $"""
            SELECT {VersionColumns} FROM model_versions v WHERE name = @n
            AND version = (SELECT MAX(version) FROM model_versions w WHERE w.name = v.name AND w.current_stage = v.current_stage)
            ORDER BY version
            """, ReadVersion, ct, ("n", name)).ConfigureAwait(false);
        return rows[0] with { Tags = tags, Aliases = aliases, LatestVersions = latest };
    }

    private static async Task<ModelVersion?> LoadVersionAsync(DbConnection c, DbTransaction? tx, string name, int version, CancellationToken ct)
    {
        var rows = await c.QueryAsync(tx, $"SELECT {VersionColumns} FROM model_versions WHERE name = @n AND version = @v", ReadVersion, ct,
            ("n", name), ("v", version)).ConfigureAwait(false);
        return rows.Count == 0 ? null : await DecorateAsync(c, tx, rows[0], ct).ConfigureAwait(false);
    }

    private static async Task<ModelVersion> DecorateAsync(DbConnection c, DbTransaction? tx, ModelVersion v, CancellationToken ct)
    {
        var tags = await c.QueryAsync(tx, "SELECT key, value FROM model_version_tags WHERE name = @n AND version = @v ORDER BY key",
            r => new KeyValue(r.GetString(0), r.GetString(1)), ct, ("n", v.Name), ("v", v.Version)).ConfigureAwait(false);
        var aliases = await c.QueryAsync(tx, "SELECT alias FROM model_aliases WHERE name = @n AND version = @v ORDER BY alias",
            r => r.GetString(0), ct, ("n", v.Name), ("v", v.Version)).ConfigureAwait(false);
        return v with { Tags = tags, Aliases = aliases };
    }

    private static ModelVersion ReadVersion(DbDataReader r) => new(
        r.GetString(0), r.Int32(1), r.Int64(2), r.Int64(3), r.NullableString(4), r.GetString(5), r.GetString(6), r.GetString(7),
        r.NullableString(8), r.GetString(9), [], []);

    private static async Task RequireModelAsync(DbConnection c, DbTransaction tx, string name, CancellationToken ct)
    {
        if (await c.ScalarAsync(tx, "SELECT 1 FROM registered_models WHERE name = @n", ct, ("n", name)).ConfigureAwait(false) is null)
            throw ModelNotFound(name);
    }

    private static async Task RequireVersionAsync(DbConnection c, DbTransaction tx, string name, int version, CancellationToken ct)
    {
        await RequireModelAsync(c, tx, name, ct).ConfigureAwait(false);
        if (await c.ScalarAsync(tx, "SELECT 1 FROM model_versions WHERE name = @n AND version = @v", ct, ("n", name), ("v", version)).ConfigureAwait(false) is null)
            throw VersionNotFound(name, version);
    }

    private static TrackingException ModelNotFound(string name) => TrackingException.NotFound($"registered model '{name}' not found");

    private static TrackingException VersionNotFound(string name, int version) =>
        TrackingException.NotFound($"version {version.ToString(CultureInfo.InvariantCulture)} of registered model '{name}' not found");
}
