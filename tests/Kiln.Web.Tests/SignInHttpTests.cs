using System.Net;
using System.Net.Http.Headers;
using System.Text;
using Kiln.Auth;
using Kiln.Server.Tests;
using Kiln.Testing;

namespace Kiln.Web.Tests;

/// <summary>The sign-in page, the session cookie and the redirects, read with a plain HTTP client against the real kiln server.</summary>
[Collection(SignInCollection.Name)]
public sealed class SignInHttpTests(SignInBrowserFixture fixture)
{
    private SessionFixture Site => fixture.Server;

    private static Uri U(string path) => new(path, UriKind.Relative);

    private static string? SetCookie(HttpResponseMessage r, string name) =>
        r.Headers.TryGetValues("Set-Cookie", out var values) ? values.FirstOrDefault(v => v.StartsWith(name + "=", StringComparison.Ordinal)) : null;

    [Fact]
    public async Task A_browser_without_a_session_is_sent_to_signin_and_scripts_still_get_401()
    {
        using var browser = Site.Browser();
        using (var r = await browser.GetAsync(U("/experiments?page=2")))
        {
            Assert.Equal(HttpStatusCode.Found, r.StatusCode);
            Assert.Equal("/signin?returnUrl=%2Fexperiments%3Fpage%3D2", r.Headers.Location!.OriginalString);
        }
        // A form post without a session: See Other, so the browser follows with a GET.
        using (var r = await browser.PostAsync(U("/models/fraud"), new FormUrlEncodedContent([new("Alias", "production")])))
        {
            Assert.Equal(HttpStatusCode.SeeOther, r.StatusCode);
            Assert.Equal("/signin?returnUrl=%2Fmodels%2Ffraud", r.Headers.Location!.OriginalString);
        }
        // The API never redirects, whatever the client accepts: MLflow's 401 as before.
        using (var r = await browser.GetAsync(U("/api/2.0/mlflow/experiments/search")))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, r.StatusCode);
            Assert.Contains("\"UNAUTHENTICATED\"", await r.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }
        // A script reading a page (no text/html in Accept) gets the API's answer too.
        using var script = new HttpClient { BaseAddress = Site.Address };
        using (var r = await script.GetAsync(U("/experiments")))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, r.StatusCode);
            Assert.Equal("Basic realm=\"kiln\", Bearer", r.Headers.WwwAuthenticate.ToString());
        }
        // Basic keeps working on pages, and the layout says who is signed in (no sign-out: there is no session to end).
        script.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes("rita:" + SessionFixture.ReaderPassword)));
        var html = await script.GetStringAsync(U("/experiments"));
        Assert.Contains("Signed in as <strong>rita</strong>", html, StringComparison.Ordinal);
        Assert.DoesNotContain("action=\"/signout\"", html, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Signing_in_sets_an_HttpOnly_Lax_session_cookie_and_returns_to_the_page_asked_for()
    {
        using var browser = Site.Browser();
        var page = await browser.GetAsync(U("/signin?returnUrl=%2Fmodels%2Ffraud"));
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        var form = await page.Content.ReadAsStringAsync();
        Assert.Contains("<label for=\"signin-user\">User name</label>", form, StringComparison.Ordinal);
        Assert.Contains("autocomplete=\"current-password\"", form, StringComparison.Ordinal);

        using var r = await SessionFixture.SignInAsync(browser, "ada", SessionFixture.AdminPassword, "/models/fraud");
        Assert.Equal(HttpStatusCode.Found, r.StatusCode);
        Assert.Equal(new Uri(Site.Address, "/models/fraud"), new Uri(Site.Address, r.Headers.Location!));
        var cookie = SetCookie(r, "kiln-session");
        Assert.NotNull(cookie);
        Assert.Contains("; httponly", cookie, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("; samesite=lax", cookie, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("; path=/", cookie, StringComparison.OrdinalIgnoreCase);
        // A session cookie: no Expires, so it ends with the browser; plain HTTP here, so not Secure (TlsSessionTests checks HTTPS).
        Assert.DoesNotContain("expires=", cookie, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("; secure", cookie, StringComparison.OrdinalIgnoreCase);

        var model = await browser.GetAsync(U("/models/fraud"));
        Assert.Equal(HttpStatusCode.OK, model.StatusCode);
        var html = await model.Content.ReadAsStringAsync();
        Assert.Contains("<h1>fraud</h1>", html, StringComparison.Ordinal);
        Assert.Contains("Signed in as <strong>ada</strong>", html, StringComparison.Ordinal);
        Assert.Contains("<form method=\"post\" action=\"/signout\">", html, StringComparison.Ordinal);

        // The audit trail has the sign-in, under ada's name, from the loopback address.
        await using var store = AuthStore.Open(Site.Db);
        var rows = await store.ReadAuditAsync(new AuditQuery(User: "ada", Resource: "user:ada"));
        Assert.Contains(rows, a => a.Action == "POST /signin" && a.Status == 302 && a.Remote == "127.0.0.1");
    }

    [Fact]
    public async Task A_wrong_password_answers_401_with_the_form_and_sets_no_session_cookie()
    {
        using var browser = Site.Browser();
        using var r = await SessionFixture.SignInAsync(browser, "rita", "not-her-password");
        Assert.Equal(HttpStatusCode.Unauthorized, r.StatusCode);
        Assert.Null(SetCookie(r, "kiln-session"));
        var html = await r.Content.ReadAsStringAsync();
        Assert.Contains("The user name or password is not right.", html, StringComparison.Ordinal);
        // The name typed stays in the box; the password does not come back.
        Assert.Contains("value=\"rita\"", html, StringComparison.Ordinal);
        Assert.DoesNotContain("not-her-password", html, StringComparison.Ordinal);
        // An unknown user gets the very same words.
        using var unknown = await SessionFixture.SignInAsync(browser, "nobody-here", "whatever-it-is");
        Assert.Equal(HttpStatusCode.Unauthorized, unknown.StatusCode);
        Assert.Contains("The user name or password is not right.", await unknown.Content.ReadAsStringAsync(), StringComparison.Ordinal);

        await using var store = AuthStore.Open(Site.Db);
        var rows = await store.ReadAuditAsync(new AuditQuery(Resource: "user:rita", Limit: 1000));
        Assert.Contains(rows, a => a.Action == "POST /signin" && a.Status == 401 && a.User is null && a.Remote == "127.0.0.1");
    }

    [Theory]
    [InlineData("https://evil.example/phish")]
    [InlineData("//evil.example/phish")]
    [InlineData("/\\evil.example/phish")]
    [InlineData("javascript:alert(1)")]
    [InlineData("/signin")]
    public async Task A_return_address_off_this_server_is_refused(string returnUrl)
    {
        using var browser = Site.Browser();
        using var r = await SessionFixture.SignInAsync(browser, "rita", SessionFixture.ReaderPassword, returnUrl);
        Assert.Equal(HttpStatusCode.Found, r.StatusCode);
        // Back to this server's experiments page.
        Assert.Equal(new Uri(Site.Address, "/"), new Uri(Site.Address, r.Headers.Location!));
    }

    [Fact]
    public async Task A_form_post_without_the_anti_forgery_token_is_refused()
    {
        using var browser = Site.Browser();
        await browser.GetStringAsync(U("/signin"));
        using var r = await browser.PostAsync(U("/signin"), new FormUrlEncodedContent(
            [new("_handler", "signin"), new("UserName", "ada"), new("Password", SessionFixture.AdminPassword)]));
        Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
        Assert.Null(SetCookie(r, "kiln-session"));
    }

    [Fact]
    public async Task A_session_cookie_alone_grants_nothing_on_the_API()
    {
        var cookies = new CookieContainer();
        using var browser = Site.Browser(cookies);
        using (var signedIn = await SessionFixture.SignInAsync(browser, "ada", SessionFixture.AdminPassword))
            Assert.Equal(HttpStatusCode.Found, signedIn.StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await browser.GetAsync(U("/experiments"))).StatusCode);

        // The admin's own session cookie, sent to state-changing API calls: refused as anonymous, in each API's shape.
        using (var r = await browser.PostAsync(U("/api/2.0/mlflow/experiments/create"), new StringContent("""{"name":"by-cookie"}""", Encoding.UTF8, "application/json")))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, r.StatusCode);
            Assert.Contains("\"UNAUTHENTICATED\"", await r.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }
        using (var r = await browser.PostAsync(U("/api/v1/models/fraud/aliases/production/rollback"), new StringContent("{}", Encoding.UTF8, "application/json")))
            Assert.Equal(HttpStatusCode.Unauthorized, r.StatusCode);
        using (var r = await browser.PostAsync(U("/api/v1/auth/users"), new StringContent("""{"name":"mallory","password":"mallory-password"}""", Encoding.UTF8, "application/json")))
            Assert.Equal(HttpStatusCode.Unauthorized, r.StatusCode);
        // Reads through the API too: the cookie is for pages only.
        using (var r = await browser.GetAsync(U("/api/2.0/mlflow/registered-models/search")))
            Assert.Equal(HttpStatusCode.Unauthorized, r.StatusCode);

        await using var store = AuthStore.Open(Site.Db);
        Assert.Null(await store.GetUserAsync("mallory"));
        var admin = new HttpClient { BaseAddress = Site.Address };
        admin.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes("ada:" + SessionFixture.AdminPassword)));
        Assert.DoesNotContain("by-cookie", await admin.GetStringAsync(U("/api/2.0/mlflow/experiments/search")), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Signing_out_needs_the_token_and_ends_the_session_on_the_server()
    {
        var cookies = new CookieContainer();
        using var browser = Site.Browser(cookies);
        using (var signedIn = await SessionFixture.SignInAsync(browser, "rita", SessionFixture.ReaderPassword))
            Assert.Equal(HttpStatusCode.Found, signedIn.StatusCode);
        var session = cookies.GetCookies(Site.Address)["kiln-session"]!.Value;
        var page = await browser.GetStringAsync(U("/models"));

        // Without the page's anti-forgery token the sign-out is refused and the session lives on.
        using (var r = await browser.PostAsync(U("/signout"), new FormUrlEncodedContent([])))
            Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await browser.GetAsync(U("/models"))).StatusCode);

        var token = SessionFixture.HiddenFields(page)["__RequestVerificationToken"];
        using (var r = await browser.PostAsync(U("/signout"), new FormUrlEncodedContent([new("__RequestVerificationToken", token)])))
        {
            Assert.Equal(HttpStatusCode.SeeOther, r.StatusCode);
            Assert.Equal("/signin", r.Headers.Location!.OriginalString);
        }
        Assert.Equal(HttpStatusCode.Found, (await browser.GetAsync(U("/models"))).StatusCode);

        // A copy of the cookie taken before signing out is worth nothing: the session is gone from the server.
        using var copy = SessionFixture.BrowserClient(Site.Address);
        using var request = new HttpRequestMessage(HttpMethod.Get, U("/models"));
        request.Headers.Add("Cookie", "kiln-session=" + session);
        using (var r = await copy.SendAsync(request))
        {
            Assert.Equal(HttpStatusCode.Found, r.StatusCode);
            Assert.StartsWith("/signin", r.Headers.Location!.OriginalString, StringComparison.Ordinal);
        }
        await using var store = AuthStore.Open(Site.Db);
        Assert.Contains(await store.ReadAuditAsync(new AuditQuery(User: "rita", Limit: 1000)), a => a.Action == "POST /signout" && a.Status == 303);
    }

    [Fact]
    public async Task A_sign_in_over_a_planted_session_cookie_starts_a_new_session_the_planted_cookie_never_reaches()
    {
        // The attacker signs in as the reader and plants that session cookie in the victim's browser.
        var attackerCookies = new CookieContainer();
        using var attacker = Site.Browser(attackerCookies);
        using (var signedIn = await SessionFixture.SignInAsync(attacker, "rita", SessionFixture.ReaderPassword))
            Assert.Equal(HttpStatusCode.Found, signedIn.StatusCode);
        var planted = attackerCookies.GetCookies(Site.Address)["kiln-session"]!.Value;
        var victimCookies = new CookieContainer();
        victimCookies.Add(Site.Address, new Cookie("kiln-session", planted));
        using var victim = Site.Browser(victimCookies);

        // The victim signs in as the admin through the form, with the planted cookie sent along.
        using (var signedIn = await SessionFixture.SignInAsync(victim, "ada", SessionFixture.AdminPassword))
            Assert.Equal(HttpStatusCode.Found, signedIn.StatusCode);
        Assert.Contains("Signed in as <strong>ada</strong>", await victim.GetStringAsync(U("/models")), StringComparison.Ordinal);

        // The planted cookie is still the reader's own session: it never became the admin's.
        var page = await attacker.GetStringAsync(U("/models"));
        Assert.Contains("Signed in as <strong>rita</strong>", page, StringComparison.Ordinal);
        Assert.DoesNotContain("Signed in as <strong>ada</strong>", page, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Changing_the_password_ends_the_users_sessions()
    {
        var cookies = new CookieContainer();
        using var browser = Site.Browser(cookies);
        using (var signedIn = await SessionFixture.SignInAsync(browser, "spare", SessionFixture.SparePassword))
            Assert.Equal(HttpStatusCode.Found, signedIn.StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await browser.GetAsync(U("/models"))).StatusCode);
        // The operator sets a new password with the real CLI, on the server's database.
        var r = await Proc.RunAsync("dotnet", [KilnCli.Dll, "auth", "user", "password", "spare", "--password-stdin", "--db", Site.Db], stdin: "a-new-password-2\n");
        Assert.True(r.ExitCode == 0, r.ToString());
        using var after = await browser.GetAsync(U("/models"));
        Assert.Equal(HttpStatusCode.Found, after.StatusCode);
        Assert.StartsWith("/signin", after.Headers.Location!.OriginalString, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_readers_session_cannot_post_the_rollback_form()
    {
        var cookies = new CookieContainer();
        using var browser = Site.Browser(cookies);
        using (var signedIn = await SessionFixture.SignInAsync(browser, "rita", SessionFixture.ReaderPassword))
            Assert.Equal(HttpStatusCode.Found, signedIn.StatusCode);
        var confirm = await browser.GetStringAsync(U("/models/fraud?rollback=production"));
        var fields = SessionFixture.HiddenFields(confirm);
        using var r = await browser.PostAsync(U("/models/fraud?rollback=production"), new FormUrlEncodedContent(fields));
        Assert.Equal(HttpStatusCode.Forbidden, r.StatusCode);
        Assert.StartsWith("text/html", r.Content.Headers.ContentType!.ToString(), StringComparison.Ordinal);
        var html = await r.Content.ReadAsStringAsync();
        Assert.Contains("<h1>Permission denied</h1>", html, StringComparison.Ordinal);
        Assert.Contains("permission denied for user &#39;rita&#39;: EDIT on registered_model fraud is needed", html, StringComparison.Ordinal);
    }
}

/// <summary>Sign-in pages of servers in other states: without users (open on loopback), after too many failures, on TLS.</summary>
public sealed class SignInServerStateTests
{
    [Fact]
    public async Task With_no_users_the_pages_stay_open_and_signin_says_so()
    {
        using var dir = new TempDir("kiln-open");
        await using var server = await RealServer.StartAsync(dir.Path);
        using var browser = SessionFixture.BrowserClient(server.Address);
        using (var r = await browser.GetAsync(new Uri("/experiments", UriKind.Relative)))
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        using var signin = await browser.GetAsync(new Uri("/signin?returnUrl=%2Fmodels", UriKind.Relative));
        Assert.Equal(HttpStatusCode.OK, signin.StatusCode);
        var html = await signin.Content.ReadAsStringAsync();
        Assert.Contains("Access control is off", html, StringComparison.Ordinal);
        Assert.Contains("<a href=\"/models\">Continue to Kiln</a>", html, StringComparison.Ordinal);
        Assert.DoesNotContain("type=\"password\"", html, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Failed_form_sign_ins_are_throttled_with_basic_auths_failures_and_audited()
    {
        using var dir = new TempDir("kiln-throttle");
        await SessionFixture.AddUserAsync(dir.Path, "ada", SessionFixture.AdminPassword, "--admin");
        await using var server = await RealServer.StartAsync(dir.Path);
        using var browser = SessionFixture.BrowserClient(server.Address);
        // Five wrong passwords through the form and five through basic auth: the one count per address reaches its limit of 10.
        for (var i = 0; i < 5; i++)
        {
            using var r = await SessionFixture.SignInAsync(browser, "ada", "wrong-password-" + i);
            Assert.Equal(HttpStatusCode.Unauthorized, r.StatusCode);
        }
        using var basic = new HttpClient { BaseAddress = server.Address };
        for (var i = 0; i < 5; i++)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/api/2.0/mlflow/experiments/search");
            request.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes("ada:wrong-" + i)));
            using var r = await basic.SendAsync(request);
            Assert.Equal(HttpStatusCode.Unauthorized, r.StatusCode);
        }
        // Now even the right password is not checked, through the form or basic auth.
        using (var r = await SessionFixture.SignInAsync(browser, "ada", SessionFixture.AdminPassword))
        {
            Assert.Equal(HttpStatusCode.TooManyRequests, r.StatusCode);
            Assert.Equal("300", r.Headers.RetryAfter!.ToString());
            Assert.Null(r.Headers.TryGetValues("Set-Cookie", out var set) ? set.FirstOrDefault(c => c.StartsWith("kiln-session=", StringComparison.Ordinal)) : null);
            Assert.Contains("Too many failed sign-ins", await r.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }
        using (var request = new HttpRequestMessage(HttpMethod.Get, "/api/2.0/mlflow/experiments/search"))
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes("ada:" + SessionFixture.AdminPassword)));
            using var r = await basic.SendAsync(request);
            Assert.Equal(HttpStatusCode.TooManyRequests, r.StatusCode);
        }
        await using var store = AuthStore.Open(dir.Path);
        var rows = await store.ReadAuditAsync(new AuditQuery(Limit: 1000));
        Assert.Equal(5, rows.Count(a => a.Action == "POST /signin" && a.Status == 401 && a.Resource == "user:ada"));
        Assert.Contains(rows, a => a.Action == "POST /signin" && a.Status == 429 && a.Remote == "127.0.0.1");
    }

    [Fact]
    public async Task Over_TLS_the_session_cookie_is_Secure()
    {
        using var dir = new TempDir("kiln-tls-session");
        await SessionFixture.AddUserAsync(dir.Path, "ada", SessionFixture.AdminPassword, "--admin");
        var cert = TestCertificate.Create(dir.Path);
        await using var server = await RealServer.StartAsync(dir.Path, tls: cert);
        var handler = cert.Handler();
        handler.AllowAutoRedirect = false;
        handler.CookieContainer = new CookieContainer();
        using var http = new HttpClient(handler) { BaseAddress = server.Address };
        http.DefaultRequestHeaders.Accept.ParseAdd("text/html");
        using var r = await SessionFixture.SignInAsync(http, "ada", SessionFixture.AdminPassword);
        Assert.Equal(HttpStatusCode.Found, r.StatusCode);
        var cookie = r.Headers.GetValues("Set-Cookie").Single(c => c.StartsWith("kiln-session=", StringComparison.Ordinal));
        Assert.Contains("; secure", cookie, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("; httponly", cookie, StringComparison.OrdinalIgnoreCase);
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync(new Uri("/models", UriKind.Relative))).StatusCode);
    }
}
