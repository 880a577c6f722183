namespace Kiln.Serving.Features;

/// <summary>
/// Where <c>kiln serve</c> reads online features for models that take them: a package trained from a feature service
/// (its metadata records the service), or any package when <see cref="Service"/> is set.
/// </summary>
public sealed class FeatureStoreOptions
{
    /// <summary>The feature registry holding applied definitions: a SQLite path or a PostgreSQL URI.</summary>
    public string Registry { get; init; } = Environment.GetEnvironmentVariable("KILN_FEATURE_REGISTRY") is { Length: > 0 } r ? r : ".kiln/kiln.db";

    /// <summary>Read definitions from this YAML feature repository instead of the registry (development).</summary>
    public string? RepositoryPath { get; init; }

    /// <summary>The online store: a SQLite path or <c>redis://host:port</c>.</summary>
    public string OnlineStore { get; init; } = Environment.GetEnvironmentVariable("KILN_ONLINE_STORE") is { Length: > 0 } s ? s : Kiln.Features.Online.OnlineStores.DefaultPath;

    /// <summary>Serve every package that records no feature service with this one (its inputs matched to features by name).</summary>
    public string? Service { get; init; }

    /// <summary>The project for <see cref="Service"/>; null: the most recently applied one.</summary>
    public string? Project { get; init; }

    /// <summary>How often the latest definitions are looked up again for <see cref="Service"/> (recorded versions are fixed).</summary>
    public TimeSpan RefreshInterval { get; init; } = TimeSpan.FromSeconds(10);
}
