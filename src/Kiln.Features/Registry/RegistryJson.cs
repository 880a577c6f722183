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

// The wire shapes of /api/v1/features (kiln server's registry API; RemoteFeatureRegistry is its client).

/// <summary>POST apply: the repository and the folder it was read from on the client.</summary>
internal sealed record ApplyBody(string RepoPath, RepositorySnapshot Repository);

/// <summary>The answer to POST apply: the version now current and the plan applied.</summary>
internal sealed record ApplyAnswer(int Version, RepositoryPlan Plan);

/// <summary>One recorded version with its definitions; <see cref="Found"/> false when there is none.</summary>
internal sealed record VersionAnswer(bool Found, RegistryVersion? Version, RepositorySnapshot? Repository);

/// <summary>GET versions.</summary>
internal sealed record VersionListAnswer(List<RegistryVersion> Versions);

/// <summary>POST materializations.</summary>
internal sealed record MaterializationBody(string Project, string View, DateTime Start, DateTime End, long Rows);

/// <summary>GET materializations/last.</summary>
internal sealed record LastMaterializedAnswer(DateTime? End);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    UseStringEnumConverter = true)]
[JsonSerializable(typeof(RepositorySnapshot))]
[JsonSerializable(typeof(RepositoryPlan))]
[JsonSerializable(typeof(ApplyBody))]
[JsonSerializable(typeof(ApplyAnswer))]
[JsonSerializable(typeof(VersionAnswer))]
[JsonSerializable(typeof(VersionListAnswer))]
[JsonSerializable(typeof(MaterializationBody))]
[JsonSerializable(typeof(LastMaterializedAnswer))]
[JsonSerializable(typeof(EntityDefinition))]
[JsonSerializable(typeof(SourceDefinition))]
[JsonSerializable(typeof(PushSourceDefinition))]
[JsonSerializable(typeof(FeatureViewDefinition))]
[JsonSerializable(typeof(FeatureServiceDefinition))]
internal sealed partial class RegistryJsonContext : JsonSerializerContext;
