using System.Data.Common;
using System.Globalization;
using Kiln.Core;
using Kiln.Storage;
using Microsoft.AspNetCore.Identity;

namespace Kiln.Auth;

/// <summary>A user of kiln server: a name, whether it is an admin, and its own default permission (null: the server's default).</summary>
public sealed record AuthUser(string Name, bool IsAdmin, Permission? DefaultPermission, DateTimeOffset CreatedAt, bool HasPassword);

/// <summary>A service token as listed: never its secret.</summary>
public sealed record ServiceToken(string Id, string User, string? Description, DateTimeOffset CreatedAt, DateTimeOffset? ExpiresAt,
    DateTimeOffset? LastUsedAt, DateTimeOffset? RevokedAt)
{
    /// <summary>Usable at <paramref name="now"/>: not revoked and not expired.</summary>
    public bool IsActive(DateTimeOffset now) => RevokedAt is null && (ExpiresAt is null || ExpiresAt > now);
}

/// <summary>A permission one user holds on one experiment or registered model.</summary>
public sealed record Grant(string User, ResourceKind Kind, string Resource, Permission Permission);

/// <summary>One row of the audit trail: who did what to which resource, when, from where, and the status answered.</summary>
public sealed record AuditEntry(long Id, DateTimeOffset At, string? User, string Action, string? Resource, int Status, string? Remote);

/// <summary>A refusal of the auth store that an API answers with its own status: 404 for what does not exist, 409 for a conflict (other mistakes are plain <see cref="KilnException"/>s: 400).</summary>
public sealed class AuthException : KilnException
{
    public const int NotFound = 404;
    public const int Conflict = 409;

    public AuthException(int status, string message) : base(message) => Status = status;

    public AuthException(string message) : base(message) => Status = 400;

    public AuthException(string message, Exception inner) : base(message, inner) => Status = 400;

    public AuthException() => Status = 400;

    /// <summary>The HTTP status an API answers this refusal with.</summary>
    public int Status { get; }
}

/// <summary>What an audit query selects; null fields select everything.</summary>
public sealed record AuditQuery(string? User = null, DateTimeOffset? Since = null, string? Resource = null, int Limit = 100);

/// <summary>
/// Users, service tokens, permissions and the audit trail in the metadata database (the "auth" schema area).
/// Passwords are hashed with ASP.NET Core Identity's <see cref="PasswordHasher{TUser}"/> (PBKDF2-HMAC-SHA512, salted,
/// versioned); tokens are kept as their SHA-256 (<see cref="ServiceTokens"/>). The audit table is only ever appended to.
/// </summary>
public sealed class AuthStore : IAuthAdmin
{
    private static readonly PasswordHasher<AuthUser> Hasher = new();

    // Verified against when the user does not exist, so that an unknown name costs as long as a wrong password.
    private static readonly string DummyHash = Hasher.HashPassword(null!, "kiln-no-such-user");

    private readonly bool _ownsDatabase;

    public AuthStore(MetadataDatabase database, bool ownsDatabase = false)
    {
        Database = database;
        _ownsDatabase = ownsDatabase;
    }

    /// <summary>Opens the store of a location (docs/cli.md#locations); the store owns the database.</summary>
    public static AuthStore Open(string location, string option = "--db") => new(MetadataDatabase.Open(location, option), ownsDatabase: true);

    public MetadataDatabase Database { get; }

    /// <inheritdoc/>
    public string Description => Database.Description;

    /// <summary>The auth area: version 1 creates users, tokens, grants and the audit trail.</summary>
    internal static readonly SchemaArea Schema = new("auth", "auth_users",
    [
        new Migration(1, """
            CREATE TABLE auth_users (
                name TEXT PRIMARY KEY, password_hash TEXT, is_admin INTEGER NOT NULL, default_permission TEXT, created_at TEXT NOT NULL);
            CREATE TABLE auth_tokens (
                token_id TEXT PRIMARY KEY, user_name TEXT NOT NULL, token_hash TEXT NOT NULL UNIQUE, description TEXT,
                created_at TEXT NOT NULL, expires_at TEXT, last_used_at TEXT, revoked_at TEXT);
            CREATE INDEX auth_tokens_by_user ON auth_tokens (user_name);
            CREATE TABLE auth_grants (
                user_name TEXT NOT NULL, resource_kind TEXT NOT NULL, resource TEXT NOT NULL, permission TEXT NOT NULL,
                PRIMARY KEY (user_name, resource_kind, resource));
            CREATE TABLE auth_audit (
                id {ID}, at TEXT NOT NULL, user_name TEXT, action TEXT NOT NULL, resource TEXT, status INTEGER NOT NULL, remote TEXT);
            CREATE INDEX auth_audit_by_time ON auth_audit (at)
            """),
    ]);

    public Task InitializeAsync(CancellationToken ct = default) => Database.EnsureSchemaAsync(Schema, ct);

    private async Task<T> ReadAsync<T>(Func<DbConnection, Task<T>> body, CancellationToken ct)
    {
        await InitializeAsync(ct).ConfigureAwait(false);
        return await Database.ReadAsync(body, ct).ConfigureAwait(false);
    }

    private async Task<T> WriteAsync<T>(Func<DbConnection, DbTransaction, Task<T>> body, CancellationToken ct)
    {
        await InitializeAsync(ct).ConfigureAwait(false);
        return await Database.WriteAsync(body, ct).ConfigureAwait(false);
    }

    private static string Time(DateTimeOffset t) => t.UtcDateTime.ToString("O", CultureInfo.InvariantCulture);

    private static DateTimeOffset? ParseTime(string? s) =>
        s is null ? null : DateTimeOffset.Parse(s, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal);

    // ---- users ----

    /// <summary>True when at least one user exists: kiln server then requires authentication.</summary>
    public Task<bool> HasUsersAsync(CancellationToken ct = default) =>
        ReadAsync(async c => await c.ScalarAsync(null, "SELECT count(*) FROM auth_users", ct).ConfigureAwait(false) is { } n
            && Convert.ToInt64(n, CultureInfo.InvariantCulture) > 0, ct);

    /// <summary>Adds a user; a null password makes a user that signs in with service tokens only.</summary>
    public async Task<AuthUser> AddUserAsync(string name, string? password, bool isAdmin, Permission? defaultPermission, CancellationToken ct = default)
    {
        CheckName(name);
        if (password is not null) CheckPassword(password);
        var user = new AuthUser(name, isAdmin, defaultPermission, DateTimeOffset.UtcNow, password is not null);
        var hash = password is null ? null : Hasher.HashPassword(user, password);
        try
        {
            await WriteAsync((c, tx) => c.ExecAsync(tx,
                "INSERT INTO auth_users (name, password_hash, is_admin, default_permission, created_at) VALUES (@n, @h, @a, @d, @t)", ct,
                ("n", name), ("h", hash), ("a", isAdmin ? 1 : 0), ("d", defaultPermission is { } d ? Permissions.Name(d) : null), ("t", Time(user.CreatedAt))), ct)
                .ConfigureAwait(false);
        }
        catch (Exception e) when (Database.Dialect.IsUniqueViolation(e))
        {
            throw new AuthException(AuthException.Conflict, $"user '{name}' exists already");
        }
        return user;
    }

    /// <summary>Sets a user's password (every cached sign-in with the old one stops working).</summary>
    public async Task SetPasswordAsync(string name, string password, CancellationToken ct = default)
    {
        CheckPassword(password);
        var user = await GetUserAsync(name, ct).ConfigureAwait(false) ?? throw new AuthException(AuthException.NotFound, $"no user '{name}'");
        var hash = Hasher.HashPassword(user, password);
        await WriteAsync((c, tx) => c.ExecAsync(tx, "UPDATE auth_users SET password_hash = @h WHERE name = @n", ct, ("h", hash), ("n", name)), ct)
            .ConfigureAwait(false);
    }

    /// <summary>Deletes a user with its tokens and grants; the audit trail keeps its name.</summary>
    public async Task DeleteUserAsync(string name, CancellationToken ct = default)
    {
        var n = await WriteAsync(async (c, tx) =>
        {
            await c.ExecAsync(tx, "DELETE FROM auth_tokens WHERE user_name = @n", ct, ("n", name)).ConfigureAwait(false);
            await c.ExecAsync(tx, "DELETE FROM auth_grants WHERE user_name = @n", ct, ("n", name)).ConfigureAwait(false);
            return await c.ExecAsync(tx, "DELETE FROM auth_users WHERE name = @n", ct, ("n", name)).ConfigureAwait(false);
        }, ct).ConfigureAwait(false);
        if (n == 0) throw new AuthException(AuthException.NotFound, $"no user '{name}'");
    }

    public async Task<AuthUser?> GetUserAsync(string name, CancellationToken ct = default) =>
        (await GetUserRowAsync(name, ct).ConfigureAwait(false))?.User;

    public Task<List<AuthUser>> ListUsersAsync(CancellationToken ct = default) =>
        ReadAsync(c => c.QueryAsync(null, "SELECT name, is_admin, default_permission, created_at, password_hash FROM auth_users ORDER BY name", ReadUser, ct), ct);

    private async Task<(AuthUser User, string? Hash)?> GetUserRowAsync(string name, CancellationToken ct)
    {
        var rows = await ReadAsync(c => c.QueryAsync(null, "SELECT name, is_admin, default_permission, created_at, password_hash FROM auth_users WHERE name = @n",
            r => (ReadUser(r), r.NullableString(4)), ct, ("n", name)), ct).ConfigureAwait(false);
        return rows.Count == 0 ? null : rows[0];
    }

    private static AuthUser ReadUser(DbDataReader r) => new(r.GetString(0), r.Int32(1) != 0,
        r.NullableString(2) is { } d ? Permissions.Parse(d, "default_permission") : null, ParseTime(r.GetString(3))!.Value, !r.IsDBNull(4));

    /// <summary>
    /// The user whose password this is, or null. The stored hash is upgraded when the hasher asks for it (a newer
    /// format or more iterations). An unknown name is checked against a dummy hash so it takes as long as a wrong password.
    /// </summary>
    public async Task<AuthUser?> VerifyPasswordAsync(string name, string password, CancellationToken ct = default)
    {
        var row = await GetUserRowAsync(name, ct).ConfigureAwait(false);
        if (row is not { Hash: { } hash } found)
        {
            Hasher.VerifyHashedPassword(null!, DummyHash, password);
            return null;
        }
        var result = Hasher.VerifyHashedPassword(found.User, hash, password);
        if (result == PasswordVerificationResult.Failed) return null;
        if (result == PasswordVerificationResult.SuccessRehashNeeded)
        {
            var rehashed = Hasher.HashPassword(found.User, password);
            await WriteAsync((c, tx) => c.ExecAsync(tx, "UPDATE auth_users SET password_hash = @h WHERE name = @n AND password_hash = @old", ct,
                ("h", rehashed), ("n", name), ("old", hash)), ct).ConfigureAwait(false);
        }
        return found.User;
    }

    /// <summary>The stored password hash of a user (null when none): sign-in caches are keyed on it so a changed password invalidates them.</summary>
    internal async Task<string?> PasswordHashAsync(string name, CancellationToken ct) => (await GetUserRowAsync(name, ct).ConfigureAwait(false))?.Hash;

    private static void CheckName(string name)
    {
        if (name.Length is 0 or > 128 || name.Any(ch => char.IsWhiteSpace(ch) || char.IsControl(ch) || ch == ':'))
            throw new KilnException($"user name '{name}': 1 to 128 characters, no spaces, control characters or ':' (basic auth splits on it)");
    }

    private static void CheckPassword(string password)
    {
        if (password.Length < 8) throw new KilnException("password: at least 8 characters");
        if (password.Length > 1024) throw new KilnException("password: at most 1024 characters");
    }

    // ---- tokens ----

    /// <summary>Creates a token for a user; the secret is returned once and only its hash is stored.</summary>
    public async Task<(ServiceToken Token, string Secret)> CreateTokenAsync(string user, string? description, DateTimeOffset? expiresAt,
        CancellationToken ct = default)
    {
        if (await GetUserAsync(user, ct).ConfigureAwait(false) is null) throw new AuthException(AuthException.NotFound, $"no user '{user}' (add it with kiln auth user add)");
        var now = DateTimeOffset.UtcNow;
        if (expiresAt is { } e && e <= now) throw new KilnException("--expires: the token would be expired already");
        var secret = ServiceTokens.NewSecret();
        var token = new ServiceToken(ServiceTokens.NewId(), user, description, now, expiresAt, null, null);
        await WriteAsync((c, tx) => c.ExecAsync(tx, """
            INSERT INTO auth_tokens (token_id, user_name, token_hash, description, created_at, expires_at) VALUES (@i, @u, @h, @d, @c, @e)
            """, ct, ("i", token.Id), ("u", user), ("h", ServiceTokens.Hash(secret)), ("d", description), ("c", Time(now)),
            ("e", expiresAt is { } x ? Time(x) : null)), ct).ConfigureAwait(false);
        return (token, secret);
    }

    /// <summary>Revokes a token by its id; it stops working at once.</summary>
    public async Task RevokeTokenAsync(string id, CancellationToken ct = default)
    {
        var n = await WriteAsync((c, tx) => c.ExecAsync(tx, "UPDATE auth_tokens SET revoked_at = @t WHERE token_id = @i AND revoked_at IS NULL", ct,
            ("t", Time(DateTimeOffset.UtcNow)), ("i", id)), ct).ConfigureAwait(false);
        if (n == 0)
        {
            var exists = await ReadAsync(async c => await c.ScalarAsync(null, "SELECT count(*) FROM auth_tokens WHERE token_id = @i", ct, ("i", id))
                .ConfigureAwait(false), ct).ConfigureAwait(false);
            throw Convert.ToInt64(exists, CultureInfo.InvariantCulture) > 0
                ? new AuthException(AuthException.Conflict, $"token {id} is revoked already")
                : new AuthException(AuthException.NotFound, $"no token with id '{id}' (kiln auth list shows them)");
        }
    }

    public Task<List<ServiceToken>> ListTokensAsync(CancellationToken ct = default) =>
        ReadAsync(c => c.QueryAsync(null, $"SELECT {TokenColumns} FROM auth_tokens ORDER BY user_name, created_at", ReadToken, ct), ct);

    private const string TokenColumns = "token_id, user_name, description, created_at, expires_at, last_used_at, revoked_at";

    private static ServiceToken ReadToken(DbDataReader r) => new(r.GetString(0), r.GetString(1), r.NullableString(2), ParseTime(r.GetString(3))!.Value,
        ParseTime(r.NullableString(4)), ParseTime(r.NullableString(5)), ParseTime(r.NullableString(6)));

    /// <summary>The token (active or not) whose secret this is, with its user; null when no token has this secret.</summary>
    public async Task<(ServiceToken Token, AuthUser User)?> FindTokenAsync(string secret, CancellationToken ct = default)
    {
        var hash = ServiceTokens.Hash(secret);
        var tokens = await ReadAsync(c => c.QueryAsync(null, $"SELECT {TokenColumns} FROM auth_tokens WHERE token_hash = @h", ReadToken, ct, ("h", hash)), ct)
            .ConfigureAwait(false);
        if (tokens.Count == 0) return null;
        var user = await GetUserAsync(tokens[0].User, ct).ConfigureAwait(false);
        return user is null ? null : (tokens[0], user);
    }

    /// <summary>Records when a token was last used.</summary>
    public Task TouchTokenAsync(string id, DateTimeOffset at, CancellationToken ct = default) =>
        WriteAsync((c, tx) => c.ExecAsync(tx, "UPDATE auth_tokens SET last_used_at = @t WHERE token_id = @i", ct, ("t", Time(at)), ("i", id)), ct);

    // ---- grants ----

    /// <summary>Grants (or replaces) a user's permission on one experiment or registered model.</summary>
    public async Task GrantAsync(string user, ResourceKind kind, string resource, Permission permission, CancellationToken ct = default)
    {
        if (await GetUserAsync(user, ct).ConfigureAwait(false) is null) throw new AuthException(AuthException.NotFound, $"no user '{user}'");
        await WriteAsync((c, tx) => c.ExecAsync(tx, """
            INSERT INTO auth_grants (user_name, resource_kind, resource, permission) VALUES (@u, @k, @r, @p)
            ON CONFLICT (user_name, resource_kind, resource) DO UPDATE SET permission = excluded.permission
            """, ct, ("u", user), ("k", Permissions.Name(kind)), ("r", resource), ("p", Permissions.Name(permission))), ct).ConfigureAwait(false);
    }

    /// <summary>Removes a grant; the user falls back to its default permission on that resource.</summary>
    public Task<bool> RemoveGrantAsync(string user, ResourceKind kind, string resource, CancellationToken ct = default) =>
        WriteAsync(async (c, tx) => await c.ExecAsync(tx, "DELETE FROM auth_grants WHERE user_name = @u AND resource_kind = @k AND resource = @r", ct,
            ("u", user), ("k", Permissions.Name(kind)), ("r", resource)).ConfigureAwait(false) > 0, ct);

    /// <summary>The permission granted to a user on one resource, or null when nothing was granted there.</summary>
    public async Task<Permission?> GrantedAsync(string user, ResourceKind kind, string resource, CancellationToken ct = default)
    {
        var v = await ReadAsync(c => c.ScalarAsync(null, "SELECT permission FROM auth_grants WHERE user_name = @u AND resource_kind = @k AND resource = @r", ct,
            ("u", user), ("k", Permissions.Name(kind)), ("r", resource)), ct).ConfigureAwait(false);
        return v is string s ? Permissions.Parse(s, "permission") : null;
    }

    /// <summary>Every grant one user holds, by kind and resource (one query, for filtering a page of search results).</summary>
    public async Task<Dictionary<(ResourceKind Kind, string Resource), Permission>> GrantsOfAsync(string user, CancellationToken ct = default)
    {
        var rows = await ReadAsync(c => c.QueryAsync(null, "SELECT resource_kind, resource, permission FROM auth_grants WHERE user_name = @u",
            r => (Permissions.ParseKind(r.GetString(0)), r.GetString(1), Permissions.Parse(r.GetString(2), "permission")), ct, ("u", user)), ct).ConfigureAwait(false);
        return rows.ToDictionary(r => (r.Item1, r.Item2), r => r.Item3);
    }

    public Task<List<Grant>> ListGrantsAsync(CancellationToken ct = default) =>
        ReadAsync(c => c.QueryAsync(null, "SELECT user_name, resource_kind, resource, permission FROM auth_grants ORDER BY user_name, resource_kind, resource",
            r => new Grant(r.GetString(0), Permissions.ParseKind(r.GetString(1)), r.GetString(2), Permissions.Parse(r.GetString(3), "permission")), ct), ct);

    // ---- audit ----

    /// <summary>Appends one row to the audit trail (rows are never updated or deleted by Kiln).</summary>
    public Task AppendAuditAsync(string? user, string action, string? resource, int status, string? remote, CancellationToken ct = default) =>
        WriteAsync((c, tx) => c.ExecAsync(tx, "INSERT INTO auth_audit (at, user_name, action, resource, status, remote) VALUES (@t, @u, @a, @r, @s, @m)", ct,
            ("t", Time(DateTimeOffset.UtcNow)), ("u", user), ("a", action), ("r", resource), ("s", status), ("m", remote)), ct);

    /// <summary>The newest audit rows matching a query, newest first.</summary>
    public Task<List<AuditEntry>> ReadAuditAsync(AuditQuery query, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(query);
        var where = new List<string>();
        var ps = new List<(string, object?)>();
        if (query.User is { } u) { where.Add("user_name = @u"); ps.Add(("u", u)); }
        if (query.Since is { } s) { where.Add("at >= @s"); ps.Add(("s", Time(s))); }
        if (query.Resource is { } r) { where.Add("resource = @r"); ps.Add(("r", r)); }
        ps.Add(("l", Math.Clamp(query.Limit, 1, 100_000)));
        var sql = "SELECT id, at, user_name, action, resource, status, remote FROM auth_audit"
            + (where.Count > 0 ? " WHERE " + string.Join(" AND ", where) : "") + " ORDER BY id DESC LIMIT @l";
        return ReadAsync(c => c.QueryAsync(null, sql, rd => new AuditEntry(rd.Int64(0), ParseTime(rd.GetString(1))!.Value, rd.NullableString(2),
            rd.GetString(3), rd.NullableString(4), rd.Int32(5), rd.NullableString(6)), ct, [.. ps]), ct);
    }

    public ValueTask DisposeAsync() => _ownsDatabase ? Database.DisposeAsync() : ValueTask.CompletedTask;
}
