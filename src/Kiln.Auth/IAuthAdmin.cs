namespace Kiln.Auth;

/// <summary>
/// What <c>kiln auth</c> manages (users, service tokens, grants, the audit trail), on the metadata database
/// (<see cref="AuthStore"/>) or through a kiln server's admin API (<see cref="Http.AuthApiClient"/>).
/// </summary>
public interface IAuthAdmin : IAsyncDisposable
{
    /// <summary>Where the users are kept, for messages: the database, or the server's URL.</summary>
    string Description { get; }

    /// <summary>Adds a user; a null password makes a user that signs in with service tokens only.</summary>
    Task<AuthUser> AddUserAsync(string name, string? password, bool isAdmin, Permission? defaultPermission, CancellationToken ct = default);

    Task SetPasswordAsync(string name, string password, CancellationToken ct = default);

    Task DeleteUserAsync(string name, CancellationToken ct = default);

    Task<List<AuthUser>> ListUsersAsync(CancellationToken ct = default);

    /// <summary>Creates a token for a user; the secret is returned once.</summary>
    Task<(ServiceToken Token, string Secret)> CreateTokenAsync(string user, string? description, DateTimeOffset? expiresAt, CancellationToken ct = default);

    Task RevokeTokenAsync(string id, CancellationToken ct = default);

    Task<List<ServiceToken>> ListTokensAsync(CancellationToken ct = default);

    Task GrantAsync(string user, ResourceKind kind, string resource, Permission permission, CancellationToken ct = default);

    /// <summary>Removes a grant; false when the user held none there.</summary>
    Task<bool> RemoveGrantAsync(string user, ResourceKind kind, string resource, CancellationToken ct = default);

    Task<List<Grant>> ListGrantsAsync(CancellationToken ct = default);

    /// <summary>The newest audit rows matching a query, newest first.</summary>
    Task<List<AuditEntry>> ReadAuditAsync(AuditQuery query, CancellationToken ct = default);
}
