using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Kiln.Core;

namespace Kiln.Auth;

/// <summary>
/// Service tokens: 32 random bytes from the OS generator, shown once as <c>kiln_</c> + base64url; only their SHA-256
/// is kept. A slow password hash is not needed here: a 256-bit random secret cannot be guessed from its digest,
/// and a fast digest lets every request be checked with one indexed lookup.
/// </summary>
public static class ServiceTokens
{
    public const string Prefix = "kiln_";

    /// <summary>A new secret token.</summary>
    public static string NewSecret() => Prefix + Base64Url(RandomNumberGenerator.GetBytes(32));

    /// <summary>A short public id (12 hex digits) that names a token in listings and revocation.</summary>
    public static string NewId() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6));

    /// <summary>The stored form of a secret: "sha256:" and 64 lowercase hex digits.</summary>
    public static string Hash(string secret) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(secret)));

    /// <summary>Compares two stored forms in constant time.</summary>
    public static bool HashEquals(string a, string b) =>
        CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(a), Encoding.ASCII.GetBytes(b));

    private static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}

/// <summary>One line of a token file: a name, the token's SHA-256 and an optional expiry.</summary>
public sealed record TokenFileEntry(string Name, string Hash, DateTimeOffset? ExpiresAt);

/// <summary>
/// A file of hashed tokens for <c>kiln serve --require-token</c> without a database: one token per line,
/// <c>NAME sha256:HEX [EXPIRES]</c> (EXPIRES in ISO 8601 UTC); blank lines and lines starting with '#' are skipped.
/// </summary>
public static class TokenFile
{
    public static IReadOnlyList<TokenFileEntry> Read(string path)
    {
        if (!File.Exists(path)) throw new KilnException($"token file {path}: does not exist");
        var entries = new List<TokenFileEntry>();
        var lineNo = 0;
        foreach (var raw in File.ReadLines(path))
        {
            lineNo++;
            var line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#')) continue;
            var parts = line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length is < 2 or > 3 || !IsHash(parts[1]))
                throw new KilnException($"token file {path}, line {lineNo}: expected 'NAME sha256:HEX [EXPIRES]' (the line kiln auth token create --file writes)");
            DateTimeOffset? expires = null;
            if (parts.Length == 3)
            {
                if (!DateTimeOffset.TryParse(parts[2], CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var e))
                    throw new KilnException($"token file {path}, line {lineNo}: '{parts[2]}' is not an ISO 8601 time");
                expires = e;
            }
            entries.Add(new TokenFileEntry(parts[0], parts[1], expires));
        }
        return entries;
    }

    /// <summary>Appends a new token's line (creating the file, readable by its owner only) and returns the secret, which is not stored.</summary>
    public static string Append(string path, string name, DateTimeOffset? expiresAt)
    {
        if (name.Length == 0 || name.Any(char.IsWhiteSpace)) throw new KilnException($"--name '{name}': a token name is one word");
        if (File.Exists(path) && Read(path).Any(e => e.Name == name)) throw new KilnException($"token file {path}: a token named '{name}' exists already");
        var secret = ServiceTokens.NewSecret();
        var line = $"{name} {ServiceTokens.Hash(secret)}{(expiresAt is { } e ? " " + e.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture) : "")}\n";
        var created = !File.Exists(path);
        File.AppendAllText(path, line);
        if (created && !OperatingSystem.IsWindows()) File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        return secret;
    }

    private static bool IsHash(string s) =>
        s.Length == 71 && s.StartsWith("sha256:", StringComparison.Ordinal) && s.AsSpan(7).IndexOfAnyExcept("0123456789abcdef") < 0;
}
