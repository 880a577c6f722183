using System.Globalization;

namespace Kiln.Web.Serving;

/// <summary>One scrape of a replica's /metrics.</summary>
public sealed record Scrape(DateTimeOffset At, IReadOnlyList<PrometheusSample> Samples);

/// <summary>What a replica did for one model version between two scrapes (or since it started, with one scrape).</summary>
public sealed record ReplicaModelStats(string Model, string Version, double Requests, double? RequestsPerSecond, double ServerErrors, double ClientErrors,
    double? P50, double? P95, double? P99)
{
    /// <summary>Share of requests answered 5xx.</summary>
    public double? ErrorRatio => Requests > 0 ? ServerErrors / Requests : null;

    /// <summary>Share of requests refused as the client's mistake (4xx).</summary>
    public double? ClientErrorRatio => Requests > 0 ? ClientErrors / Requests : null;
}

/// <summary>
/// Request rate, error rates and latency quantiles of a kiln serve replica from its /metrics: the increase of
/// <c>kiln_serve_requests_total</c> and of the <c>kiln_serve_request_duration_seconds</c> histogram between two scrapes,
/// as Prometheus's rate() and histogram_quantile() compute them.
/// </summary>
public static class ReplicaStats
{
    private const string RequestsMetric = "kiln_serve_requests_total";
    private const string BucketMetric = "kiln_serve_request_duration_seconds_bucket";

    /// <summary>
    /// Per model and version, what happened between <paramref name="from"/> and <paramref name="to"/>; with no
    /// <paramref name="from"/>, the totals since the replica started and no rate. A counter that went down (the
    /// replica restarted) counts from zero.
    /// </summary>
    public static List<ReplicaModelStats> Between(Scrape? from, Scrape to)
    {
        ArgumentNullException.ThrowIfNull(to);
        var seconds = from is null ? (double?)null : (to.At - from.At).TotalSeconds;
        if (seconds is <= 0) seconds = null;
        var now = Sum(to, RequestsMetric, "status");
        var before = from is null ? null : Sum(from, RequestsMetric, "status");
        var bucketsNow = Sum(to, BucketMetric, "le");
        var bucketsBefore = from is null ? null : Sum(from, BucketMetric, "le");
        var result = new List<ReplicaModelStats>();
        foreach (var key in now.Keys.Select(k => (k.Model, k.Version)).Distinct().OrderBy(k => k.Model, StringComparer.Ordinal).ThenBy(k => k.Version, StringComparer.Ordinal))
        {
            double total = 0, server = 0, client = 0;
            foreach (var ((model, version, status), value) in now)
            {
                if (model != key.Model || version != key.Version) continue;
                var increase = Increase(value, before, (model, version, status));
                total += increase;
                if (status.Length == 3 && status[0] == '5') server += increase;
                else if (status.Length == 3 && status[0] == '4') client += increase;
            }
            var buckets = new List<(double Le, double Count)>();
            foreach (var ((model, version, le), value) in bucketsNow)
            {
                if (model != key.Model || version != key.Version) continue;
                var bound = le == "+Inf" ? double.PositiveInfinity : double.Parse(le, NumberStyles.Float, CultureInfo.InvariantCulture);
                buckets.Add((bound, Increase(value, bucketsBefore, (model, version, le))));
            }
            buckets.Sort((a, b) => a.Le.CompareTo(b.Le));
            result.Add(new ReplicaModelStats(key.Model, key.Version, total, seconds is { } s ? total / s : null, server, client,
                Quantile(0.50, buckets), Quantile(0.95, buckets), Quantile(0.99, buckets)));
        }
        return result;
    }

    /// <summary>
    /// The q-quantile of a cumulative histogram as Prometheus's histogram_quantile: the bucket holding the rank
    /// q × count, interpolated linearly inside it (from 0 for the first bucket); a rank in the +Inf bucket answers the
    /// highest finite bound. Null when the histogram counted nothing.
    /// </summary>
    public static double? Quantile(double q, IReadOnlyList<(double Le, double Count)> cumulative)
    {
        ArgumentNullException.ThrowIfNull(cumulative);
        if (cumulative.Count == 0 || cumulative[^1].Count <= 0) return null;
        var rank = q * cumulative[^1].Count;
        double lower = 0, below = 0;
        for (var i = 0; i < cumulative.Count; i++)
        {
            var (le, count) = cumulative[i];
            if (count >= rank && count > below)
            {
                if (double.IsPositiveInfinity(le)) return i > 0 ? cumulative[i - 1].Le : null;
                return lower + (le - lower) * (rank - below) / (count - below);
            }
            lower = le;
            below = count;
        }
        return null;
    }

    private static double Increase<TKey>(double now, Dictionary<TKey, double>? before, TKey key) where TKey : notnull =>
        before is not null && before.TryGetValue(key, out var b) && b <= now ? now - b : now;

    // Sums a metric's samples over the labels other than model, version and the one kept.
    private static Dictionary<(string Model, string Version, string Kept), double> Sum(Scrape scrape, string metric, string kept)
    {
        var sums = new Dictionary<(string, string, string), double>();
        foreach (var s in scrape.Samples)
        {
            if (s.Name != metric) continue;
            var key = (s.Label("model") ?? "", s.Label("version") ?? "", s.Label(kept) ?? "");
            sums[key] = sums.GetValueOrDefault(key) + s.Value;
        }
        return sums;
    }
}
