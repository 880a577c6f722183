using Kiln.Core;
using Kiln.Storage.Objects;

namespace Kiln.Tracking.Artifacts;

/// <summary>
/// Artifacts as objects under an S3 location (s3://BUCKET/PREFIX), with the same rules as <see cref="LocalArtifactStore"/>:
/// paths are checked by the same normalizer ("..", absolute paths, backslashes and encoded separators refused), the same
/// upload limit applies, and a write is all or nothing (one PUT, or a multipart upload completed only when the whole
/// body has arrived). Listings follow continuation tokens, so a directory of any size is listed whole.
/// </summary>
public sealed class S3ArtifactStore : IArtifactStore, IDisposable
{
    public S3ArtifactStore(S3Storage storage, long maxFileBytes = LocalArtifactStore.DefaultMaxFileBytes)
    {
        Storage = storage ?? throw new ArgumentNullException(nameof(storage));
        MaxFileBytes = maxFileBytes;
    }

    public S3Storage Storage { get; }

    public long MaxFileBytes { get; }

    /// <summary>Checks that the bucket exists and answers, so a server fails at start rather than at the first upload.</summary>
    public Task CheckAsync(string what, CancellationToken ct = default) => Storage.CheckAsync(what, ct);

    public async Task PutAsync(string path, Stream content, CancellationToken ct = default)
    {
        var rel = LocalArtifactStore.Normalize(path, allowEmpty: false);
        await Guard(async () =>
        {
            // As on disk, a file may not take the place of a directory.
            if ((await Storage.ListAsync(rel, ct).ConfigureAwait(false)) is { } l && (l.Directories.Count > 0 || l.Objects.Count > 0))
                throw TrackingException.Invalid($"artifact path '{path}' is a directory");
            await Storage.PutAsync(rel, content, MaxFileBytes,
                () => new TrackingException(ErrorCode.InvalidParameterValue,
                    $"artifact '{Limits.Shorten(path)}' is larger than the upload limit of {MaxFileBytes} bytes"), ct).ConfigureAwait(false);
            return 0;
        }).ConfigureAwait(false);
    }

    public async Task<Stream> OpenReadAsync(string path, CancellationToken ct = default)
    {
        var rel = LocalArtifactStore.Normalize(path, allowEmpty: false);
        return await Guard(async () => await Storage.OpenReadAsync(rel, ct).ConfigureAwait(false)
            ?? throw TrackingException.NotFound($"artifact '{path}' not found")).ConfigureAwait(false);
    }

    public async Task<IReadOnlyList<ArtifactFile>> ListAsync(string? path, CancellationToken ct = default)
    {
        var rel = LocalArtifactStore.Normalize(path, allowEmpty: true);
        var listing = await Guard(() => Storage.ListAsync(rel, ct)).ConfigureAwait(false);
        var result = new List<ArtifactFile>(listing.Directories.Count + listing.Objects.Count);
        foreach (var d in listing.Directories.Order(StringComparer.Ordinal)) result.Add(new ArtifactFile(d, true, null));
        foreach (var o in listing.Objects.OrderBy(o => o.Key, StringComparer.Ordinal)) result.Add(new ArtifactFile(o.Key, false, o.Size));
        return result;
    }

    /// <summary>The storage's failures (unreachable, refused) are the server's, not the caller's: an internal error naming the location.</summary>
    private static async Task<T> Guard<T>(Func<Task<T>> call)
    {
        try
        {
            return await call().ConfigureAwait(false);
        }
        catch (KilnException e) when (e is not TrackingException)
        {
            throw new TrackingException(ErrorCode.InternalError, e.Message, e);
        }
    }

    public void Dispose() => Storage.Dispose();
}
