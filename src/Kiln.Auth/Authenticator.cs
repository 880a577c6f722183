using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;

namespace Kiln.Auth;

/// <summary>Who made a request, once signed in.</summary>
public sealed record Caller(string Name, bool IsAdmin, Permission? DefaultPermission, string TokenId = "")
{
    /// <summary>Signed in with a service token (rather than a password).</summary>
    public bool ByToken => TokenId.Length > 0;
}

/// <summary>How a sign-in ended.</summary>
public enum SignInOutcome
{
    /// <summary>The request carried no Authorization header.</summary>
    NoCredentials,

    /// <summary>The credentials are valid; <see cref="SignInResult.Caller"/> is set.</summary>
    Authenticated,

    /// <summary>Wrong password, unknown, expired or revoked token, or a malformed header: all look the same to the caller.</summary>
    Rejected,

    /// <summary>Too many failed sign-ins from this address recently; the credentials were not checked.</summary>
    Throttled,
}

/// <summary>The outcome of a sign-in and, when it succeeded, who signed in.</summary>
public readonly record struct SignInResult(SignInOutcome Outcome, Caller? Caller = null);

/// <summary>
/// Checks an HTTP Authorization header against the <see cref="AuthStore"/>: <c>Bearer TOKEN</c> (MLflow's
/// MLFLOW_TRACKING_TOKEN) or <c>Basic base64(user:password)</c> (MLFLOW_TRACKING_USERNAME/PASSWORD). A password
/// checked once is remembered for a few minutes by a digest of the pair and the stored hash, so basic auth does not
/// cost a PBKDF2 per request, and a changed password ends it. Failed sign-ins are counted per remote address
/// (<see cref="MaxFailures"/> in <see cref="FailureWindow"/>); past that the address is refused without a check.
/// </summary>
public sealed class Authenticator(AuthStore store, TimeProvider? time = null)
{
    /// <summary>Failed sign-ins allowed from one address within <see cref="FailureWindow"/>.</summary>
    public int MaxFailures { get; init; } = 10;

    public TimeSpan FailureWindow { get; init; } = TimeSpan.FromMinutes(5);

    private static readonly TimeSpan PasswordCacheTime = TimeSpan.FromMinutes(5);
    private static readonly TimeSpan TouchInterval = TimeSpan.FromMinutes(1);
    private const int MaxCached = 10_000;

    private readonly TimeProvider _time = time ?? TimeProvider.System;
    private readonly ConcurrentDictionary<string, (string StoredHash, DateTimeOffset Until)> _passwords = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, (int Count, DateTimeOffset Since)> _failures = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, DateTimeOffset> _touched = new(StringComparer.Ordinal);

    public AuthStore Store => store;

    /// <summary>Signs a request in from its Authorization header (null when absent) and its remote address.</summary>
    public async ValueTask<SignInResult> AuthenticateAsync(string? authorization, string remote, CancellationToken ct)
    {
        if (string.IsNullOrEmpty(authorization)) return new(SignInOutcome.NoCredentials);
        var now = _time.GetUtcNow();
        if (IsThrottled(remote, now)) return new(SignInOutcome.Throttled);
        return Count(remote, now, await CheckAsync(authorization, now, ct).ConfigureAwait(false));
    }

    /// <summary>
    /// Signs in with a user name and password typed into a form (the web UI's sign-in page): the same password check,
    /// cache and failed sign-in count per address as basic auth, so the form is no way around the throttle.
    /// </summary>
    public async ValueTask<SignInResult> SignInWithPasswordAsync(string name, string password, string remote, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(password);
        var now = _time.GetUtcNow();
        if (IsThrottled(remote, now)) return new(SignInOutcome.Throttled);
        var checkable = name.Length is > 0 and <= 4096 && password.Length is > 0 and <= 4096;
        return Count(remote, now, checkable ? await PasswordAsync(name, password, now, ct).ConfigureAwait(false) : null);
    }

    /// <summary>
    /// A digest of the user's stored password hash, kept in a browser session when it starts: the session ends when
    /// the password changes (the stored hash then differs). Null for an unknown user or one without a password.
    /// </summary>
    public async ValueTask<string?> SessionStampAsync(string name, CancellationToken ct) =>
        await store.PasswordHashAsync(name, ct).ConfigureAwait(false) is { } hash ? Stamp(hash) : null;

    /// <summary>
    /// Who a browser session signs in as, read again from the store on each request (so an admin flag or default
    /// permission changed since applies at once); null when the user is gone or its password changed since the session began.
    /// </summary>
    public async ValueTask<Caller?> SessionCallerAsync(string name, string stamp, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(stamp);
        var hash = await store.PasswordHashAsync(name, ct).ConfigureAwait(false);
        if (hash is null || !ServiceTokens.HashEquals(Stamp(hash), stamp)) return null;
        return await store.GetUserAsync(name, ct).ConfigureAwait(false) is { } u ? new Caller(u.Name, u.IsAdmin, u.DefaultPermission) : null;
    }

    private static string Stamp(string hash) => Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes("kiln-session\0" + hash)));

    // Counts a failure against the address, or clears its count on a success.
    private SignInResult Count(string remote, DateTimeOffset now, Caller? caller)
    {
        if (caller is null)
        {
            _failures.AddOrUpdate(remote, _ => (1, now), (_, f) => now - f.Since > FailureWindow ? (1, now) : (f.Count + 1, f.Since));
            return new(SignInOutcome.Rejected);
        }
        _failures.TryRemove(remote, out _);
        return new(SignInOutcome.Authenticated, caller);
    }

    /// <summary>Checks a bearer token only (kiln serve --require-token): true when it is an active token of the store.</summary>
    public async ValueTask<bool> CheckTokenAsync(string secret, CancellationToken ct) =>
        await TokenAsync(secret, _time.GetUtcNow(), ct).ConfigureAwait(false) is not null;

    private bool IsThrottled(string remote, DateTimeOffset now) =>
        _failures.TryGetValue(remote, out var f) && now - f.Since <= FailureWindow && f.Count >= MaxFailures;

    private async ValueTask<Caller?> CheckAsync(string authorization, DateTimeOffset now, CancellationToken ct)
    {
        var space = authorization.IndexOf(' ', StringComparison.Ordinal);
        if (space <= 0) return null;
        var scheme = authorization[..space];
        var value = authorization[(space + 1)..].Trim();
        if (value.Length == 0 || value.Length > 4096) return null;
        if (scheme.Equals("Bearer", StringComparison.OrdinalIgnoreCase)) return await TokenAsync(value, now, ct).ConfigureAwait(false);
        if (!scheme.Equals("Basic", StringComparison.OrdinalIgnoreCase)) return null;
        string pair;
        try
        {
            pair = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(Convert.FromBase64String(value));
        }
        catch (FormatException)
        {
            return null;
        }
        catch (ArgumentException)
        {
            return null;
        }
        var colon = pair.IndexOf(':', StringComparison.Ordinal);
        if (colon <= 0) return null;
        return await PasswordAsync(pair[..colon], pair[(colon + 1)..], now, ct).ConfigureAwait(false);
    }

    private async ValueTask<Caller?> TokenAsync(string secret, DateTimeOffset now, CancellationToken ct)
    {
        if (!secret.StartsWith(ServiceTokens.Prefix, StringComparison.Ordinal)) return null;
        if (await store.FindTokenAsync(secret, ct).ConfigureAwait(false) is not { } found || !found.Token.IsActive(now)) return null;
        // Writing last-used on every request would queue a write per call; once a minute per token is enough to see which are in use.
        if (!_touched.TryGetValue(found.Token.Id, out var last) || now - last > TouchInterval)
        {
            _touched[found.Token.Id] = now;
            await store.TouchTokenAsync(found.Token.Id, now, ct).ConfigureAwait(false);
        }
        return new Caller(found.User.Name, found.User.IsAdmin, found.User.DefaultPermission, found.Token.Id);
    }

    private async ValueTask<Caller?> PasswordAsync(string name, string password, DateTimeOffset now, CancellationToken ct)
    {
        var key = Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(name + "\0" + password)));
        if (_passwords.TryGetValue(key, out var cached) && cached.Until > now)
        {
            var stored = await store.PasswordHashAsync(name, ct).ConfigureAwait(false);
            if (stored is not null && ServiceTokens.HashEquals(stored, cached.StoredHash) && await store.GetUserAsync(name, ct).ConfigureAwait(false) is { } u)
                return new Caller(u.Name, u.IsAdmin, u.DefaultPermission);
            _passwords.TryRemove(key, out _);
        }
        var user = await store.VerifyPasswordAsync(name, password, ct).ConfigureAwait(false);
        if (user is null) return null;
        if (_passwords.Count >= MaxCached) _passwords.Clear();
        if (await store.PasswordHashAsync(name, ct).ConfigureAwait(false) is { } hash) _passwords[key] = (hash, now + PasswordCacheTime);
        return new Caller(user.Name, user.IsAdmin, user.DefaultPermission);
    }
}

/// <summary>Checks bearer tokens against a token file (<see cref="TokenFile"/>), read again when it changes.</summary>
public sealed class TokenFileVerifier(string path, TimeProvider? time = null)
{
    private readonly TimeProvider _time = time ?? TimeProvider.System;
    private readonly Lock _gate = new();
    private IReadOnlyList<TokenFileEntry> _entries = TokenFile.Read(path);
    private DateTime _stamp = File.GetLastWriteTimeUtc(path);

    /// <summary>True when the secret's hash is a line of the file that has not expired.</summary>
    public bool Check(string secret)
    {
        var entries = Current();
        var hash = ServiceTokens.Hash(secret);
        var now = _time.GetUtcNow();
        var ok = false;
        foreach (var e in entries)
        {
            // Every line is compared, in constant time, so the answer's timing does not depend on which line matched.
            if (ServiceTokens.HashEquals(e.Hash, hash) && (e.ExpiresAt is null || e.ExpiresAt > now)) ok = true;
        }
        return ok;
    }

    private IReadOnlyList<TokenFileEntry> Current()
    {
        var stamp = File.Exists(path) ? File.GetLastWriteTimeUtc(path) : DateTime.MinValue;
        lock (_gate)
        {
            if (stamp != _stamp)
            {
                // A removed file admits nobody; one that cannot be read right now (being rewritten) keeps the last good list.
                try
                {
                    _entries = stamp == DateTime.MinValue ? [] : TokenFile.Read(path);
                    _stamp = stamp;
                }
                catch (Kiln.Core.KilnException)
                {
                }
                catch (IOException)
                {
                }
            }
            return _entries;
        }
    }
}
