using Kiln.Tracking.Artifacts;
using Kiln.Tracking.Http;
using Kiln.Storage;
using Kiln.Storage.Objects;
using Kiln.Tracking.Sql;

namespace Kiln.Tracking;

/// <summary>The three stores behind one tracking URI, opened together and closed together.</summary>
public sealed class TrackingStores : IAsyncDisposable
{
    /// <summary>The embedded default: ./.kiln (kiln.db and artifacts/ inside).</summary>
    public const string DefaultUri = "./.kiln";

    /// <summary>The environment variable that overrides the default tracking URI.</summary>
    public const string EnvironmentVariable = "KILN_TRACKING_URI";

    /// <summary>The environment variable that gives the artifact root (a directory or s3://BUCKET/PREFIX) when no option does.</summary>
    public const string ArtifactsVariable = "KILN_ARTIFACTS";

    private readonly IAsyncDisposable? _owned;

    public TrackingStores(ITrackingStore tracking, IModelRegistry registry, IArtifactStore artifacts, string uri, bool isRemote,
        IAsyncDisposable? owned = null)
    {
        Tracking = tracking;
        Registry = registry;
        Artifacts = artifacts;
        Uri = uri;
        IsRemote = isRemote;
        _owned = owned;
    }

    public ITrackingStore Tracking { get; }

    public IModelRegistry Registry { get; }

    /// <summary>The artifact store; run artifacts live under "EXPERIMENT_ID/RUN_ID/artifacts/".</summary>
    public IArtifactStore Artifacts { get; }

    public string Uri { get; }

    /// <summary>True when the stores are reached through a kiln server (http or https).</summary>
    public bool IsRemote { get; }

    /// <summary>The URI to use: the one given, else $KILN_TRACKING_URI, else ./.kiln.</summary>
    public static string ResolveUri(string? uri) =>
        !string.IsNullOrWhiteSpace(uri) ? uri
        : Environment.GetEnvironmentVariable(EnvironmentVariable) is { Length: > 0 } env ? env
        : DefaultUri;

    /// <summary>
    /// Opens the stores a URI names (docs/cli.md#locations). http(s)://host:port → a kiln server's REST API.
    /// A directory → SQLite at DIR/kiln.db with artifacts under DIR/artifacts. sqlite:///FILE or a *.db
    /// path → that file, artifacts next to it. postgresql://… or an Npgsql connection string (Host=…)
    /// → that database, with artifacts under <paramref name="artifactsRoot"/> (default ./.kiln/artifacts).
    /// </summary>
    public static TrackingStores Open(string? uri, string? artifactsRoot = null, long maxArtifactBytes = LocalArtifactStore.DefaultMaxFileBytes,
        HttpClient? httpClient = null)
    {
        var u = ResolveUri(uri);
        StorageLocation location;
        try
        {
            location = StorageLocation.Parse(u, "tracking URI");
        }
        catch (Kiln.Core.KilnException e)
        {
            throw TrackingException.Invalid(e.Message);
        }
        if (location.Kind == StorageKind.Remote)
        {
            var client = new KilnHttpClient(location.Server!, httpClient);
            return new TrackingStores(client, client, client, u, isRemote: true, client);
        }
        var db = MetadataDatabase.Open(location);
        return Open(db, artifactsRoot, maxArtifactBytes, ownsDatabase: true, u);
    }

    /// <summary>
    /// The stores on a database that is already open (the one <c>kiln server</c> shares between its areas);
    /// artifacts default to ./.kiln/artifacts for PostgreSQL and to the folder next to a SQLite file.
    /// </summary>
    public static TrackingStores Open(MetadataDatabase database, string? artifactsRoot, long maxArtifactBytes = LocalArtifactStore.DefaultMaxFileBytes,
        bool ownsDatabase = false, string? uri = null)
    {
        ArgumentNullException.ThrowIfNull(database);
        var artifacts = ResolveArtifacts(artifactsRoot)
            ?? (database.Location.SqliteDirectory is { } dir ? Path.Combine(dir, "artifacts") : Path.Combine(DefaultUri, "artifacts"));
        var sql = new SqlDatabase(database, ownsDatabase);
        return new TrackingStores(new SqlTrackingStore(sql), new SqlModelRegistry(sql), OpenArtifacts(artifacts, maxArtifactBytes),
            uri ?? database.Location.Original, isRemote: false, sql) { Database = database };
    }

    /// <summary>The artifact root to use: the one given, else $KILN_ARTIFACTS, else null (the default beside the database).</summary>
    public static string? ResolveArtifacts(string? artifactsRoot) =>
        !string.IsNullOrWhiteSpace(artifactsRoot) ? artifactsRoot
        : Environment.GetEnvironmentVariable(ArtifactsVariable) is { Length: > 0 } env ? env
        : null;

    /// <summary>The artifact store a root names: s3://BUCKET/PREFIX (with the standard AWS settings) or a local directory.</summary>
    public static IArtifactStore OpenArtifacts(string root, long maxArtifactBytes = LocalArtifactStore.DefaultMaxFileBytes)
    {
        if (!S3Location.IsS3(root)) return new LocalArtifactStore(root, maxArtifactBytes);
        try
        {
            return new S3ArtifactStore(S3Storage.Open(root, "--artifacts"), maxArtifactBytes);
        }
        catch (Kiln.Core.KilnException e) when (e is not TrackingException)
        {
            throw TrackingException.Invalid(e.Message);
        }
    }

    /// <summary>Checks that the artifact store can be reached (the bucket of an S3 store exists); a local directory always can.</summary>
    public Task CheckArtifactsAsync(CancellationToken ct = default) =>
        Artifacts is S3ArtifactStore s3 ? s3.CheckAsync("--artifacts", ct) : Task.CompletedTask;

    /// <summary>The metadata database underneath, or null when the stores go through a server.</summary>
    public MetadataDatabase? Database { get; private init; }

    public ValueTask DisposeAsync()
    {
        (Artifacts as S3ArtifactStore)?.Dispose();
        return _owned?.DisposeAsync() ?? ValueTask.CompletedTask;
    }
}
