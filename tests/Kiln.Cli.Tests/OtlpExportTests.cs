using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Text;
using Kiln.Testing;

namespace Kiln.Cli.Tests;

/// <summary>
/// `kiln serve --otlp-endpoint` and `kiln server --otlp-endpoint` push their metrics with OpenTelemetry's OTLP
/// exporter to a collector: here an HTTP listener in the test that records what it is sent (OTLP/HTTP is a
/// protobuf body POSTed to /v1/metrics; names and attributes are UTF-8 strings inside it).
/// </summary>
public sealed class OtlpExportTests(TrainedPackage package) : IClassFixture<TrainedPackage>
{
    [Fact]
    public async Task Serve_pushes_request_counts_to_an_otlp_collector()
    {
        using var collector = new Collector();
        var port = TestEnvironment.FreePort().ToString(CultureInfo.InvariantCulture);
        using var serve = KilnCli.Start(["serve", "--model", package.Directory, "--port", port, "--grpc-port", "-1",
            "--otlp-endpoint", collector.Url, "--otlp-interval", "500ms"]);
        try
        {
            using var http = new HttpClient();
            await WaitReadyAsync(http, $"http://127.0.0.1:{port}/ready", serve);
            var row = """{"amount": 42.5, "hour": 3, "merchant_category": "grocery", "card_present": "yes", "distance_from_home_km": 2.0, "customer_age": 40}""";
            using var response = await http.PostAsync(new Uri($"http://127.0.0.1:{port}/predict"), new StringContent(row, Encoding.UTF8, "application/json"));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);

            // Recorded only once a request was answered (kiln.serve.requests.in_flight is there from the start).
            var body = await collector.WaitForAsync("kiln.serve.request.duration", TimeSpan.FromSeconds(30));
            Assert.Contains("kiln-serve", body, StringComparison.Ordinal); // service.name on the resource
            Assert.Contains("kiln.serve.rows", body, StringComparison.Ordinal);
            Assert.All(collector.Requests, r => Assert.Equal(("/v1/metrics", "application/x-protobuf"), (r.Path, r.ContentType)));
        }
        finally
        {
            serve.Kill(entireProcessTree: true);
        }
    }

    [Fact]
    public async Task Server_pushes_its_metrics_to_an_otlp_collector()
    {
        using var collector = new Collector();
        using var dir = new TempDir("kiln-otlp-server");
        var port = TestEnvironment.FreePort().ToString(CultureInfo.InvariantCulture);
        using var server = KilnCli.Start(["server", "--db", dir.Path, "--port", port, "--otlp-endpoint", collector.Url, "--otlp-interval", "500ms"]);
        try
        {
            using var http = new HttpClient();
            await WaitReadyAsync(http, $"http://127.0.0.1:{port}/metrics", server);
            var body = await collector.WaitForAsync("kiln-server", TimeSpan.FromSeconds(30));
            Assert.Contains("service.name", body, StringComparison.Ordinal);
        }
        finally
        {
            server.Kill(entireProcessTree: true);
        }
    }

    [Fact]
    public async Task A_bad_otlp_endpoint_is_one_line_naming_the_option()
    {
        var r = await KilnCli.RunAsync(["serve", "--model", package.Directory, "--port", "0", "--grpc-port", "-1", "--otlp-endpoint", "collector:4318"]);
        Assert.Equal(1, r.ExitCode);
        Assert.Equal("error: --otlp-endpoint: 'collector:4318' is not an http(s) URL (e.g. http://127.0.0.1:4318)", r.StdErr.Trim());
    }

    private static async Task WaitReadyAsync(HttpClient http, string url, System.Diagnostics.Process process)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (DateTime.UtcNow < deadline)
        {
            Assert.False(process.HasExited, "the kiln process exited before it was ready");
            try
            {
                using var r = await http.GetAsync(new Uri(url));
                if (r.IsSuccessStatusCode) return;
            }
            catch (HttpRequestException)
            {
            }
            await Task.Delay(200);
        }
        throw new TimeoutException($"{url} was not ready within 60 s");
    }

    /// <summary>A stand-in OpenTelemetry collector: accepts every POST and keeps its path, content type and body.</summary>
    private sealed class Collector : IDisposable
    {
        private readonly HttpListener _listener = new();
        private readonly Task _loop;

        public Collector()
        {
            var port = TestEnvironment.FreePort().ToString(CultureInfo.InvariantCulture);
            Url = $"http://127.0.0.1:{port}";
            _listener.Prefixes.Add(Url + "/");
            _listener.Start();
            _loop = Task.Run(LoopAsync);
        }

        public string Url { get; }

        public ConcurrentQueue<(string Path, string? ContentType, byte[] Body)> Requests { get; } = new();

        public async Task<string> WaitForAsync(string text, TimeSpan timeout)
        {
            var deadline = DateTime.UtcNow + timeout;
            while (DateTime.UtcNow < deadline)
            {
                foreach (var r in Requests)
                {
                    var body = Encoding.UTF8.GetString(r.Body);
                    if (body.Contains(text, StringComparison.Ordinal)) return body;
                }
                await Task.Delay(200);
            }
            throw new TimeoutException($"no OTLP export mentioning '{text}' within {timeout.TotalSeconds} s ({Requests.Count} requests received)");
        }

        private async Task LoopAsync()
        {
            while (_listener.IsListening)
            {
                HttpListenerContext context;
                try
                {
                    context = await _listener.GetContextAsync();
                }
                catch (Exception e) when (e is HttpListenerException or ObjectDisposedException)
                {
                    return;
                }
                using var body = new MemoryStream();
                await context.Request.InputStream.CopyToAsync(body);
                Requests.Enqueue((context.Request.Url!.AbsolutePath, context.Request.ContentType, body.ToArray()));
                context.Response.StatusCode = 200;
                context.Response.ContentType = "application/x-protobuf";
                context.Response.Close();
            }
        }

        public void Dispose()
        {
            _listener.Stop();
            _listener.Close();
            _loop.Wait(TimeSpan.FromSeconds(5));
        }
    }
}
