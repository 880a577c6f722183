using System.Security.Cryptography;
using Kiln.Core;
using Kiln.Storage.Objects;
using Kiln.Testing;
using Kiln.Tracking.Artifacts;

namespace Kiln.Tracking.Tests;

/// <summary>
/// What an S3 artifact store does beyond the contract, against a real S3-protocol server (s3rver): multipart uploads
/// for large files, listings longer than one page, a limit crossed mid-upload, a bucket that does not exist, and
/// model packages resolved through the registry from S3.
/// </summary>
public sealed class S3ArtifactStoreTests : IAsyncLifetime
{
    private S3rver _s3 = null!;

    public async Task InitializeAsync() => _s3 = await S3rver.StartAsync("kiln");

    public async Task DisposeAsync() => await _s3.DisposeAsync();

    private S3Settings Settings(long threshold = 6 * 1024 * 1024, int partSize = 5 * 1024 * 1024, int page = 1000) =>
        S3Settings.FromVariables(k => _s3.Environment.GetValueOrDefault(k)) with
        {
            MultipartThreshold = threshold,
            PartSize = partSize,
            ListPageSize = page,
        };

    private S3ArtifactStore Store(S3Settings settings, string prefix = "artifacts", long max = 64L * 1024 * 1024) =>
        new(new S3Storage(new S3Location("kiln", prefix), settings), max);

    [Fact]
    public void Settings_come_from_the_standard_AWS_variables_with_path_style_for_other_endpoints()
    {
        var env = new Dictionary<string, string>
        {
            ["AWS_ENDPOINT_URL"] = "http://minio.local:9000",
            ["AWS_DEFAULT_REGION"] = "eu-west-3",
            ["AWS_ACCESS_KEY_ID"] = "AK",
            ["AWS_SECRET_ACCESS_KEY"] = "SK",
        };
        var s = S3Settings.FromVariables(k => env.GetValueOrDefault(k));
        Assert.Equal(("http://minio.local:9000", "eu-west-3", "AK", "SK", true), (s.Endpoint, s.Region, s.AccessKey, s.SecretKey, s.PathStyle));
        env["AWS_ENDPOINT_URL_S3"] = "https://s3.eu-west-3.amazonaws.com";
        env["AWS_REGION"] = "eu-west-1";
        s = S3Settings.FromVariables(k => env.GetValueOrDefault(k));
        Assert.Equal(("https://s3.eu-west-3.amazonaws.com", "eu-west-1", false), (s.Endpoint, s.Region, s.PathStyle));
        Assert.Null(S3Settings.FromVariables(_ => null).Endpoint);
    }

    [Theory]
    [InlineData("s3://Kiln/x", "is not a bucket name")]
    [InlineData("s3://kiln/a/../b", "'..' segments")]
    [InlineData("s3://ab", "is not a bucket name")]
    public void Bad_locations_are_refused_in_one_line(string text, string expected)
    {
        var e = Assert.Throws<KilnException>(() => S3Location.Parse(text, "--artifacts"));
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
        Assert.StartsWith("--artifacts " + text, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_large_file_goes_up_in_parts_and_comes_back_byte_for_byte()
    {
        using var store = Store(Settings());
        var data = RandomNumberGenerator.GetBytes((13 * 1024 * 1024) + 123);
        // A stream that cannot seek nor tell its length, as a request body is.
        await store.PutAsync("run/model/model.onnx", new OneWayStream(data));
        await using (var back = await store.OpenReadAsync("run/model/model.onnx"))
        {
            using var copy = new MemoryStream();
            await back.CopyToAsync(copy);
            Assert.Equal(SHA256.HashData(data), SHA256.HashData(copy.ToArray()));
        }
        // Three parts went up (6 MiB + 1 byte, then 5 MiB, then the rest), as the server's own log says.
        Assert.Contains("Stored part 3 of", _s3.Log, StringComparison.Ordinal);
        Assert.DoesNotContain("Stored part 4 of", _s3.Log, StringComparison.Ordinal);
        var listed = Assert.Single(await store.ListAsync("run/model"));
        Assert.Equal(("run/model/model.onnx", false, (long?)data.Length), (listed.Path, listed.IsDir, listed.FileSize));
    }

    [Fact]
    public async Task A_small_file_is_one_put()
    {
        using var store = Store(Settings());
        await store.PutAsync("run/small.txt", new MemoryStream("hello"u8.ToArray()));
        Assert.DoesNotContain("Stored part", _s3.Log, StringComparison.Ordinal);
        Assert.Equal(5, Assert.Single(await store.ListAsync("run")).FileSize);
    }

    [Fact]
    public async Task A_limit_crossed_mid_upload_leaves_no_object()
    {
        using var store = Store(Settings(), max: 9 * 1024 * 1024);
        var e = await Assert.ThrowsAsync<TrackingException>(() => store.PutAsync("big/over.bin", new OneWayStream(new byte[12 * 1024 * 1024])));
        Assert.Equal(ErrorCode.InvalidParameterValue, e.Code);
        Assert.Contains("larger than the upload limit of 9437184 bytes", e.Message, StringComparison.Ordinal);
        Assert.Empty(await store.ListAsync("big"));
        // One part had gone up before the limit was crossed (the second would pass it); the object never appeared.
        Assert.Contains("Stored part 1 of", _s3.Log, StringComparison.Ordinal);
        Assert.Null(await store.Storage.SizeAsync("big/over.bin"));
    }

    [Fact]
    public async Task Listings_follow_continuation_tokens_past_one_page()
    {
        // Seven keys a page: 30 files and 4 directories take five requests; every one must be in the answer.
        using var store = Store(Settings(page: 7), prefix: "paged");
        for (var i = 0; i < 30; i++) await store.PutAsync($"run/f{i:D2}.txt", new MemoryStream([(byte)i]));
        for (var d = 0; d < 4; d++) await store.PutAsync($"run/d{d}/inner.txt", new MemoryStream([1, 2]));
        var files = await store.ListAsync("run");
        Assert.Equal([.. Enumerable.Range(0, 4).Select(d => $"run/d{d}")], files.Where(f => f.IsDir).Select(f => f.Path));
        Assert.Equal([.. Enumerable.Range(0, 30).Select(i => $"run/f{i:D2}.txt")], files.Where(f => !f.IsDir).Select(f => f.Path));
        Assert.All(files.Where(f => !f.IsDir), f => Assert.Equal(1, f.FileSize));
        // A download of the whole directory walks the same listings.
        using var dir = new TempDir("kiln-s3-download");
        Assert.Equal(34, await ArtifactTransfer.DownloadDirectoryAsync(store, "run", dir.Path));
        Assert.Equal([1, 2], await File.ReadAllBytesAsync(Path.Combine(dir.Path, "d3", "inner.txt")));
    }

    [Fact]
    public async Task A_file_may_not_replace_a_directory()
    {
        using var store = Store(Settings());
        await store.PutAsync("run/model/kiln.json", new MemoryStream("{}"u8.ToArray()));
        var e = await Assert.ThrowsAsync<TrackingException>(() => store.PutAsync("run/model", new MemoryStream([1])));
        Assert.Contains("is a directory", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_bucket_that_does_not_exist_is_one_line()
    {
        using var storage = new S3Storage(new S3Location("no-such-bucket", "x"), Settings());
        var e = await Assert.ThrowsAsync<KilnException>(() => storage.CheckAsync("--artifacts"));
        Assert.Equal($"s3://no-such-bucket/x (endpoint {_s3.Endpoint}): bucket 'no-such-bucket' does not exist", e.Message);
        using var store = new S3ArtifactStore(storage);
        var put = await Assert.ThrowsAsync<TrackingException>(() => store.PutAsync("a.txt", new MemoryStream([1])));
        Assert.Equal(ErrorCode.InternalError, put.Code);
        Assert.Contains("does not exist", put.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Wrong_credentials_are_one_line()
    {
        using var storage = new S3Storage(new S3Location("kiln", ""), Settings() with { AccessKey = "NOT-A-KEY" });
        var e = await Assert.ThrowsAsync<KilnException>(() => storage.CheckAsync("--artifacts"));
        Assert.Contains("the credentials were refused", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_unreachable_endpoint_is_one_line()
    {
        var port = TestEnvironment.FreePort();
        using var storage = new S3Storage(new S3Location("kiln", ""), Settings() with { Endpoint = $"http://127.0.0.1:{port}" });
        var e = await Assert.ThrowsAsync<KilnException>(() => storage.CheckAsync("--artifacts"));
        Assert.Contains("cannot reach the service", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', e.Message);
    }

    /// <summary>A request body: read once, front to back; no length, no seeking.</summary>
    private sealed class OneWayStream(byte[] data) : Stream
    {
        private int _position;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count)
        {
            // Short reads, as a network stream gives.
            var n = Math.Min(Math.Min(count, 64 * 1024), data.Length - _position);
            Array.Copy(data, _position, buffer, offset, n);
            _position += n;
            return n;
        }

        public override void Flush() { }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
