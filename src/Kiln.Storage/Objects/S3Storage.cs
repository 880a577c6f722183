using System.Buffers;
using System.Net;
using Amazon.Runtime;
using Amazon.S3;
using Amazon.S3.Model;
using Kiln.Core;

namespace Kiln.Storage.Objects;

/// <summary>An object under an S3 location, by its key relative to the location's prefix.</summary>
public readonly record struct S3Entry(string Key, long Size);

/// <summary>One level of a listing: the "directories" (common prefixes, without the trailing slash) and the objects.</summary>
public sealed record S3Listing(IReadOnlyList<string> Directories, IReadOnlyList<S3Entry> Objects);

/// <summary>
/// The objects under one S3 location (AWSSDK.S3): whole-object writes (one PUT, or a multipart upload above
/// <see cref="S3Settings.MultipartThreshold"/>, aborted on failure so no partial object is ever visible), reads,
/// listings that follow continuation tokens, and failures as one line naming the location.
/// </summary>
public sealed class S3Storage : IDisposable
{
    private readonly AmazonS3Client _client;

    public S3Storage(S3Location location, S3Settings settings)
    {
        ArgumentNullException.ThrowIfNull(location);
        ArgumentNullException.ThrowIfNull(settings);
        Location = location;
        Settings = settings;
        var config = new AmazonS3Config
        {
            ForcePathStyle = settings.PathStyle,
            // S3-compatible servers (MinIO, Ceph, s3rver) do not all take the SDK's trailing checksums.
            RequestChecksumCalculation = RequestChecksumCalculation.WHEN_REQUIRED,
            ResponseChecksumValidation = ResponseChecksumValidation.WHEN_REQUIRED,
            MaxErrorRetry = 3,
        };
        if (settings.Endpoint is { } endpoint)
        {
            config.ServiceURL = endpoint;
            config.AuthenticationRegion = settings.Region;
        }
        else
        {
            config.RegionEndpoint = Amazon.RegionEndpoint.GetBySystemName(settings.Region);
        }
        _client = settings.AccessKey is { } key && settings.SecretKey is { } secret
            ? new AmazonS3Client(settings.SessionToken is { } token ? new SessionAWSCredentials(key, secret, token) : new BasicAWSCredentials(key, secret), config)
            : new AmazonS3Client(config);
    }

    /// <summary>Opens the location a text names (s3://BUCKET/PREFIX) with the environment's AWS settings.</summary>
    public static S3Storage Open(string text, string what, S3Settings? settings = null) =>
        new(S3Location.Parse(text, what), settings ?? S3Settings.FromEnvironment());

    public S3Location Location { get; }

    public S3Settings Settings { get; }

    /// <summary>The client underneath, for what this class does not wrap.</summary>
    public IAmazonS3 Client => _client;

    /// <summary>The location and where it is served from, for messages.</summary>
    public string Describe() => $"{Location} ({(Settings.Endpoint is { } e ? "endpoint " + e : "AWS " + Settings.Region)})";

    /// <summary>Checks that the bucket exists and can be listed; throws one line naming the location otherwise.</summary>
    public async Task CheckAsync(string what, CancellationToken ct = default)
    {
        try
        {
            await _client.ListObjectsV2Async(new ListObjectsV2Request { BucketName = Location.Bucket, Prefix = Location.Prefix, MaxKeys = 1 }, ct)
                .ConfigureAwait(false);
        }
        catch (Exception e) when (e is AmazonServiceException or HttpRequestException or AmazonClientException)
        {
            throw Fail(e, what);
        }
    }

    /// <summary>
    /// Writes an object whole from a stream of unknown length: one PUT up to the multipart threshold, else a
    /// multipart upload that is completed only when the stream has ended and aborted on any failure. When the
    /// stream passes <paramref name="maxBytes"/>, <paramref name="tooLarge"/> is thrown and nothing is written.
    /// Returns the bytes written.
    /// </summary>
    public async Task<long> PutAsync(string key, Stream content, long maxBytes, Func<Exception> tooLarge, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(content);
        ArgumentNullException.ThrowIfNull(tooLarge);
        var fullKey = Location.Key(key);
        var threshold = (int)Math.Min(Settings.MultipartThreshold, int.MaxValue - 1);
        var first = ArrayPool<byte>.Shared.Rent(threshold + 1);
        try
        {
            var n = await FillAsync(content, first.AsMemory(0, threshold + 1), ct).ConfigureAwait(false);
            if (n > maxBytes) throw tooLarge();
            if (n <= threshold)
            {
                using var body = new MemoryStream(first, 0, n, writable: false);
                await Call(() => _client.PutObjectAsync(new PutObjectRequest
                {
                    BucketName = Location.Bucket,
                    Key = fullKey,
                    InputStream = body,
                    AutoCloseStream = false,
                    UseChunkEncoding = false,
                }, ct), key).ConfigureAwait(false);
                return n;
            }
            return await MultipartAsync(fullKey, key, first, n, content, maxBytes, tooLarge, ct).ConfigureAwait(false);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(first);
        }
    }

    private async Task<long> MultipartAsync(string fullKey, string key, byte[] first, int firstCount, Stream content, long maxBytes,
        Func<Exception> tooLarge, CancellationToken ct)
    {
        var init = await Call(() => _client.InitiateMultipartUploadAsync(new InitiateMultipartUploadRequest { BucketName = Location.Bucket, Key = fullKey }, ct), key)
            .ConfigureAwait(false);
        var etags = new List<PartETag>();
        long total = firstCount;
        var buffer = ArrayPool<byte>.Shared.Rent(Settings.PartSize);
        try
        {
            await UploadPartAsync(fullKey, key, init.UploadId, 1, first, firstCount, etags, ct).ConfigureAwait(false);
            while (true)
            {
                var n = await FillAsync(content, buffer.AsMemory(0, Settings.PartSize), ct).ConfigureAwait(false);
                if (n == 0) break;
                total += n;
                if (total > maxBytes) throw tooLarge();
                await UploadPartAsync(fullKey, key, init.UploadId, etags.Count + 1, buffer, n, etags, ct).ConfigureAwait(false);
                if (n < Settings.PartSize) break;
            }
            await Call(() => _client.CompleteMultipartUploadAsync(new CompleteMultipartUploadRequest
            {
                BucketName = Location.Bucket,
                Key = fullKey,
                UploadId = init.UploadId,
                PartETags = etags,
            }, ct), key).ConfigureAwait(false);
            return total;
        }
        catch
        {
            // Nothing of an unfinished upload is visible; aborting frees the parts already stored.
            try
            {
                await _client.AbortMultipartUploadAsync(new AbortMultipartUploadRequest { BucketName = Location.Bucket, Key = fullKey, UploadId = init.UploadId },
                    CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception e) when (e is AmazonServiceException or HttpRequestException or AmazonClientException)
            {
                // The upload stays invisible either way; a bucket lifecycle rule removes abandoned parts.
            }
            throw;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private async Task UploadPartAsync(string fullKey, string key, string uploadId, int number, byte[] data, int count, List<PartETag> etags,
        CancellationToken ct)
    {
        using var body = new MemoryStream(data, 0, count, writable: false);
        var r = await Call(() => _client.UploadPartAsync(new UploadPartRequest
        {
            BucketName = Location.Bucket,
            Key = fullKey,
            UploadId = uploadId,
            PartNumber = number,
            PartSize = count,
            InputStream = body,
            UseChunkEncoding = false,
        }, ct), key).ConfigureAwait(false);
        etags.Add(new PartETag(number, r.ETag));
    }

    /// <summary>Uploads a local file whole (multipart above the threshold).</summary>
    public async Task<long> PutFileAsync(string key, string file, CancellationToken ct = default)
    {
        var s = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, useAsync: true);
        await using (s.ConfigureAwait(false))
        {
            return await PutAsync(key, s, long.MaxValue, () => new KilnException($"{file}: too large"), ct).ConfigureAwait(false);
        }
    }

    /// <summary>A stream of the object's bytes, or null when there is no such object.</summary>
    public async Task<Stream?> OpenReadAsync(string key, CancellationToken ct = default)
    {
        try
        {
            var r = await _client.GetObjectAsync(new GetObjectRequest { BucketName = Location.Bucket, Key = Location.Key(key) }, ct).ConfigureAwait(false);
            return r.ResponseStream;
        }
        catch (AmazonS3Exception e) when (IsMissingKey(e))
        {
            return null;
        }
        catch (Exception e) when (e is AmazonServiceException or HttpRequestException or AmazonClientException)
        {
            throw Fail(e, key);
        }
    }

    /// <summary>The object's size, or null when there is no such object.</summary>
    public async Task<long?> SizeAsync(string key, CancellationToken ct = default)
    {
        try
        {
            var r = await _client.GetObjectMetadataAsync(new GetObjectMetadataRequest { BucketName = Location.Bucket, Key = Location.Key(key) }, ct)
                .ConfigureAwait(false);
            return r.ContentLength;
        }
        catch (AmazonS3Exception e) when (IsMissingKey(e))
        {
            return null;
        }
        catch (Exception e) when (e is AmazonServiceException or HttpRequestException or AmazonClientException)
        {
            throw Fail(e, key);
        }
    }

    /// <summary>
    /// The direct children of a "directory" (keys relative to the location; the root when empty), following
    /// continuation tokens until the listing is whole.
    /// </summary>
    public async Task<S3Listing> ListAsync(string directory, CancellationToken ct = default)
    {
        var dirKey = Location.Key(directory.Trim('/'));
        var prefix = dirKey.Length == 0 ? "" : dirKey + "/";
        var strip = Location.Prefix.Length == 0 ? 0 : Location.Prefix.Length + 1;
        var dirs = new List<string>();
        var objects = new List<S3Entry>();
        string? token = null;
        do
        {
            var page = await Call(() => _client.ListObjectsV2Async(new ListObjectsV2Request
            {
                BucketName = Location.Bucket,
                Prefix = prefix,
                Delimiter = "/",
                MaxKeys = Settings.ListPageSize,
                ContinuationToken = token,
            }, ct), directory).ConfigureAwait(false);
            foreach (var p in page.CommonPrefixes ?? [])
                dirs.Add(p.TrimEnd('/')[strip..]);
            foreach (var o in page.S3Objects ?? [])
            {
                // A zero-byte "folder marker" (KEY/) made by other tools is the directory itself, not a child.
                if (o.Key.EndsWith('/')) continue;
                objects.Add(new S3Entry(o.Key[strip..], o.Size ?? 0));
            }
            token = page.IsTruncated == true ? page.NextContinuationToken : null;
        }
        while (token is not null);
        return new S3Listing(dirs, objects);
    }

    /// <summary>Every object under a "directory", at any depth (keys relative to the location).</summary>
    public async Task<IReadOnlyList<S3Entry>> ListAllAsync(string directory, CancellationToken ct = default)
    {
        var dirKey = Location.Key(directory.Trim('/'));
        var prefix = dirKey.Length == 0 ? "" : dirKey + "/";
        var strip = Location.Prefix.Length == 0 ? 0 : Location.Prefix.Length + 1;
        var objects = new List<S3Entry>();
        string? token = null;
        do
        {
            var page = await Call(() => _client.ListObjectsV2Async(new ListObjectsV2Request
            {
                BucketName = Location.Bucket,
                Prefix = prefix,
                MaxKeys = Settings.ListPageSize,
                ContinuationToken = token,
            }, ct), directory).ConfigureAwait(false);
            foreach (var o in page.S3Objects ?? [])
            {
                if (!o.Key.EndsWith('/')) objects.Add(new S3Entry(o.Key[strip..], o.Size ?? 0));
            }
            token = page.IsTruncated == true ? page.NextContinuationToken : null;
        }
        while (token is not null);
        return objects;
    }

    /// <summary>Removes an object (no error when it is not there).</summary>
    public Task DeleteAsync(string key, CancellationToken ct = default) =>
        Call(() => _client.DeleteObjectAsync(new DeleteObjectRequest { BucketName = Location.Bucket, Key = Location.Key(key) }, ct), key);

    private static bool IsMissingKey(AmazonS3Exception e) =>
        e.ErrorCode == "NoSuchKey" || (e.StatusCode == HttpStatusCode.NotFound && e.ErrorCode != "NoSuchBucket");

    private async Task<T> Call<T>(Func<Task<T>> call, string key)
    {
        try
        {
            return await call().ConfigureAwait(false);
        }
        catch (Exception e) when (e is AmazonServiceException or HttpRequestException or AmazonClientException)
        {
            throw Fail(e, key);
        }
    }

    /// <summary>One line that says what went wrong with which location, whatever layer of the SDK it came from.</summary>
    private KilnException Fail(Exception e, string what)
    {
        var where = Describe();
        var message = e switch
        {
            AmazonS3Exception { ErrorCode: "NoSuchBucket" } => $"{where}: bucket '{Location.Bucket}' does not exist",
            AmazonS3Exception { ErrorCode: "InvalidAccessKeyId" or "SignatureDoesNotMatch" } s =>
                $"{where}: the credentials were refused ({s.ErrorCode}); check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
            AmazonS3Exception { ErrorCode: "AccessDenied" } => $"{where}: access denied to '{what}'",
            AmazonServiceException { ErrorCode.Length: > 0 } s => $"{where}: {s.ErrorCode}: {s.Message} ('{what}')",
            _ when Unreachable(e) is { } inner => $"{where}: cannot reach the service ({inner.Message})",
            _ => $"{where}: {e.Message} ('{what}')",
        };
        return new KilnException(message, e);
    }

    private static Exception? Unreachable(Exception e)
    {
        for (var x = e; x is not null; x = x.InnerException)
        {
            if (x is HttpRequestException or System.Net.Sockets.SocketException) return x;
        }
        return null;
    }

    private static async Task<int> FillAsync(Stream s, Memory<byte> buffer, CancellationToken ct)
    {
        var total = 0;
        while (total < buffer.Length)
        {
            var n = await s.ReadAsync(buffer[total..], ct).ConfigureAwait(false);
            if (n == 0) break;
            total += n;
        }
        return total;
    }

    public void Dispose() => _client.Dispose();
}
