using Kiln.Core;
using Kiln.Web.Serving;

namespace Kiln.Web.Tests;

/// <summary>The serving page's arithmetic: Prometheus text in, rates and quantiles out; the registry's expiry.</summary>
public sealed class ReplicaStatsTests
{
    private static string Exposition(int ok, int failed, int refused, (string Le, int Count)[] buckets)
    {
        var sb = new System.Text.StringBuilder("# HELP kiln_serve_requests_total Requests answered.\n# TYPE kiln_serve_requests_total counter\n");
        sb.Append($"kiln_serve_requests_total{{model=\"fraud\",protocol=\"native\",status=\"200\",version=\"2\"}} {ok}\n");
        sb.Append($"kiln_serve_requests_total{{model=\"fraud\",protocol=\"native\",status=\"503\",version=\"2\"}} {failed}\n");
        sb.Append($"kiln_serve_requests_total{{model=\"fraud\",protocol=\"mlflow\",status=\"422\",version=\"2\"}} {refused}\n");
        sb.Append("# TYPE kiln_serve_request_duration_seconds histogram\n");
        foreach (var (le, count) in buckets) sb.Append($"kiln_serve_request_duration_seconds_bucket{{model=\"fraud\",protocol=\"native\",version=\"2\",le=\"{le}\"}} {count}\n");
        sb.Append("process_cpu_seconds_total 1.5e+00\n");
        return sb.ToString();
    }

    [Fact]
    public void Prometheus_text_is_read_with_labels_escapes_and_special_values()
    {
        var samples = PrometheusText.Parse("# HELP x y\n\nx_total{a=\"1\",b=\"q\\\"uote\\\\\"} 3 1700000000000\ny +Inf\nz NaN\nw{} -2.5e-3\n");
        Assert.Equal(4, samples.Count);
        Assert.Equal("q\"uote\\", samples[0].Label("b"));
        Assert.Equal(3, samples[0].Value);
        Assert.True(double.IsPositiveInfinity(samples[1].Value));
        Assert.True(double.IsNaN(samples[2].Value));
        Assert.Equal(-0.0025, samples[3].Value);
        var e = Assert.Throws<FormatException>(() => PrometheusText.Parse("ok 1\nbad{a=\"1\" 2\n"));
        Assert.StartsWith("line 2:", e.Message, StringComparison.Ordinal);
        Assert.Throws<FormatException>(() => PrometheusText.Parse("x one\n"));
    }

    [Fact]
    public void Quantiles_interpolate_inside_the_bucket_as_histogram_quantile_does()
    {
        // Cumulative counts 10, 60, 95, 100, 100 at le 0.001, 0.0025, 0.005, 0.01, +Inf. Prometheus's histogram_quantile
        // (by hand): q=0.5 → rank 50 in (0.001, 0.0025]: 0.001 + 0.0015 × (50 − 10) / (60 − 10) = 0.0022;
        // q=0.95 → rank 95 in (0.0025, 0.005]: 0.0025 + 0.0025 × 35/35 = 0.005; q=0.99 → rank 99 in (0.005, 0.01]: 0.009.
        (double, double)[] h = [(0.001, 10), (0.0025, 60), (0.005, 95), (0.01, 100), (double.PositiveInfinity, 100)];
        Assert.Equal(0.0022, ReplicaStats.Quantile(0.5, h)!.Value, 12);
        Assert.Equal(0.005, ReplicaStats.Quantile(0.95, h)!.Value, 12);
        Assert.Equal(0.009, ReplicaStats.Quantile(0.99, h)!.Value, 12);
        // A rank in the +Inf bucket answers the highest finite bound; an empty histogram has no quantile.
        Assert.Equal(0.1, ReplicaStats.Quantile(0.95, [(0.1, 5), (double.PositiveInfinity, 10)]));
        Assert.Null(ReplicaStats.Quantile(0.5, [(0.1, 0), (double.PositiveInfinity, 0)]));
    }

    [Fact]
    public void Rates_and_error_shares_come_from_the_increase_between_two_scrapes()
    {
        var t0 = DateTimeOffset.Parse("2026-12-07T05:00:00Z", System.Globalization.CultureInfo.InvariantCulture);
        var first = new Scrape(t0, PrometheusText.Parse(Exposition(100, 0, 0, [("0.001", 50), ("0.01", 100), ("+Inf", 100)])));
        // 20 s later: 180 more OK, 10 failed, 10 refused (200 in all: 10 requests/s, 5 % errors, 5 % refused), and the
        // histogram grew by 0 below 1 ms and 200 in (0.001, 0.01]: p50 = 0.001 + 0.009 × 100/200 = 0.0055.
        var second = new Scrape(t0.AddSeconds(20), PrometheusText.Parse(Exposition(280, 10, 10, [("0.001", 50), ("0.01", 300), ("+Inf", 300)])));
        var s = Assert.Single(ReplicaStats.Between(first, second));
        Assert.Equal(("fraud", "2"), (s.Model, s.Version));
        Assert.Equal(200, s.Requests);
        Assert.Equal(10, s.RequestsPerSecond!.Value, 9);
        Assert.Equal(0.05, s.ErrorRatio!.Value, 12);
        Assert.Equal(0.05, s.ClientErrorRatio!.Value, 12);
        Assert.Equal(0.0055, s.P50!.Value, 12);

        // One scrape: totals since the replica started, and no rate.
        var only = Assert.Single(ReplicaStats.Between(null, first));
        Assert.Equal(100, only.Requests);
        Assert.Null(only.RequestsPerSecond);
        // A restarted replica (counters went down) counts from zero.
        var restarted = Assert.Single(ReplicaStats.Between(second, new Scrape(t0.AddSeconds(40), PrometheusText.Parse(Exposition(5, 0, 0, [("0.001", 5), ("0.01", 5), ("+Inf", 5)])))));
        Assert.Equal(5, restarted.Requests);
    }

    [Fact]
    public void A_replica_is_forgotten_after_three_missed_heartbeats_and_bad_heartbeats_name_the_field()
    {
        var clock = new ManualClock(DateTimeOffset.Parse("2026-12-07T05:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
        var registry = new ReplicaRegistry([new Uri("http://10.0.0.9:8080")], clock);
        registry.Heartbeat("http://10.0.0.5:8080/predict", [new ReplicaModel("fraud", "2")], 10);
        Assert.Equal(new[] { "http://10.0.0.5:8080/", "http://10.0.0.9:8080/" }, registry.Live().Select(r => r.Url.AbsoluteUri));
        clock.Advance(TimeSpan.FromSeconds(29));
        Assert.Equal(2, registry.Live().Count);
        clock.Advance(TimeSpan.FromSeconds(2));
        // Configured replicas stay.
        Assert.Equal(new[] { "http://10.0.0.9:8080/" }, registry.Live().Select(r => r.Url.AbsoluteUri));

        Assert.StartsWith("url:", Assert.Throws<KilnException>(() => registry.Heartbeat("ftp://x", [], 10)).Message, StringComparison.Ordinal);
        Assert.StartsWith("interval_seconds:", Assert.Throws<KilnException>(() => registry.Heartbeat("http://x:1", [], 0)).Message, StringComparison.Ordinal);
        Assert.StartsWith("models[0].name:", Assert.Throws<KilnException>(() => registry.Heartbeat("http://x:1", [new ReplicaModel(" ", "1")], 5)).Message, StringComparison.Ordinal);
    }

    private sealed class ManualClock(DateTimeOffset now) : TimeProvider
    {
        private DateTimeOffset _now = now;

        public override DateTimeOffset GetUtcNow() => _now;

        public void Advance(TimeSpan by) => _now += by;
    }
}
