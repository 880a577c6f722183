using System.Globalization;
using System.Net.Http.Json;
using Kiln.Core.Http;

namespace Kiln.Auth.Http;

/// <summary>
/// <see cref="IAuthAdmin"/> through a kiln server's admin API (/api/v1/auth), signed in as MLflow's clients are
/// (MLFLOW_TRACKING_TOKEN, or MLFLOW_TRACKING_USERNAME and _PASSWORD); the server's store does the work, so answers and
/// refusals are the ones <c>kiln auth --db</c> gives.
/// </summary>
public sealed class AuthApiClient(Uri server, HttpClient? http = null) : IAuthAdmin
{
    private readonly KilnApiConnection _api = new(server, "api/v1/auth",
        "does not serve the auth API (/api/v1/auth): is it a kiln server with a database of its own (--db DIR or postgresql://...)?", http);

    /// <inheritdoc/>
    public string Description => _api.Server;

    private static string Q(string s) => Uri.EscapeDataString(s);

    public async Task<AuthUser> AddUserAsync(string name, string? password, bool isAdmin, Permission? defaultPermission, CancellationToken ct = default)
    {
        var body = new AddUserRequest { Name = name, Password = password, Admin = isAdmin, DefaultPermission = defaultPermission is { } d ? Permissions.Name(d) : null };
        var user = await _api.SendAsync(HttpMethod.Post, "users", JsonContent.Create(body, AuthJson.Default.AddUserRequest), AuthJson.Default.UserDto, ct).ConfigureAwait(false);
        return user.ToUser();
    }

    public Task SetPasswordAsync(string name, string password, CancellationToken ct = default) =>
        _api.SendAsync(HttpMethod.Put, $"users/{Q(name)}/password", JsonContent.Create(new PasswordRequest { Password = password }, AuthJson.Default.PasswordRequest),
            AuthJson.Default.DoneResponse, ct);

    public Task DeleteUserAsync(string name, CancellationToken ct = default) =>
        _api.SendAsync(HttpMethod.Delete, $"users/{Q(name)}", null, AuthJson.Default.DoneResponse, ct);

    public async Task<List<AuthUser>> ListUsersAsync(CancellationToken ct = default) =>
        (await _api.SendAsync(HttpMethod.Get, "users", null, AuthJson.Default.UsersResponse, ct).ConfigureAwait(false)).Users.Select(u => u.ToUser()).ToList();

    public async Task<(ServiceToken Token, string Secret)> CreateTokenAsync(string user, string? description, DateTimeOffset? expiresAt, CancellationToken ct = default)
    {
        var body = new CreateTokenRequest { User = user, Description = description, ExpiresAt = AuthWire.Time(expiresAt) };
        var created = await _api.SendAsync(HttpMethod.Post, "tokens", JsonContent.Create(body, AuthJson.Default.CreateTokenRequest),
            AuthJson.Default.CreatedTokenResponse, ct).ConfigureAwait(false);
        return (created.Token.ToToken(), created.Secret);
    }

    public Task RevokeTokenAsync(string id, CancellationToken ct = default) =>
        _api.SendAsync(HttpMethod.Post, $"tokens/{Q(id)}/revoke", null, AuthJson.Default.DoneResponse, ct);

    public async Task<List<ServiceToken>> ListTokensAsync(CancellationToken ct = default) =>
        (await _api.SendAsync(HttpMethod.Get, "tokens", null, AuthJson.Default.TokensResponse, ct).ConfigureAwait(false)).Tokens.Select(t => t.ToToken()).ToList();

    public Task GrantAsync(string user, ResourceKind kind, string resource, Permission permission, CancellationToken ct = default) =>
        _api.SendAsync(HttpMethod.Put, "grants", JsonContent.Create(new GrantRequest
        {
            User = user, Kind = Permissions.Name(kind), Resource = resource, Permission = Permissions.Name(permission),
        }, AuthJson.Default.GrantRequest), AuthJson.Default.DoneResponse, ct);

    public async Task<bool> RemoveGrantAsync(string user, ResourceKind kind, string resource, CancellationToken ct = default) =>
        (await _api.SendAsync(HttpMethod.Delete, $"grants?user={Q(user)}&kind={Q(Permissions.Name(kind))}&resource={Q(resource)}", null,
            AuthJson.Default.RemovedResponse, ct).ConfigureAwait(false)).Removed;

    public async Task<List<Grant>> ListGrantsAsync(CancellationToken ct = default) =>
        (await _api.SendAsync(HttpMethod.Get, "grants", null, AuthJson.Default.GrantsResponse, ct).ConfigureAwait(false)).Grants.Select(g => g.ToGrant()).ToList();

    public async Task<List<AuditEntry>> ReadAuditAsync(AuditQuery query, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(query);
        var path = "audit?limit=" + query.Limit.ToString(CultureInfo.InvariantCulture)
            + (query.User is { } u ? "&user=" + Q(u) : "")
            + (query.Since is { } s ? "&since=" + Q(AuthWire.Time(s)!) : "")
            + (query.Resource is { } r ? "&resource=" + Q(r) : "");
        return (await _api.SendAsync(HttpMethod.Get, path, null, AuthJson.Default.AuditResponse, ct).ConfigureAwait(false)).Entries.Select(e => e.ToEntry()).ToList();
    }

    public ValueTask DisposeAsync()
    {
        _api.Dispose();
        return ValueTask.CompletedTask;
    }
}
