using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Kiln.Auth;
using Kiln.Server.Access;
using Kiln.Storage;
using Kiln.Testing;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace Kiln.Server.Tests;

/// <summary>
/// kiln server with every area turned on and access control on: an admin, a user with no permissions, a reader of one
/// experiment and one model; an experiment and a model that only the admin may see.
/// </summary>
public sealed class AccessFixture : IAsyncLifetime
{
    private readonly TempDir _dir = new("kiln-access");
    private WebApplication? _app;
    private TestDatabase? _jobsDatabase;

    public WebApplication App => _app!;

    public Uri Address { get; private set; } = null!;

    public string Db => _dir.Path;

    public string NobodyToken { get; private set; } = "";

    public string ReaderToken { get; private set; } = "";

    public string SecretExperiment { get; private set; } = "";

    public string SecretRun { get; private set; } = "";

    public const string AdminPassword = "root-password-1";

    public async Task InitializeAsync()
    {
        await using (var store = AuthStore.Open(_dir.Path))
        {
            await store.AddUserAsync("root", AdminPassword, isAdmin: true, null);
            await store.AddUserAsync("nobody", null, false, Permission.NoPermissions);
            await store.AddUserAsync("reader", "reader-password", false, Permission.NoPermissions);
            await store.AddUserAsync("editor", "editor-password", false, Permission.Edit);
            NobodyToken = (await store.CreateTokenAsync("nobody", "tests", null)).Secret;
            ReaderToken = (await store.CreateTokenAsync("reader", "tests", null)).Secret;
        }
        Directory.CreateDirectory(_dir.File("pipelines"));
        var options = new KilnServerOptions
        {
            Db = _dir.Path,
            Port = 0,
            OnlineStore = _dir.File("online.db"),
            PipelinesDirectory = _dir.File("pipelines"),
            FeedbackLogDirectory = _dir.File("log"),
            VectorsDirectory = _dir.File("vectors"),
        };
        options.Access.Require = true;
        options.Access.MaxFailedSignIns = 1000;
        // The jobs dashboard (/jobs) is mounted with a PostgreSQL database of queued work: a fresh one on the test server.
        _jobsDatabase = await TestDatabase.CreateAsync("kiln_access");
        options.Jobs = await Kiln.Workers.WorkerStorage.OpenAsync(_jobsDatabase.ConnectionString);
        _app = KilnServer.BuildApp(options);
        await _app.StartAsync();
        Address = KilnServer.Address(_app);

        using var admin = Client(basic: ("root", AdminPassword));
        SecretExperiment = (await PostAsync(admin, "api/2.0/mlflow/experiments/create", """{"name":"secret-exp"}""")).GetProperty("experiment_id").GetString()!;
        var run = await PostAsync(admin, "api/2.0/mlflow/runs/create", $$"""{"experiment_id":"{{SecretExperiment}}"}""");
        SecretRun = run.GetProperty("run").GetProperty("info").GetProperty("run_id").GetString()!;
        await PostAsync(admin, "api/2.0/mlflow/registered-models/create", """{"name":"secret-model"}""");
    }

    public HttpClient Client(string? token = null, (string User, string Password)? basic = null)
    {
        var http = new HttpClient { BaseAddress = Address };
        if (token is not null) http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        if (basic is { } b) http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{b.User}:{b.Password}")));
        return http;
    }

    public static async Task<JsonElement> PostAsync(HttpClient http, string path, string json)
    {
        using var r = await http.PostAsync(path, new StringContent(json, Encoding.UTF8, "application/json"));
        var body = await r.Content.ReadAsStringAsync();
        Assert.True(r.IsSuccessStatusCode, $"{path}: {(int)r.StatusCode} {body}");
        return JsonDocument.Parse(body).RootElement.Clone();
    }

    public async Task DisposeAsync()
    {
        if (_app is not null)
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }
        if (_jobsDatabase is not null) await _jobsDatabase.DisposeAsync();
        _dir.Dispose();
    }
}

public sealed class AccessTests(AccessFixture f) : IClassFixture<AccessFixture>
{
    // The health probe, and the sign-in page (whose form post is refused without its anti-forgery token).
    private static readonly string[] Open = ["GET /health", "GET /signin", "POST /signin"];

    private IEnumerable<(RouteEndpoint Endpoint, string Method, string Key)> Endpoints()
    {
        var source = f.App.Services.GetRequiredService<EndpointDataSource>();
        foreach (var e in source.Endpoints.OfType<RouteEndpoint>())
        {
            foreach (var key in AccessRules.Keys(e))
            {
                var method = key[..key.IndexOf(' ', StringComparison.Ordinal)];
                yield return (e, method == "*" ? "POST" : method, key);
            }
        }
    }

    // A concrete URL for a route template that names the admin's secret resources wherever a request can name one.
    private string Url(RouteEndpoint e)
    {
        var path = "/" + (e.RoutePattern.RawText ?? "").Trim('/');
        path = path.Replace("{**path}", $"{f.SecretExperiment}/{f.SecretRun}/artifacts/model.txt", StringComparison.Ordinal)
            .Replace("/models/{name}", "/models/secret-model", StringComparison.Ordinal);
        path = System.Text.RegularExpressions.Regex.Replace(path, @"\{[^}]+\}", "x");
        return path + $"?experiment_id={f.SecretExperiment}&run_id={f.SecretRun}&name=secret-model&experiment_name=secret-exp";
    }

    private HttpRequestMessage Request(string method, string url)
    {
        var request = new HttpRequestMessage(new HttpMethod(method), url);
        if (method is not ("GET" or "HEAD"))
        {
            request.Content = new StringContent($$"""{"experiment_id":"{{f.SecretExperiment}}","run_id":"{{f.SecretRun}}","name":"secret-model","experiment_ids":["{{f.SecretExperiment}}"]}""",
                Encoding.UTF8, "application/json");
        }
        return request;
    }

    [Fact]
    public void Every_mapped_endpoint_has_a_reviewed_row_in_the_rule_table()
    {
        var all = Endpoints().ToList();
        // Every area is on: tracking, registry, artifacts, audit, features, pipelines, feedback, vectors, metrics, jobs.
        Assert.True(all.Count > 80, $"only {all.Count} endpoints: is an area missing from the fixture?");
        Assert.Contains("* /jobs/{**path}", all.Select(e => e.Key));
        var missing = all.Where(e => !AccessRules.IsListed(e.Key)).Select(e => e.Key).Distinct().ToList();
        Assert.True(missing.Count == 0, "endpoints with no row in AccessRules (they are admin-only until reviewed): " + string.Join(", ", missing));
        // The only endpoint open to anonymous callers is the health probe.
        Assert.Equal(Open, all.Where(e => AccessRules.For(e.Endpoint, e.Method).Scope == Scope.Open).Select(e => e.Key).Distinct().ToArray());
    }

    [Fact]
    public void The_session_cookie_counts_only_on_browser_pages()
    {
        // The CSRF rule (BrowserSessions): a browser's session is honoured on the UI's pages, /signout and the jobs
        // dashboard, whose forms carry anti-forgery tokens; never on an API endpoint, which needs Basic or Bearer.
        var browser = Endpoints().Where(e => BrowserSessions.IsBrowserEndpoint(e.Endpoint)).Select(e => e.Key).Distinct().ToList();
        Assert.Contains("GET /models/{Name}", browser);
        Assert.Contains("POST /models/{Name}", browser);
        Assert.Contains("POST /signout", browser);
        Assert.Contains("* /jobs/{**path}", browser);
        string[] api = ["/api/", "/get-online-features", "/push", "/collections", "/metrics", "/health"];
        var leaks = browser.Where(k => api.Any(a => k.Contains(' ' + a, StringComparison.Ordinal))).ToList();
        Assert.True(leaks.Count == 0, "API endpoints that would honour a session cookie: " + string.Join(", ", leaks));
    }

    [Fact]
    public async Task Every_endpoint_refuses_an_anonymous_caller_and_a_caller_without_the_role()
    {
        using var anonymous = f.Client();
        using var nobody = f.Client(token: f.NobodyToken);
        var failures = new List<string>();
        foreach (var (endpoint, method, key) in Endpoints())
        {
            var url = Url(endpoint);
            using (var r = await anonymous.SendAsync(Request(method, url)))
            {
                var body = await r.Content.ReadAsStringAsync();
                var expected = key == "POST /signin" ? HttpStatusCode.BadRequest : Open.Contains(key) ? HttpStatusCode.OK : HttpStatusCode.Unauthorized;
                if (r.StatusCode != expected) failures.Add($"anonymous {method} {url}: {(int)r.StatusCode} {body}");
                else if (expected == HttpStatusCode.Unauthorized && !body.Contains("\"UNAUTHENTICATED\"", StringComparison.Ordinal)) failures.Add($"anonymous {method} {url}: body {body}");
            }
            if (Open.Contains(key)) continue;
            using (var r = await nobody.SendAsync(Request(method, url)))
            {
                var body = await r.Content.ReadAsStringAsync();
                var rule = AccessRules.For(endpoint, method);
                if (rule.Filter is not null)
                {
                    // A search answers, without what the caller may not read.
                    if (r.StatusCode != HttpStatusCode.OK || body.Contains("secret-", StringComparison.Ordinal)) failures.Add($"nobody {method} {url}: {(int)r.StatusCode} {body}");
                }
                else if (rule.Scope == Scope.SignedIn)
                {
                    // MLflow's catch-all answers ENDPOINT_NOT_FOUND; sign-out without the form's anti-forgery token is refused.
                    var signedIn = key == "POST /signout" ? HttpStatusCode.BadRequest : HttpStatusCode.NotFound;
                    if (r.StatusCode != signedIn) failures.Add($"nobody {method} {url}: {(int)r.StatusCode} {body}");
                }
                else if (r.StatusCode != HttpStatusCode.Forbidden || !body.Contains("\"PERMISSION_DENIED\"", StringComparison.Ordinal))
                {
                    failures.Add($"nobody {method} {url}: {(int)r.StatusCode} {body}");
                }
            }
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    [Fact]
    public async Task Grants_per_experiment_and_model_decide_what_a_user_may_do()
    {
        await using (var store = AuthStore.Open(f.Db))
        {
            await store.GrantAsync("reader", ResourceKind.Experiment, f.SecretExperiment, Permission.Read);
            await store.GrantAsync("reader", ResourceKind.RegisteredModel, "secret-model", Permission.Edit);
        }
        using var admin = f.Client(basic: ("root", AccessFixture.AdminPassword));
        var other = (await AccessFixture.PostAsync(admin, "api/2.0/mlflow/experiments/create", """{"name":"other-exp"}""")).GetProperty("experiment_id").GetString();
        using var reader = f.Client(basic: ("reader", "reader-password"));

        Assert.Equal(HttpStatusCode.OK, (await reader.GetAsync($"api/2.0/mlflow/experiments/get?experiment_id={f.SecretExperiment}")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await reader.GetAsync($"api/2.0/mlflow/runs/get?run_id={f.SecretRun}")).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await reader.GetAsync($"api/2.0/mlflow/experiments/get?experiment_id={other}")).StatusCode);
        using (var r = await reader.PostAsync("api/2.0/mlflow/runs/log-metric", Json($$"""{"run_id":"{{f.SecretRun}}","key":"auc","value":0.5,"timestamp":1}""")))
        {
            Assert.Equal(HttpStatusCode.Forbidden, r.StatusCode);
            Assert.Contains("EDIT on experiment " + f.SecretExperiment, await r.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }
        // Searches show only what the caller may read.
        var search = await (await reader.GetAsync("api/2.0/mlflow/experiments/search")).Content.ReadAsStringAsync();
        Assert.Contains("secret-exp", search, StringComparison.Ordinal);
        Assert.DoesNotContain("other-exp", search, StringComparison.Ordinal);
        Assert.DoesNotContain("\"Default\"", search, StringComparison.Ordinal);
        // runs/search names experiments: every one must be readable.
        using (var r = await reader.PostAsync("api/2.0/mlflow/runs/search", Json($$"""{"experiment_ids":["{{f.SecretExperiment}}","{{other}}"]}""")))
            Assert.Equal(HttpStatusCode.Forbidden, r.StatusCode);

        // EDIT on the model: versions and aliases yes, deleting the model (MANAGE) no.
        await AccessFixture.PostAsync(reader, "api/2.0/mlflow/model-versions/create", $$"""{"name":"secret-model","source":"runs:/{{f.SecretRun}}/model"}""");
        using (var alias = new HttpRequestMessage(HttpMethod.Post, "api/2.0/mlflow/registered-models/alias") { Content = Json("""{"name":"secret-model","alias":"prod","version":"1"}""") })
        {
            alias.Headers.Add("X-Kiln-User", "mallory");
            Assert.Equal(HttpStatusCode.OK, (await reader.SendAsync(alias)).StatusCode);
        }
        using (var del = new HttpRequestMessage(HttpMethod.Delete, "api/2.0/mlflow/registered-models/delete") { Content = Json("""{"name":"secret-model"}""") })
            Assert.Equal(HttpStatusCode.Forbidden, (await reader.SendAsync(del)).StatusCode);

        // The alias history records the signed-in user, not the name the client claimed; the audit trail has the same call.
        var history = await (await reader.GetAsync("api/v1/models/secret-model/aliases/history")).Content.ReadAsStringAsync();
        Assert.Contains("\"reader\"", history, StringComparison.Ordinal);
        Assert.DoesNotContain("mallory", history, StringComparison.Ordinal);
        await using (var store = AuthStore.Open(f.Db))
        {
            var rows = await store.ReadAuditAsync(new AuditQuery(User: "reader", Resource: "registered_model:secret-model"));
            Assert.Contains(rows, a => a.Action == "POST /api/2.0/mlflow/registered-models/alias" && a.Status == 200 && a.Remote == "127.0.0.1");
            Assert.Contains(rows, a => a.Action == "DELETE /api/2.0/mlflow/registered-models/delete" && a.Status == 403);
            // Reads are not audited.
            Assert.DoesNotContain(await store.ReadAuditAsync(new AuditQuery(User: "reader", Limit: 1000)), a => a.Action.StartsWith("GET", StringComparison.Ordinal));
        }
        // The audit endpoint is for admins.
        Assert.Equal(HttpStatusCode.Forbidden, (await reader.GetAsync("api/v1/auth/audit")).StatusCode);
        Assert.Contains("registered-models/alias", await (await admin.GetAsync("api/v1/auth/audit?user=reader")).Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_creator_gets_MANAGE_on_what_it_creates_and_READ_users_cannot_create()
    {
        using var editor = f.Client(basic: ("editor", "editor-password"));
        var id = (await AccessFixture.PostAsync(editor, "api/2.0/mlflow/experiments/create", """{"name":"editors-exp"}""")).GetProperty("experiment_id").GetString();
        await AccessFixture.PostAsync(editor, "api/2.0/mlflow/experiments/delete", $$"""{"experiment_id":"{{id}}"}""");
        await using (var store = AuthStore.Open(f.Db))
            Assert.Equal(Permission.Manage, await store.GrantedAsync("editor", ResourceKind.Experiment, id!));
        using var reader = f.Client(token: f.ReaderToken);
        using var r = await reader.PostAsync("api/2.0/mlflow/experiments/create", Json("""{"name":"readers-exp"}"""));
        Assert.Equal(HttpStatusCode.Forbidden, r.StatusCode);
    }

    [Fact]
    public async Task Wrong_expired_revoked_and_malformed_credentials_all_get_the_same_401()
    {
        string expiredToken, revokedToken;
        await using (var store = AuthStore.Open(f.Db))
        {
            var (revoked, secret) = await store.CreateTokenAsync("reader", null, null);
            await store.RevokeTokenAsync(revoked.Id);
            revokedToken = secret;
            var (_, soon) = await store.CreateTokenAsync("reader", null, DateTimeOffset.UtcNow.AddSeconds(1));
            expiredToken = soon;
        }
        await Task.Delay(1500);
        string[] headers =
        [
            "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes("root:wrong-password")),
            "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes("no-such-user:" + AccessFixture.AdminPassword)),
            "Bearer " + revokedToken,
            "Bearer " + expiredToken,
            "Bearer " + f.ReaderToken + "x",
            "Bearer",
            "Basic %%%",
            "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes("no-colon")),
            "Negotiate abc",
        ];
        using var http = new HttpClient { BaseAddress = f.Address };
        var bodies = new HashSet<string>(StringComparer.Ordinal);
        foreach (var h in headers)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "api/2.0/mlflow/experiments/search");
            request.Headers.TryAddWithoutValidation("Authorization", h);
            using var r = await http.SendAsync(request);
            Assert.Equal(HttpStatusCode.Unauthorized, r.StatusCode);
            bodies.Add(await r.Content.ReadAsStringAsync());
        }
        // One answer for every way of failing: nothing tells a guesser whether the user exists or the token expired.
        var body = Assert.Single(bodies);
        Assert.Contains("\"error_code\":\"UNAUTHENTICATED\"", body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_body_naming_a_field_twice_is_refused_before_the_endpoint_reads_it()
    {
        using var reader = f.Client(token: f.ReaderToken);
        // The check would read the first experiment_id, System.Text.Json the last: refused instead.
        using var r = await reader.PostAsync("api/2.0/mlflow/runs/create", Json($$"""{"experiment_id":"{{f.SecretExperiment}}","experiment_id":"0"}"""));
        Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
        Assert.Contains("appears twice", await r.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    private static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");
}

/// <summary>Failed sign-ins from one address are limited; other addresses and the right password after the window are not affected.</summary>
public sealed class SignInThrottleTests
{
    [Fact]
    public async Task Too_many_failed_sign_ins_are_answered_429_without_checking()
    {
        using var dir = new TempDir("kiln-throttle");
        await using (var store = AuthStore.Open(dir.Path)) await store.AddUserAsync("root", "root-password", true, null);
        var options = new KilnServerOptions { Db = dir.Path, Port = 0 };
        options.Access.MaxFailedSignIns = 3;
        await using var app = KilnServer.BuildApp(options);
        await app.StartAsync();
        using var http = new HttpClient { BaseAddress = KilnServer.Address(app) };
        async Task<HttpResponseMessage> Try(string password)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "api/2.0/mlflow/experiments/search");
            request.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes("root:" + password)));
            return await http.SendAsync(request);
        }
        Assert.Equal(HttpStatusCode.OK, (await Try("root-password")).StatusCode);
        for (var i = 0; i < 3; i++) Assert.Equal(HttpStatusCode.Unauthorized, (await Try("guess" + i)).StatusCode);
        var refused = await Try("root-password");
        Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
        Assert.Contains("RESOURCE_EXHAUSTED", await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.NotNull(refused.Headers.RetryAfter);
        await app.StopAsync();
    }

    [Fact]
    public async Task Without_users_the_server_is_open_and_turns_access_control_on_when_the_first_user_is_added()
    {
        using var dir = new TempDir("kiln-noauth");
        var options = new KilnServerOptions { Db = dir.Path, Port = 0, Host = "0.0.0.0" };
        var said = await KilnServer.PrepareAccessAsync(options, default);
        Assert.Equal("127.0.0.1", options.Host);
        Assert.Contains("kiln auth user add admin --admin", said, StringComparison.Ordinal);
        await using var app = KilnServer.BuildApp(options);
        await app.StartAsync();
        using var http = new HttpClient { BaseAddress = KilnServer.Address(app) };
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("api/2.0/mlflow/experiments/search")).StatusCode);
        await using (var store = new AuthStore(app.Services.GetRequiredService<MetadataDatabase>())) await store.AddUserAsync("root", "root-password", true, null);
        await Task.Delay(2500);
        Assert.Equal(HttpStatusCode.Unauthorized, (await http.GetAsync("api/2.0/mlflow/experiments/search")).StatusCode);
        await app.StopAsync();

        // With a user, the next start asks for sign-in from the first request and keeps the address asked for.
        var again = new KilnServerOptions { Db = dir.Path, Port = 0, Host = "0.0.0.0" };
        Assert.Contains("access control is on", await KilnServer.PrepareAccessAsync(again, default), StringComparison.Ordinal);
        Assert.Equal("0.0.0.0", again.Host);
        Assert.True(again.Access.Require);
    }
}
