using System.Text;
using Kiln.Testing;

namespace Kiln.Serving.Tests;

public sealed class ServeCliTests
{
    [Fact]
    public async Task Kiln_serve_answers_predictions_and_on_sigterm_stops_and_writes_its_log()
    {
        using var dir = new TempDir("kiln-cli");
        var package = TestPackages.CreateFraud(dir.File("fraud"));
        var port = TestEnvironment.FreePort();
        var log = dir.File("log");
        using var process = KilnCli.Start(["serve", "--model", package, "--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--grpc-port", "-1", "--log-dir", log, "--poll-interval", "0"]);
        try
        {
            using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(30) };
            var deadline = DateTime.UtcNow.AddSeconds(60);
            var ready = false;
            while (!ready && DateTime.UtcNow < deadline && !process.HasExited)
            {
                try { ready = (await http.GetAsync("/ready")).IsSuccessStatusCode; }
                catch (Exception e) when (e is HttpRequestException or TaskCanceledException) { }
                if (!ready) await Task.Delay(200);
            }
            Assert.True(ready, "kiln serve never became ready");
            using var response = await http.PostAsync("/predict", new StringContent("""{"amount": 420.5, "hour": 3, "merchant": "online"}""", Encoding.UTF8, "application/json"));
            Assert.Equal(200, (int)response.StatusCode);
            Assert.Contains("\"model\":\"fraud\"", await response.Content.ReadAsStringAsync());

            var kill = await Proc.RunAsync("kill", ["-TERM", process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
            Assert.Equal(0, kill.ExitCode);
            using var wait = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            await process.WaitForExitAsync(wait.Token);
            Assert.Equal(0, process.ExitCode);
            Assert.Single(Directory.EnumerateFiles(log, "*.parquet", SearchOption.AllDirectories));
        }
        finally
        {
            if (!process.HasExited) process.Kill(entireProcessTree: true);
        }
    }

    [Fact]
    public async Task A_missing_package_is_a_one_line_error_and_exit_code_1()
    {
        var result = await KilnCli.RunAsync(["serve", "--model", "/nonexistent/package", "--port", "0"]);
        Assert.Equal(1, result.ExitCode);
        Assert.Contains("error: --model /nonexistent/package: no such package directory", result.StdErr);
    }

    [Fact]
    public async Task A_bad_duration_names_the_option()
    {
        using var dir = new TempDir("kiln-cli");
        var result = await KilnCli.RunAsync(["serve", "--model", dir.Path, "--poll-interval", "soon"]);
        Assert.Equal(1, result.ExitCode);
        Assert.Contains("--poll-interval", result.StdErr);
    }

    [Fact]
    public async Task A_model_that_cannot_be_resolved_at_start_is_an_error_unless_asked_to_wait()
    {
        using var dir = new TempDir("kiln-cli");
        var store = dir.File("store");
        var result = await KilnCli.RunAsync(["serve", "--model", "models:/nosuch@production", "--tracking-uri", store, "--port", "0", "--grpc-port", "-1"],
            timeout: TimeSpan.FromSeconds(60));
        Assert.Equal(1, result.ExitCode);
        var errors = result.StdErr.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => l.StartsWith("error:", StringComparison.Ordinal)).ToList();
        Assert.Single(errors);
        Assert.Contains("--model models:/nosuch@production: cannot be loaded", errors[0]);
        Assert.DoesNotContain("kiln serve: HTTP", result.StdOut);

        // Asked to wait, it serves /health and answers /ready with 503 until the model exists.
        var port = TestEnvironment.FreePort();
        using var process = KilnCli.Start(["serve", "--model", "models:/nosuch@production", "--tracking-uri", store, "--wait-for-model",
            "--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--grpc-port", "-1"]);
        try
        {
            using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(10) };
            var deadline = DateTime.UtcNow.AddSeconds(60);
            int? status = null;
            while (status is null && DateTime.UtcNow < deadline && !process.HasExited)
            {
                try { status = (int)(await http.GetAsync("/ready")).StatusCode; }
                catch (Exception e) when (e is HttpRequestException or TaskCanceledException) { await Task.Delay(200); }
            }
            Assert.False(process.HasExited, "kiln serve --wait-for-model exited");
            Assert.Equal(503, status);
        }
        finally
        {
            if (!process.HasExited) process.Kill(entireProcessTree: true);
        }
    }
}
