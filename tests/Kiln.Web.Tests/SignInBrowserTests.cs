using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.Playwright;

namespace Kiln.Web.Tests;

/// <summary>
/// Headless Chromium (Debian's) and a real kiln server with users (<see cref="SessionFixture"/>), shared by the sign-in
/// tests (browser and HTTP) so that the quickstart runs once.
/// </summary>
public sealed class SignInBrowserFixture : IAsyncLifetime
{
    private IPlaywright? _playwright;

    public SessionFixture Server { get; } = new();

    public IBrowser Browser { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Environment.SetEnvironmentVariable("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1");
        await Server.InitializeAsync();
        _playwright = await Playwright.CreateAsync();
        Browser = await BrowserFixture.LaunchChromiumAsync(_playwright);
    }

    /// <summary>A fresh browser context (no cookies) at the server's address.</summary>
    public async Task<IPage> NewPageAsync()
    {
        var context = await Browser.NewContextAsync(new BrowserNewContextOptions
        {
            BaseURL = Server.Address.ToString(),
            ViewportSize = new ViewportSize { Width = 1280, Height = 900 },
        });
        return await context.NewPageAsync();
    }

    public async Task DisposeAsync()
    {
        if (Browser is not null) await Browser.CloseAsync();
        _playwright?.Dispose();
        await Server.DisposeAsync();
    }
}

[CollectionDefinition(Name)]
public sealed class SignInCollection : ICollectionFixture<SignInBrowserFixture>
{
    public const string Name = "sign-in";
}

/// <summary>Signing in and out through the form in a real browser; each test leaves a screenshot.</summary>
[Collection(SignInCollection.Name)]
public sealed class SignInBrowserTests(SignInBrowserFixture f)
{
    private static async Task SignInAsync(IPage page, string user, string password)
    {
        await page.GetByLabel("User name").FillAsync(user);
        await page.GetByLabel("Password").FillAsync(password);
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in" }).ClickAsync();
    }

    private static async Task<BrowserContextCookiesResult?> SessionCookieAsync(IPage page) =>
        (await page.Context.CookiesAsync()).FirstOrDefault(c => c.Name == "kiln-session");

    [Fact]
    public async Task Signing_in_through_the_form_shows_the_runs_page_and_signing_out_goes_back_to_signin()
    {
        var page = await f.NewPageAsync();
        await page.GotoAsync("/experiments");
        // No session: the browser lands on the sign-in page, which will return to /experiments.
        await page.WaitForURLAsync(new Regex("/signin\\?returnUrl=%2Fexperiments$"));
        await Assertions.Expect(page.GetByRole(AriaRole.Heading, new() { Level = 1 })).ToHaveTextAsync("Sign in");
        await BrowserFixture.ScreenshotAsync(page, "signin");

        await SignInAsync(page, "ada", SessionFixture.AdminPassword);
        await page.WaitForURLAsync(new Regex("/experiments$"));
        var cookie = await SessionCookieAsync(page);
        Assert.NotNull(cookie);
        Assert.True(cookie.HttpOnly);
        Assert.Equal(SameSiteAttribute.Lax, cookie.SameSite);
        // Scripts in the page cannot read it.
        Assert.DoesNotContain("kiln-session", await page.EvaluateAsync<string>("document.cookie"), StringComparison.Ordinal);

        await page.GetByRole(AriaRole.Link, new() { Name = "quickstart", Exact = true }).ClickAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Heading, new() { Level = 1 })).ToHaveTextAsync("quickstart");
        await Assertions.Expect(page.Locator("table.grid tbody tr")).ToHaveCountAsync(1);
        await Assertions.Expect(page.Locator(".session")).ToContainTextAsync("Signed in as ada", new() { Timeout = 15_000 });
        await BrowserFixture.ScreenshotAsync(page, "signed-in");

        await page.GetByRole(AriaRole.Button, new() { Name = "Sign out" }).ClickAsync();
        await page.WaitForURLAsync(new Regex("/signin$"));
        await Assertions.Expect(page.GetByRole(AriaRole.Heading, new() { Level = 1 })).ToHaveTextAsync("Sign in");
        Assert.Null(await SessionCookieAsync(page));
        // The runs page asks for a sign-in again.
        await page.GoBackAsync();
        await page.ReloadAsync();
        await page.WaitForURLAsync(new Regex("/signin\\?returnUrl="));
    }

    [Fact]
    public async Task A_wrong_password_shows_an_error_and_sets_no_cookie()
    {
        var page = await f.NewPageAsync();
        await page.GotoAsync("/signin");
        var answer = await page.RunAndWaitForResponseAsync(() => SignInAsync(page, "ada", "not-the-password"), r => r.Url.Contains("/signin", StringComparison.Ordinal) && r.Request.Method == "POST");
        Assert.Equal(401, answer.Status);
        await Assertions.Expect(page.GetByRole(AriaRole.Alert)).ToHaveTextAsync("The user name or password is not right.");
        await Assertions.Expect(page.GetByLabel("User name")).ToHaveValueAsync("ada");
        await Assertions.Expect(page.GetByLabel("Password")).ToHaveValueAsync("");
        Assert.Null(await SessionCookieAsync(page));
        await BrowserFixture.ScreenshotAsync(page, "signin-failed");
    }

    [Fact]
    public async Task A_return_address_on_another_site_is_refused()
    {
        var page = await f.NewPageAsync();
        await page.GotoAsync("/signin?returnUrl=" + Uri.EscapeDataString("https://evil.example/phish"));
        await Assertions.Expect(page.GetByRole(AriaRole.Note)).ToContainTextAsync("not on this server");
        await SignInAsync(page, "rita", SessionFixture.ReaderPassword);
        await Assertions.Expect(page.GetByRole(AriaRole.Heading, new() { Level = 1 })).ToHaveTextAsync("Experiments", new() { Timeout = 15_000 });
        Assert.Equal(f.Server.Address.ToString(), page.Url);
    }

    [Fact]
    public async Task The_browsers_session_cookie_alone_cannot_post_a_state_changing_API_call()
    {
        var page = await f.NewPageAsync();
        await page.GotoAsync("/models");
        await SignInAsync(page, "ada", SessionFixture.AdminPassword);
        await Assertions.Expect(page.GetByRole(AriaRole.Heading, new() { Level = 1 })).ToHaveTextAsync("Registered models", new() { Timeout = 15_000 });

        // The same browser context (its cookies, same origin) calls the API: an admin's session, and still refused.
        var rollback = await page.Context.APIRequest.PostAsync("/api/v1/models/fraud/aliases/production/rollback",
            new() { DataObject = new { }, Headers = new Dictionary<string, string> { ["Accept"] = "text/html,application/json" } });
        Assert.Equal(401, rollback.Status);
        Assert.Equal("UNAUTHENTICATED", (await rollback.JsonAsync())!.Value.GetProperty("error_code").GetString());
        var fromPage = await page.EvaluateAsync<int>("""
            async () => (await fetch('/api/2.0/mlflow/experiments/create', { method: 'POST', credentials: 'include',
              headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ name: 'by-cookie' }) })).status
            """);
        Assert.Equal(401, fromPage);

        // Nothing moved: production is still on version 1, and no experiment was made.
        using var admin = new HttpClient { BaseAddress = f.Server.Address };
        admin.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes("ada:" + SessionFixture.AdminPassword)));
        var alias = JsonDocument.Parse(await admin.GetStringAsync(new Uri("/api/2.0/mlflow/registered-models/alias?name=fraud&alias=production", UriKind.Relative)));
        Assert.Equal("1", alias.RootElement.GetProperty("model_version").GetProperty("version").GetString());
        Assert.DoesNotContain("by-cookie", await admin.GetStringAsync(new Uri("/api/2.0/mlflow/experiments/search", UriKind.Relative)), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_readers_session_cannot_use_the_rollback_form()
    {
        var page = await f.NewPageAsync();
        await page.GotoAsync("/models/fraud");
        await SignInAsync(page, "rita", SessionFixture.ReaderPassword);
        await Assertions.Expect(page.GetByRole(AriaRole.Heading, new() { Level = 1 })).ToHaveTextAsync("fraud", new() { Timeout = 15_000 });
        await page.GetByRole(AriaRole.Link, new() { Name = "Roll back production…" }).ClickAsync();
        var answer = await page.RunAndWaitForResponseAsync(
            () => page.GetByRole(AriaRole.Button, new() { Name = "Confirm rollback of production" }).ClickAsync(),
            r => r.Request.Method == "POST");
        Assert.Equal(403, answer.Status);
        await Assertions.Expect(page.GetByRole(AriaRole.Heading, new() { Level = 1 })).ToHaveTextAsync("Permission denied");
        await Assertions.Expect(page.GetByRole(AriaRole.Alert)).ToContainTextAsync("EDIT on registered_model fraud is needed");
        await BrowserFixture.ScreenshotAsync(page, "permission-denied");

        // The alias did not move: still on version 1, with the one move the quickstart made.
        await page.GotoAsync("/models/fraud");
        var production = page.Locator("table[aria-labelledby=aliases] tbody tr").Filter(new() { HasText = "production" });
        await Assertions.Expect(production.Locator("td.num")).ToHaveTextAsync("1", new() { Timeout = 15_000 });
        await Assertions.Expect(page.Locator("table[aria-labelledby=history] tbody tr")).ToHaveCountAsync(1);
    }
}
