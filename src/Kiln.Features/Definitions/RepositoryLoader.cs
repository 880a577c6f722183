using Kiln.Core;
using Kiln.Core.Yaml;
using YamlDotNet.RepresentationModel;

namespace Kiln.Features.Definitions;

/// <summary>
/// Reads a feature repository: every <c>*.yaml</c>/<c>*.yml</c> file under a folder, each holding any of
/// <c>project</c>, <c>entities</c>, <c>sources</c>, <c>push_sources</c>, <c>feature_views</c>, <c>feature_services</c>.
/// Errors name the file, line and definition at fault.
/// </summary>
public static class RepositoryLoader
{
    private static readonly string[] _topKeys = ["project", "entities", "sources", "push_sources", "feature_views", "feature_services"];

    /// <summary>Loads and cross-checks the definitions (not the data: see <see cref="Offline.RepositoryValidator"/>).</summary>
    public static FeatureRepository Load(string path)
    {
        var root = Path.GetFullPath(path);
        string[] files;
        if (File.Exists(root))
        {
            files = [root];
            root = Path.GetDirectoryName(root)!;
        }
        else if (Directory.Exists(root))
        {
            files = Directory.EnumerateFiles(root, "*.*", SearchOption.AllDirectories)
                .Where(f => f.EndsWith(".yaml", StringComparison.OrdinalIgnoreCase) || f.EndsWith(".yml", StringComparison.OrdinalIgnoreCase))
                .Where(f => !Path.GetRelativePath(root, f).Split(Path.DirectorySeparatorChar).Any(p => p.StartsWith('.')))
                .Order(StringComparer.Ordinal)
                .ToArray();
            if (files.Length == 0) throw new KilnException($"feature repository {path}: no .yaml files found");
        }
        else
        {
            throw new KilnException($"feature repository {path}: no such file or folder");
        }

        string? project = null;
        var entities = new List<EntityDefinition>();
        var sources = new List<SourceDefinition>();
        var pushSources = new List<PushSourceDefinition>();
        var views = new List<FeatureViewDefinition>();
        var services = new List<FeatureServiceDefinition>();
        var seen = new Dictionary<string, string>(StringComparer.Ordinal);

        foreach (var file in files)
        {
            var rel = Path.GetRelativePath(root, file);
            IReadOnlyList<YamlDocument> documents;
            using (var reader = new StreamReader(file)) documents = YamlFiles.Parse(reader, rel);
            foreach (var doc in documents)
            {
                if (doc.RootNode is YamlScalarNode { Value: null or "" }) continue;
                if (doc.RootNode is not YamlMappingNode top) throw Error(rel, doc.RootNode, "the file must be a mapping of sections (entities, sources, feature_views, ...)");
                foreach (var (keyNode, value) in top.Children)
                {
                    var key = ((YamlScalarNode)keyNode).Value ?? "";
                    switch (key)
                    {
                        case "project":
                            var p = Scalar(rel, value, "project");
                            if (project is not null && project != p) throw Error(rel, value, $"project '{p}' differs from '{project}' set in another file");
                            project = p;
                            break;
                        case "entities":
                            foreach (var m in Items(rel, value, key)) entities.Add(Remember(ParseEntity(rel, m)));
                            break;
                        case "sources":
                            foreach (var m in Items(rel, value, key)) sources.Add(Remember(ParseSource(rel, Path.GetDirectoryName(file)!, m)));
                            break;
                        case "push_sources":
                            foreach (var m in Items(rel, value, key)) pushSources.Add(Remember(ParsePushSource(rel, m)));
                            break;
                        case "feature_views":
                            foreach (var m in Items(rel, value, key)) views.Add(Remember(ParseView(rel, m)));
                            break;
                        case "feature_services":
                            foreach (var m in Items(rel, value, key)) services.Add(Remember(ParseService(rel, m)));
                            break;
                        default:
                            throw Error(rel, keyNode, YamlFiles.UnknownKey(key, _topKeys));
                    }
                }
            }
        }

        var repo = new FeatureRepository(project ?? new DirectoryInfo(root).Name, entities, sources, pushSources, views, services);
        CrossCheck(repo);
        return repo;

        T Remember<T>(T definition)
        {
            var (kind, name, where) = definition switch
            {
                EntityDefinition e => ("entity", e.Name, e.DefinedIn),
                SourceDefinition s => ("source", s.Name, s.DefinedIn),
                PushSourceDefinition s => ("source", s.Name, s.DefinedIn),
                FeatureViewDefinition v => ("feature view", v.Name, v.DefinedIn),
                FeatureServiceDefinition s => ("feature service", s.Name, s.DefinedIn),
                _ => throw new InvalidOperationException(),
            };
            if (seen.TryGetValue($"{kind}/{name}", out var first))
                throw new KilnException($"{where}: {kind} '{name}' is defined twice (first at {first})");
            seen[$"{kind}/{name}"] = where;
            return definition;
        }
    }

    /// <summary>Every reference between definitions resolves (also checked by the server on a repository sent to it).</summary>
    internal static void CrossCheck(FeatureRepository repo)
    {
        foreach (var p in repo.PushSources.Values)
        {
            if (!repo.Sources.ContainsKey(p.BatchSource))
                throw new KilnException($"{p.DefinedIn}: push source '{p.Name}': unknown batch_source '{p.BatchSource}' (known: {FeatureRepository.Known(repo.Sources.Keys)})");
        }
        foreach (var v in repo.FeatureViews.Values)
        {
            foreach (var e in v.Entities)
            {
                if (!repo.Entities.ContainsKey(e))
                    throw new KilnException($"{v.DefinedIn}: feature view '{v.Name}': unknown entity '{e}' (known: {FeatureRepository.Known(repo.Entities.Keys)})");
            }
            if (!repo.Sources.ContainsKey(v.Source) && !repo.PushSources.ContainsKey(v.Source))
                throw new KilnException($"{v.DefinedIn}: feature view '{v.Name}': unknown source '{v.Source}' (known: {FeatureRepository.Known(repo.Sources.Keys.Concat(repo.PushSources.Keys))})");
            var keys = repo.JoinKeys(v);
            var source = repo.BatchSource(v);
            foreach (var f in v.Schema)
            {
                if (keys.Contains(f.Name))
                    throw new KilnException($"{v.DefinedIn}: feature view '{v.Name}': feature '{f.Name}' has the name of a join key");
                if (f.Name == source.TimestampField || f.Name == source.CreatedTimestampColumn)
                    throw new KilnException($"{v.DefinedIn}: feature view '{v.Name}': feature '{f.Name}' has the name of the source's timestamp column");
            }
        }
        foreach (var s in repo.FeatureServices.Values) repo.ResolveFeatures(s.Features, $"{s.DefinedIn}: feature service '{s.Name}'");
    }

    private static EntityDefinition ParseEntity(string file, YamlMappingNode node)
    {
        var f = new Fields(file, node, "entity", ["name", "join_keys", "join_key", "value_type", "description"]);
        var name = f.RequiredString("name");
        var keys = f.Has("join_keys") ? f.StringList("join_keys") : f.Has("join_key") ? [f.RequiredString("join_key")] : [name];
        if (keys.Count == 0) throw f.ErrorAt("join_keys", "needs at least one join key");
        FeatureType? type = null;
        if (f.OptionalString("value_type") is { } t)
        {
            if (!FeatureTypes.TryParse(t, out var parsed) || parsed is FeatureType.Timestamp or FeatureType.Float32 or FeatureType.Float64)
                throw f.ErrorAt("value_type", $"'{t}' is not a join key type (int32, int64, string, bool)");
            type = parsed;
        }
        return new EntityDefinition(name, keys, type, f.OptionalString("description"), f.Where);
    }

    private static SourceDefinition ParseSource(string file, string folder, YamlMappingNode node)
    {
        var f = new Fields(file, node, "source", ["name", "path", "format", "timestamp_field", "created_timestamp_column", "description"]);
        var name = f.RequiredString("name");
        var path = f.RequiredString("path");
        var full = Path.IsPathRooted(path) ? path : Path.GetFullPath(Path.Combine(folder, path));
        var formatText = f.OptionalString("format")
            ?? (path.EndsWith(".csv", StringComparison.OrdinalIgnoreCase) ? "csv"
                : path.EndsWith(".parquet", StringComparison.OrdinalIgnoreCase) ? "parquet" : null)
            ?? throw f.ErrorAt("path", $"cannot tell the format of '{path}': add format: parquet or format: csv");
        var format = formatText.ToLowerInvariant() switch
        {
            "parquet" => SourceFormat.Parquet,
            "csv" => SourceFormat.Csv,
            _ => throw f.ErrorAt("format", $"unknown format '{formatText}' (parquet or csv)"),
        };
        return new SourceDefinition(name, full, format, f.OptionalString("timestamp_field") ?? "event_timestamp",
            f.OptionalString("created_timestamp_column"), f.OptionalString("description"), f.Where);
    }

    private static PushSourceDefinition ParsePushSource(string file, YamlMappingNode node)
    {
        var f = new Fields(file, node, "push source", ["name", "batch_source", "description"]);
        return new PushSourceDefinition(f.RequiredString("name"), f.RequiredString("batch_source"), f.OptionalString("description"), f.Where);
    }

    private static FeatureViewDefinition ParseView(string file, YamlMappingNode node)
    {
        var f = new Fields(file, node, "feature view", ["name", "entities", "source", "schema", "ttl", "online", "description"]);
        var name = f.RequiredString("name");
        var ttl = TimeSpan.Zero;
        if (f.OptionalString("ttl") is { } ttlText && !Duration.TryParse(ttlText, out ttl))
            throw f.ErrorAt("ttl", $"ttl: '{ttlText}' is not a duration; write {Duration.Expected}");
        var online = true;
        if (f.OptionalString("online") is { } onlineText && !bool.TryParse(onlineText, out online))
            throw f.ErrorAt("online", $"'{onlineText}' is not true or false");
        var schemaNode = f.Node("schema") as YamlSequenceNode ?? throw f.ErrorAt("schema", "must be a list of {name, dtype}");
        var schema = new List<FeatureField>();
        foreach (var item in schemaNode.Children)
        {
            if (item is not YamlMappingNode m) throw Error(file, item, $"feature view '{name}': each schema entry must be {{name, dtype}}");
            var ff = new Fields(file, m, $"feature view '{name}' schema entry", ["name", "dtype", "type", "description"]);
            var fname = ff.RequiredString("name");
            var dtypeText = ff.OptionalString("dtype") ?? ff.OptionalString("type") ?? throw ff.ErrorAt(null, $"feature '{fname}' needs a dtype");
            if (!FeatureTypes.TryParse(dtypeText, out var dtype))
                throw ff.ErrorAt("dtype", $"feature '{fname}': unknown dtype '{dtypeText}' (int32, int64, float32, float64, string, bool, timestamp)");
            if (schema.Any(s => s.Name == fname)) throw ff.ErrorAt("name", $"feature '{fname}' appears twice in feature view '{name}'");
            schema.Add(new FeatureField(fname, dtype));
        }
        if (schema.Count == 0) throw f.ErrorAt("schema", $"feature view '{name}' has no features");
        var entities = f.StringList("entities");
        if (entities.Count == 0) throw f.ErrorAt("entities", $"feature view '{name}' needs at least one entity");
        return new FeatureViewDefinition(name, entities, f.RequiredString("source"), schema, ttl, online, f.OptionalString("description"), f.Where);
    }

    private static FeatureServiceDefinition ParseService(string file, YamlMappingNode node)
    {
        var f = new Fields(file, node, "feature service", ["name", "features", "description"]);
        var features = f.StringList("features");
        if (features.Count == 0) throw f.ErrorAt("features", "a feature service needs at least one feature");
        return new FeatureServiceDefinition(f.RequiredString("name"), features, f.OptionalString("description"), f.Where);
    }

    private static IEnumerable<YamlMappingNode> Items(string file, YamlNode node, string section)
    {
        if (node is YamlScalarNode { Value: null or "" }) yield break;
        if (node is not YamlSequenceNode seq) throw Error(file, node, $"'{section}' must be a list");
        foreach (var item in seq.Children)
        {
            yield return item as YamlMappingNode ?? throw Error(file, item, $"each entry of '{section}' must be a mapping");
        }
    }

    private static string Scalar(string file, YamlNode node, string what) =>
        node is YamlScalarNode { Value: { Length: > 0 } v } ? v : throw Error(file, node, $"'{what}' must be a non-empty value");

    private static KilnException Error(string file, YamlNode node, string message) =>
        new($"{YamlFiles.Where(file, node)}: {message}");

    /// <summary>The keys of one definition, with errors that name the definition.</summary>
    private sealed class Fields
    {
        private readonly string _file;
        private readonly YamlMappingNode _node;
        private readonly string _kind;
        private readonly Dictionary<string, YamlNode> _values = new(StringComparer.Ordinal);

        public Fields(string file, YamlMappingNode node, string kind, string[] allowed)
        {
            _file = file;
            _node = node;
            _kind = kind;
            foreach (var (k, v) in node.Children)
            {
                var key = (k as YamlScalarNode)?.Value ?? "";
                if (!allowed.Contains(key))
                    throw Error(file, k, $"{Label}: {YamlFiles.UnknownKey(key, allowed)}");
                _values[key] = v;
            }
        }

        public string Where => YamlFiles.Where(_file, _node);

        private string Label => _values.TryGetValue("name", out var n) && n is YamlScalarNode { Value: { } name } ? $"{_kind} '{name}'" : _kind;

        public bool Has(string key) => _values.ContainsKey(key);

        public YamlNode? Node(string key) => _values.GetValueOrDefault(key);

        public KilnException ErrorAt(string? key, string message) =>
            Error(_file, key is not null && _values.TryGetValue(key, out var n) ? n : _node, $"{Label}: {message}");

        public string RequiredString(string key) =>
            OptionalString(key) ?? throw Error(_file, _node, $"{Label}: missing '{key}'");

        public string? OptionalString(string key)
        {
            if (!_values.TryGetValue(key, out var n)) return null;
            if (n is not YamlScalarNode s) throw ErrorAt(key, $"'{key}' must be a single value");
            return string.IsNullOrWhiteSpace(s.Value) ? null : s.Value.Trim();
        }

        public List<string> StringList(string key)
        {
            if (!_values.TryGetValue(key, out var n)) throw Error(_file, _node, $"{Label}: missing '{key}'");
            if (n is YamlScalarNode { Value: { Length: > 0 } one }) return [one];
            if (n is not YamlSequenceNode seq) throw ErrorAt(key, $"'{key}' must be a list");
            var list = new List<string>();
            foreach (var item in seq.Children)
            {
                list.Add(item is YamlScalarNode { Value: { Length: > 0 } v } ? v.Trim() : throw Error(_file, item, $"{Label}: each entry of '{key}' must be a name"));
            }
            return list;
        }
    }
}
