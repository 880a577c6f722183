using System.Text.Json.Serialization;
using Kiln.Features.Definitions;

namespace Kiln.Features.Registry;

/// <summary>Every definition of a repository at one version, as stored in the registry.</summary>
internal sealed record RepositorySnapshot(
    string Project,
    List<EntityDefinition> Entities,
    List<SourceDefinition> Sources,
    List<PushSourceDefinition> PushSources,
    List<FeatureViewDefinition> FeatureViews,
    List<FeatureServiceDefinition> FeatureServices)
{
    public static RepositorySnapshot Of(FeatureRepository repo) => new(
        repo.Project,
        [.. repo.Entities.Values.OrderBy(e => e.Name, StringComparer.Ordinal)],
        [.. repo.Sources.Values.OrderBy(e => e.Name, StringComparer.Ordinal)],
        [.. repo.PushSources.Values.OrderBy(e => e.Name, StringComparer.Ordinal)],
        [.. repo.FeatureViews.Values.OrderBy(e => e.Name, StringComparer.Ordinal)],
        [.. repo.FeatureServices.Values.OrderBy(e => e.Name, StringComparer.Ordinal)]);

    public FeatureRepository ToRepository() => new(Project, Entities, Sources, PushSources, FeatureViews, FeatureServices);
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    UseStringEnumConverter = true)]
[JsonSerializable(typeof(RepositorySnapshot))]
[JsonSerializable(typeof(EntityDefinition))]
[JsonSerializable(typeof(SourceDefinition))]
[JsonSerializable(typeof(PushSourceDefinition))]
[JsonSerializable(typeof(FeatureViewDefinition))]
[JsonSerializable(typeof(FeatureServiceDefinition))]
internal sealed partial class RegistryJsonContext : JsonSerializerContext;
