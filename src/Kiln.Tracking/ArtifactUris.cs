namespace Kiln.Tracking;

/// <summary>Artifact URIs: mlflow-artifacts:/PATH names PATH under the artifact store's root.</summary>
public static class ArtifactUris
{
    public const string Scheme = "mlflow-artifacts:";

    /// <summary>The store-relative path an artifact URI names, or null when the URI is not served by the artifact store.</summary>
    public static string? ToStorePath(string? uri)
    {
        if (string.IsNullOrEmpty(uri) || !uri.StartsWith(Scheme, StringComparison.Ordinal)) return null;
        var rest = uri[Scheme.Length..];
        if (rest.StartsWith("//", StringComparison.Ordinal))
        {
            // mlflow-artifacts://host:port/path: the host is where the proxy runs; the path is what counts.
            var slash = rest.IndexOf('/', 2);
            rest = slash < 0 ? "" : rest[slash..];
        }
        return rest.Trim('/');
    }

    /// <summary>A run's artifact root in the store ("EXP/RUN/artifacts"), from its artifact_uri.</summary>
    public static string RunRoot(RunInfo run) =>
        ToStorePath(run.ArtifactUri)
        ?? throw TrackingException.Invalid($"run {run.RunId} keeps its artifacts at '{run.ArtifactUri}', which Kiln's artifact store does not serve");

    public static string Join(string root, string? path) =>
        string.IsNullOrEmpty(path) ? root : root.Length == 0 ? path : root + "/" + path.Trim('/');
}
