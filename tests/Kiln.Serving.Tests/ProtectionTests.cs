using System.Net;
using System.Text;
using Kiln.Testing;

namespace Kiln.Serving.Tests;

public sealed class ProtectionTests
{
    /// <summary>A body that sends its first half, then waits until told to send the rest: it holds a concurrency slot for as long as the test wants.</summary>
    private sealed class SlowContent(string json, Task release) : HttpContent
    {
        private readonly byte[] _bytes = Encoding.UTF8.GetBytes(json);

        public TaskCompletionSource Started { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context)
        {
            var half = _bytes.Length / 2;
            await stream.WriteAsync(_bytes.AsMemory(0, half));
            await stream.FlushAsync();
            Started.TrySetResult();
            await release;
            await stream.WriteAsync(_bytes.AsMemory(half));
        }

        protected override bool TryComputeLength(out long length)
        {
            length = _bytes.Length;
            return true;
        }
    }

    [Fact]
    public async Task Beyond_the_concurrency_limit_and_its_queue_requests_get_503_with_retry_after_and_then_recover()
    {
        using var dir = new TempDir("kiln-protect");
        var package = TestPackages.CreateFraud(dir.File("fraud"));
        await using var server = await OwnServer.StartAsync(new ServeOptions
        {
            Models = [new ModelSpec(package)], Port = 0, GrpcPort = null, PollInterval = TimeSpan.Zero,
            MaxConcurrentRequests = 1, QueueLimit = 0,
        });
        const string Row = """{"amount": 5, "hour": 3, "merchant": "online"}""";
        var release = new TaskCompletionSource();
        using var slowClient = new HttpClient { BaseAddress = server.Host.HttpUri };
        var slowContent = new SlowContent(Row, release.Task);
        slowContent.Headers.ContentType = new("application/json");
        var holding = slowClient.PostAsync("/predict", slowContent);          // takes the one slot
        await slowContent.Started.Task;
        // Wait until the slow request is inside its handler, i.e. holds the one permit.
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (!(await server.MetricsAsync()).Contains("kiln_serve_requests_in_flight{protocol=\"native\"} 1", StringComparison.Ordinal))
        {
            Assert.True(DateTime.UtcNow < deadline, "the slow request never started");
            await Task.Delay(20);
        }

        using var rejected = await server.Http.PostAsync("/predict", new StringContent(Row, Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.ServiceUnavailable, rejected.StatusCode);
        Assert.Equal(TimeSpan.FromSeconds(1), rejected.Headers.RetryAfter?.Delta);
        // Health and metrics are outside the limit: a saturated server still answers its probes.
        Assert.Equal(200, (await server.GetAsync("/health")).Status);

        release.SetResult();
        Assert.Equal(HttpStatusCode.OK, (await holding).StatusCode);
        Assert.Equal(200, (await server.PostAsync("/predict", Row)).Status);
        Assert.Contains("kiln_serve_requests_rejected_total{reason=\"overload\"} 1", await server.MetricsAsync());
    }

    [Fact]
    public async Task A_request_waits_in_the_queue_for_a_free_slot_and_is_then_answered()
    {
        using var dir = new TempDir("kiln-protect");
        var package = TestPackages.CreateFraud(dir.File("fraud"));
        await using var server = await OwnServer.StartAsync(new ServeOptions
        {
            Models = [new ModelSpec(package)], Port = 0, GrpcPort = null, PollInterval = TimeSpan.Zero,
            MaxConcurrentRequests = 1, QueueLimit = 1,
        });
        const string Row = """{"amount": 5, "hour": 3, "merchant": "online"}""";
        var release = new TaskCompletionSource();
        using var slowClient = new HttpClient { BaseAddress = server.Host.HttpUri };
        var slowContent = new SlowContent(Row, release.Task);
        slowContent.Headers.ContentType = new("application/json");
        var holding = slowClient.PostAsync("/predict", slowContent);
        await slowContent.Started.Task;
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (!(await server.MetricsAsync()).Contains("kiln_serve_requests_in_flight{protocol=\"native\"} 1", StringComparison.Ordinal))
        {
            Assert.True(DateTime.UtcNow < deadline, "the slow request never started");
            await Task.Delay(20);
        }

        var queued = server.PostAsync("/predict", Row);                           // waits: the one slot is taken
        await Task.Delay(300);
        Assert.False(queued.IsCompleted, "the second request should wait in the queue while the slot is held");
        release.SetResult();
        Assert.Equal(HttpStatusCode.OK, (await holding).StatusCode);
        var (status, body) = await queued;
        Assert.Equal(200, status);
        Assert.Equal("fraud", body.GetProperty("model").GetString());
        Assert.DoesNotContain("kiln_serve_requests_rejected_total{", await server.MetricsAsync());
    }

    [Fact]
    public async Task A_request_older_than_the_timeout_is_answered_504_and_counted()
    {
        using var dir = new TempDir("kiln-protect");
        var package = TestPackages.CreateFraud(dir.File("fraud"));
        await using var server = await OwnServer.StartAsync(new ServeOptions
        {
            Models = [new ModelSpec(package)], Port = 0, GrpcPort = null, PollInterval = TimeSpan.Zero,
            RequestTimeout = TimeSpan.FromMilliseconds(500),
        });
        const string Row = """{"amount": 5, "hour": 3, "merchant": "online"}""";
        // A raw socket sends the headers and half the body, then nothing: the server must not wait for ever.
        using var tcp = new System.Net.Sockets.TcpClient();
        await tcp.ConnectAsync(server.Host.HttpUri.Host, server.Host.HttpUri.Port);
        var stream = tcp.GetStream();
        var head = $"POST /predict HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {Row.Length}\r\n\r\n{Row[..(Row.Length / 2)]}";
        await stream.WriteAsync(Encoding.ASCII.GetBytes(head));
        var buffer = new byte[4096];
        using var wait = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var n = await stream.ReadAsync(buffer, wait.Token);
        var answer = Encoding.ASCII.GetString(buffer, 0, n);
        Assert.StartsWith("HTTP/1.1 504", answer, StringComparison.Ordinal);
        Assert.Contains("kiln_serve_requests_rejected_total{reason=\"timeout\"} 1", await server.MetricsAsync());
        // The server goes on answering.
        Assert.Equal(200, (await server.PostAsync("/predict", Row)).Status);
    }

    [Fact]
    public async Task A_request_body_sent_without_a_length_is_cut_at_the_limit_with_413()
    {
        using var dir = new TempDir("kiln-protect");
        var package = TestPackages.CreateFraud(dir.File("fraud"));
        await using var server = await OwnServer.StartAsync(new ServeOptions
        {
            Models = [new ModelSpec(package)], Port = 0, GrpcPort = null, PollInterval = TimeSpan.Zero, MaxRequestBodyBytes = 4096,
        });
        var rows = "[" + string.Join(",", Enumerable.Repeat("""{"amount": 5, "hour": 3, "merchant": "online"}""", 200)) + "]";
        using var content = new StreamContent(new MemoryStream(Encoding.UTF8.GetBytes(rows)));
        content.Headers.ContentType = new("application/json");
        using var request = new HttpRequestMessage(HttpMethod.Post, "/predict") { Content = content };
        request.Headers.TransferEncodingChunked = true;
        HttpResponseMessage? response = null;
        try
        {
            response = await server.Http.SendAsync(request);
        }
        catch (HttpRequestException)
        {
            // The server may close the connection while the client is still sending; then ask again with a small body below.
        }
        if (response is not null) Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        response?.Dispose();
        Assert.Equal(200, (await server.PostAsync("/predict", """{"amount": 5, "hour": 3, "merchant": "online"}""")).Status);
    }
}
