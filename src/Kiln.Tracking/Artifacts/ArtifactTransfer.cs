namespace Kiln.Tracking.Artifacts;

/// <summary>Copies whole directories between a local disk and an artifact store.</summary>
public static class ArtifactTransfer
{
    /// <summary>Uploads every file under a local directory to PREFIX/relative/path in the store; returns the file count.</summary>
    public static async Task<int> UploadDirectoryAsync(IArtifactStore store, string localDirectory, string prefix, CancellationToken ct = default)
    {
        var root = Path.GetFullPath(localDirectory);
        if (!Directory.Exists(root)) throw TrackingException.Invalid($"cannot upload '{localDirectory}': no such directory");
        var count = 0;
        foreach (var file in Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
        {
            var rel = Path.GetRelativePath(root, file).Replace(Path.DirectorySeparatorChar, '/');
            var stream = File.OpenRead(file);
            await using (stream.ConfigureAwait(false))
            {
                await store.PutAsync(ArtifactUris.Join(prefix, rel), stream, ct).ConfigureAwait(false);
            }
            count++;
        }
        return count;
    }

    /// <summary>Downloads every file under PREFIX in the store into a local directory; returns the file count.</summary>
    public static async Task<int> DownloadDirectoryAsync(IArtifactStore store, string prefix, string localDirectory, CancellationToken ct = default)
    {
        Directory.CreateDirectory(localDirectory);
        var count = 0;
        var pending = new Stack<string>();
        pending.Push(prefix);
        while (pending.Count > 0)
        {
            var dir = pending.Pop();
            foreach (var f in await store.ListAsync(dir, ct).ConfigureAwait(false))
            {
                if (f.IsDir)
                {
                    pending.Push(f.Path);
                    continue;
                }
                var rel = prefix.Length == 0 ? f.Path : f.Path[(prefix.Length + 1)..];
                var target = Path.GetFullPath(Path.Combine(localDirectory, rel));
                if (!target.StartsWith(Path.GetFullPath(localDirectory), StringComparison.Ordinal))
                    throw TrackingException.Invalid($"artifact '{f.Path}' would be written outside {localDirectory}");
                Directory.CreateDirectory(Path.GetDirectoryName(target)!);
                var source = await store.OpenReadAsync(f.Path, ct).ConfigureAwait(false);
                await using (source.ConfigureAwait(false))
                {
                    var file = File.Create(target);
                    await using (file.ConfigureAwait(false))
                    {
                        await source.CopyToAsync(file, ct).ConfigureAwait(false);
                    }
                }
                count++;
            }
        }
        return count;
    }
}
