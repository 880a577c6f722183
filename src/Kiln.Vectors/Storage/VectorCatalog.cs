using System.Data.Common;
using System.Globalization;
using System.Text.Json.Nodes;
using Kiln.Storage;

namespace Kiln.Vectors.Storage;

/// <summary>A collection as the catalog lists it: where its files are, its configuration, when it was made.</summary>
public sealed record CatalogEntry(string Name, string Directory, CollectionConfig Config, DateTimeOffset CreatedAt);

/// <summary>
/// The vector collections' configuration in the metadata database (the "vectors" schema area): one row per
/// collection, keyed by the store directory and the name, holding the size, distance, datatype, HNSW settings,
/// payload indexes (a JSON object of field to kind) and the collection's directory. The directory keeps the
/// write-ahead log and the snapshots.
/// </summary>
public sealed class VectorCatalog
{
    public VectorCatalog(MetadataDatabase database) => Database = database;

    public MetadataDatabase Database { get; }

    /// <summary>The vectors area: version 1 creates the catalog table.</summary>
    internal static readonly SchemaArea Schema = new("vectors", "vector_collections",
    [
        new Migration(1, """
            CREATE TABLE vector_collections (
                store TEXT NOT NULL, name TEXT NOT NULL, directory TEXT NOT NULL UNIQUE,
                size INTEGER NOT NULL, distance TEXT NOT NULL, datatype TEXT NOT NULL,
                hnsw_m INTEGER NOT NULL, hnsw_ef_construct INTEGER NOT NULL, hnsw_ef INTEGER NOT NULL,
                full_scan_threshold INTEGER NOT NULL, wal_fsync INTEGER NOT NULL, payload_indexes TEXT NOT NULL,
                created_at TEXT NOT NULL,
                PRIMARY KEY (store, name))
            """),
    ]);

    public Task InitializeAsync(CancellationToken ct = default) => Database.EnsureSchemaAsync(Schema, ct);

    /// <summary>The collections of the store at <paramref name="store"/> (a full path), by name.</summary>
    public async Task<IReadOnlyList<CatalogEntry>> ListAsync(string store, CancellationToken ct = default)
    {
        await InitializeAsync(ct).ConfigureAwait(false);
        return await Database.ReadAsync<IReadOnlyList<CatalogEntry>>(async c => await c.QueryAsync(null,
            "SELECT name, directory, size, distance, datatype, hnsw_m, hnsw_ef_construct, hnsw_ef, full_scan_threshold, wal_fsync, payload_indexes, created_at "
            + "FROM vector_collections WHERE store = @s ORDER BY name",
            Read, ct, ("s", store)).ConfigureAwait(false), ct).ConfigureAwait(false);
    }

    /// <summary>Adds a collection's row; a row already there for the name is refused as a conflict.</summary>
    public async Task InsertAsync(string store, string name, string directory, CollectionConfig config, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(config);
        await InitializeAsync(ct).ConfigureAwait(false);
        try
        {
            await Database.WriteAsync((c, tx) => c.ExecAsync(tx,
                "INSERT INTO vector_collections (store, name, directory, size, distance, datatype, hnsw_m, hnsw_ef_construct, hnsw_ef, "
                + "full_scan_threshold, wal_fsync, payload_indexes, created_at) VALUES (@s, @n, @d, @size, @dist, @dt, @m, @efc, @ef, @fst, @fsync, @pi, @at)", ct,
                ("s", store), ("n", name), ("d", directory), ("size", config.Dimension), ("dist", config.Distance.ToString()),
                ("dt", CollectionConfig.DatatypeName(config.Datatype)), ("m", config.Hnsw.M), ("efc", config.Hnsw.EfConstruct), ("ef", config.Hnsw.Ef),
                ("fst", config.FullScanThreshold), ("fsync", config.WalFsync ? 1 : 0), ("pi", IndexesJson(config.PayloadIndexes)),
                ("at", DateTime.UtcNow.ToString("O", CultureInfo.InvariantCulture))), ct).ConfigureAwait(false);
        }
        catch (Exception e) when (Database.Dialect.IsUniqueViolation(e))
        {
            throw new VectorConflictException($"Collection `{name}` already exists!");
        }
    }

    /// <summary>Replaces a collection's payload indexes; false when the catalog has no such collection.</summary>
    public async Task<bool> UpdatePayloadIndexesAsync(string store, string name, IReadOnlyDictionary<string, PayloadSchemaType> indexes, CancellationToken ct = default)
    {
        await InitializeAsync(ct).ConfigureAwait(false);
        return await Database.WriteAsync(async (c, tx) => await c.ExecAsync(tx,
            "UPDATE vector_collections SET payload_indexes = @pi WHERE store = @s AND name = @n", ct,
            ("pi", IndexesJson(indexes)), ("s", store), ("n", name)).ConfigureAwait(false) > 0, ct).ConfigureAwait(false);
    }

    /// <summary>Removes a collection's row; false when there was none.</summary>
    public async Task<bool> DeleteAsync(string store, string name, CancellationToken ct = default)
    {
        await InitializeAsync(ct).ConfigureAwait(false);
        return await Database.WriteAsync(async (c, tx) => await c.ExecAsync(tx,
            "DELETE FROM vector_collections WHERE store = @s AND name = @n", ct, ("s", store), ("n", name)).ConfigureAwait(false) > 0, ct).ConfigureAwait(false);
    }

    private static CatalogEntry Read(DbDataReader r)
    {
        var name = r.GetString(0);
        var indexes = new Dictionary<string, PayloadSchemaType>(StringComparer.Ordinal);
        foreach (var (field, kind) in JsonNode.Parse(r.GetString(10))!.AsObject())
            indexes[field] = CollectionConfig.ParseSchemaType(kind!.GetValue<string>(), $"vector_collections[{name}].payload_indexes.{field}");
        var config = new CollectionConfig
        {
            Dimension = r.Int32(2),
            Distance = CollectionConfig.ParseDistance(r.GetString(3), $"vector_collections[{name}].distance"),
            Datatype = CollectionConfig.ParseDatatype(r.GetString(4), $"vector_collections[{name}].datatype"),
            Hnsw = new HnswParameters(r.Int32(5), r.Int32(6), r.Int32(7)),
            FullScanThreshold = r.Int32(8),
            WalFsync = r.Int32(9) != 0,
            PayloadIndexes = indexes,
        };
        var created = DateTimeOffset.Parse(r.GetString(11), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal);
        return new CatalogEntry(name, r.GetString(1), config, created);
    }


    private static string IndexesJson(IReadOnlyDictionary<string, PayloadSchemaType> indexes)
    {
        var o = new JsonObject();
        foreach (var (k, v) in indexes.OrderBy(p => p.Key, StringComparer.Ordinal)) o[k] = v.ToString().ToLowerInvariant();
        return o.ToJsonString();
    }
}
