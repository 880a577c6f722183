using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Kiln.Testing;
using Microsoft.Playwright;

namespace Kiln.Web.Tests;

/// <summary>
/// A real kiln serve started with --register against the real kiln server of the browser fixture: it appears on the
/// serving page with the requests the test sent, their rate and a p95 in the histogram's bucket of the true p95.
/// </summary>
public sealed class ServingReplicaTests(BrowserFixture f) : IClassFixture<BrowserFixture>
{
    private const string Request = """{"amount": 950.0, "hour": 2, "merchant_category": "jewelry", "card_present": "no", "distance_from_home_km": 80.0, "customer_age": 30}""";

    [Fact]
    public async Task A_registered_replica_shows_its_request_rate_errors_and_p95_on_the_serving_page()
    {
        var port = TestEnvironment.FreePort();
        var replica = $"http://127.0.0.1:{port}/";
        var server = f.Server.Address.ToString().TrimEnd('/');
        using var serve = KilnCli.Start(["serve", "--model", "models:/fraud@production", "--tracking-uri", f.Server.Db, "--port", port.ToString(CultureInfo.InvariantCulture),
            "--grpc-port", "-1", "--poll-interval", "0", "--register", server, "--register-interval", "1s"], f.Server.Dir);
        var stderr = new StringBuilder();
        serve.ErrorDataReceived += (_, e) => { lock (stderr) stderr.AppendLine(e.Data); };
        try
        {
            // The server lists the replica once its first heartbeat arrives.
            using var api = f.Server.Client();
            var listed = false;
            for (var deadline = DateTime.UtcNow.AddSeconds(90); !listed && DateTime.UtcNow < deadline && !serve.HasExited; await Task.Delay(250))
            {
                var list = await api.GetStringAsync(new Uri("/api/v1/serving/replicas", UriKind.Relative));
                using var doc = JsonDocument.Parse(list);
                listed = doc.RootElement.GetProperty("replicas").EnumerateArray().Any(r => r.GetProperty("url").GetString() == replica
                    && r.GetProperty("models").EnumerateArray().Any(m => m.GetProperty("name").GetString() == "fraud" && m.GetProperty("version").GetString() is { Length: > 0 }));
            }
            Assert.True(listed, $"the replica never registered\n{stderr}\n{f.Server.ServerLog}");

            // The page before traffic: the replica with nothing answered (this visit's scrape is the rates' base).
            var page = await f.NewPageAsync();
            await page.GotoAsync("/serving");
            var row = page.Locator($"tr[data-replica=\"{replica}\"]");
            await Assertions.Expect(row.First).ToBeVisibleAsync(new() { Timeout = 15_000 });

            using var http = new HttpClient { BaseAddress = new Uri(replica), Timeout = TimeSpan.FromSeconds(30) };
            var before = await DurationBucketsAsync(http);
            const int Requests = 120;
            var client = new List<double>(Requests);
            for (var i = 0; i < Requests; i++)
            {
                var watch = Stopwatch.StartNew();
                using var r = await http.PostAsync(new Uri("/predict", UriKind.Relative), new StringContent(Request, Encoding.UTF8, "application/json"));
                watch.Stop();
                Assert.Equal(HttpStatusCode.OK, r.StatusCode);
                client.Add(watch.Elapsed.TotalSeconds);
            }
            var after = await DurationBucketsAsync(http);

            await page.GotoAsync("/serving");
            row = page.Locator($"tr[data-replica=\"{replica}\"]");
            await Assertions.Expect(row.Locator("[data-stat=requests]")).ToHaveTextAsync(Requests.ToString(CultureInfo.InvariantCulture));
            await BrowserFixture.ScreenshotAsync(page, "serving-replicas");
            var rate = double.Parse(await row.Locator("[data-stat=rate]").InnerTextAsync(), CultureInfo.InvariantCulture);
            Assert.True(rate > 0, $"rate {rate}");
            Assert.Equal("0 %", await row.Locator("[data-stat=errors]").InnerTextAsync());
            var p95 = double.Parse((await row.Locator("[data-stat=p95]").GetAttributeAsync("data-seconds"))!, CultureInfo.InvariantCulture);

            // The oracle: from the replica's own histogram, read by the test before and after the traffic, the bucket
            // holding the 95th percentile (the first whose cumulative increase reaches 0.95 × 120 = 114 requests).
            var bounds = after.Keys.Where(double.IsFinite).Order().ToList();
            var rank = 0.95 * Requests;
            var upper = bounds.First(b => after[b] - before.GetValueOrDefault(b) >= rank);
            var lower = bounds.LastOrDefault(b => b < upper);
            Assert.InRange(p95, lower, upper);
            // And what the client measured bounds it: the server's time is part of each round trip.
            client.Sort();
            Assert.True(p95 <= client[(int)Math.Ceiling(rank) - 1] + 1e-3, $"p95 {p95} s vs the client's {client[(int)Math.Ceiling(rank) - 1]} s");
        }
        finally
        {
            if (!serve.HasExited) serve.Kill(entireProcessTree: true);
        }
    }

    // le → cumulative count of kiln_serve_request_duration_seconds, summed over its other labels (a plain regex, not Kiln's parser).
    private static async Task<Dictionary<double, double>> DurationBucketsAsync(HttpClient http)
    {
        var text = await http.GetStringAsync(new Uri("/metrics", UriKind.Relative));
        var buckets = new Dictionary<double, double>();
        foreach (Match m in Regex.Matches(text, "^kiln_serve_request_duration_seconds_bucket\\{.*le=\"([^\"]+)\".*\\} (\\S+)$", RegexOptions.Multiline))
        {
            var le = m.Groups[1].Value == "+Inf" ? double.PositiveInfinity : double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
            buckets[le] = buckets.GetValueOrDefault(le) + double.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture);
        }
        return buckets;
    }
}
