using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Kiln.Testing;

namespace Kiln.Server.Tests;

/// <summary>
/// Users, tokens and grants managed through kiln server's admin API (/api/v1/auth) with the real server process and the
/// real <c>kiln auth ... --server URL</c>: an admin can, and sees what <c>--db</c> shows; a user who is not an admin gets
/// 403 and an anonymous caller 401, both with MLflow's error body.
/// </summary>
public sealed class AuthApiTests
{
    private static Task<Proc.Result> Kiln(string[] args, string? stdin = null, IDictionary<string, string>? env = null) =>
        Proc.RunAsync("dotnet", [KilnCli.Dll, .. args], stdin: stdin, env: env, timeout: TimeSpan.FromMinutes(2));

    private static Dictionary<string, string> As(string user, string password) =>
        new() { ["MLFLOW_TRACKING_USERNAME"] = user, ["MLFLOW_TRACKING_PASSWORD"] = password, ["MLFLOW_TRACKING_TOKEN"] = "" };

    private static AuthenticationHeaderValue Basic(string user, string password) =>
        new("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(user + ":" + password)));

    [Fact]
    public async Task An_admin_manages_users_tokens_and_grants_through_the_server_as_on_the_database()
    {
        using var dir = new TempDir("kiln-auth-api");
        var db = dir.File("meta");
        var r = await Kiln(["auth", "user", "add", "root", "--admin", "--password-stdin", "--db", db], stdin: "root-password-1\n");
        Assert.True(r.ExitCode == 0, r.ToString());
        r = await Kiln(["auth", "user", "add", "bob", "--password-stdin", "--db", db], stdin: "bob-password-1\n");
        Assert.True(r.ExitCode == 0, r.ToString());
        await using var server = await RealServer.StartAsync(db);
        var url = server.Address.ToString().TrimEnd('/');
        var root = As("root", "root-password-1");

        r = await Kiln(["auth", "user", "add", "carol", "--password-stdin", "--default-permission", "EDIT", "--server", url], stdin: "carol-password-1\n", env: root);
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains($"added user carol to {url}", r.StdErr, StringComparison.Ordinal);
        r = await Kiln(["auth", "user", "add", "carol", "--no-password", "--server", url], env: root);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("error: user 'carol' exists already", r.StdErr, StringComparison.Ordinal);

        r = await Kiln(["auth", "token", "create", "--user", "carol", "--description", "ci", "--expires", "1d", "--server", url], env: root);
        Assert.True(r.ExitCode == 0, r.ToString());
        var token = r.StdOut.Trim();
        Assert.StartsWith("kiln_", token, StringComparison.Ordinal);
        var tokenId = r.StdErr.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1];
        r = await Kiln(["auth", "grant", "carol", "MANAGE", "--model", "churn", "--server", url], env: root);
        Assert.True(r.ExitCode == 0, r.ToString());
        r = await Kiln(["auth", "grant", "dave", "READ", "--experiment", "1", "--server", url], env: root);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("error: no user 'dave'", r.StdErr, StringComparison.Ordinal);

        // The server's answer is what the database says, field for field.
        var viaServer = await Kiln(["auth", "list", "--json", "--server", url], env: root);
        var viaDb = await Kiln(["auth", "list", "--json", "--db", db]);
        Assert.True(viaServer.ExitCode == 0, viaServer.ToString());
        Assert.Equal(viaDb.StdOut, viaServer.StdOut);
        var listed = JsonDocument.Parse(viaServer.StdOut).RootElement;
        Assert.Equal(["bob", "carol", "root"], listed.GetProperty("users").EnumerateArray().Select(u => u.GetProperty("name").GetString()));
        var grant = Assert.Single(listed.GetProperty("grants").EnumerateArray());
        Assert.Equal("MANAGE", grant.GetProperty("permission").GetString());
        Assert.DoesNotContain(token, viaServer.StdOut, StringComparison.Ordinal);

        // The new token signs carol in; revoked through the server, it stops at once.
        using var http = new HttpClient { BaseAddress = server.Address };
        async Task<HttpStatusCode> SearchAsync(AuthenticationHeaderValue? auth)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/api/2.0/mlflow/experiments/search?max_results=5");
            request.Headers.Authorization = auth;
            using var response = await http.SendAsync(request);
            return response.StatusCode;
        }
        Assert.Equal(HttpStatusCode.OK, await SearchAsync(new AuthenticationHeaderValue("Bearer", token)));
        r = await Kiln(["auth", "token", "revoke", tokenId, "--server", url], env: root);
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal(HttpStatusCode.Unauthorized, await SearchAsync(new AuthenticationHeaderValue("Bearer", token)));
        r = await Kiln(["auth", "token", "revoke", tokenId, "--server", url], env: root);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains($"error: token {tokenId} is revoked already", r.StdErr, StringComparison.Ordinal);

        // A password set through the server is the one that works.
        r = await Kiln(["auth", "user", "password", "carol", "--password-stdin", "--server", url], stdin: "carol-password-2\n", env: root);
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal(HttpStatusCode.Unauthorized, await SearchAsync(Basic("carol", "carol-password-1")));
        Assert.Equal(HttpStatusCode.OK, await SearchAsync(Basic("carol", "carol-password-2")));

        r = await Kiln(["auth", "ungrant", "carol", "--model", "churn", "--server", url], env: root);
        Assert.True(r.ExitCode == 0, r.ToString());
        r = await Kiln(["auth", "ungrant", "carol", "--model", "churn", "--server", url], env: root);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("carol holds no grant on registered_model churn", r.StdErr, StringComparison.Ordinal);

        // Every change made through the API is in the audit trail under the admin's name, the same through the server and the database.
        var auditServer = await Kiln(["auth", "audit", "--json", "--user", "root", "--limit", "1000", "--server", url], env: root);
        var auditDb = await Kiln(["auth", "audit", "--json", "--user", "root", "--limit", "1000", "--db", db]);
        Assert.True(auditServer.ExitCode == 0, auditServer.ToString());
        Assert.Equal(auditDb.StdOut, auditServer.StdOut);
        var actions = JsonDocument.Parse(auditServer.StdOut).RootElement.GetProperty("entries").EnumerateArray()
            .Select(e => $"{e.GetProperty("action").GetString()} {e.GetProperty("status").GetInt32()}").ToList();
        Assert.Contains("POST /api/v1/auth/users 200", actions);
        Assert.Contains("POST /api/v1/auth/users 409", actions);
        Assert.Contains($"POST /api/v1/auth/tokens/{tokenId}/revoke 200", actions);
        Assert.Contains("PUT /api/v1/auth/grants 200", actions);
        Assert.Contains("DELETE /api/v1/auth/grants 200", actions);

        r = await Kiln(["auth", "user", "delete", "carol", "--server", url], env: root);
        Assert.True(r.ExitCode == 0, r.ToString());
        r = await Kiln(["auth", "user", "delete", "carol", "--server", url], env: root);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("error: no user 'carol'", r.StdErr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_user_who_is_not_an_admin_gets_403_and_an_anonymous_caller_401_with_mlflows_error_body()
    {
        using var dir = new TempDir("kiln-auth-api-refusals");
        var db = dir.File("meta");
        Assert.Equal(0, (await Kiln(["auth", "user", "add", "root", "--admin", "--password-stdin", "--db", db], stdin: "root-password-1\n")).ExitCode);
        Assert.Equal(0, (await Kiln(["auth", "user", "add", "bob", "--password-stdin", "--default-permission", "MANAGE", "--db", db], stdin: "bob-password-1\n")).ExitCode);
        await using var server = await RealServer.StartAsync(db);
        var url = server.Address.ToString().TrimEnd('/');

        // MANAGE everywhere is still not admin.
        var r = await Kiln(["auth", "list", "--server", url], env: As("bob", "bob-password-1"));
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("error: permission denied for user 'bob': this call is for admins", r.StdErr, StringComparison.Ordinal);
        r = await Kiln(["auth", "token", "create", "--user", "bob", "--server", url], env: As("bob", "bob-password-1"));
        Assert.Equal(1, r.ExitCode);
        Assert.Equal("", r.StdOut);
        r = await Kiln(["auth", "list", "--server", url], env: new Dictionary<string, string> { ["MLFLOW_TRACKING_TOKEN"] = "" });
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("error: authentication required", r.StdErr, StringComparison.Ordinal);

        using var http = new HttpClient { BaseAddress = server.Address };
        foreach (var (method, path) in new[] { ("GET", "users"), ("POST", "users"), ("PUT", "users/root/password"), ("DELETE", "users/root"), ("GET", "tokens"),
            ("POST", "tokens"), ("POST", "tokens/abc/revoke"), ("GET", "grants"), ("PUT", "grants"), ("DELETE", "grants?user=bob&kind=experiment&resource=1"), ("GET", "audit") })
        {
            foreach (var (auth, status, code) in new[] { (Basic("bob", "bob-password-1"), 403, "PERMISSION_DENIED"), ((AuthenticationHeaderValue?)null, 401, "UNAUTHENTICATED") })
            {
                using var request = new HttpRequestMessage(new HttpMethod(method), "/api/v1/auth/" + path);
                if (method is "POST" or "PUT") request.Content = new StringContent("""{"name":"mallory","password":"mallory-pw-1","admin":true,"user":"bob"}""", Encoding.UTF8, "application/json");
                request.Headers.Authorization = auth;
                using var response = await http.SendAsync(request);
                var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
                Assert.True(status == (int)response.StatusCode, $"{method} {path}: {(int)response.StatusCode} {body}");
                Assert.Equal(code, body.GetProperty("error_code").GetString());
            }
        }
        // Nothing was added by the refused calls.
        r = await Kiln(["auth", "list", "--json", "--db", db]);
        Assert.DoesNotContain("mallory", r.StdOut, StringComparison.Ordinal);

        // An admin's malformed or oversized body is a 400 or 413 problem naming the body, never a 500.
        foreach (var (body, status) in new[] { ("not json", 400), ("""{"password":"long-enough-1"}""", 400), (new string('x', 100_000), 413) })
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/auth/users") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
            request.Headers.Authorization = Basic("root", "root-password-1");
            using var response = await http.SendAsync(request);
            var text = await response.Content.ReadAsStringAsync();
            Assert.True(status == (int)response.StatusCode, text);
            Assert.Contains(status == 413 ? "body: at most 64 KB" : status == 400 && body == "not json" ? "body: not valid JSON" : "name: required", text, StringComparison.Ordinal);
        }
        // Without a length up front (chunked), the limit stops the read part way: the same 413.
        var large = Encoding.UTF8.GetBytes($$"""{"name":"{{new string('x', 100_000)}}"}""");
        using (var chunked = new HttpRequestMessage(HttpMethod.Post, "/api/v1/auth/users") { Content = new StreamContent(new UnsizedStream(large)) })
        {
            chunked.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
            chunked.Headers.Authorization = Basic("root", "root-password-1");
            using var response = await http.SendAsync(chunked);
            var text = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == HttpStatusCode.RequestEntityTooLarge, text);
            Assert.Contains("body: at most 64 KB", text, StringComparison.Ordinal);
        }
    }

    /// <summary>A body whose length the client cannot know, so it is sent chunked.</summary>
    private sealed class UnsizedStream(byte[] bytes) : MemoryStream(bytes)
    {
        public override bool CanSeek => false;
    }
}
