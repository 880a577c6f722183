namespace Kiln.Tracking.Artifacts;

/// <summary>
/// Artifacts as files under one local directory. Every path is checked before it touches the disk:
/// "..", absolute paths, backslashes and percent-encoded separators are refused, and the resolved
/// path must stay under the root. Writes go to a temporary file first, so a failed or oversized
/// upload leaves nothing behind.
/// </summary>
public sealed class LocalArtifactStore : IArtifactStore
{
    /// <summary>The default upload limit: 2 GiB per file.</summary>
    public const long DefaultMaxFileBytes = 2L * 1024 * 1024 * 1024;

    private readonly string _root;

    public LocalArtifactStore(string root, long maxFileBytes = DefaultMaxFileBytes)
    {
        _root = Path.GetFullPath(root);
        MaxFileBytes = maxFileBytes;
        Directory.CreateDirectory(_root);
    }

    public string Root => _root;

    public long MaxFileBytes { get; }

    /// <summary>Checks a relative artifact path and returns it normalized (forward slashes, no empty segments).</summary>
    public static string Normalize(string? path, bool allowEmpty)
    {
        path ??= "";
        if (path.Length == 0)
        {
            if (allowEmpty) return "";
            throw TrackingException.Invalid("artifact path is missing");
        }
        if (path.Contains('\\') || path.Contains('\0'))
            throw TrackingException.Invalid($"invalid artifact path '{Limits.Shorten(path)}': backslashes and NUL characters are not allowed");
        if (path.Contains("%2f", StringComparison.OrdinalIgnoreCase) || path.Contains("%5c", StringComparison.OrdinalIgnoreCase)
            || path.Contains("%2e", StringComparison.OrdinalIgnoreCase) || path.Contains("%00", StringComparison.Ordinal))
            throw TrackingException.Invalid($"invalid artifact path '{Limits.Shorten(path)}': encoded separators or dots are not allowed");
        if (path.StartsWith('/') || path.StartsWith('~') || (path.Length > 1 && path[1] == ':'))
            throw TrackingException.Invalid($"invalid artifact path '{Limits.Shorten(path)}': absolute paths are not allowed");
        var segments = path.Split('/', StringSplitOptions.RemoveEmptyEntries);
        foreach (var s in segments)
        {
            if (s is ".." or ".")
                throw TrackingException.Invalid($"invalid artifact path '{Limits.Shorten(path)}': '.' and '..' segments are not allowed");
        }
        var normalized = string.Join('/', segments);
        if (normalized.Length == 0 && !allowEmpty) throw TrackingException.Invalid("artifact path is missing");
        return normalized;
    }

    private string Resolve(string? path, bool allowEmpty)
    {
        var rel = Normalize(path, allowEmpty);
        var full = Path.GetFullPath(Path.Combine(_root, rel));
        // Belt and braces: whatever the checks above missed, nothing resolves outside the root.
        if (full != _root && !full.StartsWith(_root + Path.DirectorySeparatorChar, StringComparison.Ordinal))
            throw TrackingException.Invalid($"invalid artifact path '{Limits.Shorten(path ?? "")}': it leaves the artifact root");
        return full;
    }

    public async Task PutAsync(string path, Stream content, CancellationToken ct = default)
    {
        var full = Resolve(path, allowEmpty: false);
        if (Directory.Exists(full)) throw TrackingException.Invalid($"artifact path '{path}' is a directory");
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        var temp = full + ".upload-" + Guid.NewGuid().ToString("N")[..8];
        try
        {
            var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 81920, useAsync: true);
            await using (file.ConfigureAwait(false))
            {
                var buffer = new byte[81920];
                long total = 0;
                int n;
                while ((n = await content.ReadAsync(buffer, ct).ConfigureAwait(false)) > 0)
                {
                    total += n;
                    if (total > MaxFileBytes)
                        throw new TrackingException(ErrorCode.InvalidParameterValue,
                            $"artifact '{Limits.Shorten(path)}' is larger than the upload limit of {MaxFileBytes} bytes");
                    await file.WriteAsync(buffer.AsMemory(0, n), ct).ConfigureAwait(false);
                }
                await file.FlushAsync(ct).ConfigureAwait(false);
            }
            File.Move(temp, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }

    public Task<Stream> OpenReadAsync(string path, CancellationToken ct = default)
    {
        var full = Resolve(path, allowEmpty: false);
        if (!File.Exists(full)) throw TrackingException.NotFound($"artifact '{path}' not found");
        return Task.FromResult<Stream>(new FileStream(full, FileMode.Open, FileAccess.Read, FileShare.Read, 81920, useAsync: true));
    }

    public Task<IReadOnlyList<ArtifactFile>> ListAsync(string? path, CancellationToken ct = default)
    {
        var rel = Normalize(path, allowEmpty: true);
        var full = Resolve(rel, allowEmpty: true);
        var result = new List<ArtifactFile>();
        if (Directory.Exists(full))
        {
            var prefix = rel.Length == 0 ? "" : rel + "/";
            foreach (var d in Directory.EnumerateDirectories(full).Order(StringComparer.Ordinal))
                result.Add(new ArtifactFile(prefix + Path.GetFileName(d), true, null));
            foreach (var f in Directory.EnumerateFiles(full).Order(StringComparer.Ordinal))
            {
                var name = Path.GetFileName(f);
                if (name.Contains(".upload-", StringComparison.Ordinal)) continue;
                result.Add(new ArtifactFile(prefix + name, false, new FileInfo(f).Length));
            }
        }
        return Task.FromResult<IReadOnlyList<ArtifactFile>>(result);
    }
}
