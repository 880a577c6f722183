using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Kiln.Core;
using Kiln.Storage;
using Kiln.Vectors.Storage;

namespace Kiln.Vectors;

/// <summary>
/// The collections under one data directory: their configuration is a row each in the metadata database's catalog
/// (<see cref="VectorCatalog"/>), their write-ahead log and snapshots a sub-directory each. Collections are opened
/// (snapshot loaded, log tail replayed) when the store opens.
/// </summary>
public sealed partial class VectorStore : IAsyncDisposable
{
    private const string LegacyConfigFile = "collection.json";
    private readonly ConcurrentDictionary<string, VectorCollection> _collections = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly VectorCatalog _catalog;
    private readonly MetadataDatabase? _ownedDatabase;

    private VectorStore(string directory, MetadataDatabase database, MetadataDatabase? owned)
    {
        Directory = directory;
        _catalog = new VectorCatalog(database);
        _ownedDatabase = owned;
    }

    /// <summary>The store directory, as a full path.</summary>
    public string Directory { get; }

    /// <summary>The metadata database that holds the catalog.</summary>
    public MetadataDatabase Database => _catalog.Database;

    public IReadOnlyList<string> Names => _collections.Keys.Order(StringComparer.Ordinal).ToList();

    /// <summary>
    /// Opens the store in <paramref name="directory"/> with its catalog in <paramref name="database"/> (the process's
    /// one metadata database; the store does not dispose it). A collection directory written before the catalog
    /// (with a collection.json) is recorded in the catalog and its file removed.
    /// </summary>
    public static Task<VectorStore> OpenAsync(string directory, MetadataDatabase database, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(database);
        return OpenAsync(directory, database, owned: null, ct);
    }

    /// <summary>Opens the store with its catalog in the database a location names (docs/cli.md#locations), which the store then owns.</summary>
    public static Task<VectorStore> OpenAsync(string directory, string database, CancellationToken ct = default)
    {
        var db = MetadataDatabase.Open(database, "--db");
        return OpenAsync(directory, db, owned: db, ct);
    }

    private static async Task<VectorStore> OpenAsync(string directory, MetadataDatabase database, MetadataDatabase? owned, CancellationToken ct)
    {
        // The catalog keys rows by this path: "vectors" and "vectors/" must name the same store.
        var store = new VectorStore(Path.TrimEndingDirectorySeparator(Path.GetFullPath(directory)), database, owned);
        try
        {
            await store.LoadAsync(ct).ConfigureAwait(false);
            return store;
        }
        catch
        {
            await store.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private async Task LoadAsync(CancellationToken ct)
    {
        System.IO.Directory.CreateDirectory(Directory);
        var rows = (await _catalog.ListAsync(Directory, ct).ConfigureAwait(false)).ToDictionary(r => r.Name, StringComparer.Ordinal);
        foreach (var dir in System.IO.Directory.EnumerateDirectories(Directory))
        {
            var entry = Path.GetFileName(dir);
            if (!entry.StartsWith('.')) continue;
            // What Create, Restore and Delete leave when a crash interrupts them. The catalog row decides: with a row,
            // the hidden directory is the collection (a create that committed, a delete that did not); without, it goes.
            var name = entry.EndsWith(".creating", StringComparison.Ordinal) ? entry[1..^".creating".Length]
                : entry.EndsWith(".deleting", StringComparison.Ordinal) ? entry[1..^".deleting".Length] : null;
            if (name is null) continue;
            if (rows.TryGetValue(name, out var row) && !System.IO.Directory.Exists(row.Directory)) System.IO.Directory.Move(dir, row.Directory);
            else System.IO.Directory.Delete(dir, true);
        }
        foreach (var dir in System.IO.Directory.EnumerateDirectories(Directory))
        {
            var name = Path.GetFileName(dir);
            if (name.StartsWith('.')) continue;
            var legacy = Path.Combine(dir, LegacyConfigFile);
            if (!File.Exists(legacy)) continue;
            // A collection made before the catalog: its collection.json becomes its row, then the file goes.
            if (!rows.ContainsKey(name))
            {
                var config = ReadLegacyConfig(legacy);
                await _catalog.InsertAsync(Directory, name, dir, config, ct).ConfigureAwait(false);
                rows[name] = new CatalogEntry(name, dir, config, DateTimeOffset.UtcNow);
            }
            File.Delete(legacy);
            File.Delete(legacy + ".tmp");
        }
        foreach (var row in rows.Values.OrderBy(r => r.Name, StringComparer.Ordinal))
        {
            if (!System.IO.Directory.Exists(row.Directory))
            {
                throw new KilnException($"{Database.Description}: vector collection '{row.Name}' is in the catalog but its directory {row.Directory} is missing; "
                    + "put the directory back (a store directory must stay where it was made: move collections with export and restore)");
            }
            _collections[row.Name] = VectorCollection.Open(row.Name, row.Directory, row.Config, Persist(row.Name));
        }
    }

    private static CollectionConfig ReadLegacyConfig(string path)
    {
        try
        {
            return CollectionConfig.FromJson(JsonNode.Parse(File.ReadAllText(path))!.AsObject());
        }
        catch (Exception e) when (e is System.Text.Json.JsonException or NullReferenceException or InvalidOperationException or FormatException or KeyNotFoundException or VectorInputException)
        {
            throw new KilnException($"{path}: not a collection configuration ({e.Message}); the collection cannot be moved into the catalog");
        }
    }

    /// <summary>How a collection records a changed configuration: its catalog row.</summary>
    private Func<CollectionConfig, CancellationToken, Task> Persist(string name) => async (config, ct) =>
    {
        if (!await _catalog.UpdatePayloadIndexesAsync(Directory, name, config.PayloadIndexes, ct).ConfigureAwait(false))
            throw new VectorNotFoundException($"Collection `{name}` doesn't exist!");
    };

    public VectorCollection Get(string name) =>
        _collections.TryGetValue(name, out var c) ? c : throw new VectorNotFoundException($"Collection `{name}` doesn't exist!");

    public bool Exists(string name) => _collections.ContainsKey(name);

    /// <summary>
    /// Creates a collection: its directory is made under a hidden name, its catalog row inserted, then the directory
    /// renamed. A failure at any step leaves neither; a crash after the row is in is finished when the store next opens.
    /// </summary>
    public async Task<VectorCollection> CreateAsync(string name, CollectionConfig config, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(config);
        ValidateName(name);
        if (config.Dimension < 1 || config.Dimension > 65536) throw new VectorInputException($"vectors.size: must be between 1 and 65536, got {config.Dimension}");
        if (config.Hnsw.M < 2 || config.Hnsw.EfConstruct < 4 || config.Hnsw.Ef < 1) throw new VectorInputException("hnsw_config: m must be at least 2, ef_construct at least 4");
        await _gate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            var (hidden, dir) = Place(name);
            VectorCollection.CreateDirectory(hidden);
            return await CommitAsync(name, hidden, dir, config, ct).ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Makes collection <paramref name="name"/> from a file written by <see cref="VectorCollection.Export"/>.
    /// The file is checked whole (configuration, graph, points) before the catalog row is inserted; a bad file leaves nothing.</summary>
    public async Task<VectorCollection> RestoreAsync(string name, Stream export, string field = "snapshot", CancellationToken ct = default)
    {
        ValidateName(name);
        await _gate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            var (hidden, dir) = Place(name);
            System.IO.Directory.CreateDirectory(hidden);
            CollectionConfig config;
            try
            {
                config = VectorCollection.Unpack(export, hidden, field);
                if (config.Dimension < 1 || config.Dimension > 65536) throw new VectorInputException($"{field}: the collection's size {config.Dimension} is out of range");
                // Opened once under the hidden name: a graph or points file that does not load stops the restore here.
                try { VectorCollection.Open(name, hidden, config, null).Dispose(); }
                catch (Exception e) when (e is not VectorInputException)
                {
                    throw new VectorInputException($"{field}: the exported graph or points do not load: {e.Message}");
                }
            }
            catch
            {
                System.IO.Directory.Delete(hidden, true);
                throw;
            }
            return await CommitAsync(name, hidden, dir, config, ct).ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>The hidden directory a collection is built in and its final one; refuses a name already taken.</summary>
    private (string Hidden, string Directory) Place(string name)
    {
        if (_collections.ContainsKey(name)) throw new VectorConflictException($"Collection `{name}` already exists!");
        var dir = Path.Combine(Directory, name);
        if (System.IO.Directory.Exists(dir))
            throw new VectorConflictException($"collection_name: '{name}': the directory {dir} exists but is no collection in the catalog of {Database.Description}");
        var hidden = Path.Combine(Directory, "." + name + ".creating");
        if (System.IO.Directory.Exists(hidden)) System.IO.Directory.Delete(hidden, true);
        return (hidden, dir);
    }

    /// <summary>Inserts the row of a collection built in <paramref name="hidden"/>, gives the directory its name and opens it.</summary>
    private async Task<VectorCollection> CommitAsync(string name, string hidden, string dir, CollectionConfig config, CancellationToken ct)
    {
        try
        {
            await _catalog.InsertAsync(Directory, name, dir, config, ct).ConfigureAwait(false);
        }
        catch
        {
            System.IO.Directory.Delete(hidden, true);
            throw;
        }
        try
        {
            System.IO.Directory.Move(hidden, dir);
        }
        catch
        {
            await _catalog.DeleteAsync(Directory, name, CancellationToken.None).ConfigureAwait(false);
            System.IO.Directory.Delete(hidden, true);
            throw;
        }
        var c = VectorCollection.Open(name, dir, config, Persist(name));
        _collections[name] = c;
        return c;
    }

    /// <summary>
    /// Deletes a collection: its directory is moved to a hidden name, its catalog row deleted, then the directory
    /// removed. If the row cannot be deleted the directory is put back and the collection stays.
    /// </summary>
    public async Task<bool> DeleteAsync(string name, CancellationToken ct = default)
    {
        await _gate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            if (!_collections.TryRemove(name, out var c)) return false;
            var config = c.Config;
            c.Dispose();
            var dir = Path.Combine(Directory, name);
            var hidden = Path.Combine(Directory, "." + name + ".deleting");
            if (System.IO.Directory.Exists(hidden)) System.IO.Directory.Delete(hidden, true);
            System.IO.Directory.Move(dir, hidden);
            try
            {
                await _catalog.DeleteAsync(Directory, name, ct).ConfigureAwait(false);
            }
            catch
            {
                System.IO.Directory.Move(hidden, dir);
                _collections[name] = VectorCollection.Open(name, dir, config, Persist(name));
                throw;
            }
            System.IO.Directory.Delete(hidden, true);
            return true;
        }
        finally
        {
            _gate.Release();
        }
    }

    private static void ValidateName(string name)
    {
        if (!NamePattern().IsMatch(name))
        {
            throw new VectorInputException($"collection_name: '{name}' is not a valid name (letters, digits, '-', '_' and '.', at most 255, not starting with '.')");
        }
    }

    [GeneratedRegex("^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,254}$")]
    private static partial Regex NamePattern();

    public async ValueTask DisposeAsync()
    {
        foreach (var c in _collections.Values) c.Dispose();
        _collections.Clear();
        // The store opened this database itself (OpenAsync with a location); a shared one is its owner's to close.
        if (_ownedDatabase is not null) await _ownedDatabase.DisposeAsync().ConfigureAwait(false);
        GC.SuppressFinalize(this);
    }
}
