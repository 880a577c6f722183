using Kiln.Core;

namespace Kiln.Features.Definitions;

/// <summary>A whole feature repository: every entity, source, view and service, as loaded from YAML or the registry.</summary>
public sealed class FeatureRepository
{
    public FeatureRepository(
        string project,
        IEnumerable<EntityDefinition> entities,
        IEnumerable<SourceDefinition> sources,
        IEnumerable<PushSourceDefinition> pushSources,
        IEnumerable<FeatureViewDefinition> featureViews,
        IEnumerable<FeatureServiceDefinition> featureServices)
    {
        Project = project;
        Entities = entities.ToDictionary(e => e.Name, StringComparer.Ordinal);
        Sources = sources.ToDictionary(e => e.Name, StringComparer.Ordinal);
        PushSources = pushSources.ToDictionary(e => e.Name, StringComparer.Ordinal);
        FeatureViews = featureViews.ToDictionary(e => e.Name, StringComparer.Ordinal);
        FeatureServices = featureServices.ToDictionary(e => e.Name, StringComparer.Ordinal);
    }

    public string Project { get; }
    public IReadOnlyDictionary<string, EntityDefinition> Entities { get; }
    public IReadOnlyDictionary<string, SourceDefinition> Sources { get; }
    public IReadOnlyDictionary<string, PushSourceDefinition> PushSources { get; }
    public IReadOnlyDictionary<string, FeatureViewDefinition> FeatureViews { get; }
    public IReadOnlyDictionary<string, FeatureServiceDefinition> FeatureServices { get; }

    /// <summary>The view of that name, or a KilnException naming the known views.</summary>
    public FeatureViewDefinition View(string name) =>
        FeatureViews.TryGetValue(name, out var v)
            ? v
            : throw new KilnException($"unknown feature view '{name}' (known: {Known(FeatureViews.Keys)})");

    /// <summary>The batch source a view reads offline (through its push source when it has one).</summary>
    public SourceDefinition BatchSource(FeatureViewDefinition view)
    {
        var name = PushSources.TryGetValue(view.Source, out var push) ? push.BatchSource : view.Source;
        return Sources.TryGetValue(name, out var s)
            ? s
            : throw new KilnException($"feature view '{view.Name}' ({view.DefinedIn}): unknown source '{name}'");
    }

    /// <summary>The join keys of a view, in the order its entities list them.</summary>
    public IReadOnlyList<string> JoinKeys(FeatureViewDefinition view)
    {
        var keys = new List<string>();
        foreach (var e in view.Entities)
        {
            if (!Entities.TryGetValue(e, out var entity))
                throw new KilnException($"feature view '{view.Name}' ({view.DefinedIn}): unknown entity '{e}'");
            foreach (var k in entity.JoinKeys) if (!keys.Contains(k)) keys.Add(k);
        }
        return keys;
    }

    /// <summary>The declared type of a join key, when an entity declares one.</summary>
    public FeatureType? JoinKeyType(string joinKey)
    {
        foreach (var e in Entities.Values)
            if (e.ValueType is { } t && e.JoinKeys.Contains(joinKey)) return t;
        return null;
    }

    /// <summary>Resolves <c>view:feature</c> or <c>view</c> (all its features) references, checking each exists.</summary>
    public IReadOnlyList<FeatureRef> ResolveFeatures(IEnumerable<string> references, string origin)
    {
        var result = new List<FeatureRef>();
        foreach (var raw in references)
        {
            var text = raw.Trim();
            if (text.Length == 0) continue;
            var colon = text.IndexOf(':', StringComparison.Ordinal);
            var viewName = colon < 0 ? text : text[..colon];
            if (!FeatureViews.TryGetValue(viewName, out var view))
                throw new KilnException($"{origin}: unknown feature view '{viewName}' in '{text}' (known: {Known(FeatureViews.Keys)})");
            if (colon < 0)
            {
                foreach (var f in view.Schema) Add(new FeatureRef(view.Name, f.Name));
                continue;
            }
            var feature = text[(colon + 1)..];
            if (view.Field(feature) is null)
                throw new KilnException($"{origin}: feature view '{view.Name}' ({view.DefinedIn}) has no feature '{feature}' (it has: {Known(view.Schema.Select(f => f.Name))})");
            Add(new FeatureRef(view.Name, feature));
        }
        if (result.Count == 0) throw new KilnException($"{origin}: no features requested");
        return result;

        void Add(FeatureRef r)
        {
            if (!result.Contains(r)) result.Add(r);
        }
    }

    /// <summary>The features of a feature service.</summary>
    public IReadOnlyList<FeatureRef> ServiceFeatures(string service)
    {
        if (!FeatureServices.TryGetValue(service, out var s))
            throw new KilnException($"unknown feature service '{service}' (known: {Known(FeatureServices.Keys)})");
        return ResolveFeatures(s.Features, $"feature service '{s.Name}' ({s.DefinedIn})");
    }

    internal static string Known(IEnumerable<string> names)
    {
        var list = names.Order(StringComparer.Ordinal).ToList();
        return list.Count == 0 ? "none" : string.Join(", ", list);
    }
}
