using Kiln.Core;

namespace Kiln.Pipelines.State;

/// <summary>Opens the store named by a tracking URI or database path.</summary>
public static class PipelineStores
{
    /// <summary>The default embedded database, relative to the working directory.</summary>
    public const string DefaultPath = ".kiln/kiln.db";

    /// <summary>
    /// null → ./.kiln/kiln.db; <c>postgres://</c>, <c>postgresql://</c> or <c>Host=...</c> → PostgreSQL;
    /// <c>sqlite:PATH</c>, a *.db file or a directory (its kiln.db) → SQLite.
    /// </summary>
    public static async Task<IPipelineStore> OpenAsync(string? uri, CancellationToken cancellationToken = default)
    {
        IPipelineStore store = Create(uri);
        try
        {
            await store.InitializeAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            await store.DisposeAsync().ConfigureAwait(false);
            throw new KilnException($"cannot open the pipeline store '{Describe(uri)}': {e.Message}", e);
        }
        return store;
    }

    public static IPipelineStore Create(string? uri)
    {
        if (string.IsNullOrWhiteSpace(uri)) return new SqlitePipelineStore(DefaultPath);
        if (uri.StartsWith("http://", StringComparison.OrdinalIgnoreCase) || uri.StartsWith("https://", StringComparison.OrdinalIgnoreCase))
            throw new KilnException($"{uri}: a server URL is not a pipeline store; go through the server with PipelineApiClient (the kiln pipeline commands do), or give a path (./.kiln), a *.db file or a postgres:// URI");
        if (uri.StartsWith("postgres://", StringComparison.OrdinalIgnoreCase) || uri.StartsWith("postgresql://", StringComparison.OrdinalIgnoreCase))
            return new PostgresPipelineStore(FromUri(new Uri(uri)));
        if (uri.Contains("Host=", StringComparison.OrdinalIgnoreCase)) return new PostgresPipelineStore(uri);
        if (uri.StartsWith("sqlite:", StringComparison.OrdinalIgnoreCase))
        {
            // As MLflow reads them: sqlite:///relative.db and sqlite:////absolute/path.db.
            var rest = uri["sqlite:".Length..];
            return new SqlitePipelineStore(rest.StartsWith("///", StringComparison.Ordinal) ? rest[3..] : rest);
        }
        if (uri.StartsWith("file://", StringComparison.OrdinalIgnoreCase)) uri = new Uri(uri).LocalPath;
        if (Directory.Exists(uri) || !Path.HasExtension(uri)) return new SqlitePipelineStore(Path.Combine(uri, "kiln.db"));
        return new SqlitePipelineStore(uri);
    }

    private static string Describe(string? uri) => uri ?? DefaultPath;

    private static string FromUri(Uri u)
    {
        var b = new Npgsql.NpgsqlConnectionStringBuilder { Host = u.Host, Port = u.IsDefaultPort || u.Port < 0 ? 5432 : u.Port };
        var db = u.AbsolutePath.Trim('/');
        if (db.Length > 0) b.Database = Uri.UnescapeDataString(db);
        if (u.UserInfo.Length > 0)
        {
            var parts = u.UserInfo.Split(':', 2);
            b.Username = Uri.UnescapeDataString(parts[0]);
            if (parts.Length == 2) b.Password = Uri.UnescapeDataString(parts[1]);
        }
        return b.ConnectionString;
    }
}
