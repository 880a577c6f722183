using Kiln.Core;

namespace Kiln.Storage.Objects;

/// <summary>An S3 location, s3://BUCKET/PREFIX: a bucket and a key prefix (without leading or trailing slash).</summary>
public sealed record S3Location(string Bucket, string Prefix)
{
    public const string Scheme = "s3://";

    /// <summary>True when the text names an S3 location (s3://…).</summary>
    public static bool IsS3(string? text) => text is not null && text.StartsWith(Scheme, StringComparison.OrdinalIgnoreCase);

    /// <summary>Parses s3://BUCKET[/PREFIX]; <paramref name="what"/> names the option in the error ("--artifacts").</summary>
    public static S3Location Parse(string text, string what)
    {
        if (!IsS3(text)) throw new KilnException($"{what} {text}: not an s3:// location");
        var rest = text[Scheme.Length..];
        var slash = rest.IndexOf('/', StringComparison.Ordinal);
        var bucket = slash < 0 ? rest : rest[..slash];
        var prefix = slash < 0 ? "" : rest[(slash + 1)..];
        if (!ValidBucket(bucket))
            throw new KilnException($"{what} {text}: '{bucket}' is not a bucket name (3–63 lower-case letters, digits, dots and hyphens)");
        if (prefix.Contains('\\') || prefix.Contains('?') || prefix.Contains('#'))
            throw new KilnException($"{what} {text}: the prefix may not hold backslashes, '?' or '#'");
        var segments = prefix.Split('/', StringSplitOptions.RemoveEmptyEntries);
        if (segments.Any(s => s is "." or ".."))
            throw new KilnException($"{what} {text}: '.' and '..' segments are not allowed in the prefix");
        return new S3Location(bucket, string.Join('/', segments));
    }

    /// <summary>The full key of a path relative to the prefix.</summary>
    public string Key(string relative) => Prefix.Length == 0 ? relative : relative.Length == 0 ? Prefix : Prefix + "/" + relative;

    /// <summary>A location below this one.</summary>
    public S3Location Child(string relative) => new(Bucket, Key(relative.Trim('/')));

    public override string ToString() => Prefix.Length == 0 ? $"{Scheme}{Bucket}" : $"{Scheme}{Bucket}/{Prefix}";

    private static bool ValidBucket(string b)
    {
        if (b.Length is < 3 or > 63) return false;
        if (!char.IsAsciiLetterLower(b[0]) && !char.IsAsciiDigit(b[0])) return false;
        if (!char.IsAsciiLetterLower(b[^1]) && !char.IsAsciiDigit(b[^1])) return false;
        foreach (var c in b)
        {
            if (!char.IsAsciiLetterLower(c) && !char.IsAsciiDigit(c) && c is not '.' and not '-') return false;
        }
        return !b.Contains("..", StringComparison.Ordinal);
    }
}
