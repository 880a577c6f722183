using System.Collections.Concurrent;
using System.Diagnostics;
using System.Threading.RateLimiting;
using Kiln.Serving.Metrics;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace Kiln.Serving.Protection;

/// <summary>
/// Protection for the prediction routes (the endpoints carrying <see cref="Gated"/>), in one
/// middleware: a concurrency limit with a bounded FIFO queue (beyond it, 503 with Retry-After at
/// once) and a request timeout (the request's abort token fires once the request is older than
/// the timeout; an operation it cancels ends as 504 in the exception handler). It replaces
/// ASP.NET Core's rate limiting and request timeout middlewares, which cost a partitioned-limiter
/// lookup, a lease context and a linked CancellationTokenSource with a timer of its own per
/// request (together ~5% of a request's CPU, measured): here an uncontended request takes a
/// permit without waiting and a pooled token source without a timer; one sweep per
/// <see cref="SweepPeriod"/> cancels the requests past their deadline (so a timeout fires up to
/// one period late).
/// </summary>
public sealed class RequestGate : IDisposable
{
    /// <summary>Endpoint metadata that puts a route behind the gate.</summary>
    public static readonly GatedEndpoint Gated = new();

    private readonly ConcurrencyLimiter _limiter;
    private readonly ServingMetrics _metrics;
    private readonly long _timeoutTicks;
    private readonly ConcurrentBag<Ticket> _pool = [];
    private readonly Lock _allLock = new();
    private Ticket[] _all = [];
    private readonly Timer _sweeper;

    public RequestGate(ServeOptions options, ServingMetrics metrics)
    {
        _limiter = new ConcurrencyLimiter(new ConcurrencyLimiterOptions
        {
            PermitLimit = options.MaxConcurrentRequests,
            QueueLimit = options.QueueLimit,
            QueueProcessingOrder = QueueProcessingOrder.OldestFirst,
        });
        _metrics = metrics;
        _timeoutTicks = (long)(options.RequestTimeout.TotalSeconds * Stopwatch.Frequency);
        SweepPeriod = TimeSpan.FromMilliseconds(Math.Clamp(options.RequestTimeout.TotalMilliseconds / 10, 10, 1000));
        _sweeper = new Timer(static s => ((RequestGate)s!).Sweep(), this, SweepPeriod, SweepPeriod);
    }

    /// <summary>How often requests past their deadline are looked for.</summary>
    public TimeSpan SweepPeriod { get; }

    /// <summary>The middleware: routes without <see cref="Gated"/> pass straight through.</summary>
    public Task InvokeAsync(HttpContext http, RequestDelegate next)
    {
        if (http.GetEndpoint()?.Metadata.GetMetadata<GatedEndpoint>() is null) return next(http);
        var ticket = Rent();
        var lease = _limiter.AttemptAcquire();
        return lease.IsAcquired ? RunAsync(http, next, ticket, lease) : QueueAsync(http, next, ticket, lease);
    }

    private async Task QueueAsync(HttpContext http, RequestDelegate next, Ticket ticket, RateLimitLease failed)
    {
        failed.Dispose();
        RateLimitLease lease;
        // The wait in the queue counts toward the timeout: a request queued too long ends as 504.
        using (http.RequestAborted.UnsafeRegister(static s => ((Ticket)s!).Cancel(), ticket))
        {
            try
            {
                lease = await _limiter.AcquireAsync(1, ticket.Source.Token).ConfigureAwait(false);
            }
            catch
            {
                Return(ticket);
                throw;
            }
        }
        if (!lease.IsAcquired)
        {
            lease.Dispose();
            Return(ticket);
            await RejectAsync(http).ConfigureAwait(false);
            return;
        }
        await RunAsync(http, next, ticket, lease).ConfigureAwait(false);
    }

    private static async Task RunAsync(HttpContext http, RequestDelegate next, Ticket ticket, RateLimitLease lease)
    {
        var original = http.RequestAborted;
        var registration = original.UnsafeRegister(static s => ((Ticket)s!).Cancel(), ticket);
        http.RequestAborted = ticket.Source.Token;
        try
        {
            await next(http).ConfigureAwait(false);
        }
        finally
        {
            http.RequestAborted = original;
            registration.Dispose();
            ticket.Owner.Return(ticket);
            lease.Dispose();
        }
    }

    private Ticket Rent()
    {
        if (!_pool.TryTake(out var ticket))
        {
            ticket = new Ticket(this);
            lock (_allLock) _all = [.. _all, ticket];
        }
        ticket.Start(Stopwatch.GetTimestamp() + _timeoutTicks);
        return ticket;
    }

    /// <summary>Back to the pool unless it was cancelled (a cancelled source cannot be reused; it is dropped).</summary>
    private void Return(Ticket ticket)
    {
        if (ticket.Finish()) _pool.Add(ticket);
        else ticket.Retire();
    }

    private void Sweep()
    {
        var now = Stopwatch.GetTimestamp();
        foreach (var t in Volatile.Read(ref _all)) t.CancelIfPast(now);
    }

    private void Forget(Ticket ticket)
    {
        lock (_allLock) _all = Array.FindAll(_all, t => !ReferenceEquals(t, ticket));
    }

    private async Task RejectAsync(HttpContext http)
    {
        _metrics.Rejected.Add(1, new KeyValuePair<string, object?>("reason", "overload"));
        http.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
        http.Response.Headers.RetryAfter = "1";
        if (http.Request.ContentType?.StartsWith("application/grpc", StringComparison.Ordinal) == true) return;
        await http.Response.WriteAsJsonAsync(new V2Error("the server is at its concurrency limit and its queue is full; retry later"),
            ServingJsonContext.Default.V2Error, cancellationToken: http.RequestAborted).ConfigureAwait(false);
    }

    public void Dispose()
    {
        _sweeper.Dispose();
        _limiter.Dispose();
    }

    /// <summary>The marker type of <see cref="Gated"/>.</summary>
    public sealed class GatedEndpoint;

    /// <summary>
    /// One request's token source and deadline. The deadline doubles as the state, changed only by
    /// compare-and-swap: &gt; 0 running until then, 0 idle in the pool, -1 cancelled (timeout or
    /// client gone), so the sweeper and the finishing request never both win.
    /// </summary>
    private sealed class Ticket(RequestGate owner)
    {
        private long _deadline;

        public RequestGate Owner { get; } = owner;

        public CancellationTokenSource Source { get; } = new();

        public void Start(long deadline) => Volatile.Write(ref _deadline, deadline);

        /// <summary>Ends the request; true when the source was never cancelled and can be reused.</summary>
        public bool Finish()
        {
            var d = Volatile.Read(ref _deadline);
            return d > 0 && Interlocked.CompareExchange(ref _deadline, 0, d) == d && Source.TryReset();
        }

        public void CancelIfPast(long now)
        {
            var d = Volatile.Read(ref _deadline);
            if (d > 0 && d <= now && Interlocked.CompareExchange(ref _deadline, -1, d) == d) Source.Cancel();
        }

        public void Cancel()
        {
            var d = Volatile.Read(ref _deadline);
            if (d > 0 && Interlocked.CompareExchange(ref _deadline, -1, d) == d) Source.Cancel();
        }

        /// <summary>A cancelled ticket leaves the sweep list; its source is left to the GC (another thread may still be cancelling it).</summary>
        public void Retire() => Owner.Forget(this);
    }
}

/// <summary>Puts routes behind the <see cref="RequestGate"/>.</summary>
public static class RequestGateExtensions
{
    public static TBuilder RequireGate<TBuilder>(this TBuilder builder) where TBuilder : IEndpointConventionBuilder =>
        builder.WithMetadata(RequestGate.Gated);
}
