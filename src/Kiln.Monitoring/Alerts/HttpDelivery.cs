using System.Net;
using System.Text;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;

namespace Kiln.Monitoring.Alerts;

/// <summary>How notifications are POSTed: queue size, attempts, backoff and the timeout of each attempt.</summary>
public sealed record HttpDeliveryOptions
{
    /// <summary>Notifications waiting to be sent; when full, the oldest is dropped (logged and counted).</summary>
    public int QueueCapacity { get; init; } = 1000;

    /// <summary>Attempts per notification, the first included.</summary>
    public int MaxAttempts { get; init; } = 5;

    /// <summary>The backoff before the second attempt; it doubles for each further attempt, up to <see cref="MaxBackoff"/>.</summary>
    public TimeSpan InitialBackoff { get; init; } = TimeSpan.FromSeconds(1);

    public TimeSpan MaxBackoff { get; init; } = TimeSpan.FromMinutes(1);

    /// <summary>Each attempt is abandoned (and retried) after this long.</summary>
    public TimeSpan AttemptTimeout { get; init; } = TimeSpan.FromSeconds(10);
}

/// <summary>One POST to make: the URL, the JSON body, a description for logs, extra headers.</summary>
public sealed record HttpNotification(Uri Url, string Json, string Description)
{
    public IReadOnlyDictionary<string, string>? Headers { get; init; }
}

/// <summary>
/// Sends JSON notifications in the background, in order, from a bounded queue, so evaluation never waits on a
/// receiver. Each is retried with exponential backoff and jitter: delay = d/2 + uniform(0, d/2) with
/// d = min(max_backoff, initial_backoff · 2^(attempt−1)), or the receiver's Retry-After when longer (capped at
/// max_backoff). Network errors, attempt timeouts, 5xx, 408 and 429 are retried; any other 4xx is not (the request
/// itself is wrong). Delivery stops after <see cref="HttpDeliveryOptions.MaxAttempts"/> attempts.
/// </summary>
public sealed class HttpDelivery : IAsyncDisposable
{
    private readonly string _kind;
    private readonly HttpDeliveryOptions _options;
    private readonly ILogger _logger;
    private readonly HttpClient _http;
    private readonly bool _ownsHttp;
    private readonly TimeProvider _time;
    private readonly Channel<HttpNotification> _queue;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private long _delivered;
    private long _failed;
    private long _dropped;
    private long _attempts;

    public HttpDelivery(string kind, HttpDeliveryOptions options, ILogger logger, HttpClient? http = null, TimeProvider? time = null)
    {
        if (options.MaxAttempts < 1) throw new ArgumentException("MaxAttempts must be at least 1", nameof(options));
        _kind = kind;
        _options = options;
        _logger = logger;
        _ownsHttp = http is null;
        _http = http ?? new HttpClient(new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(2), AllowAutoRedirect = false })
        {
            Timeout = Timeout.InfiniteTimeSpan, // per attempt, below
        };
        _time = time ?? TimeProvider.System;
        _queue = Channel.CreateBounded<HttpNotification>(new BoundedChannelOptions(Math.Max(1, options.QueueCapacity))
        {
            FullMode = BoundedChannelFullMode.DropOldest,
            SingleReader = true,
        }, dropped =>
        {
            Interlocked.Increment(ref _dropped);
            MonitorLog.DeliveryDropped(_logger, _kind, _options.QueueCapacity, dropped.Description);
        });
        _loop = Task.Run(RunAsync);
    }

    /// <summary>Notifications delivered (a 2xx answer).</summary>
    public long Delivered => Interlocked.Read(ref _delivered);

    /// <summary>Notifications given up on (a non-retryable answer, or every attempt failed).</summary>
    public long Failed => Interlocked.Read(ref _failed);

    /// <summary>Notifications dropped because the queue was full.</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    /// <summary>HTTP attempts made.</summary>
    public long Attempts => Interlocked.Read(ref _attempts);

    /// <summary>Queues a notification; never waits (a full queue drops its oldest entry).</summary>
    public void Enqueue(HttpNotification notification) => _queue.Writer.TryWrite(notification);

    /// <summary>True for answers worth retrying: 408, 429 and 5xx.</summary>
    public static bool IsRetryable(HttpStatusCode status) =>
        status is HttpStatusCode.RequestTimeout or HttpStatusCode.TooManyRequests || (int)status >= 500;

    /// <summary>The backoff after failed attempt <paramref name="attempt"/> (1-based), with jitter drawn from <paramref name="jitter"/> in [0, 1).</summary>
    public static TimeSpan Backoff(int attempt, HttpDeliveryOptions options, double jitter)
    {
        var ceiling = options.MaxBackoff.TotalMilliseconds;
        var d = Math.Min(ceiling, options.InitialBackoff.TotalMilliseconds * Math.Pow(2, Math.Min(attempt - 1, 30)));
        return TimeSpan.FromMilliseconds(d / 2 + jitter * d / 2);
    }

    private async Task RunAsync()
    {
        try
        {
            await foreach (var n in _queue.Reader.ReadAllAsync(_stop.Token).ConfigureAwait(false))
            {
                await DeliverAsync(n, _stop.Token).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
        }
    }

    private async Task DeliverAsync(HttpNotification n, CancellationToken stop)
    {
        for (var attempt = 1; ; attempt++)
        {
            Interlocked.Increment(ref _attempts);
            string reason;
            TimeSpan? retryAfter = null;
            using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(stop))
            {
                timeout.CancelAfter(_options.AttemptTimeout);
                try
                {
                    using var request = new HttpRequestMessage(HttpMethod.Post, n.Url)
                    {
                        Content = new StringContent(n.Json, Encoding.UTF8, "application/json"),
                    };
                    request.Headers.UserAgent.ParseAdd("kiln-monitor/1");
                    if (n.Headers is not null) foreach (var (k, v) in n.Headers) request.Headers.TryAddWithoutValidation(k, v);
                    using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token).ConfigureAwait(false);
                    if (response.IsSuccessStatusCode)
                    {
                        Interlocked.Increment(ref _delivered);
                        MonitorLog.Delivered(_logger, _kind, n.Url, n.Description, attempt);
                        return;
                    }
                    reason = $"HTTP {(int)response.StatusCode}";
                    if (!IsRetryable(response.StatusCode))
                    {
                        Interlocked.Increment(ref _failed);
                        MonitorLog.DeliveryFailed(_logger, _kind, n.Url, attempt, reason + " is not retried", n.Description);
                        return;
                    }
                    retryAfter = response.Headers.RetryAfter switch
                    {
                        { Delta: { } delta } => delta,
                        { Date: { } date } => date - _time.GetUtcNow(),
                        _ => null,
                    };
                }
                catch (OperationCanceledException) when (stop.IsCancellationRequested)
                {
                    throw;
                }
                catch (OperationCanceledException)
                {
                    reason = $"no answer within {_options.AttemptTimeout.TotalSeconds:0.###} s";
                }
                catch (HttpRequestException e)
                {
                    reason = e.Message;
                }
            }
            if (attempt >= _options.MaxAttempts)
            {
                Interlocked.Increment(ref _failed);
                MonitorLog.DeliveryFailed(_logger, _kind, n.Url, attempt, reason, n.Description);
                return;
            }
            var delay = Backoff(attempt, _options, Random.Shared.NextDouble());
            if (retryAfter is { } ra && ra > delay) delay = ra < _options.MaxBackoff ? ra : _options.MaxBackoff;
            MonitorLog.DeliveryRetry(_logger, _kind, n.Url, attempt, _options.MaxAttempts, reason, (long)delay.TotalMilliseconds);
            await Task.Delay(delay, _time, stop).ConfigureAwait(false);
        }
    }

    /// <summary>Stops taking notifications and waits up to <paramref name="drain"/> for the queue to empty, then cancels.</summary>
    public async Task StopAsync(TimeSpan drain)
    {
        _queue.Writer.TryComplete();
        if (await Task.WhenAny(_loop, Task.Delay(drain, _time)).ConfigureAwait(false) != _loop) await _stop.CancelAsync().ConfigureAwait(false);
        await _loop.ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
        _stop.Dispose();
        if (_ownsHttp) _http.Dispose();
    }
}
