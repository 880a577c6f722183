using System.Data.Common;
using Kiln.Core;
using Kiln.Features.Registry;
using Kiln.Pipelines.State;
using Kiln.Testing;
using Kiln.Tracking;

namespace Kiln.Storage.Tests;

/// <summary>Schema versions on a real database: fresh, adopted from a Kiln before kiln_schema, upgraded, refused when newer.</summary>
public abstract class MigrationTests : IAsyncLifetime
{
    /// <summary>A location (as a user would write it) for a database nobody has touched.</summary>
    protected abstract Task<string> FreshLocationAsync();

    protected abstract Task DropAsync();

    protected abstract string PipelinesOldSchema { get; }

    public Task InitializeAsync() => Task.CompletedTask;

    public Task DisposeAsync() => DropAsync();

    private static async Task ExecAsync(MetadataDatabase db, string sql)
    {
        var c = await db.OpenConnectionAsync(CancellationToken.None);
        await using (c)
        {
            foreach (var statement in db.Dialect.Ddl(sql).Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                await using var cmd = c.CreateCommand();
                cmd.CommandText = statement;
                await cmd.ExecuteNonQueryAsync();
            }
        }
    }

    private static async Task<object?> ScalarAsync(MetadataDatabase db, string sql)
    {
        var c = await db.OpenConnectionAsync(CancellationToken.None);
        await using (c)
        {
            await using DbCommand cmd = c.CreateCommand();
            cmd.CommandText = sql;
            return await cmd.ExecuteScalarAsync();
        }
    }

    [Fact]
    public async Task A_fresh_database_gets_every_area_at_its_latest_version()
    {
        var location = await FreshLocationAsync();
        await using (var stores = TrackingStores.Open(location, Path.Combine(Path.GetTempPath(), "kiln-mig-artifacts")))
        {
            var id = await stores.Tracking.CreateExperimentAsync("fresh");
            Assert.Equal("fresh", (await stores.Tracking.GetExperimentAsync(id)).Name);
        }
        await using (var pipelines = await PipelineStores.OpenAsync(location)) Assert.Empty(await pipelines.ListRunsAsync());
        await using (var features = await FeatureRegistry.OpenAsync(location)) Assert.Empty(await features.VersionsAsync(null));

        await using var db = MetadataDatabase.Open(location);
        Assert.Equal(1, await db.SchemaVersionAsync("tracking", default));
        Assert.Equal(SqlPipelineStore.SchemaVersion, await db.SchemaVersionAsync("pipelines", default));
        Assert.Equal(1, await db.SchemaVersionAsync("features", default));
        Assert.Equal(0L, Convert.ToInt64(await ScalarAsync(db, "SELECT count(*) FROM kiln_schema WHERE note = 'adopted'")));
    }

    [Fact]
    public async Task A_database_made_before_kiln_schema_is_adopted_as_version_1_with_its_data()
    {
        var location = await FreshLocationAsync();
        await using (var old = MetadataDatabase.Open(location))
        {
            await ExecAsync(old, OldSchema.Tracking);
            await ExecAsync(old, PipelinesOldSchema);
            await ExecAsync(old, OldSchema.Features);
            await ExecAsync(old, """
                INSERT INTO experiments (experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time) VALUES (0, 'Default', NULL, 'active', 1, 1);
                INSERT INTO experiments (name, artifact_location, lifecycle_stage, creation_time, last_update_time) VALUES ('churn', NULL, 'active', 1, 1);
                INSERT INTO runs (run_id, experiment_id, run_name, user_id, status, start_time, end_time, lifecycle_stage, artifact_uri) VALUES ('r1', 1, 'old-run', 'ana', 'FINISHED', 5, 6, 'active', 'file:///a');
                INSERT INTO params (run_id, key, value) VALUES ('r1', 'lr', '0.1');
                INSERT INTO pipeline_runs (run_id, pipeline, state, trigger_kind, params_json, created_at, cancel_requested) VALUES ('p1', 'nightly', 'succeeded', 'manual', '{}', '2026-01-01T00:00:00.0000000Z', 0);
                INSERT INTO feature_registry_versions (project, version, applied_at, repo_path, snapshot) VALUES ('rides', 3, '2026-01-01T00:00:00.000000Z', '/repo', '{}')
                """);
            Assert.Null(await old.SchemaVersionAsync("tracking", default));
        }

        await using (var stores = TrackingStores.Open(location, Path.Combine(Path.GetTempPath(), "kiln-mig-artifacts")))
        {
            var run = await stores.Tracking.GetRunAsync("r1");
            Assert.Equal("old-run", run.Info.RunName);
            Assert.Equal("0.1", Assert.Single(run.Data.Params).Value);
            // New writes work on the adopted tables.
            var id = await stores.Tracking.CreateExperimentAsync("after-adoption");
            Assert.NotEqual("1", id);
        }
        await using (var pipelines = await PipelineStores.OpenAsync(location))
            Assert.Equal("nightly", (await pipelines.GetRunAsync("p1"))!.Pipeline);
        await using (var features = await FeatureRegistry.OpenAsync(location))
            Assert.Equal(3, Assert.Single(await features.VersionsAsync("rides")).Version);

        await using var db = MetadataDatabase.Open(location);
        Assert.Equal(1, await db.SchemaVersionAsync("tracking", default));
        Assert.Equal(3L, Convert.ToInt64(await ScalarAsync(db, "SELECT count(*) FROM kiln_schema WHERE note = 'adopted'")));
    }

    [Fact]
    public async Task An_older_database_is_upgraded_on_start_and_keeps_its_rows()
    {
        var location = await FreshLocationAsync();
        var v1 = new Migration(1, "CREATE TABLE t_items (id {BIGINT} PRIMARY KEY, name TEXT NOT NULL); INSERT INTO t_items (id, name) VALUES (1, 'kept')");
        var v2 = new Migration(2, "ALTER TABLE t_items ADD COLUMN size {BIGINT} NOT NULL DEFAULT 0; UPDATE t_items SET size = 42");
        await using (var db = MetadataDatabase.Open(location))
        {
            await db.EnsureSchemaAsync(new SchemaArea("test", "t_items", [v1]), default);
            Assert.Equal(1, await db.SchemaVersionAsync("test", default));
        }
        await using (var db = MetadataDatabase.Open(location))
        {
            await db.EnsureSchemaAsync(new SchemaArea("test", "t_items", [v1, v2]), default);
            Assert.Equal(2, await db.SchemaVersionAsync("test", default));
            Assert.Equal("kept", await ScalarAsync(db, "SELECT name FROM t_items WHERE size = 42"));
            // Running again changes nothing.
            await db.EnsureSchemaAsync(new SchemaArea("test", "t_items", [v1, v2]), default);
        }
        await using (var db = MetadataDatabase.Open(location))
        {
            await db.EnsureSchemaAsync(new SchemaArea("test", "t_items", [v1, v2]), default);
            Assert.Equal(2L, Convert.ToInt64(await ScalarAsync(db, "SELECT count(*) FROM kiln_schema WHERE area = 'test'")));
        }
    }

    [Fact]
    public async Task A_database_from_a_newer_kiln_is_refused_in_one_line()
    {
        var location = await FreshLocationAsync();
        await using (var stores = TrackingStores.Open(location, Path.Combine(Path.GetTempPath(), "kiln-mig-artifacts")))
            await stores.Tracking.CreateExperimentAsync("x");
        await using (var db = MetadataDatabase.Open(location))
            await ExecAsync(db, "INSERT INTO kiln_schema (area, version, applied_at) VALUES ('tracking', 7, 'later')");

        await using (var stores = TrackingStores.Open(location, Path.Combine(Path.GetTempPath(), "kiln-mig-artifacts")))
        {
            var e = await Assert.ThrowsAnyAsync<KilnException>(() => stores.Tracking.GetExperimentAsync("0"));
            Assert.EndsWith("tracking schema version 7 is newer than this kiln (knows 1); upgrade kiln", e.Message);
            Assert.DoesNotContain('\n', e.Message);
        }
        // The other areas are not affected.
        await using var pipelines = await PipelineStores.OpenAsync(location);
        Assert.Empty(await pipelines.ListRunsAsync());
    }

    [Fact]
    public async Task Processes_starting_together_migrate_once()
    {
        var location = await FreshLocationAsync();
        var area = new SchemaArea("test", "t_once", [new Migration(1, "CREATE TABLE t_once (id {BIGINT} PRIMARY KEY)")]);
        var dbs = Enumerable.Range(0, 4).Select(_ => MetadataDatabase.Open(location)).ToList();
        try
        {
            await Task.WhenAll(dbs.Select(d => d.EnsureSchemaAsync(area, default)));
            Assert.Equal(1L, Convert.ToInt64(await ScalarAsync(dbs[0], "SELECT count(*) FROM kiln_schema WHERE area = 'test'")));
        }
        finally
        {
            foreach (var d in dbs) await d.DisposeAsync();
        }
    }
}

public sealed class SqliteMigrationTests : MigrationTests
{
    private readonly TempDir _dir = new("kiln-mig");

    protected override Task<string> FreshLocationAsync() => Task.FromResult("sqlite:///" + _dir.File("kiln.db"));

    protected override string PipelinesOldSchema => OldSchema.PipelinesSqlite;

    protected override Task DropAsync()
    {
        _dir.Dispose();
        return Task.CompletedTask;
    }
}

public sealed class PostgresMigrationTests : MigrationTests
{
    private TestDatabase? _database;

    protected override async Task<string> FreshLocationAsync()
    {
        _database = await TestDatabase.CreateAsync();
        return _database.ConnectionString;
    }

    protected override string PipelinesOldSchema => OldSchema.PipelinesPostgres;

    protected override async Task DropAsync()
    {
        if (_database is not null) await _database.DisposeAsync();
    }
}
