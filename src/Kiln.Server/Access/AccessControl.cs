using Kiln.Auth;
using Kiln.Storage;

namespace Kiln.Server.Access;

/// <summary>How kiln server admits callers (<see cref="KilnServerOptions.Access"/>).</summary>
public sealed class AccessOptions
{
    /// <summary>
    /// Refuse anonymous callers from the start. Without it, access control turns on by itself as soon as the database
    /// has a user (checked at start by <see cref="KilnServer.PrepareAccessAsync"/>, and every few seconds while running), and stays on.
    /// </summary>
    public bool Require { get; set; }

    /// <summary>The permission of a user on anything it holds no grant for, unless the user has its own default.</summary>
    public Permission DefaultPermission { get; set; } = Permission.Read;

    /// <summary>Failed sign-ins allowed from one address within <see cref="FailureWindow"/> before it is refused with 429.</summary>
    public int MaxFailedSignIns { get; set; } = 10;

    public TimeSpan FailureWindow { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>A browser session ends after this long without a request; each request in its second half renews it (sliding expiry).</summary>
    public TimeSpan SessionIdleTimeout { get; set; } = TimeSpan.FromHours(8);

    /// <summary>A browser session ends this long after its sign-in however active it is: then the user signs in again.</summary>
    public TimeSpan SessionLifetime { get; set; } = TimeSpan.FromHours(24);
}

/// <summary>The server's access state: its auth store and authenticator, and whether access control is on.</summary>
internal sealed class AccessControl
{
    private static readonly TimeSpan RecheckInterval = TimeSpan.FromSeconds(2);
    private readonly AccessOptions _options;
    private volatile bool _on;
    private long _nextCheck;

    public AccessControl(AccessOptions options, MetadataDatabase? database)
    {
        _options = options;
        _on = options.Require;
        if (database is not null)
        {
            Store = new AuthStore(database);
            Authenticator = new Authenticator(Store) { MaxFailures = options.MaxFailedSignIns, FailureWindow = options.FailureWindow };
        }
    }

    /// <summary>Null when the server's store is another kiln server (no local database to keep users in).</summary>
    public AuthStore? Store { get; }

    public Authenticator? Authenticator { get; }

    public Permission ServerDefault => _options.DefaultPermission;

    /// <summary>True once access control is on; it never turns off while the server runs (deleting every user locks everyone out instead).</summary>
    public async ValueTask<bool> IsOnAsync(CancellationToken ct)
    {
        if (_on || Store is null) return _on;
        var now = Environment.TickCount64;
        if (now < Interlocked.Read(ref _nextCheck)) return false;
        Interlocked.Exchange(ref _nextCheck, now + (long)RecheckInterval.TotalMilliseconds);
        if (await Store.HasUsersAsync(ct)) _on = true;
        return _on;
    }

    /// <summary>The caller's permission where it holds no grant.</summary>
    public Permission DefaultOf(Caller caller) => caller.IsAdmin ? Permission.Manage : caller.DefaultPermission ?? _options.DefaultPermission;
}
