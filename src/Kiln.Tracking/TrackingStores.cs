using Kiln.Tracking.Artifacts;
using Kiln.Tracking.Http;
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
    /// Opens the stores a URI names. http(s)://host:port → a kiln server's REST API. A local path →
    /// SQLite at PATH/kiln.db and artifacts under PATH/artifacts. sqlite:///file.db, postgresql://…
    /// or an Npgsql connection string (Host=…) → that database, with artifacts under
    /// <paramref name="artifactsRoot"/> (default ./.kiln/artifacts).
    /// </summary>
    public static TrackingStores Open(string? uri, string? artifactsRoot = null, long maxArtifactBytes = LocalArtifactStore.DefaultMaxFileBytes,
        HttpClient? httpClient = null)
    {
        var u = ResolveUri(uri);
        if (u.StartsWith("http://", StringComparison.OrdinalIgnoreCase) || u.StartsWith("https://", StringComparison.OrdinalIgnoreCase))
        {
            var client = new KilnHttpClient(new System.Uri(u), httpClient);
            return new TrackingStores(client, client, client, u, isRemote: true, client);
        }
        SqlDatabase db;
        string artifacts;
        if (u.StartsWith("postgresql://", StringComparison.OrdinalIgnoreCase) || u.StartsWith("postgres://", StringComparison.OrdinalIgnoreCase)
            || u.Contains("Host=", StringComparison.OrdinalIgnoreCase))
        {
            db = SqlDatabase.Postgres(u);
            artifacts = artifactsRoot ?? Path.Combine(DefaultUri, "artifacts");
        }
        else if (u.StartsWith("sqlite:", StringComparison.OrdinalIgnoreCase))
        {
            var path = u["sqlite:".Length..];
            // sqlite:///abs/path.db and sqlite:relative.db, as SQLAlchemy and MLflow spell them.
            if (path.StartsWith("///", StringComparison.Ordinal)) path = path[2..];
            else if (path.StartsWith("//", StringComparison.Ordinal)) path = path[2..];
            if (path.Length == 0) throw TrackingException.Invalid($"invalid tracking URI '{u}': sqlite: needs a file path");
            db = SqlDatabase.Sqlite(path);
            artifacts = artifactsRoot ?? Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path)) ?? ".", "artifacts");
        }
        else if (u.Contains("://", StringComparison.Ordinal) && !u.StartsWith("file://", StringComparison.OrdinalIgnoreCase))
        {
            throw TrackingException.Invalid($"unsupported tracking URI '{u}': use a local path, file://, sqlite:, postgresql:// or http(s)://");
        }
        else
        {
            var dir = u.StartsWith("file://", StringComparison.OrdinalIgnoreCase) ? new System.Uri(u).LocalPath : u;
            if (File.Exists(dir)) throw TrackingException.Invalid($"tracking URI '{u}' is a file; name a directory (kiln.db and artifacts/ go inside)");
            db = SqlDatabase.Sqlite(Path.Combine(dir, "kiln.db"));
            artifacts = artifactsRoot ?? Path.Combine(dir, "artifacts");
        }
        return new TrackingStores(new SqlTrackingStore(db), new SqlModelRegistry(db), new LocalArtifactStore(artifacts, maxArtifactBytes), u,
            isRemote: false, db);
    }

    public ValueTask DisposeAsync() => _owned?.DisposeAsync() ?? ValueTask.CompletedTask;
}
