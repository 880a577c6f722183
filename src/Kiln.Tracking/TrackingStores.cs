using Kiln.Tracking.Artifacts;
using Kiln.Tracking.Http;
using Kiln.Storage;
using Kiln.Tracking.Sql;

namespace Kiln.Tracking;

/// <summary>The three stores behind one tracking URI, opened together and closed together.</summary>
public sealed class TrackingStores : IAsyncDisposable
{
    /// <summary>The embedded default: ./.kiln (kiln.db and artifacts/ inside).</summary>
    public const string DefaultUri = "./.kiln";

    /// <summary>The environment variable that overrides the default tracking URI.</summary>
    public const string EnvironmentVariable = "KILN_TRACKING_URI";

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
        var artifacts = artifactsRoot
            ?? (database.Location.SqliteDirectory is { } dir ? Path.Combine(dir, "artifacts") : Path.Combine(DefaultUri, "artifacts"));
        var sql = new SqlDatabase(database, ownsDatabase);
        return new TrackingStores(new SqlTrackingStore(sql), new SqlModelRegistry(sql), new LocalArtifactStore(artifacts, maxArtifactBytes),
            uri ?? database.Location.Original, isRemote: false, sql) { Database = database };
    }

    /// <summary>The metadata database underneath, or null when the stores go through a server.</summary>
    public MetadataDatabase? Database { get; private init; }

    public ValueTask DisposeAsync() => _owned?.DisposeAsync() ?? ValueTask.CompletedTask;
}
