using System.Collections.Concurrent;
using Kiln.Core.Http;
using Microsoft.Extensions.Hosting;

namespace Kiln.Web.Serving;

/// <summary>A replica's scrapes: the newest, and one from about a minute before it to compute rates over.</summary>
public sealed record ReplicaScrapes(Scrape? Newest, Scrape? Base, string? Error, DateTimeOffset? ErrorAt);

/// <summary>
/// Scrapes every live replica's /metrics (Prometheus text) on an interval, and at once when a replica first registers,
/// keeping a few minutes of scrapes per replica in memory so the serving page can show rates over the last minute.
/// </summary>
public sealed class ReplicaScraper : BackgroundService
{
    /// <summary>The span rates and quantiles are computed over (from the oldest scrape within it to the newest).</summary>
    public static readonly TimeSpan RateWindow = TimeSpan.FromMinutes(1);

    private static readonly TimeSpan Keep = TimeSpan.FromMinutes(5);

    private readonly ReplicaRegistry _registry;
    private readonly HttpClient _http;
    private readonly TimeSpan _interval;
    private readonly TimeProvider _time;
    private readonly ConcurrentDictionary<string, History> _histories = new(StringComparer.Ordinal);

    public ReplicaScraper(ReplicaRegistry registry, TimeSpan interval, TimeProvider? time = null)
    {
        _registry = registry;
        _interval = interval;
        _time = time ?? TimeProvider.System;
        _http = KilnTls.CreateHttpClient(TimeSpan.FromSeconds(5));
        registry.FirstHeartbeat = r => _ = ScrapeAsync(r.Url, CancellationToken.None);
    }

    /// <summary>Scrapes a replica now and keeps the scrape; a failure is kept as the replica's error, never thrown.</summary>
    public async Task ScrapeAsync(Uri replica, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(replica);
        var history = _histories.GetOrAdd(replica.AbsoluteUri, _ => new History());
        string? error;
        try
        {
            using var response = await _http.GetAsync(new Uri(replica, "metrics"), cancellationToken).ConfigureAwait(false);
            var text = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
            if (response.IsSuccessStatusCode)
            {
                history.Add(new Scrape(_time.GetUtcNow(), PrometheusText.Parse(text)), Keep);
                return;
            }
            error = $"/metrics answered {(int)response.StatusCode} {response.ReasonPhrase}";
        }
        catch (HttpRequestException e)
        {
            error = $"cannot reach /metrics: {KilnTls.Explain(e)}";
        }
        catch (TaskCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            error = "/metrics did not answer in 5 s";
        }
        catch (FormatException e)
        {
            error = $"/metrics is not Prometheus text: {e.Message}";
        }
        history.Fail(error, _time.GetUtcNow());
    }

    /// <summary>Scrapes every live replica now (concurrently), as a page does before showing them.</summary>
    public Task ScrapeAllAsync(CancellationToken cancellationToken) =>
        Task.WhenAll(_registry.Live().Select(r => ScrapeAsync(r.Url, cancellationToken)));

    /// <summary>The newest scrape of a replica and the base to compute rates from (the oldest within <see cref="RateWindow"/>).</summary>
    public ReplicaScrapes Scrapes(Uri replica)
    {
        ArgumentNullException.ThrowIfNull(replica);
        return _histories.TryGetValue(replica.AbsoluteUri, out var h) ? h.Snapshot(RateWindow) : new ReplicaScrapes(null, null, null, null);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(_interval, _time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
            {
                var live = _registry.Live();
                foreach (var key in _histories.Keys)
                {
                    if (!live.Any(r => r.Url.AbsoluteUri == key)) _histories.TryRemove(key, out _);
                }
                await Task.WhenAll(live.Select(r => ScrapeAsync(r.Url, stoppingToken))).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    public override void Dispose()
    {
        _http.Dispose();
        base.Dispose();
    }

    private sealed class History
    {
        private readonly Lock _lock = new();
        private readonly List<Scrape> _scrapes = [];
        private string? _error;
        private DateTimeOffset? _errorAt;

        public void Add(Scrape scrape, TimeSpan keep)
        {
            lock (_lock)
            {
                _scrapes.Add(scrape);
                _scrapes.Sort((a, b) => a.At.CompareTo(b.At));
                _scrapes.RemoveAll(s => s.At < scrape.At - keep);
                _error = null;
                _errorAt = null;
            }
        }

        public void Fail(string error, DateTimeOffset at)
        {
            lock (_lock)
            {
                _error = error;
                _errorAt = at;
            }
        }

        public ReplicaScrapes Snapshot(TimeSpan window)
        {
            lock (_lock)
            {
                if (_scrapes.Count == 0) return new ReplicaScrapes(null, null, _error, _errorAt);
                var newest = _scrapes[^1];
                var first = _scrapes.FirstOrDefault(s => s.At >= newest.At - window && s != newest);
                return new ReplicaScrapes(newest, first, _error, _errorAt);
            }
        }
    }
}
