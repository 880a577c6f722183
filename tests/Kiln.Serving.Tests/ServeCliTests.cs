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
}
