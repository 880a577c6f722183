using System.Globalization;
using System.Text.Json.Serialization.Metadata;
using Kiln.Auth;
using Kiln.Auth.Http;
using Kiln.Core;
using Kiln.Http;
using Kiln.Storage;

namespace Kiln.Server.Access;

/// <summary>
/// Access control inside kiln server: the access state as a singleton, and the admins' API under /api/v1/auth (users,
/// service tokens, grants, the audit trail) on the server's own <see cref="AuthStore"/>; <c>kiln auth --server URL</c>
/// calls it through <see cref="AuthApiClient"/>. The middleware is added by <see cref="KilnServer.BuildApp"/>; the rule of
/// every endpoint here is admin-only (<see cref="AccessRules"/>).
/// </summary>
internal sealed class AccessModule(AccessOptions options, bool tls = false) : IKilnServerModule
{
    /// <summary>The largest body the auth API reads (a user, a password, a grant: small).</summary>
    public const int MaxBodyBytes = 64 * 1024;

    public void ConfigureServices(WebApplicationBuilder builder)
    {
        builder.Services.AddSingleton(sp => new AccessControl(options, sp.GetService<MetadataDatabase>()));
        BrowserSessions.AddServices(builder.Services, options, tls);
    }

    public void MapEndpoints(WebApplication app)
    {
        BrowserSessions.MapEndpoints(app);
        var api = app.MapGroup("/api/v1/auth");
        api.MapGet("/users", (AccessControl access, CancellationToken ct) => Run(access, async store =>
            Json(new UsersResponse { Users = (await store.ListUsersAsync(ct)).Select(UserDto.Of).ToList() }, AuthJson.Default.UsersResponse)));
        api.MapPost("/users", (HttpRequest req, AccessControl access, CancellationToken ct) => Run(access, async store =>
        {
            var (body, problem) = await ReadAsync(req, AuthJson.Default.AddUserRequest, ct);
            if (problem is not null) return problem;
            var name = body!.Name ?? throw new KilnException("name: required");
            var permission = body.DefaultPermission is { } d ? Permissions.Parse(d, "default_permission") : (Permission?)null;
            var user = await store.AddUserAsync(name, body.Password, body.Admin, permission, ct);
            return Json(UserDto.Of(user), AuthJson.Default.UserDto);
        }));
        api.MapPut("/users/{name}/password", (string name, HttpRequest req, AccessControl access, CancellationToken ct) => Run(access, async store =>
        {
            var (body, problem) = await ReadAsync(req, AuthJson.Default.PasswordRequest, ct);
            if (problem is not null) return problem;
            await store.SetPasswordAsync(name, body!.Password ?? throw new KilnException("password: required"), ct);
            return Done;
        }));
        api.MapDelete("/users/{name}", (string name, AccessControl access, CancellationToken ct) => Run(access, async store =>
        {
            await store.DeleteUserAsync(name, ct);
            return Done;
        }));

        api.MapGet("/tokens", (AccessControl access, CancellationToken ct) => Run(access, async store =>
            Json(new TokensResponse { Tokens = (await store.ListTokensAsync(ct)).Select(TokenDto.Of).ToList() }, AuthJson.Default.TokensResponse)));
        api.MapPost("/tokens", (HttpRequest req, AccessControl access, CancellationToken ct) => Run(access, async store =>
        {
            var (body, problem) = await ReadAsync(req, AuthJson.Default.CreateTokenRequest, ct);
            if (problem is not null) return problem;
            var user = body!.User ?? throw new KilnException("user: required");
            var (token, secret) = await store.CreateTokenAsync(user, body.Description, AuthWire.Parse(body.ExpiresAt, "expires_at"), ct);
            return Json(new CreatedTokenResponse { Token = TokenDto.Of(token), Secret = secret }, AuthJson.Default.CreatedTokenResponse);
        }));
        api.MapPost("/tokens/{id}/revoke", (string id, AccessControl access, CancellationToken ct) => Run(access, async store =>
        {
            await store.RevokeTokenAsync(id, ct);
            return Done;
        }));

        api.MapGet("/grants", (AccessControl access, CancellationToken ct) => Run(access, async store =>
            Json(new GrantsResponse { Grants = (await store.ListGrantsAsync(ct)).Select(GrantDto.Of).ToList() }, AuthJson.Default.GrantsResponse)));
        api.MapPut("/grants", (HttpRequest req, AccessControl access, CancellationToken ct) => Run(access, async store =>
        {
            var (body, problem) = await ReadAsync(req, AuthJson.Default.GrantRequest, ct);
            if (problem is not null) return problem;
            var user = body!.User ?? throw new KilnException("user: required");
            var resource = body.Resource is { Length: > 0 } r ? r : throw new KilnException("resource: required (an experiment id or a registered model name)");
            await store.GrantAsync(user, AuthWire.Kind(body.Kind), resource, Permissions.Parse(body.Permission, "permission"), ct);
            return Done;
        }));
        api.MapDelete("/grants", (HttpRequest req, AccessControl access, CancellationToken ct) => Run(access, async store =>
        {
            var user = req.Query["user"].ToString() is { Length: > 0 } u ? u : throw new KilnException("user: required");
            var resource = req.Query["resource"].ToString() is { Length: > 0 } r ? r : throw new KilnException("resource: required");
            var removed = await store.RemoveGrantAsync(user, AuthWire.Kind(req.Query["kind"].ToString()), resource, ct);
            return Json(new RemovedResponse { Removed = removed }, AuthJson.Default.RemovedResponse);
        }));

        api.MapGet("/audit", (HttpRequest req, AccessControl access, CancellationToken ct) => Run(access, async store =>
        {
            var limit = req.Query["limit"].ToString() is { Length: > 0 } l
                ? int.TryParse(l, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) && n > 0 ? n : throw new KilnException($"limit: '{l}' is not a positive number")
                : 100;
            var since = AuthWire.Parse(req.Query["since"].ToString() is { Length: > 0 } s ? s : null, "since");
            var user = req.Query["user"].ToString() is { Length: > 0 } u ? u : null;
            var resource = req.Query["resource"].ToString() is { Length: > 0 } r ? r : null;
            var rows = await store.ReadAuditAsync(new AuditQuery(user, since, resource, limit), ct);
            return Json(new AuditResponse { Entries = rows.Select(AuditEntryDto.Of).ToList() }, AuthJson.Default.AuditResponse);
        }));
    }

    private static IResult Done => Json(new DoneResponse(), AuthJson.Default.DoneResponse);

    private static IResult Json<T>(T value, JsonTypeInfo<T> type) => TypedResults.Json(value, type);

    private static IResult Problem(int status, string detail) => TypedResults.Problem(detail: detail, statusCode: status);

    // The store's refusals keep their status (404 for what does not exist, 409 for a conflict); other mistakes are 400.
    private static async Task<IResult> Run(AccessControl access, Func<AuthStore, Task<IResult>> body)
    {
        if (access.Store is not { } store) return Problem(404, "this server keeps no users: its store is another kiln server");
        try
        {
            return await body(store);
        }
        catch (AuthException e)
        {
            return Problem(e.Status, e.Message);
        }
        catch (KilnException e)
        {
            return Problem(400, e.Message);
        }
    }

    private static Task<(T? Value, IResult? Problem)> ReadAsync<T>(HttpRequest req, JsonTypeInfo<T> type, CancellationToken ct) where T : class =>
        JsonBodies.ReadAsync(req, type, BodyProblem, MaxBodyBytes, ct);

    private static IResult BodyProblem(JsonBodyError e) => e.Failure switch
    {
        JsonBodyFailure.TooLarge => Problem(413, $"body: at most {MaxBodyBytes / 1024} KB"),
        JsonBodyFailure.Missing => Problem(400, "body: a JSON object is required"),
        _ => Problem(400, $"body: not valid JSON ({e.Detail})"),
    };
}
