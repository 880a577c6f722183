using System.Globalization;
using System.Security.Claims;
using System.Text;
using System.Text.Json.Nodes;
using Kiln.Auth;
using Kiln.Tracking;
using Kiln.Tracking.Http;
using Kiln.Tracking.Mlflow;
using Kiln.Web;

namespace Kiln.Server.Access;

/// <summary>
/// Signs every request in and checks it against <see cref="AccessRules"/> before its endpoint runs (after routing, so
/// the endpoint is known); writes every state-changing call, allowed or not, to the audit trail. Refusals use MLflow's
/// error body: 401 UNAUTHENTICATED (the same words for a missing, wrong, expired, revoked or malformed credential),
/// 403 PERMISSION_DENIED, 429 RESOURCE_EXHAUSTED after too many failed sign-ins from one address.
/// </summary>
internal sealed class AccessMiddleware(RequestDelegate next, AccessControl access, BrowserSessions sessions, IServiceProvider services,
    ILogger<AccessMiddleware> logger)
{
    public async Task InvokeAsync(HttpContext http)
    {
        var ct = http.RequestAborted;
        var endpoint = http.GetEndpoint();
        var rule = AccessRules.For(endpoint, http.Request.Method);
        var audited = rule.Changes(http.Request) && !HttpMethods.IsGet(http.Request.Method) && !HttpMethods.IsHead(http.Request.Method);
        if (!await access.IsOnAsync(ct))
        {
            AccessItems.Admit(http, Permission.Manage);
            await RunAsync(http, audited ? new Audit(null, null) : null);
            return;
        }
        if (rule.Scope == Scope.Open)
        {
            await next(http);
            return;
        }

        // The session cookie counts on browser pages only (BrowserSessions: the CSRF rule); there a browser is answered
        // with pages (a redirect to /signin, a refusal page), everyone else with MLflow's JSON errors.
        var browser = BrowserSessions.IsBrowserEndpoint(endpoint);
        var html = browser && BrowserSessions.WantsHtml(http.Request);
        var remote = http.Connection.RemoteIpAddress?.ToString() ?? "";
        var header = http.Request.Headers.Authorization.ToString() is { Length: > 0 } h ? h : null;
        var signIn = header is null && browser
            ? await sessions.AuthenticateAsync(http, ct) is { } session ? new SignInResult(SignInOutcome.Authenticated, session) : new SignInResult(SignInOutcome.NoCredentials)
            : await access.Authenticator!.AuthenticateAsync(header, remote, ct);
        if (signIn.Outcome != SignInOutcome.Authenticated)
        {
            if (signIn.Outcome == SignInOutcome.NoCredentials && html)
            {
                var status = HttpMethods.IsGet(http.Request.Method) || HttpMethods.IsHead(http.Request.Method) ? StatusCodes.Status302Found : StatusCodes.Status303SeeOther;
                http.Response.StatusCode = status;
                http.Response.Headers.Location = UiSession.SignInUrl(BrowserSessions.ReturnUrlOf(http.Request));
                if (audited) await AppendAsync(http, new Audit(null, null), status);
            }
            else if (signIn.Outcome == SignInOutcome.Throttled)
            {
                http.Response.Headers.RetryAfter = ((int)access.Authenticator!.FailureWindow.TotalSeconds).ToString(CultureInfo.InvariantCulture);
                await RefuseAsync(http, 429, "RESOURCE_EXHAUSTED", "too many failed sign-ins from this address; try again later", audited ? new Audit(null, null) : null, html);
            }
            else
            {
                http.Response.Headers.WWWAuthenticate = "Basic realm=\"kiln\", Bearer";
                await RefuseAsync(http, 401, "UNAUTHENTICATED", "authentication required: a valid bearer token or user name and password", audited ? new Audit(null, null) : null, html);
            }
            return;
        }
        var caller = signIn.Caller!;
        // The name alias moves are recorded under is the signed-in user's, whatever the client claims.
        http.Request.Headers[KilnHttpClient.UserHeader] = caller.Name;
        // Who is signed in, and how: the UI's layout shows it (offering sign-out to a session), and anti-forgery tokens are bound to it.
        var via = header is null ? UiSession.AuthenticationType : caller.ByToken ? "Bearer" : "Basic";
        http.User = new ClaimsPrincipal(new ClaimsIdentity([new Claim(ClaimTypes.Name, caller.Name), new Claim(ClaimTypes.NameIdentifier, caller.Name)], via));

        var request = new AccessRequest(http, services.GetService<ITrackingStore>());
        if (rule.ReadsBody)
        {
            if (await request.LoadBodyAsync(ct) is { } problem)
            {
                await RefuseAsync(http, 400, "INVALID_PARAMETER_VALUE", problem, audited ? new Audit(caller.Name, null) : null, html);
                return;
            }
        }
        var (allowed, resource, needed, denied) = await DecideAsync(rule, caller, request, ct);
        Audit? audit = audited ? new Audit(caller.Name, resource) : null;
        if (!allowed)
        {
            var what = needed is null ? "this call is for admins" : $"{Permissions.Name(needed.Value)} on {denied ?? "this server"} is needed";
            await RefuseAsync(http, 403, "PERMISSION_DENIED", $"permission denied for user '{caller.Name}': {what}", audit, html);
            return;
        }
        AccessItems.Admit(http, access.DefaultOf(caller));
        if (rule.Filter is { } filter && !caller.IsAdmin)
        {
            await RunFilteredAsync(http, filter, caller, ct);
            return;
        }
        if (rule.Creates is not { } kind)
        {
            await RunAsync(http, audit);
            return;
        }
        try
        {
            await next(http);
        }
        catch (Exception) when (audit is not null && Record(http, audit.Value, 500))
        {
            throw;
        }
        var created = http.Response.StatusCode == 200 ? await CreatedAsync(kind, request.Body("name"), caller, ct) : null;
        if (audit is { } done) await AppendAsync(http, done with { Resource = created }, http.Response.StatusCode);
    }

    private readonly record struct Audit(string? User, string? Resource);

    private async Task<(bool Allowed, string? Resource, Permission? Needed, string? Denied)> DecideAsync(AccessRule rule, Caller caller, AccessRequest request,
        CancellationToken ct)
    {
        switch (rule.Scope)
        {
            case Scope.SignedIn:
                return (true, null, null, null);
            case Scope.Admin:
                return (caller.IsAdmin, null, null, null);
            case Scope.Default:
                return (access.DefaultOf(caller) >= rule.Needed, null, rule.Needed, null);
        }
        var kind = rule.Scope == Scope.Experiment ? ResourceKind.Experiment : ResourceKind.RegisteredModel;
        var ids = await rule.Lookup!(request);
        if (ids.Count == 0) return (access.DefaultOf(caller) >= rule.Needed, null, rule.Needed, null);
        var resource = string.Join(',', ids.Select(id => Permissions.Name(kind) + ":" + id));
        if (caller.IsAdmin) return (true, resource, rule.Needed, null);
        foreach (var id in ids)
        {
            var p = await access.Store!.GrantedAsync(caller.Name, kind, id, ct) ?? access.DefaultOf(caller);
            if (p < rule.Needed) return (false, resource, rule.Needed, Permissions.Name(kind) + " " + id);
        }
        return (true, resource, rule.Needed, null);
    }

    private async Task RunAsync(HttpContext http, Audit? audit)
    {
        try
        {
            await next(http);
        }
        catch (Exception) when (audit is not null && Record(http, audit.Value, 500))
        {
            throw;
        }
        if (audit is { } a) await AppendAsync(http, a, http.Response.StatusCode);
    }

    // Records a call that threw (as a 500) from an exception filter, without catching it.
    private bool Record(HttpContext http, Audit audit, int status)
    {
        _ = AppendAsync(http, audit, status);
        return false;
    }

    private async Task RefuseAsync(HttpContext http, int status, string code, string message, Audit? audit, bool html)
    {
        http.Response.StatusCode = status;
        if (html)
        {
            http.Response.ContentType = "text/html; charset=utf-8";
            await http.Response.WriteAsync(UiSession.RefusalPage(status, message, BrowserSessions.ReturnUrlOf(http.Request)), http.RequestAborted);
        }
        else
        {
            await http.Response.WriteAsJsonAsync(new MlflowError { ErrorCode = code, Message = message }, MlflowJson.Default.MlflowError, cancellationToken: http.RequestAborted);
        }
        if (audit is { } a) await AppendAsync(http, a, status);
    }

    private async Task AppendAsync(HttpContext http, Audit audit, int status)
    {
        if (access.Store is null) return;
        try
        {
            await access.Store.AppendAuditAsync(audit.User, $"{http.Request.Method} {http.Request.Path}", audit.Resource, status,
                http.Connection.RemoteIpAddress?.ToString(), CancellationToken.None);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            AccessLog.AuditFailed(logger, http.Request.Path, e);
        }
    }

    /// <summary>Runs a search and removes from its answer what the caller may not read (the page may then hold fewer items, as in MLflow).</summary>
    private async Task RunFilteredAsync(HttpContext http, ResultFilter filter, Caller caller, CancellationToken ct)
    {
        var original = http.Response.Body;
        using var buffer = new MemoryStream();
        http.Response.Body = buffer;
        try
        {
            await next(http);
        }
        finally
        {
            http.Response.Body = original;
        }
        buffer.Position = 0;
        if (http.Response.StatusCode != 200 || JsonNode.Parse(buffer) is not JsonObject answer)
        {
            buffer.Position = 0;
            await buffer.CopyToAsync(original, ct);
            return;
        }
        if (answer[filter.Array] is JsonArray items)
        {
            var grants = await access.Store!.GrantsOfAsync(caller.Name, ct);
            var fallback = access.DefaultOf(caller);
            for (var i = items.Count - 1; i >= 0; i--)
            {
                var id = items[i]?[filter.Id]?.GetValue<string>() ?? "";
                if (grants.GetValueOrDefault((filter.Kind, id), fallback) < Permission.Read) items.RemoveAt(i);
            }
        }
        var bytes = Encoding.UTF8.GetBytes(answer.ToJsonString());
        http.Response.ContentLength = bytes.Length;
        await original.WriteAsync(bytes, ct);
    }

    /// <summary>The resource a create call made; its (non-admin) creator is granted MANAGE on it, as in MLflow.</summary>
    private async Task<string?> CreatedAsync(ResourceKind kind, string? name, Caller caller, CancellationToken ct)
    {
        if (string.IsNullOrEmpty(name)) return null;
        var id = name;
        if (kind == ResourceKind.Experiment)
        {
            var e = await services.GetRequiredService<ITrackingStore>().GetExperimentByNameAsync(name, ct);
            if (e is null) return null;
            id = e.ExperimentId;
        }
        if (!caller.IsAdmin) await access.Store!.GrantAsync(caller.Name, kind, id, Permission.Manage, ct);
        return Permissions.Name(kind) + ":" + id;
    }
}

internal static partial class AccessLog
{
    [LoggerMessage(EventId = 3101, Level = LogLevel.Error, Message = "could not write the audit row of {Path}")]
    public static partial void AuditFailed(ILogger logger, PathString path, Exception exception);
}

/// <summary>What the access middleware tells an endpoint it admitted (the jobs dashboard decides read-only from it).</summary>
public static class AccessItems
{
    private const string Key = "kiln.access.default_permission";

    /// <summary>
    /// The caller's permission where it holds no grant: its own default, the server's, MANAGE for an admin or when
    /// access control is off; null when the access middleware did not admit the request.
    /// </summary>
    public static Permission? DefaultPermissionOf(HttpContext http)
    {
        ArgumentNullException.ThrowIfNull(http);
        return http.Items.TryGetValue(Key, out var p) && p is Permission permission ? permission : null;
    }

    internal static void Admit(HttpContext http, Permission permission) => http.Items[Key] = permission;
}
