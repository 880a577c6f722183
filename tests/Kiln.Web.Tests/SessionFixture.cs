using System.Net;
using System.Text.RegularExpressions;
using Kiln.Server.Tests;
using Kiln.Testing;

namespace Kiln.Web.Tests;

/// <summary>
/// The quickstart run once (experiment quickstart, model fraud with production on version 1), then users added with the
/// real `kiln auth user add` (ada, an admin; rita, who may only read; and a spare user tests may change), then the real
/// `kiln server` on that store: access control is on from the first request.
/// </summary>
public sealed class SessionFixture : IAsyncLifetime
{
    public const string AdminPassword = "ada-lovelace-1815";
    public const string ReaderPassword = "rita-reads-all-day";
    public const string SparePassword = "spare-password-1";

    private readonly TempDir _dir = new("kiln-signin");
    private RealServer? _server;

    public Uri Address => _server!.Address;

    public string Dir => _dir.Path;

    public string Db => _dir.File(".kiln");

    public string ServerLog => _server?.Log ?? "";

    public async Task InitializeAsync()
    {
        var quickstart = Path.Combine(TestEnvironment.RepoRoot, "examples", "quickstart");
        var r = await KilnCli.RunAsync(["quickstart", "--dir", quickstart], _dir.Path);
        Assert.True(r.ExitCode == 0, r.ToString());
        await AddUserAsync(Db, "ada", AdminPassword, "--admin");
        await AddUserAsync(Db, "rita", ReaderPassword, "--default-permission", "READ");
        await AddUserAsync(Db, "spare", SparePassword, "--default-permission", "READ");
        _server = await RealServer.StartAsync(Db, _dir.Path);
    }

    /// <summary>`kiln auth user add NAME --password-stdin ... --db DB`, as an operator would.</summary>
    public static async Task AddUserAsync(string db, string name, string password, params string[] options)
    {
        var r = await Proc.RunAsync("dotnet", [KilnCli.Dll, "auth", "user", "add", name, "--password-stdin", "--db", db, .. options], stdin: password + "\n");
        Assert.True(r.ExitCode == 0, r.ToString());
    }

    /// <summary>A client that keeps cookies (as a browser does) and follows no redirect, so each answer can be checked.</summary>
    public HttpClient Browser(CookieContainer? cookies = null) => BrowserClient(Address, cookies);

    public static HttpClient BrowserClient(Uri address, CookieContainer? cookies = null)
    {
        var http = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false, CookieContainer = cookies ?? new CookieContainer(), UseCookies = true })
        {
            BaseAddress = address,
        };
        // What a browser's navigation sends.
        http.DefaultRequestHeaders.Accept.ParseAdd("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8");
        return http;
    }

    /// <summary>
    /// Reads /signin (with the return address, if any) and posts its form as a browser would: every hidden field the page
    /// rendered (the anti-forgery token, Blazor's form name) plus the user name and password.
    /// </summary>
    public static async Task<HttpResponseMessage> SignInAsync(HttpClient http, string user, string password, string? returnUrl = null)
    {
        var path = returnUrl is null ? "/signin" : "/signin?returnUrl=" + Uri.EscapeDataString(returnUrl);
        var html = await http.GetStringAsync(new Uri(path, UriKind.Relative));
        var fields = HiddenFields(html);
        Assert.True(fields.ContainsKey("__RequestVerificationToken"), "the sign-in form carries an anti-forgery token:\n" + html);
        fields["UserName"] = user;
        fields["Password"] = password;
        return await http.PostAsync(new Uri(path, UriKind.Relative), new FormUrlEncodedContent(fields));
    }

    /// <summary>The hidden inputs of a page's forms (name to value; the last wins).</summary>
    public static Dictionary<string, string> HiddenFields(string html) =>
        Regex.Matches(html, "<input type=\"hidden\" name=\"([^\"]+)\" value=\"([^\"]*)\"")
            .GroupBy(m => m.Groups[1].Value).ToDictionary(g => g.Key, g => WebUtility.HtmlDecode(g.Last().Groups[2].Value));

    public async Task DisposeAsync()
    {
        if (_server is not null) await _server.DisposeAsync();
        _dir.Dispose();
    }
}
