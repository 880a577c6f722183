using System.Collections.Concurrent;
using System.Text.RegularExpressions;

namespace Kiln.Vectors;

/// <summary>
/// The collections under one data directory, one sub-directory each (configuration, write-ahead log, snapshot).
/// Collections are opened (snapshot loaded, log tail replayed) when the store opens.
/// </summary>
public sealed partial class VectorStore : IDisposable
{
    private readonly ConcurrentDictionary<string, VectorCollection> _collections = new(StringComparer.Ordinal);
    private readonly object _gate = new();

    public VectorStore(string directory)
    {
        Directory = Path.GetFullPath(directory);
        System.IO.Directory.CreateDirectory(Directory);
        foreach (var dir in System.IO.Directory.EnumerateDirectories(Directory))
        {
            var name = Path.GetFileName(dir);
            if (name.StartsWith('.'))
            {
                // Only what Create and Delete leave behind when a crash interrupts them; nothing else is touched.
                if (name.EndsWith(".creating", StringComparison.Ordinal) || name.EndsWith(".deleting", StringComparison.Ordinal)) System.IO.Directory.Delete(dir, true);
                continue;
            }
            if (!File.Exists(Path.Combine(dir, "collection.json"))) continue;
            _collections[name] = VectorCollection.Open(name, dir);
        }
    }

    public string Directory { get; }

    public IReadOnlyList<string> Names => _collections.Keys.Order(StringComparer.Ordinal).ToList();

    public VectorCollection Get(string name) =>
        _collections.TryGetValue(name, out var c) ? c : throw new VectorNotFoundException($"Collection `{name}` doesn't exist!");

    public bool Exists(string name) => _collections.ContainsKey(name);

    public VectorCollection Create(string name, CollectionConfig config)
    {
        ValidateName(name);
        if (config.Dimension < 1 || config.Dimension > 65536) throw new VectorInputException($"vectors.size: must be between 1 and 65536, got {config.Dimension}");
        if (config.Hnsw.M < 2 || config.Hnsw.EfConstruct < 4 || config.Hnsw.Ef < 1) throw new VectorInputException("hnsw_config: m must be at least 2, ef_construct at least 4");
        lock (_gate)
        {
            if (_collections.ContainsKey(name)) throw new VectorConflictException($"Collection `{name}` already exists!");
            // Built under a hidden name and renamed, so that a crash leaves either no collection or a whole one.
            var hidden = Path.Combine(Directory, "." + name + ".creating");
            if (System.IO.Directory.Exists(hidden)) System.IO.Directory.Delete(hidden, true);
            VectorCollection.Create(name, hidden, config).Dispose();
            var dir = Path.Combine(Directory, name);
            System.IO.Directory.Move(hidden, dir);
            var c = VectorCollection.Open(name, dir);
            _collections[name] = c;
            return c;
        }
    }

    /// <summary>Makes collection <paramref name="name"/> from a file written by <see cref="VectorCollection.Export"/>.
    /// The file is checked whole (configuration, graph, points) before the collection appears; a bad file leaves nothing.</summary>
    public VectorCollection Restore(string name, Stream export, string field = "snapshot")
    {
        ValidateName(name);
        lock (_gate)
        {
            if (_collections.ContainsKey(name)) throw new VectorConflictException($"Collection `{name}` already exists!");
            var hidden = Path.Combine(Directory, "." + name + ".creating");
            if (System.IO.Directory.Exists(hidden)) System.IO.Directory.Delete(hidden, true);
            System.IO.Directory.CreateDirectory(hidden);
            try
            {
                var config = VectorCollection.Unpack(export, hidden, field);
                if (config.Dimension < 1 || config.Dimension > 65536) throw new VectorInputException($"{field}: the collection's size {config.Dimension} is out of range");
                // Opened once under the hidden name: a graph or points file that does not load stops the restore here.
                try { VectorCollection.Open(name, hidden).Dispose(); }
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
            var dir = Path.Combine(Directory, name);
            System.IO.Directory.Move(hidden, dir);
            var c = VectorCollection.Open(name, dir);
            _collections[name] = c;
            return c;
        }
    }

    public bool Delete(string name)
    {
        lock (_gate)
        {
            if (!_collections.TryRemove(name, out var c)) return false;
            c.Dispose();
            var dir = Path.Combine(Directory, name);
            var hidden = Path.Combine(Directory, "." + name + ".deleting");
            if (System.IO.Directory.Exists(hidden)) System.IO.Directory.Delete(hidden, true);
            System.IO.Directory.Move(dir, hidden);
            System.IO.Directory.Delete(hidden, true);
            return true;
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

    public void Dispose()
    {
        foreach (var c in _collections.Values) c.Dispose();
        _collections.Clear();
    }
}
