using System.Text.RegularExpressions;

namespace Kiln.Tracking;

/// <summary>MLflow's limits on names, values and batch sizes, and the validation that enforces them.</summary>
public static partial class Limits
{
    public const int MaxEntityKeyLength = 250;
    public const int MaxParamValueLength = 6000;
    public const int MaxTagValueLength = 5000;
    public const int MaxExperimentNameLength = 500;
    public const int MaxBatchMetrics = 1000;
    public const int MaxBatchParams = 100;
    public const int MaxBatchTags = 100;
    public const int MaxBatchEntities = 1000;
    public const int MaxBatchRequestBytes = 1024 * 1024;
    public const int MaxSearchResults = 50000;
    public const int MaxRegisteredModelNameLength = 256;
    public const int MaxAliasLength = 255;

    [GeneratedRegex(@"^[/\w.\- ]+$")]
    private static partial Regex KeyPattern();

    [GeneratedRegex(@"^[A-Za-z0-9_\-]+$")]
    private static partial Regex AliasPattern();

    /// <summary>A metric, param or tag key: 1–250 characters of letters, digits, _ - . space and /, no "..".</summary>
    public static void ValidateKey(string? key, string kind)
    {
        if (string.IsNullOrEmpty(key)) throw TrackingException.Invalid($"{kind} key is missing");
        if (key.Length > MaxEntityKeyLength)
            throw TrackingException.Invalid($"{kind} key '{Shorten(key)}' has {key.Length} characters, over the limit of {MaxEntityKeyLength}");
        if (!KeyPattern().IsMatch(key))
            throw TrackingException.Invalid($"invalid {kind} key '{Shorten(key)}': names may only contain letters, digits, underscores (_), dashes (-), periods (.), spaces ( ) and slashes (/)");
        if (key.StartsWith('/') || key.Split('/').Any(s => s is ".." or "."))
            throw TrackingException.Invalid($"invalid {kind} key '{Shorten(key)}': it must be a relative path without '.' or '..' segments");
    }

    public static void ValidateParam(KeyValue p)
    {
        ValidateKey(p.Key, "param");
        if (p.Value is null) throw TrackingException.Invalid($"param '{p.Key}' has no value");
        if (p.Value.Length > MaxParamValueLength)
            throw TrackingException.Invalid($"param '{p.Key}' value has {p.Value.Length} characters, over the limit of {MaxParamValueLength}");
    }

    public static void ValidateTag(KeyValue t)
    {
        ValidateKey(t.Key, "tag");
        if (t.Value is null) throw TrackingException.Invalid($"tag '{t.Key}' has no value");
        if (t.Value.Length > MaxTagValueLength)
            throw TrackingException.Invalid($"tag '{t.Key}' value has {t.Value.Length} characters, over the limit of {MaxTagValueLength}");
    }

    public static void ValidateMetric(Metric m) => ValidateKey(m.Key, "metric");

    public static void ValidateBatch(IReadOnlyList<Metric>? metrics, IReadOnlyList<KeyValue>? @params, IReadOnlyList<KeyValue>? tags)
    {
        int nm = metrics?.Count ?? 0, np = @params?.Count ?? 0, nt = tags?.Count ?? 0;
        if (nm > MaxBatchMetrics)
            throw TrackingException.Invalid($"a batch logging request can contain at most {MaxBatchMetrics} metrics; got {nm}");
        if (np > MaxBatchParams)
            throw TrackingException.Invalid($"a batch logging request can contain at most {MaxBatchParams} params; got {np}");
        if (nt > MaxBatchTags)
            throw TrackingException.Invalid($"a batch logging request can contain at most {MaxBatchTags} tags; got {nt}");
        if (nm + np + nt > MaxBatchEntities)
            throw TrackingException.Invalid($"a batch logging request can contain at most {MaxBatchEntities} metrics, params and tags in total; got {nm + np + nt}");
        if (metrics is not null) foreach (var m in metrics) ValidateMetric(m);
        if (@params is not null)
        {
            var seen = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var p in @params)
            {
                ValidateParam(p);
                if (seen.TryGetValue(p.Key, out var v) && v != p.Value)
                    throw TrackingException.Invalid($"duplicate param '{p.Key}' with different values in one batch");
                seen[p.Key] = p.Value;
            }
        }
        if (tags is not null) foreach (var t in tags) ValidateTag(t);
    }

    public static void ValidateExperimentName(string? name)
    {
        if (string.IsNullOrWhiteSpace(name)) throw TrackingException.Invalid("experiment name is missing");
        if (name.Length > MaxExperimentNameLength)
            throw TrackingException.Invalid($"experiment name has {name.Length} characters, over the limit of {MaxExperimentNameLength}");
    }

    public static void ValidateModelName(string? name)
    {
        if (string.IsNullOrWhiteSpace(name)) throw TrackingException.Invalid("registered model name is missing");
        if (name.Length > MaxRegisteredModelNameLength)
            throw TrackingException.Invalid($"registered model name has {name.Length} characters, over the limit of {MaxRegisteredModelNameLength}");
        if (name.Contains('/') || name.Contains('@') || name.Contains(':'))
            throw TrackingException.Invalid($"registered model name '{Shorten(name)}' may not contain '/', '@' or ':'");
    }

    public static void ValidateAlias(string? alias)
    {
        if (string.IsNullOrEmpty(alias)) throw TrackingException.Invalid("alias is missing");
        if (alias.Length > MaxAliasLength || !AliasPattern().IsMatch(alias))
            throw TrackingException.Invalid($"invalid alias '{Shorten(alias)}': use up to {MaxAliasLength} letters, digits, '_' and '-'");
        if (alias.Length > 1 && alias[0] is 'v' or 'V' && alias.Skip(1).All(char.IsAsciiDigit))
            throw TrackingException.Invalid($"invalid alias '{alias}': aliases of the form v<number> are reserved for versions");
        if (alias.Equals("latest", StringComparison.OrdinalIgnoreCase))
            throw TrackingException.Invalid("invalid alias 'latest': it is reserved");
    }

    public static void ValidateMaxResults(int maxResults, int limit = MaxSearchResults)
    {
        if (maxResults < 1 || maxResults > limit)
            throw TrackingException.Invalid($"max_results must be between 1 and {limit}; got {maxResults}");
    }

    public static string Shorten(string s) => s.Length <= 40 ? s : s[..40] + "…";
}
