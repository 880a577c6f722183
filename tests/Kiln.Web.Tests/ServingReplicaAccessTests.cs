using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Kiln.Auth;
using Kiln.Testing;

namespace Kiln.Web.Tests;

/// <summary>
/// kiln serve --register against a kiln server with access control on (the sign-in fixture's server: users, the
/// quickstart's model): the heartbeat signs in with a service token from MLFLOW_TRACKING_TOKEN, as every Kiln client
/// does; without one the replica is refused at start with one line and a non-zero exit, and never listed.
/// </summary>
[Collection(SignInCollection.Name)]
public sealed class ServingReplicaAccessTests(SignInBrowserFixture fixture)
{
    private SessionFixture Site => fixture.Server;

    private string[] ServeArgs(int port) =>
    [
        "serve", "--model", "models:/fraud@production", "--tracking-uri", Site.Db, "--port", port.ToString(CultureInfo.InvariantCulture),
        "--grpc-port", "-1", "--poll-interval", "0", "--register", Site.Address.ToString().TrimEnd('/'), "--register-interval", "1s",
    ];

    private HttpClient Admin()
    {
        var http = new HttpClient { BaseAddress = Site.Address, Timeout = TimeSpan.FromSeconds(30) };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic",
            Convert.ToBase64String(Encoding.UTF8.GetBytes("ada:" + SessionFixture.AdminPassword)));
        return http;
    }

    private async Task<bool> ListedAsync(HttpClient admin, string replica)
    {
        using var doc = JsonDocument.Parse(await admin.GetStringAsync(new Uri("/api/v1/serving/replicas", UriKind.Relative)));
        return doc.RootElement.GetProperty("replicas").EnumerateArray().Any(r => r.GetProperty("url").GetString() == replica);
    }

    [Fact]
    public async Task A_replica_registers_with_a_service_token_and_is_refused_at_start_without_one()
    {
        using var admin = Admin();

        // No token: the server answers the first heartbeat 401, and kiln serve stops with one line naming --register.
        var refusedPort = TestEnvironment.FreePort();
        var refused = await KilnCli.RunAsync(ServeArgs(refusedPort), Site.Dir, env: new Dictionary<string, string> { ["MLFLOW_TRACKING_TOKEN"] = "" },
            timeout: TimeSpan.FromMinutes(3));
        Assert.True(refused.ExitCode == 1, refused.ToString());
        var errors = refused.StdErr.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => l.StartsWith("error:", StringComparison.Ordinal)).ToList();
        Assert.True(errors.Count == 1 && errors[0].Contains("--register", StringComparison.Ordinal), refused.ToString());
        Assert.False(await ListedAsync(admin, $"http://127.0.0.1:{refusedPort}/"));

        // A service token of a user allowed to register (the admin): listed once its first heartbeat arrives.
        string secret;
        await using (var store = AuthStore.Open(Site.Db))
            (_, secret) = await store.CreateTokenAsync("ada", "replica heartbeat test", null);
        var port = TestEnvironment.FreePort();
        var replica = $"http://127.0.0.1:{port}/";
        using var serve = KilnCli.Start(ServeArgs(port), Site.Dir, new Dictionary<string, string> { ["MLFLOW_TRACKING_TOKEN"] = secret });
        var stderr = new StringBuilder();
        serve.ErrorDataReceived += (_, e) => { lock (stderr) stderr.AppendLine(e.Data); };
        try
        {
            var listed = false;
            for (var deadline = DateTime.UtcNow.AddSeconds(120); !listed && DateTime.UtcNow < deadline && !serve.HasExited; await Task.Delay(250))
                listed = await ListedAsync(admin, replica);
            Assert.True(listed, $"the replica never registered\n{stderr}\n{Site.ServerLog}");
        }
        finally
        {
            if (!serve.HasExited) serve.Kill(entireProcessTree: true);
            await serve.WaitForExitAsync();
        }
    }
}
