using System.Net;
using Kiln.Web.Layout;
using Microsoft.AspNetCore.Http;

namespace Kiln.Web;

/// <summary>How a sign-in from the form ended.</summary>
public enum UiSignInOutcome
{
    /// <summary>The password checked out; the session cookie is set on the response.</summary>
    SignedIn,

    /// <summary>Wrong user name or password (the page does not say which).</summary>
    Rejected,

    /// <summary>Too many failed sign-ins from this address recently; nothing was checked.</summary>
    Throttled,

    /// <summary>Access control is off (no users): there is nothing to sign in to.</summary>
    Off,
}

/// <summary>
/// The browser sign-in the host provides (kiln server's access control): whether signing in is needed, and a sign-in
/// that checks the password and starts a cookie session. The pages know nothing of users or passwords beyond this.
/// </summary>
public interface IUiSessions
{
    /// <summary>False while access control is off (a server without users, open on loopback).</summary>
    ValueTask<bool> IsOnAsync(CancellationToken ct);

    /// <summary>Checks the user name and password and, when they are right, starts a session on the response.</summary>
    ValueTask<UiSignInOutcome> SignInAsync(HttpContext http, string user, string password, CancellationToken ct);
}

/// <summary>The sign-in page's address, the session's authentication type, and the return address rule.</summary>
public static class UiSession
{
    /// <summary>The authentication type of a caller signed in by the session cookie (the layout offers sign-out to these only).</summary>
    public const string AuthenticationType = "kiln-session";

    /// <summary>The name of the session cookie.</summary>
    public const string CookieName = "kiln-session";

    public const string SignInPath = "/signin";

    public const string SignOutPath = "/signout";

    /// <summary>The sign-in page's query parameter naming the page to go back to.</summary>
    public const string ReturnUrlParameter = "returnUrl";

    /// <summary>The sign-in page's address, asking to come back to <paramref name="returnUrl"/> afterwards.</summary>
    public static string SignInUrl(string? returnUrl) =>
        returnUrl is { Length: > 0 } r && r != "/" ? $"{SignInPath}?{ReturnUrlParameter}={Uri.EscapeDataString(r)}" : SignInPath;

    /// <summary>
    /// True for an address on this server: a path starting with one '/', not "//" or "/\" (which browsers read as
    /// another host), with no control characters. Anything else (an absolute URL, a scheme) would be an open redirect.
    /// </summary>
    public static bool IsLocal(string? url)
    {
        if (string.IsNullOrEmpty(url) || url[0] != '/') return false;
        if (url.Length > 1 && (url[1] == '/' || url[1] == '\\')) return false;
        foreach (var c in url)
        {
            if (char.IsControl(c)) return false;
        }
        return true;
    }

    /// <summary>Where to go after signing in: the asked address when it is local (and not the sign-in page itself), else "/".</summary>
    public static string ReturnTo(string? url)
    {
        if (!IsLocal(url)) return "/";
        var path = url!.Split('?', '#')[0];
        return path.Equals(SignInPath, StringComparison.OrdinalIgnoreCase) || path.Equals(SignOutPath, StringComparison.OrdinalIgnoreCase) ? "/" : url;
    }

    /// <summary>
    /// A whole HTML page for a refusal the access check answers before any page runs (401, 403, 429), in the UI's
    /// theme, with a way to sign in as someone else and a way back.
    /// </summary>
    public static string RefusalPage(int status, string message, string? returnUrl)
    {
        var title = status switch
        {
            StatusCodes.Status401Unauthorized => "Sign-in failed",
            StatusCodes.Status403Forbidden => "Permission denied",
            StatusCodes.Status429TooManyRequests => "Too many failed sign-ins",
            _ => "Refused",
        };
        var signIn = WebUtility.HtmlEncode(SignInUrl(IsLocal(returnUrl) ? returnUrl : null));
        return $"""
            <!DOCTYPE html>
            <html lang="en">
            <head><meta charset="utf-8" /><meta name="viewport" content="width=device-width, initial-scale=1" /><meta name="color-scheme" content="light dark" />
            <title>{title} · Kiln</title><style>{Theme.Css}</style></head>
            <body><main id="main"><h1>{title}</h1>
            <p class="error" role="alert">{WebUtility.HtmlEncode(message)}</p>
            <p><a href="{signIn}">Sign in as someone else</a> · <a href="/">Back to experiments</a></p>
            </main></body>
            </html>
            """;
    }
}

/// <summary>
/// Marks an endpoint a browser navigates to (every page, the sign-out form's target, a host's dashboard): there the
/// host honours the session cookie, and sends a browser without a session to the sign-in page.
/// </summary>
public sealed class BrowserPageMetadata
{
    public static BrowserPageMetadata Instance { get; } = new();

    private BrowserPageMetadata()
    {
    }
}
