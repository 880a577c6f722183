namespace Kiln.Features.Http;

/// <summary>Where the feature endpoints find their definitions and values.</summary>
public sealed class KilnFeatureOptions
{
    /// <summary>
    /// The metadata store holding applied definitions (default <c>.kiln/kiln.db</c>; docs/cli.md#locations); null uses the
    /// host's one <see cref="Kiln.Storage.MetadataDatabase"/> (kiln server registers it).
    /// </summary>
    public string? Registry { get; set; } = ".kiln/kiln.db";

    /// <summary>The project to serve; null serves the most recently applied project.</summary>
    public string? Project { get; set; }

    /// <summary>Serve a YAML repository directly instead of the registry (development).</summary>
    public string? RepositoryPath { get; set; }

    /// <summary>The online store: a SQLite path (default <c>.kiln/online.db</c>) or <c>redis://host:port</c>.</summary>
    public string OnlineStore { get; set; } = Online.OnlineStores.DefaultPath;

    /// <summary>How often applied definitions are looked up again.</summary>
    public TimeSpan RefreshInterval { get; set; } = TimeSpan.FromSeconds(10);
}
