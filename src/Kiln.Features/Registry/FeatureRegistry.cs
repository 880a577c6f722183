using System.Data.Common;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Kiln.Core;
using Kiln.Features.Definitions;
using Kiln.Storage;

namespace Kiln.Features.Registry;

/// <summary>How a definition differs from the recorded one.</summary>
public enum ChangeType
{
    Unchanged,
    Added,
    Changed,
    Removed,
}

/// <summary>One line of a plan: a definition and what applying would do to it.</summary>
public sealed record PlanChange(string Kind, string Name, ChangeType Change, string? Detail);

/// <summary>What <c>apply</c> would record: the changes against the latest recorded version of the project.</summary>
public sealed record RepositoryPlan(string Project, int? CurrentVersion, IReadOnlyList<PlanChange> Changes)
{
    public bool HasChanges => Changes.Any(c => c.Change != ChangeType.Unchanged);
}

/// <summary>A recorded version of a project's definitions.</summary>
public sealed record RegistryVersion(string Project, int Version, DateTime AppliedAt, string RepoPath);

/// <summary>
/// The feature registry in the metadata database (<see cref="MetadataDatabase"/>): versioned definitions and
/// materialization history, in tables prefixed <c>feature_</c> (the "features" area of kiln_schema).
/// </summary>
public sealed class FeatureRegistry : IFeatureRegistry
{
    private readonly bool _ownsDatabase;
    private readonly string _description;

    /// <param name="database">The metadata database.</param>
    /// <param name="ownsDatabase">Dispose the database with the registry (false when a host shares it).</param>
    public FeatureRegistry(MetadataDatabase database, bool ownsDatabase = false)
    {
        ArgumentNullException.ThrowIfNull(database);
        Database = database;
        _ownsDatabase = ownsDatabase;
        _description = database.Description;
    }

    /// <summary>The database underneath.</summary>
    public MetadataDatabase Database { get; }

    /// <summary>Where the registry lives, for messages.</summary>
    public override string ToString() => _description;

    /// <summary>The features area: version 1 is the schema of every kiln.db made before kiln_schema.</summary>
    internal static readonly SchemaArea Schema = new("features", "feature_registry_versions",
    [
        new Migration(1, """
            CREATE TABLE feature_registry_versions (
                project TEXT NOT NULL, version INTEGER NOT NULL, applied_at TEXT NOT NULL, repo_path TEXT NOT NULL,
                snapshot TEXT NOT NULL, PRIMARY KEY (project, version));
            CREATE TABLE feature_objects (
                project TEXT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL, registry_version INTEGER NOT NULL,
                change TEXT NOT NULL, spec TEXT, PRIMARY KEY (project, kind, name, registry_version));
            CREATE TABLE feature_materializations (
                project TEXT NOT NULL, view TEXT NOT NULL, start_ts TEXT NOT NULL, end_ts TEXT NOT NULL,
                row_count BIGINT NOT NULL, finished_at TEXT NOT NULL)
            """),
    ]);

    /// <summary>
    /// Opens the registry at a location (docs/cli.md#locations): a SQLite file, a folder (then kiln.db inside),
    /// sqlite:///FILE or a PostgreSQL URI (its tables brought up to date), or a kiln server's http(s):// address.
    /// </summary>
    public static async Task<IFeatureRegistry> OpenAsync(string location, CancellationToken cancellationToken = default)
    {
        var parsed = StorageLocation.Parse(location, "feature registry");
        if (parsed.Kind == StorageKind.Remote) return new RemoteFeatureRegistry(new Uri(location));
        var registry = new FeatureRegistry(MetadataDatabase.Open(parsed), ownsDatabase: true);
        try
        {
            await registry.InitializeAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is DbException or System.Net.Sockets.SocketException or TimeoutException or KilnException)
        {
            await registry.DisposeAsync().ConfigureAwait(false);
            if (e is KilnException) throw;
            throw new KilnException($"feature registry {registry._description}: cannot open ({e.Message.Split('\n')[0]})", e);
        }
        return registry;
    }

    /// <summary>Brings the registry's tables up to the version this build knows.</summary>
    public Task InitializeAsync(CancellationToken cancellationToken = default) => Database.EnsureSchemaAsync(Schema, cancellationToken);

    private async Task<DbConnection> ConnectAsync(CancellationToken ct)
    {
        await InitializeAsync(ct).ConfigureAwait(false);
        return await Database.OpenConnectionAsync(ct).ConfigureAwait(false);
    }

    /// <summary>Compares a repository with the latest recorded version of its project.</summary>
    public async Task<RepositoryPlan> PlanAsync(FeatureRepository repo, CancellationToken cancellationToken = default)
    {
        var latest = await LatestAsync(repo.Project, cancellationToken).ConfigureAwait(false);
        var before = latest is null ? [] : Specs(latest.Value.Repository);
        var after = Specs(repo);
        var changes = new List<PlanChange>();
        foreach (var (key, spec) in after)
        {
            if (!before.TryGetValue(key, out var old)) changes.Add(new PlanChange(key.Kind, key.Name, ChangeType.Added, null));
            else if (old.Digest == spec.Digest) changes.Add(new PlanChange(key.Kind, key.Name, ChangeType.Unchanged, null));
            else changes.Add(new PlanChange(key.Kind, key.Name, ChangeType.Changed, Diff(old.Json, spec.Json)));
        }
        foreach (var (key, _) in before)
        {
            if (!after.ContainsKey(key)) changes.Add(new PlanChange(key.Kind, key.Name, ChangeType.Removed, null));
        }
        changes.Sort((a, b) => (KindOrder(a.Kind), a.Name).CompareTo((KindOrder(b.Kind), b.Name)));
        return new RepositoryPlan(repo.Project, latest?.Version.Version, changes);
    }

    /// <summary>Records the repository as a new version when anything changed; returns the version now current and the plan applied.</summary>
    public async Task<(int Version, RepositoryPlan Plan)> ApplyAsync(FeatureRepository repo, string repoPath, CancellationToken cancellationToken = default)
    {
        var plan = await PlanAsync(repo, cancellationToken).ConfigureAwait(false);
        if (!plan.HasChanges && plan.CurrentVersion is { } current) return (current, plan);
        var version = (plan.CurrentVersion ?? 0) + 1;
        var now = DateTime.UtcNow.ToString("O", CultureInfo.InvariantCulture);
        var specs = Specs(repo);
        await InitializeAsync(cancellationToken).ConfigureAwait(false);
        using var lease = await Database.LeaseWriterAsync(cancellationToken).ConfigureAwait(false);
        var c = lease.Connection;
        var tx = await c.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        await using var txScope = tx.ConfigureAwait(false);
        try
        {
            var insert = c.Command(tx, "INSERT INTO feature_registry_versions (project, version, applied_at, repo_path, snapshot) VALUES (@p, @v, @a, @r, @s)",
                ("p", repo.Project), ("v", version), ("a", now), ("r", Path.GetFullPath(repoPath)),
                ("s", JsonSerializer.Serialize(RepositorySnapshot.Of(repo), RegistryJsonContext.Default.RepositorySnapshot)));
            await using (insert.ConfigureAwait(false))
            {
                await insert.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }
            foreach (var change in plan.Changes.Where(ch => ch.Change != ChangeType.Unchanged))
            {
                var spec = change.Change == ChangeType.Removed ? null : specs[(change.Kind, change.Name)].Json;
                var cmd = c.Command(tx, "INSERT INTO feature_objects (project, kind, name, registry_version, change, spec) VALUES (@p, @k, @n, @v, @c, @s)",
                    ("p", repo.Project), ("k", change.Kind), ("n", change.Name), ("v", version), ("c", change.Change.ToString().ToLowerInvariant()), ("s", spec));
                await using var cmdScope = cmd.ConfigureAwait(false);
                await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }
            await tx.CommitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (DbException e) when (IsUniqueViolation(e))
        {
            throw new KilnException($"feature registry {_description}: another apply of project '{repo.Project}' recorded version {version} first; run apply again", e);
        }
        return (version, plan);
    }

    /// <summary>The latest recorded definitions of a project (or of the most recently applied project when null).</summary>
    public async Task<(RegistryVersion Version, FeatureRepository Repository)?> LatestAsync(string? project, CancellationToken cancellationToken = default)
    {
        var c = await ConnectAsync(cancellationToken).ConfigureAwait(false);
        await using var cScope = c.ConfigureAwait(false);
        var sql = project is null
            ? "SELECT project, version, applied_at, repo_path, snapshot FROM feature_registry_versions ORDER BY applied_at DESC, version DESC LIMIT 1"
            : "SELECT project, version, applied_at, repo_path, snapshot FROM feature_registry_versions WHERE project = @p ORDER BY version DESC LIMIT 1";
        var cmd = project is null ? c.Command(null, sql) : c.Command(null, sql, ("p", project));
        await using var cmdScope = cmd.ConfigureAwait(false);
        var r = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        await using var rScope = r.ConfigureAwait(false);
        if (!await r.ReadAsync(cancellationToken).ConfigureAwait(false)) return null;
        var version = ReadVersion(r);
        var snapshot = JsonSerializer.Deserialize(r.GetString(4), RegistryJsonContext.Default.RepositorySnapshot)
            ?? throw new KilnException($"feature registry {_description}: version {version.Version} of '{version.Project}' is empty");
        return (version, snapshot.ToRepository());
    }

    /// <summary>The definitions of one applied version of a project, or null when there is no such version.</summary>
    public async Task<(RegistryVersion Version, FeatureRepository Repository)?> VersionAsync(string project, int version, CancellationToken cancellationToken = default)
    {
        var c = await ConnectAsync(cancellationToken).ConfigureAwait(false);
        await using var cScope = c.ConfigureAwait(false);
        var cmd = c.Command(null, "SELECT project, version, applied_at, repo_path, snapshot FROM feature_registry_versions WHERE project = @p AND version = @v",
            ("p", project), ("v", version));
        await using var cmdScope = cmd.ConfigureAwait(false);
        var r = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        await using var rScope = r.ConfigureAwait(false);
        if (!await r.ReadAsync(cancellationToken).ConfigureAwait(false)) return null;
        var found = ReadVersion(r);
        var snapshot = JsonSerializer.Deserialize(r.GetString(4), RegistryJsonContext.Default.RepositorySnapshot)
            ?? throw new KilnException($"feature registry {_description}: version {found.Version} of '{found.Project}' is empty");
        return (found, snapshot.ToRepository());
    }

    /// <summary>A registry location fit for logs and metadata: a PostgreSQL password is left out.</summary>
    public static string Redact(string location) => StorageLocation.Redact(location);

    /// <summary>Every recorded version, newest first.</summary>
    public async Task<IReadOnlyList<RegistryVersion>> VersionsAsync(string? project, CancellationToken cancellationToken = default)
    {
        var c = await ConnectAsync(cancellationToken).ConfigureAwait(false);
        await using var cScope = c.ConfigureAwait(false);
        var cmd = project is null
            ? c.Command(null, "SELECT project, version, applied_at, repo_path FROM feature_registry_versions ORDER BY applied_at DESC, version DESC")
            : c.Command(null, "SELECT project, version, applied_at, repo_path FROM feature_registry_versions WHERE project = @p ORDER BY version DESC", ("p", project));
        await using var cmdScope = cmd.ConfigureAwait(false);
        var r = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        await using var rScope = r.ConfigureAwait(false);
        var list = new List<RegistryVersion>();
        while (await r.ReadAsync(cancellationToken).ConfigureAwait(false)) list.Add(ReadVersion(r));
        return list;
    }

    /// <summary>Records that a view was materialized over [start, end].</summary>
    public async Task RecordMaterializationAsync(string project, string view, DateTime start, DateTime end, long rows, CancellationToken cancellationToken = default)
    {
        await InitializeAsync(cancellationToken).ConfigureAwait(false);
        using var lease = await Database.LeaseWriterAsync(cancellationToken).ConfigureAwait(false);
        var c = lease.Connection;
        var cmd = c.Command(null, "INSERT INTO feature_materializations (project, view, start_ts, end_ts, row_count, finished_at) VALUES (@p, @v, @s, @e, @n, @f)",
            ("p", project), ("v", view), ("s", Iso(start)), ("e", Iso(end)), ("n", rows), ("f", Iso(DateTime.UtcNow)));
        await using var cmdScope = cmd.ConfigureAwait(false);
        await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The latest end time a view was materialized to, or null.</summary>
    public async Task<DateTime?> LastMaterializedEndAsync(string project, string view, CancellationToken cancellationToken = default)
    {
        var c = await ConnectAsync(cancellationToken).ConfigureAwait(false);
        await using var cScope = c.ConfigureAwait(false);
        var cmd = c.Command(null, "SELECT max(end_ts) FROM feature_materializations WHERE project = @p AND view = @v", ("p", project), ("v", view));
        await using var cmdScope = cmd.ConfigureAwait(false);
        var value = await cmd.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
        return value is string s ? DateTime.Parse(s, CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal) : null;
    }

    public ValueTask DisposeAsync() => _ownsDatabase ? Database.DisposeAsync() : ValueTask.CompletedTask;

    private static string Iso(DateTime t) => t.ToUniversalTime().ToString("yyyy-MM-ddTHH:mm:ss.ffffffZ", CultureInfo.InvariantCulture);

    private static RegistryVersion ReadVersion(DbDataReader r) => new(
        r.GetString(0), Convert.ToInt32(r.GetValue(1), CultureInfo.InvariantCulture),
        DateTime.Parse(r.GetString(2), CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal), r.GetString(3));

    private static int KindOrder(string kind) => kind switch
    {
        "entity" => 0,
        "source" => 1,
        "push_source" => 2,
        "feature_view" => 3,
        _ => 4,
    };

    /// <summary>Each definition's JSON without where it was written, so moving a definition between files is no change.</summary>
    private static Dictionary<(string Kind, string Name), (string Json, string Digest)> Specs(FeatureRepository repo)
    {
        var ctx = RegistryJsonContext.Default;
        var specs = new Dictionary<(string, string), (string, string)>();
        foreach (var e in repo.Entities.Values) Add("entity", e.Name, JsonSerializer.Serialize(e with { DefinedIn = "" }, ctx.EntityDefinition));
        foreach (var s in repo.Sources.Values) Add("source", s.Name, JsonSerializer.Serialize(s with { DefinedIn = "" }, ctx.SourceDefinition));
        foreach (var s in repo.PushSources.Values) Add("push_source", s.Name, JsonSerializer.Serialize(s with { DefinedIn = "" }, ctx.PushSourceDefinition));
        foreach (var v in repo.FeatureViews.Values) Add("feature_view", v.Name, JsonSerializer.Serialize(v with { DefinedIn = "" }, ctx.FeatureViewDefinition));
        foreach (var s in repo.FeatureServices.Values) Add("feature_service", s.Name, JsonSerializer.Serialize(s with { DefinedIn = "" }, ctx.FeatureServiceDefinition));
        return specs;

        void Add(string kind, string name, string json) => specs[(kind, name)] = (json, json);
    }

    private static string Diff(string before, string after)
    {
        var a = JsonNode.Parse(before)!.AsObject();
        var b = JsonNode.Parse(after)!.AsObject();
        var parts = new List<string>();
        foreach (var (key, value) in b)
        {
            var old = a[key];
            if (!JsonNode.DeepEquals(old, value)) parts.Add($"{key}: {Show(old)} -> {Show(value)}");
        }
        foreach (var (key, value) in a)
        {
            if (!b.ContainsKey(key)) parts.Add($"{key}: {Show(value)} -> null");
        }
        return string.Join("; ", parts);

        static string Show(JsonNode? n) => n?.ToJsonString() ?? "null";
    }

    private bool IsUniqueViolation(DbException e) => Database.Dialect.IsUniqueViolation(e);

}
