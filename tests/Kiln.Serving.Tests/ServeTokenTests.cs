using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using Kiln.Testing;

namespace Kiln.Serving.Tests;

/// <summary>kiln serve --require-token with the real binary: tokens from a file of hashes and from the auth store; probes stay open.</summary>
public sealed class ServeTokenTests
{
    private static async Task<(System.Diagnostics.Process Process, HttpClient Http)> StartAsync(string[] args)
    {
        var port = TestEnvironment.FreePort();
        var process = KilnCli.Start(["serve", .. args, "--port", port.ToString(CultureInfo.InvariantCulture), "--grpc-port", "-1", "--poll-interval", "0"]);
        var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(30) };
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (DateTime.UtcNow < deadline && !process.HasExited)
        {
            try
            {
                // Readiness is open without a token: it is how the test (and Kubernetes) knows the server is up.
                if ((await http.GetAsync("/ready")).IsSuccessStatusCode) return (process, http);
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
            }
            await Task.Delay(200);
        }
        process.Kill(entireProcessTree: true);
        throw new TimeoutException("kiln serve never became ready");
    }

    private static async Task<HttpStatusCode> PredictAsync(HttpClient http, string? token)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/predict")
        {
            Content = new StringContent("""{"amount": 420.5, "hour": 3, "merchant": "online"}""", Encoding.UTF8, "application/json"),
        };
        if (token is not null) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        using var r = await http.SendAsync(request);
        return r.StatusCode;
    }

    [Fact]
    public async Task Tokens_from_a_file_of_hashes_admit_scoring_and_probes_stay_open()
    {
        using var dir = new TempDir("kiln-serve-token");
        var package = TestPackages.CreateFraud(dir.File("fraud"));
        var file = dir.File("tokens.txt");
        var created = await KilnCli.RunAsync(["auth", "token", "create", "--file", file, "--name", "scorer"]);
        Assert.True(created.ExitCode == 0, created.ToString());
        var token = created.StdOut.Trim();
        Assert.DoesNotContain(token, await File.ReadAllTextAsync(file), StringComparison.Ordinal);

        var (process, http) = await StartAsync(["--model", package, "--require-token", "--token-file", file, "--open-metrics"]);
        try
        {
            Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/health")).StatusCode);
            Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/metrics")).StatusCode);
            Assert.Equal(HttpStatusCode.Unauthorized, await PredictAsync(http, null));
            Assert.Equal(HttpStatusCode.Unauthorized, await PredictAsync(http, token + "x"));
            Assert.Equal(HttpStatusCode.OK, await PredictAsync(http, token));
            using var v2 = await http.GetAsync("/v2/models/fraud");
            Assert.Equal(HttpStatusCode.Unauthorized, v2.StatusCode);
            Assert.Contains("bearer token", await v2.Content.ReadAsStringAsync(), StringComparison.Ordinal);

            // A token added to the file works without a restart.
            var second = await KilnCli.RunAsync(["auth", "token", "create", "--file", file, "--name", "second"]);
            File.SetLastWriteTimeUtc(file, DateTime.UtcNow.AddSeconds(2));
            Assert.Equal(HttpStatusCode.OK, await PredictAsync(http, second.StdOut.Trim()));
        }
        finally
        {
            process.Kill(entireProcessTree: true);
            http.Dispose();
        }
    }

    [Fact]
    public async Task Tokens_of_the_auth_store_admit_scoring_until_revoked_and_metrics_need_one_by_default()
    {
        using var dir = new TempDir("kiln-serve-token-db");
        var package = TestPackages.CreateFraud(dir.File("fraud"));
        var db = dir.File("meta");
        Assert.Equal(0, (await KilnCli.RunAsync(["auth", "user", "add", "scorer", "--no-password", "--db", db])).ExitCode);
        var created = await KilnCli.RunAsync(["auth", "token", "create", "--user", "scorer", "--db", db]);
        Assert.True(created.ExitCode == 0, created.ToString());
        var token = created.StdOut.Trim();
        var id = created.StdErr.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1];

        var (process, http) = await StartAsync(["--model", package, "--require-token", "--token-db", db]);
        try
        {
            Assert.Equal(HttpStatusCode.Unauthorized, (await http.GetAsync("/metrics")).StatusCode);
            Assert.Equal(HttpStatusCode.OK, await PredictAsync(http, token));
            var revoked = await KilnCli.RunAsync(["auth", "token", "revoke", id, "--db", db]);
            Assert.True(revoked.ExitCode == 0, revoked.ToString());
            Assert.Equal(HttpStatusCode.Unauthorized, await PredictAsync(http, token));
        }
        finally
        {
            process.Kill(entireProcessTree: true);
            http.Dispose();
        }
    }

    [Fact]
    public async Task Token_options_without_require_token_are_refused_in_one_line()
    {
        using var dir = new TempDir("kiln-serve-token-opts");
        var package = TestPackages.CreateFraud(dir.File("fraud"));
        var r = await KilnCli.RunAsync(["serve", "--model", package, "--token-file", "x"]);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("go with --require-token", r.StdErr, StringComparison.Ordinal);
    }
}
