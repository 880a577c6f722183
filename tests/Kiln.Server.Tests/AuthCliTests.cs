using System.Net;
using System.Text.Json;
using Kiln.Testing;

namespace Kiln.Server.Tests;

/// <summary>
/// Access control as a user meets it: users and tokens made with the real `kiln auth` commands, the real `kiln server`,
/// the npm mlflow client (written by others) signing in with a bearer token and with basic auth, and Kiln's own CLI
/// through the server with MLFLOW_TRACKING_TOKEN.
/// </summary>
public sealed class AuthCliTests
{
    private static Task<Proc.Result> Kiln(string[] args, string? stdin = null, IDictionary<string, string>? env = null) =>
        Proc.RunAsync("dotnet", [KilnCli.Dll, .. args], stdin: stdin, env: env, timeout: TimeSpan.FromMinutes(2));

    // The server prints its access line just after it starts listening: wait for it rather than race it.
    private static async Task<string> LogAsync(RealServer server, string text)
    {
        for (var i = 0; i < 100 && !server.Log.Contains(text, StringComparison.Ordinal); i++) await Task.Delay(100);
        return server.Log;
    }

    [Fact]
    public async Task Npm_mlflow_client_and_kiln_clients_sign_in_with_a_token_and_with_a_password()
    {
        var js = Path.Combine(TestEnvironment.RepoRoot, "tests", "js");
        Assert.True(Directory.Exists(Path.Combine(js, "node_modules", "mlflow")), "tests/js/node_modules/mlflow is missing: run `npm install` in tests/js (test.sh does)");
        using var dir = new TempDir("kiln-auth-cli");
        var db = dir.Path;

        var r = await Kiln(["auth", "user", "add", "root", "--admin", "--password-stdin", "--db", db], stdin: "root-password-1\n");
        Assert.True(r.ExitCode == 0, r.ToString());
        r = await Kiln(["auth", "user", "add", "ada", "--password-stdin", "--default-permission", "EDIT", "--db", db], stdin: "ada-password-1\n");
        Assert.True(r.ExitCode == 0, r.ToString());
        r = await Kiln(["auth", "user", "add", "ci", "--no-password", "--default-permission", "EDIT", "--db", db]);
        Assert.True(r.ExitCode == 0, r.ToString());
        r = await Kiln(["auth", "user", "add", "ci", "--no-password", "--db", db]);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("exists already", r.StdErr, StringComparison.Ordinal);
        r = await Kiln(["auth", "user", "add", "shorty", "--password-stdin", "--db", db], stdin: "short\n");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("at least 8 characters", r.StdErr, StringComparison.Ordinal);

        r = await Kiln(["auth", "token", "create", "--user", "ci", "--description", "npm test", "--expires", "1d", "--db", db]);
        Assert.True(r.ExitCode == 0, r.ToString());
        var token = r.StdOut.Trim();
        Assert.StartsWith("kiln_", token, StringComparison.Ordinal);
        Assert.DoesNotContain(token, r.StdErr, StringComparison.Ordinal);

        await using var server = await RealServer.StartAsync(db);
        Assert.Contains("access control is on: 3 user(s)", await LogAsync(server, "access control"), StringComparison.Ordinal);
        var url = server.Address.ToString().TrimEnd('/');

        foreach (var env in new[]
        {
            new Dictionary<string, string> { ["KILN_URL"] = url, ["MLFLOW_TRACKING_TOKEN"] = token },
            new Dictionary<string, string> { ["KILN_URL"] = url, ["MLFLOW_TRACKING_USERNAME"] = "ada", ["MLFLOW_TRACKING_PASSWORD"] = "ada-password-1" },
        })
        {
            var node = await Proc.RunAsync("node", ["mlflow-lifecycle.js"], js, env: env, timeout: TimeSpan.FromMinutes(2));
            Assert.True(node.ExitCode == 0, $"{node}\nserver log:\n{server.Log}");
            Assert.StartsWith("LIFECYCLE OK", node.StdOut, StringComparison.Ordinal);
        }

        // Kiln's own client takes the same variables; without them the server's answer is one line.
        r = await Kiln(["runs", "list", "--tracking-uri", url], env: new Dictionary<string, string> { ["MLFLOW_TRACKING_TOKEN"] = token });
        Assert.True(r.ExitCode == 0, r.ToString());
        r = await Kiln(["runs", "list", "--tracking-uri", url], env: new Dictionary<string, string> { ["MLFLOW_TRACKING_TOKEN"] = "" });
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("authentication required", r.StdErr, StringComparison.Ordinal);

        // The token was used (last-used is set), then revoked: it stops at once.
        r = await Kiln(["auth", "list", "--json", "--db", db]);
        Assert.True(r.ExitCode == 0, r.ToString());
        var listed = JsonDocument.Parse(r.StdOut).RootElement;
        var t = Assert.Single(listed.GetProperty("tokens").EnumerateArray());
        Assert.Equal("ci", t.GetProperty("user").GetString());
        Assert.NotEqual("", t.GetProperty("last_used").GetString());
        Assert.DoesNotContain(token, r.StdOut, StringComparison.Ordinal);
        r = await Kiln(["auth", "token", "revoke", t.GetProperty("id").GetString()!, "--db", db]);
        Assert.True(r.ExitCode == 0, r.ToString());
        using var http = new HttpClient();
        using (var request = new HttpRequestMessage(HttpMethod.Get, url + "/api/2.0/mlflow/experiments/search"))
        {
            request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token);
            Assert.Equal(HttpStatusCode.Unauthorized, (await http.SendAsync(request)).StatusCode);
        }

        // The audit trail: from the database, and through the server for an admin (not for ada).
        r = await Kiln(["auth", "audit", "--json", "--user", "ci", "--limit", "1000", "--db", db]);
        Assert.True(r.ExitCode == 0, r.ToString());
        var rows = JsonDocument.Parse(r.StdOut).RootElement.GetProperty("entries").EnumerateArray().ToList();
        Assert.Contains(rows, e => e.GetProperty("action").GetString() == "POST /api/2.0/mlflow/experiments/create" && e.GetProperty("status").GetInt32() == 200);
        Assert.Contains(rows, e => e.GetProperty("action").GetString()!.StartsWith("PUT /api/2.0/mlflow-artifacts/artifacts/", StringComparison.Ordinal));
        Assert.All(rows, e => Assert.Equal("127.0.0.1", e.GetProperty("remote").GetString()));
        r = await Kiln(["auth", "audit", "--json", "--db", url], env: new Dictionary<string, string> { ["MLFLOW_TRACKING_USERNAME"] = "root", ["MLFLOW_TRACKING_PASSWORD"] = "root-password-1" });
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("\"ada\"", r.StdOut, StringComparison.Ordinal);
        r = await Kiln(["auth", "audit", "--db", url], env: new Dictionary<string, string> { ["MLFLOW_TRACKING_USERNAME"] = "ada", ["MLFLOW_TRACKING_PASSWORD"] = "ada-password-1" });
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("error: permission denied for user 'ada': this call is for admins", r.StdErr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Without_users_kiln_server_says_so_and_stays_on_loopback()
    {
        using var dir = new TempDir("kiln-auth-none");
        await using var server = await RealServer.StartAsync(dir.Path, extraArgs: ["--host", "0.0.0.0"]);
        Assert.Contains("access control is off", await LogAsync(server, "access control"), StringComparison.Ordinal);
        Assert.Contains("listening on 127.0.0.1 only, not 0.0.0.0", server.Log, StringComparison.Ordinal);
        Assert.Contains("kiln auth user add admin --admin --db", server.Log, StringComparison.Ordinal);
        // Not reachable on the machine's other addresses.
        var other = System.Net.NetworkInformation.NetworkInterface.GetAllNetworkInterfaces()
            .SelectMany(n => n.GetIPProperties().UnicastAddresses).Select(a => a.Address)
            .FirstOrDefault(a => a.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork && !IPAddress.IsLoopback(a));
        if (other is not null)
        {
            using var socket = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetwork, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
            var e = await Assert.ThrowsAsync<System.Net.Sockets.SocketException>(() => socket.ConnectAsync(other, server.Address.Port));
            Assert.Equal(System.Net.Sockets.SocketError.ConnectionRefused, e.SocketErrorCode);
        }
    }
}
