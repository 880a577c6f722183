using Microsoft.Playwright;
using Kiln.Testing;

namespace Kiln.Web.Tests;

/// <summary>
/// One headless Chromium (Debian's, /usr/bin/chromium; Playwright downloads no browser here) driven by Playwright's
/// .NET driver, and one real kiln server after the quickstart (<see cref="UiFixture"/>), shared by a test class.
/// </summary>
public sealed class BrowserFixture : IAsyncLifetime
{
    private IPlaywright? _playwright;

    public UiFixture Server { get; } = new();

    public IBrowser Browser { get; private set; } = null!;

    /// <summary>Where the test run writes a screenshot of each page (gitignored; docs/ui.md points at it).</summary>
    public static string ScreenshotDirectory { get; } = Path.Combine(TestEnvironment.RepoRoot, "artifacts", "ui-screenshots");

    public async Task InitializeAsync()
    {
        Environment.SetEnvironmentVariable("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1");
        await Server.InitializeAsync();
        _playwright = await Playwright.CreateAsync();
        Browser = await LaunchChromiumAsync(_playwright);
    }

    /// <summary>Debian's headless Chromium as every browser test launches it (and the screenshot directory made).</summary>
    public static async Task<IBrowser> LaunchChromiumAsync(IPlaywright playwright)
    {
        ArgumentNullException.ThrowIfNull(playwright);
        Environment.SetEnvironmentVariable("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1");
        var executable = Environment.GetEnvironmentVariable("KILN_TEST_CHROMIUM") ?? "/usr/bin/chromium";
        Assert.True(File.Exists(executable), $"{executable} is missing: apt-get install chromium (test.sh installs it)");
        var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = executable,
            Headless = true,
            Args = ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
        });
        Directory.CreateDirectory(ScreenshotDirectory);
        return browser;
    }

    /// <summary>A fresh page (its own cookies) at the server's address, in the given colour scheme, with or without JavaScript.</summary>
    public async Task<IPage> NewPageAsync(ColorScheme scheme = ColorScheme.Light, bool javaScript = true)
    {
        var context = await Browser.NewContextAsync(new BrowserNewContextOptions
        {
            BaseURL = Server.Address.ToString(),
            ColorScheme = scheme,
            JavaScriptEnabled = javaScript,
            ViewportSize = new ViewportSize { Width = 1280, Height = 900 },
        });
        return await context.NewPageAsync();
    }

    public static Task ScreenshotAsync(IPage page, string name) =>
        page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(ScreenshotDirectory, name + ".png"), FullPage = true });

    public async Task DisposeAsync()
    {
        if (Browser is not null) await Browser.CloseAsync();
        _playwright?.Dispose();
        await Server.DisposeAsync();
    }
}
