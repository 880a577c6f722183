namespace Kiln.Tracking;

/// <summary>Parses the URIs that name a model: models:/NAME/VERSION, models:/NAME@ALIAS, models:/NAME/STAGE, runs:/RUN_ID/PATH.</summary>
public static class ModelUris
{
    /// <summary>The run id of a runs:/RUN_ID/PATH source, else null.</summary>
    public static string? RunIdOf(string source)
    {
        if (!source.StartsWith("runs:/", StringComparison.Ordinal)) return null;
        var rest = source["runs:/".Length..].TrimStart('/');
        var slash = rest.IndexOf('/', StringComparison.Ordinal);
        return slash < 0 ? rest : rest[..slash];
    }

    /// <summary>Splits runs:/RUN_ID/PATH into the run id and the artifact path under the run's root.</summary>
    public static (string RunId, string Path) ParseRunsUri(string uri)
    {
        if (!uri.StartsWith("runs:/", StringComparison.Ordinal)) throw TrackingException.Invalid($"'{uri}' is not a runs:/RUN_ID/PATH URI");
        var rest = uri["runs:/".Length..].TrimStart('/');
        var slash = rest.IndexOf('/', StringComparison.Ordinal);
        var runId = slash < 0 ? rest : rest[..slash];
        if (runId.Length == 0) throw TrackingException.Invalid($"invalid model URI '{uri}': expected runs:/RUN_ID/PATH");
        return (runId, slash < 0 ? "" : rest[(slash + 1)..].Trim('/'));
    }

    /// <summary>The artifact URI a model version's source points at (runs:/ sources resolve through the run's artifact_uri).</summary>
    public static async Task<string> ArtifactUriOfAsync(string source, ITrackingStore tracking, CancellationToken ct)
    {
        if (!source.StartsWith("runs:/", StringComparison.Ordinal)) return source;
        var (runId, path) = ParseRunsUri(source);
        var run = await tracking.GetRunAsync(runId, ct).ConfigureAwait(false);
        return path.Length == 0 ? run.Info.ArtifactUri : run.Info.ArtifactUri.TrimEnd('/') + "/" + path;
    }

    /// <summary>A parsed models:/ URI: a name and exactly one of version, alias or stage.</summary>
    public sealed record ModelRef(string Name, int? Version, string? Alias, string? Stage);

    public static ModelRef ParseModelsUri(string uri)
    {
        if (!uri.StartsWith("models:/", StringComparison.Ordinal)) throw TrackingException.Invalid($"'{uri}' is not a models:/ URI");
        var rest = uri["models:/".Length..].Trim('/');
        var at = rest.IndexOf('@', StringComparison.Ordinal);
        if (at > 0)
        {
            var alias = rest[(at + 1)..];
            if (alias.Length == 0 || alias.Contains('/')) throw Bad(uri);
            return new ModelRef(rest[..at], null, alias, null);
        }
        var slash = rest.LastIndexOf('/');
        if (slash <= 0 || slash == rest.Length - 1) throw Bad(uri);
        var name = rest[..slash];
        var what = rest[(slash + 1)..];
        if (int.TryParse(what, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var v) && v > 0)
            return new ModelRef(name, v, null, null);
        if (what.Equals("latest", StringComparison.OrdinalIgnoreCase)) return new ModelRef(name, null, null, "latest");
        var stage = ModelStage.Normalize(what) ?? throw Bad(uri);
        return new ModelRef(name, null, null, stage);
    }

    private static TrackingException Bad(string uri) =>
        TrackingException.Invalid($"invalid model URI '{uri}': use models:/NAME/VERSION, models:/NAME@ALIAS or models:/NAME/STAGE");
}
