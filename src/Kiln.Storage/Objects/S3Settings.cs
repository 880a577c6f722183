namespace Kiln.Storage.Objects;

/// <summary>
/// How to reach an S3-compatible service, from the standard AWS settings: AWS_ENDPOINT_URL_S3 (or AWS_ENDPOINT_URL)
/// for a service other than AWS, AWS_REGION (or AWS_DEFAULT_REGION), and credentials from AWS_ACCESS_KEY_ID and
/// AWS_SECRET_ACCESS_KEY (with AWS_SESSION_TOKEN), else the SDK's usual chain (profile, container, instance role).
/// </summary>
public sealed record S3Settings
{
    /// <summary>The service URL; null means AWS itself, chosen by region.</summary>
    public string? Endpoint { get; init; }

    public string Region { get; init; } = "us-east-1";

    /// <summary>Explicit credentials; null lets the SDK find them (environment, profile, role).</summary>
    public string? AccessKey { get; init; }

    public string? SecretKey { get; init; }

    public string? SessionToken { get; init; }

    /// <summary>Addresses buckets as ENDPOINT/BUCKET rather than BUCKET.ENDPOINT; on by default for endpoints that are not AWS's.</summary>
    public bool PathStyle { get; init; }

    /// <summary>Objects larger than this are uploaded in parts (multipart upload).</summary>
    public long MultipartThreshold { get; init; } = 16L * 1024 * 1024;

    /// <summary>The size of each part of a multipart upload (S3's minimum is 5 MiB, except for the last part).</summary>
    public int PartSize { get; init; } = 8 * 1024 * 1024;

    /// <summary>Keys asked for per list request; S3 answers at most 1000 and a continuation token for the rest.</summary>
    public int ListPageSize { get; init; } = 1000;

    /// <summary>The settings the process's environment gives.</summary>
    public static S3Settings FromEnvironment() => FromVariables(Environment.GetEnvironmentVariable);

    /// <summary>The settings a set of variables gives (the environment's, or a test's).</summary>
    public static S3Settings FromVariables(Func<string, string?> get)
    {
        ArgumentNullException.ThrowIfNull(get);
        string? Get(string name) => get(name) is { Length: > 0 } v ? v : null;
        var endpoint = Get("AWS_ENDPOINT_URL_S3") ?? Get("AWS_ENDPOINT_URL");
        var pathStyle = Get("KILN_S3_PATH_STYLE") is { } ps
            ? ps is "1" or "true" or "TRUE" or "True"
            : endpoint is not null && !IsAws(endpoint);
        return new S3Settings
        {
            Endpoint = endpoint,
            Region = Get("AWS_REGION") ?? Get("AWS_DEFAULT_REGION") ?? "us-east-1",
            AccessKey = Get("AWS_ACCESS_KEY_ID"),
            SecretKey = Get("AWS_SECRET_ACCESS_KEY"),
            SessionToken = Get("AWS_SESSION_TOKEN"),
            PathStyle = pathStyle,
        };
    }

    private static bool IsAws(string endpoint) =>
        Uri.TryCreate(endpoint, UriKind.Absolute, out var u)
        && (u.Host.EndsWith(".amazonaws.com", StringComparison.OrdinalIgnoreCase) || u.Host.EndsWith(".amazonaws.com.cn", StringComparison.OrdinalIgnoreCase));
}
