using Kiln.Core;
using Kiln.Storage;

namespace Kiln.Pipelines.State;

/// <summary>Opens the store named by a tracking URI or database path.</summary>
public static class PipelineStores
{
    /// <summary>The default embedded database, relative to the working directory.</summary>
    public const string DefaultPath = ".kiln/kiln.db";

    /// <summary>
    /// Opens the store a location names (docs/cli.md#locations) and brings its tables up to date:
    /// null → ./.kiln/kiln.db; a directory, a *.db file or sqlite:///FILE → SQLite; postgresql:// or Host=... → PostgreSQL.
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
            if (e is KilnException) throw;
            throw new KilnException($"cannot open the pipeline store '{StorageLocation.Redact(uri ?? DefaultPath)}': {e.Message}", e);
        }
        return store;
    }

    /// <summary>The store a location names, owning its own database; the tables are made on first use.</summary>
    public static SqlPipelineStore Create(string? uri)
    {
        var location = StorageLocation.Parse(string.IsNullOrWhiteSpace(uri) ? DefaultPath : uri, "pipeline store");
        if (location.Kind == StorageKind.Remote)
            throw new KilnException($"{uri}: a server URL is not a pipeline store; go through the server with PipelineApiClient (the kiln pipeline commands do), or give a path (./.kiln), a *.db file or a postgresql:// URI");
        return new SqlPipelineStore(MetadataDatabase.Open(location), ownsDatabase: true);
    }
}
