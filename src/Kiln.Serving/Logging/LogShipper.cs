using Kiln.Core;
using Kiln.Storage.Objects;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Kiln.Serving.Logging;

/// <summary>
/// Uploads the prediction log's closed files to a bucket (kiln serve --log-dir s3://BUCKET/PREFIX). The writer writes
/// each file in the local spool as for a local log and renames it to its final name when it closes it; the shipper
/// uploads every file with a final name (model=/version=/date=/part-….parquet, and the feedback endpoint's
/// _feedback/date=/feedback-….parquet) to the same relative key, in one upload that is visible only when complete,
/// and deletes the local copy afterwards. It looks at the spool at start (files closed by an earlier process that
/// died before uploading them), every <see cref="ServeOptions.LogShipInterval"/>, and once more after the writer's
/// final drain at shutdown. Names are unique and files never change once closed, so an upload repeated after a crash
/// between upload and delete rewrites the same object: the bucket holds each file once, and none is lost.
/// </summary>
public sealed class LogShipper : BackgroundService
{
    private readonly ServeOptions _options;
    private readonly ILogger _logger;
    private readonly S3Storage? _storage;
    private readonly SemaphoreSlim _one = new(1, 1);
    private long _uploaded;

    public LogShipper(ServeOptions options, ILogger<LogShipper> logger)
    {
        _options = options;
        _logger = logger;
        if (options.LogBucket is { } bucket && options.LogDirectory is not null) _storage = S3Storage.Open(bucket, "--log-dir");
    }

    /// <summary>Files uploaded by this process.</summary>
    public long UploadedFiles => Interlocked.Read(ref _uploaded);

    /// <summary>Checks that the bucket exists and can be listed: one line naming the location otherwise.</summary>
    public Task CheckAsync(CancellationToken ct) => _storage?.CheckAsync("--log-dir", ct) ?? Task.CompletedTask;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (_storage is null) return;
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                await ShipAsync(stoppingToken).ConfigureAwait(false);
                await Task.Delay(_options.LogShipInterval, stoppingToken).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Shutdown: StopAsync ships what the writer's final drain closed.
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken).ConfigureAwait(false);
        // Registered before the writer, so the host stops it after the writer has closed its last files.
        if (_storage is null) return;
        try
        {
            await ShipAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // Out of shutdown time: what is left stays in the spool and is uploaded at the next start.
        }
    }

    /// <summary>Uploads every closed file in the spool, then deletes it; a failure leaves the file for the next pass.</summary>
    private async Task ShipAsync(CancellationToken ct)
    {
        var spool = _options.LogDirectory!;
        if (!Directory.Exists(spool)) return;
        await _one.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            foreach (var file in Directory.EnumerateFiles(spool, "*.parquet", SearchOption.AllDirectories))
            {
                var relative = Path.GetRelativePath(spool, file);
                // Hidden names are files still being written (.part-….inprogress, a feedback file's temporary name).
                if (Path.GetFileName(file).StartsWith('.') || relative.StartsWith("_monitor", StringComparison.Ordinal)) continue;
                var key = relative.Replace(Path.DirectorySeparatorChar, '/');
                try
                {
                    await _storage!.PutFileAsync(key, file, ct).ConfigureAwait(false);
                }
                catch (FileNotFoundException)
                {
                    continue; // another replica sharing this spool uploaded it
                }
                catch (KilnException e)
                {
                    // Unreachable or refusing: the file stays in the spool and the next pass tries again.
                    ServingLog.LogUploadFailed(_logger, key, e.Message);
                    return;
                }
                File.Delete(file);
                Interlocked.Increment(ref _uploaded);
                ServingLog.LogUploaded(_logger, _storage.Location.Child(key).ToString());
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            ServingLog.LogUploadFailed(_logger, spool, e.Message);
        }
        finally
        {
            _one.Release();
        }
    }

    public override void Dispose()
    {
        _storage?.Dispose();
        _one.Dispose();
        base.Dispose();
    }
}
