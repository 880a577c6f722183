using System.Security.Cryptography;
using System.Text;

namespace Kiln.Core;

/// <summary>SHA-256 helpers for datasets and packages.</summary>
public static class Hashing
{
    /// <summary>SHA-256 of a list of files: the file's own hash for one file, else the hash of "path-relative-hash\n" lines.</summary>
    public static string Sha256OfFiles(IReadOnlyList<(string Name, string Sha256)> files)
    {
        if (files.Count == 1) return files[0].Sha256;
        var sb = new StringBuilder();
        foreach (var (name, sha) in files) sb.Append(name).Append(' ').Append(sha).Append('\n');
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(sb.ToString())));
    }
}
