using System.Collections.Concurrent;
using System.Globalization;
using System.Security.Claims;
using System.Security.Cryptography;
using Kiln.Auth;
using Kiln.Web;
using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Kiln.Server.Access;

/// <summary>
/// Browser sign-in for the web UI: the /signin page's password check (the same store, hasher and failed sign-in
/// throttle as basic auth), a cookie session (ASP.NET Core's cookie authentication, its tickets kept in the server's
/// memory so that signing out ends them), POST /signout, and the audit rows of all three.
/// The CSRF rule: the cookie counts only on endpoints marked <see cref="BrowserPageMetadata"/> (the UI's pages, whose
/// forms carry anti-forgery tokens, /signout, and the /jobs dashboard, which checks them too); every other endpoint
/// ignores it and needs Basic or Bearer, so a page on another site can never spend a session on the API.
/// </summary>
internal sealed class BrowserSessions(AccessControl access, AccessOptions options, TimeProvider time) : IUiSessions
{
    private const string StampClaim = "kiln:session_stamp";
    private const string SignedInClaim = "kiln:signed_in_at";

    /// <summary>Registers cookie authentication (scheme <see cref="UiSession.AuthenticationType"/>) and the UI's sign-in service.</summary>
    public static void AddServices(IServiceCollection services, AccessOptions options, bool tls)
    {
        services.TryAddSingleton(TimeProvider.System);
        services.AddSingleton<SessionTicketStore>();
        services.AddSingleton(sp => new BrowserSessions(sp.GetRequiredService<AccessControl>(), options, sp.GetRequiredService<TimeProvider>()));
        services.AddSingleton<IUiSessions>(sp => sp.GetRequiredService<BrowserSessions>());
        services.AddAuthentication(UiSession.AuthenticationType).AddCookie(UiSession.AuthenticationType, o =>
        {
            o.Cookie.Name = UiSession.CookieName;
            o.Cookie.HttpOnly = true;
            o.Cookie.SameSite = SameSiteMode.Lax;
            o.Cookie.SecurePolicy = tls ? CookieSecurePolicy.Always : CookieSecurePolicy.SameAsRequest;
            o.Cookie.Path = "/";
            o.CookieManager = new SignInPageCookieManager();
            o.ExpireTimeSpan = options.SessionIdleTimeout;
            o.SlidingExpiration = true;
            o.LoginPath = UiSession.SignInPath;
            o.ReturnUrlParameter = UiSession.ReturnUrlParameter;
            // The access middleware decides what an unsigned browser gets; the handler never redirects on its own.
            o.Events.OnRedirectToLogin = c =>
            {
                c.Response.StatusCode = StatusCodes.Status401Unauthorized;
                return Task.CompletedTask;
            };
        });
        services.AddOptions<CookieAuthenticationOptions>(UiSession.AuthenticationType)
            .Configure<SessionTicketStore>((o, store) => o.SessionStore = store);
    }

    /// <summary>Maps POST /signout (the layout's sign-out button): anti-forgery checked, session ended, back to /signin.</summary>
    public static void MapEndpoints(WebApplication app) =>
        app.MapPost(UiSession.SignOutPath, async (HttpContext http, IAntiforgery antiforgery, BrowserSessions sessions) =>
        {
            if (!await antiforgery.IsRequestValidAsync(http))
            {
                return Results.Content(UiSession.RefusalPage(StatusCodes.Status400BadRequest,
                    "The sign-out form was sent without a valid anti-forgery token: reload the page and try again.", null), "text/html; charset=utf-8",
                    statusCode: StatusCodes.Status400BadRequest);
            }
            await sessions.SignOutAsync(http);
            http.Response.Headers.Location = UiSession.SignInPath;
            return Results.StatusCode(StatusCodes.Status303SeeOther);
        }).WithMetadata(BrowserPageMetadata.Instance).DisableAntiforgery();

    /// <summary>True for an endpoint where the session cookie counts (and where a browser without one is sent to /signin).</summary>
    public static bool IsBrowserEndpoint(Endpoint? endpoint) => endpoint?.Metadata.GetMetadata<BrowserPageMetadata>() is not null;

    /// <summary>A request from a browser (a navigation or form post accepts text/html), answered with pages rather than MLflow's JSON errors.</summary>
    public static bool WantsHtml(HttpRequest request)
    {
        foreach (var accept in request.Headers.Accept)
        {
            if (accept is not null && accept.Contains("text/html", StringComparison.OrdinalIgnoreCase)) return true;
        }
        return false;
    }

    /// <summary>The address to come back to after signing in: this request's path and query.</summary>
    public static string ReturnUrlOf(HttpRequest request) => request.Path.ToString() + request.QueryString.ToString();

    public ValueTask<bool> IsOnAsync(CancellationToken ct) => access.IsOnAsync(ct);

    public async ValueTask<UiSignInOutcome> SignInAsync(HttpContext http, string user, string password, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(http);
        if (!await access.IsOnAsync(ct).ConfigureAwait(false) || access.Authenticator is not { } authenticator) return UiSignInOutcome.Off;
        var remote = http.Connection.RemoteIpAddress?.ToString() ?? "";
        var result = await authenticator.SignInWithPasswordAsync(user, password, remote, ct).ConfigureAwait(false);
        switch (result.Outcome)
        {
            case SignInOutcome.Throttled:
                http.Response.Headers.RetryAfter = ((int)authenticator.FailureWindow.TotalSeconds).ToString(CultureInfo.InvariantCulture);
                await AuditAsync(http, null, null, StatusCodes.Status429TooManyRequests).ConfigureAwait(false);
                return UiSignInOutcome.Throttled;
            case SignInOutcome.Authenticated:
                break;
            default:
                // The name tried is recorded only when it is a user's: a password typed into the name field stays out of the trail.
                var known = user.Length is > 0 and <= 200 && await access.Store!.GetUserAsync(user, ct).ConfigureAwait(false) is not null;
                await AuditAsync(http, null, known ? "user:" + user : null, StatusCodes.Status401Unauthorized).ConfigureAwait(false);
                return UiSignInOutcome.Rejected;
        }
        var caller = result.Caller!;
        var stamp = await authenticator.SessionStampAsync(caller.Name, ct).ConfigureAwait(false) ?? "";
        var identity = new ClaimsIdentity(
        [
            new Claim(ClaimTypes.Name, caller.Name),
            new Claim(ClaimTypes.NameIdentifier, caller.Name),
            new Claim(StampClaim, stamp),
            new Claim(SignedInClaim, time.GetUtcNow().ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture)),
        ], UiSession.AuthenticationType);
        await http.SignInAsync(UiSession.AuthenticationType, new ClaimsPrincipal(identity), new AuthenticationProperties { IsPersistent = false, AllowRefresh = true })
            .ConfigureAwait(false);
        await AuditAsync(http, caller.Name, "user:" + caller.Name, StatusCodes.Status302Found).ConfigureAwait(false);
        return UiSignInOutcome.SignedIn;
    }

    /// <summary>
    /// The caller a request's session cookie signs in, or null (no cookie, an unknown or expired session, one older than
    /// <see cref="AccessOptions.SessionLifetime"/>, a user deleted or whose password changed since: the cookie is then removed).
    /// </summary>
    public async ValueTask<Caller?> AuthenticateAsync(HttpContext http, CancellationToken ct)
    {
        if (SignInPageCookieManager.IsSignInPage(http) || !http.Request.Cookies.ContainsKey(UiSession.CookieName)
            || access.Authenticator is not { } authenticator) return null;
        var result = await http.AuthenticateAsync(UiSession.AuthenticationType).ConfigureAwait(false);
        Caller? caller = null;
        if (result.Succeeded && result.Principal.Identity?.Name is { Length: > 0 } name
            && long.TryParse(result.Principal.FindFirstValue(SignedInClaim), NumberStyles.None, CultureInfo.InvariantCulture, out var since)
            && time.GetUtcNow() - DateTimeOffset.FromUnixTimeSeconds(since) <= options.SessionLifetime)
        {
            caller = await authenticator.SessionCallerAsync(name, result.Principal.FindFirstValue(StampClaim) ?? "", ct).ConfigureAwait(false);
        }
        if (caller is null) await http.SignOutAsync(UiSession.AuthenticationType).ConfigureAwait(false);
        return caller;
    }

    private async Task SignOutAsync(HttpContext http)
    {
        var user = http.User.Identity is { IsAuthenticated: true, AuthenticationType: UiSession.AuthenticationType } id ? id.Name : null;
        // Removes the session from the server's store too, so a copy of the cookie is worth nothing afterwards.
        await http.SignOutAsync(UiSession.AuthenticationType).ConfigureAwait(false);
        if (user is not null) await AuditAsync(http, user, "user:" + user, StatusCodes.Status303SeeOther).ConfigureAwait(false);
    }

    private async Task AuditAsync(HttpContext http, string? user, string? resource, int status)
    {
        if (access.Store is null) return;
        await access.Store.AppendAuditAsync(user, $"{http.Request.Method} {http.Request.Path}", resource, status,
            http.Connection.RemoteIpAddress?.ToString(), CancellationToken.None).ConfigureAwait(false);
    }
}

/// <summary>
/// The cookie handler's cookies, except that on /signin the request's session cookie is not read: the page always
/// treats the browser as signed out, and a sign-in there always stores a new session under a new key. (The handler
/// otherwise renews the key the request's cookie carries, so a session cookie planted in a browser would become the
/// session of whoever signs in with it next: session fixation.)
/// </summary>
internal sealed class SignInPageCookieManager : ICookieManager
{
    private readonly ChunkingCookieManager _cookies = new();

    /// <summary>True for requests to the sign-in page (GET and POST).</summary>
    public static bool IsSignInPage(HttpContext http) => http.Request.Path.Equals(UiSession.SignInPath, StringComparison.OrdinalIgnoreCase);

    public string? GetRequestCookie(HttpContext context, string key) => IsSignInPage(context) ? null : _cookies.GetRequestCookie(context, key);

    public void AppendResponseCookie(HttpContext context, string key, string? value, CookieOptions options) =>
        _cookies.AppendResponseCookie(context, key, value, options);

    public void DeleteCookie(HttpContext context, string key, CookieOptions options) => _cookies.DeleteCookie(context, key, options);
}

/// <summary>
/// The sessions' tickets, kept in the server's memory (the cookie holds only a random key to one): signing out removes
/// the ticket, so the cookie is dead even if copied; a restart ends every session. Expired tickets are dropped as new
/// ones come; past <see cref="MaxSessions"/> the oldest go first.
/// </summary>
internal sealed class SessionTicketStore(TimeProvider time) : ITicketStore
{
    public const int MaxSessions = 100_000;

    private readonly ConcurrentDictionary<string, AuthenticationTicket> _tickets = new(StringComparer.Ordinal);
    private long _nextPrune;

    public int Count => _tickets.Count;

    public Task<string> StoreAsync(AuthenticationTicket ticket)
    {
        Prune();
        var key = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));
        _tickets[key] = ticket;
        return Task.FromResult(key);
    }

    public Task RenewAsync(string key, AuthenticationTicket ticket)
    {
        // A session removed meanwhile (signed out in another tab) is not brought back by a renewal.
        if (_tickets.TryGetValue(key, out var old)) _tickets.TryUpdate(key, ticket, old);
        return Task.CompletedTask;
    }

    public Task<AuthenticationTicket?> RetrieveAsync(string key)
    {
        if (_tickets.TryGetValue(key, out var ticket) && !Expired(ticket, time.GetUtcNow())) return Task.FromResult<AuthenticationTicket?>(ticket);
        _tickets.TryRemove(key, out _);
        return Task.FromResult<AuthenticationTicket?>(null);
    }

    public Task RemoveAsync(string key)
    {
        _tickets.TryRemove(key, out _);
        return Task.CompletedTask;
    }

    private static bool Expired(AuthenticationTicket ticket, DateTimeOffset now) => ticket.Properties.ExpiresUtc is { } until && until <= now;

    private void Prune()
    {
        var now = time.GetUtcNow();
        if (_tickets.Count < MaxSessions && now.ToUnixTimeMilliseconds() < Interlocked.Read(ref _nextPrune)) return;
        Interlocked.Exchange(ref _nextPrune, now.AddMinutes(1).ToUnixTimeMilliseconds());
        foreach (var (key, ticket) in _tickets)
        {
            if (Expired(ticket, now)) _tickets.TryRemove(key, out _);
        }
        var over = _tickets.Count - MaxSessions + 1;
        if (over <= 0) return;
        foreach (var (key, _) in _tickets.OrderBy(t => t.Value.Properties.IssuedUtc ?? DateTimeOffset.MinValue).Take(over).ToList()) _tickets.TryRemove(key, out _);
    }
}
