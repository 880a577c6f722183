using System.Text;
using Kiln.Core;
using Kiln.Storage;
using Kiln.Testing;

namespace Kiln.Auth.Tests;

/// <summary>The auth store on a real database: users and passwords, tokens, grants, the audit trail, and sign-in through headers.</summary>
public abstract class AuthStoreContract : IAsyncLifetime
{
    protected abstract Task<string> FreshLocationAsync();

    protected abstract Task DropAsync();

    private AuthStore _store = null!;

    public async Task InitializeAsync() => _store = AuthStore.Open(await FreshLocationAsync());

    public async Task DisposeAsync()
    {
        await _store.DisposeAsync();
        await DropAsync();
    }

    private static string Basic(string user, string password) => "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes(user + ":" + password));

    [Fact]
    public async Task Passwords_are_stored_as_Identity_hashes_and_checked()
    {
        Assert.False(await _store.HasUsersAsync());
        await _store.AddUserAsync("ada", "correct horse", isAdmin: true, null);
        Assert.True(await _store.HasUsersAsync());
        var hash = await _store.PasswordHashAsync("ada", default);
        // ASP.NET Core Identity's v3 format: base64 of a 0x01 marker, PRF, iteration count, salt and subkey; never the password.
        Assert.NotNull(hash);
        Assert.DoesNotContain("correct horse", hash, StringComparison.Ordinal);
        Assert.Equal(0x01, Convert.FromBase64String(hash!)[0]);
        Assert.Equal("ada", (await _store.VerifyPasswordAsync("ada", "correct horse"))?.Name);
        Assert.Null(await _store.VerifyPasswordAsync("ada", "wrong horse"));
        Assert.Null(await _store.VerifyPasswordAsync("nobody", "correct horse"));
        // The store's refusals carry the status the admin API answers with (409 conflict, 404 unknown).
        var e = await Assert.ThrowsAsync<AuthException>(() => _store.AddUserAsync("ada", "another one", false, null));
        Assert.Contains("exists already", e.Message, StringComparison.Ordinal);
        Assert.Equal(409, e.Status);
        await Assert.ThrowsAsync<KilnException>(() => _store.AddUserAsync("bob", "short", false, null));
        await Assert.ThrowsAsync<KilnException>(() => _store.AddUserAsync("b:ob", "long enough", false, null));
    }

    [Fact]
    public async Task Tokens_are_shown_once_stored_hashed_and_stop_at_expiry_or_revocation()
    {
        await _store.AddUserAsync("ci", null, false, Permission.Read);
        var (token, secret) = await _store.CreateTokenAsync("ci", "nightly", DateTimeOffset.UtcNow.AddDays(1));
        Assert.StartsWith("kiln_", secret, StringComparison.Ordinal);
        var auth = new Authenticator(_store);
        var ok = await auth.AuthenticateAsync("Bearer " + secret, "10.0.0.1", default);
        Assert.Equal(SignInOutcome.Authenticated, ok.Outcome);
        Assert.Equal("ci", ok.Caller!.Name);
        Assert.Equal(token.Id, ok.Caller.TokenId);
        var listed = Assert.Single(await _store.ListTokensAsync());
        Assert.NotNull(listed.LastUsedAt);

        // The database holds the digest, not the secret.
        var raw = await _store.Database.ReadAsync(c => c.ScalarAsync(null, "SELECT token_hash FROM auth_tokens", default), default);
        Assert.Equal(ServiceTokens.Hash(secret), raw);
        Assert.DoesNotContain(secret[5..], (string)raw!, StringComparison.Ordinal);

        await _store.RevokeTokenAsync(token.Id);
        Assert.Equal(SignInOutcome.Rejected, (await auth.AuthenticateAsync("Bearer " + secret, "10.0.0.1", default)).Outcome);
        var again = await Assert.ThrowsAsync<AuthException>(() => _store.RevokeTokenAsync(token.Id));
        Assert.Contains("revoked already", again.Message, StringComparison.Ordinal);
        Assert.Equal(409, again.Status);
        Assert.Equal(404, (await Assert.ThrowsAsync<AuthException>(() => _store.RevokeTokenAsync("000000000000"))).Status);

        // An expired token: the clock moves past its expiry.
        var (_, soon) = await _store.CreateTokenAsync("ci", null, DateTimeOffset.UtcNow.AddMinutes(10));
        var later = new Authenticator(_store, new ShiftedClock(TimeSpan.FromMinutes(11)));
        Assert.Equal(SignInOutcome.Rejected, (await later.AuthenticateAsync("Bearer " + soon, "10.0.0.2", default)).Outcome);
        Assert.Equal(SignInOutcome.Authenticated, (await auth.AuthenticateAsync("Bearer " + soon, "10.0.0.2", default)).Outcome);
    }

    [Fact]
    public async Task Basic_auth_malformed_headers_and_throttling()
    {
        await _store.AddUserAsync("ada", "correct horse", false, null);
        var auth = new Authenticator(_store) { MaxFailures = 3 };
        Assert.Equal(SignInOutcome.Authenticated, (await auth.AuthenticateAsync(Basic("ada", "correct horse"), "a", default)).Outcome);
        // Cached: the same pair again, and a changed password ends the cached sign-in.
        Assert.Equal(SignInOutcome.Authenticated, (await auth.AuthenticateAsync(Basic("ada", "correct horse"), "a", default)).Outcome);
        await _store.SetPasswordAsync("ada", "battery staple");
        Assert.Equal(SignInOutcome.Rejected, (await auth.AuthenticateAsync(Basic("ada", "correct horse"), "a", default)).Outcome);
        Assert.Equal(SignInOutcome.Authenticated, (await auth.AuthenticateAsync(Basic("ada", "battery staple"), "a", default)).Outcome);

        var headers = new[] { "Basic", "Basic !!!notbase64", "Basic " + Convert.ToBase64String("nocolon"u8.ToArray()), "Digest x=1", "Bearer not-a-kiln-token", "Bearer kiln_unknown" };
        for (var i = 0; i < headers.Length; i++)
            Assert.Equal(SignInOutcome.Rejected, (await auth.AuthenticateAsync(headers[i], "m" + i, default)).Outcome);
        Assert.Equal(SignInOutcome.NoCredentials, (await auth.AuthenticateAsync(null, "b", default)).Outcome);
        for (var i = 0; i < 3; i++)
            Assert.Equal(SignInOutcome.Rejected, (await auth.AuthenticateAsync(Basic("ada", "guess " + i), "b", default)).Outcome);

        // Address "b" has failed 3 times (the limit): even the right password is not checked now; another address still signs in.
        Assert.Equal(SignInOutcome.Throttled, (await auth.AuthenticateAsync(Basic("ada", "battery staple"), "b", default)).Outcome);
        Assert.Equal(SignInOutcome.Authenticated, (await auth.AuthenticateAsync(Basic("ada", "battery staple"), "c", default)).Outcome);
        var later = new Authenticator(_store, new ShiftedClock(TimeSpan.FromMinutes(6))) { MaxFailures = 3 };
        Assert.Equal(SignInOutcome.Authenticated, (await later.AuthenticateAsync(Basic("ada", "battery staple"), "b", default)).Outcome);
    }

    [Fact]
    public async Task Grants_replace_and_fall_back_and_deleting_a_user_removes_its_tokens_and_grants()
    {
        await _store.AddUserAsync("bob", "long enough", false, Permission.NoPermissions);
        Assert.Null(await _store.GrantedAsync("bob", ResourceKind.Experiment, "1"));
        await _store.GrantAsync("bob", ResourceKind.Experiment, "1", Permission.Read);
        await _store.GrantAsync("bob", ResourceKind.Experiment, "1", Permission.Manage);
        await _store.GrantAsync("bob", ResourceKind.RegisteredModel, "churn", Permission.Edit);
        Assert.Equal(Permission.Manage, await _store.GrantedAsync("bob", ResourceKind.Experiment, "1"));
        Assert.Equal(Permission.Edit, await _store.GrantedAsync("bob", ResourceKind.RegisteredModel, "churn"));
        Assert.Null(await _store.GrantedAsync("bob", ResourceKind.RegisteredModel, "1"));
        Assert.Equal(2, (await _store.ListGrantsAsync()).Count);
        Assert.True(await _store.RemoveGrantAsync("bob", ResourceKind.Experiment, "1"));
        Assert.Null(await _store.GrantedAsync("bob", ResourceKind.Experiment, "1"));
        Assert.Equal(404, (await Assert.ThrowsAsync<AuthException>(() => _store.GrantAsync("nobody", ResourceKind.Experiment, "1", Permission.Read))).Status);

        var (_, secret) = await _store.CreateTokenAsync("bob", null, null);
        await _store.DeleteUserAsync("bob");
        Assert.Empty(await _store.ListTokensAsync());
        Assert.Empty(await _store.ListGrantsAsync());
        Assert.Equal(SignInOutcome.Rejected, (await new Authenticator(_store).AuthenticateAsync("Bearer " + secret, "x", default)).Outcome);
    }

    [Fact]
    public async Task The_audit_trail_is_read_newest_first_and_filtered()
    {
        await _store.AppendAuditAsync("ada", "POST /api/2.0/mlflow/experiments/create", null, 200, "127.0.0.1");
        await _store.AppendAuditAsync("bob", "POST /api/2.0/mlflow/registered-models/alias", "registered_model:churn", 403, "10.1.2.3");
        await _store.AppendAuditAsync(null, "DELETE /api/2.0/mlflow/registered-models/delete", "registered_model:churn", 401, "10.1.2.4");
        var all = await _store.ReadAuditAsync(new AuditQuery());
        Assert.Equal([401, 403, 200], all.Select(a => a.Status));
        Assert.Equal("10.1.2.3", Assert.Single(await _store.ReadAuditAsync(new AuditQuery(User: "bob"))).Remote);
        Assert.Equal(2, (await _store.ReadAuditAsync(new AuditQuery(Resource: "registered_model:churn"))).Count);
        Assert.Single(await _store.ReadAuditAsync(new AuditQuery(Limit: 1)));
        Assert.Empty(await _store.ReadAuditAsync(new AuditQuery(Since: DateTimeOffset.UtcNow.AddMinutes(1))));
    }

    [Fact]
    public async Task The_auth_area_is_recorded_in_kiln_schema() =>
        Assert.Equal(1, await _store.Database.SchemaVersionAsync("auth", default) ?? await InitThenVersion());

    private async Task<int?> InitThenVersion()
    {
        await _store.InitializeAsync();
        return await _store.Database.SchemaVersionAsync("auth", default);
    }

    private sealed class ShiftedClock(TimeSpan by) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => DateTimeOffset.UtcNow + by;
    }
}

public sealed class SqliteAuthStoreTests : AuthStoreContract
{
    private readonly TempDir _dir = new("kiln-auth");

    protected override Task<string> FreshLocationAsync() => Task.FromResult(_dir.Path);

    protected override Task DropAsync()
    {
        _dir.Dispose();
        return Task.CompletedTask;
    }
}

public sealed class PostgresAuthStoreTests : AuthStoreContract
{
    private TestDatabase? _database;

    protected override async Task<string> FreshLocationAsync()
    {
        _database = await TestDatabase.CreateAsync("kiln_auth");
        return _database.ConnectionString;
    }

    protected override async Task DropAsync()
    {
        if (_database is not null) await _database.DisposeAsync();
    }
}

/// <summary>Token files for kiln serve: the line format, expiry, and a changed file read again.</summary>
public sealed class TokenFileTests
{
    [Fact]
    public void Appended_tokens_verify_and_a_malformed_line_is_named()
    {
        using var dir = new TempDir("kiln-tokens");
        var path = dir.File("tokens.txt");
        var a = TokenFile.Append(path, "scorer", null);
        var verifier = new TokenFileVerifier(path);
        Assert.True(verifier.Check(a));
        Assert.False(verifier.Check(a + "x"));
        Assert.DoesNotContain(a, File.ReadAllText(path), StringComparison.Ordinal);
        if (!OperatingSystem.IsWindows()) Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));

        var b = TokenFile.Append(path, "expiring", DateTimeOffset.UtcNow.AddHours(1));
        File.SetLastWriteTimeUtc(path, DateTime.UtcNow.AddSeconds(5));
        Assert.True(verifier.Check(b));
        Assert.Throws<KilnException>(() => TokenFile.Append(path, "scorer", null));

        File.AppendAllText(path, "broken line\n");
        var e = Assert.Throws<KilnException>(() => TokenFile.Read(path));
        Assert.Contains("line 3", e.Message, StringComparison.Ordinal);

        File.Delete(path);
        Assert.False(verifier.Check(a));
    }
}
