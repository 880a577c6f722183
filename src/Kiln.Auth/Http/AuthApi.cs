using System.Globalization;
using System.Text.Json.Serialization;
using Kiln.Core;

namespace Kiln.Auth.Http;

/// <summary>A user on the wire (GET/POST /api/v1/auth/users).</summary>
public sealed class UserDto
{
    public string Name { get; set; } = "";
    public bool Admin { get; set; }
    public string? DefaultPermission { get; set; }
    public bool HasPassword { get; set; }
    public string CreatedAt { get; set; } = "";

    public static UserDto Of(AuthUser u) => new()
    {
        Name = u.Name, Admin = u.IsAdmin, DefaultPermission = u.DefaultPermission is { } d ? Permissions.Name(d) : null,
        HasPassword = u.HasPassword, CreatedAt = AuthWire.Time(u.CreatedAt)!,
    };

    public AuthUser ToUser() => new(Name, Admin, DefaultPermission is { } d ? Permissions.Parse(d, "default_permission") : null,
        AuthWire.Parse(CreatedAt)!.Value, HasPassword);
}

/// <summary>A service token on the wire: never its secret.</summary>
public sealed class TokenDto
{
    public string Id { get; set; } = "";
    public string User { get; set; } = "";
    public string? Description { get; set; }
    public string CreatedAt { get; set; } = "";
    public string? ExpiresAt { get; set; }
    public string? LastUsedAt { get; set; }
    public string? RevokedAt { get; set; }

    public static TokenDto Of(ServiceToken t) => new()
    {
        Id = t.Id, User = t.User, Description = t.Description, CreatedAt = AuthWire.Time(t.CreatedAt)!, ExpiresAt = AuthWire.Time(t.ExpiresAt),
        LastUsedAt = AuthWire.Time(t.LastUsedAt), RevokedAt = AuthWire.Time(t.RevokedAt),
    };

    public ServiceToken ToToken() => new(Id, User, Description, AuthWire.Parse(CreatedAt)!.Value, AuthWire.Parse(ExpiresAt), AuthWire.Parse(LastUsedAt),
        AuthWire.Parse(RevokedAt));
}

/// <summary>A grant on the wire: kind is "experiment" or "registered_model".</summary>
public sealed class GrantDto
{
    public string User { get; set; } = "";
    public string Kind { get; set; } = "";
    public string Resource { get; set; } = "";
    public string Permission { get; set; } = "";

    public static GrantDto Of(Grant g) => new() { User = g.User, Kind = Permissions.Name(g.Kind), Resource = g.Resource, Permission = Permissions.Name(g.Permission) };

    public Grant ToGrant() => new(User, AuthWire.Kind(Kind), Resource, Permissions.Parse(Permission, "permission"));
}

/// <summary>One audit row on the wire.</summary>
public sealed class AuditEntryDto
{
    public long Id { get; set; }
    public string At { get; set; } = "";
    public string? User { get; set; }
    public string Action { get; set; } = "";
    public string? Resource { get; set; }
    public int Status { get; set; }
    public string? Remote { get; set; }

    public static AuditEntryDto Of(AuditEntry e) => new()
    {
        Id = e.Id,
        At = e.At.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture),
        User = e.User,
        Action = e.Action,
        Resource = e.Resource,
        Status = e.Status,
        Remote = e.Remote,
    };

    public AuditEntry ToEntry() => new(Id, AuthWire.Parse(At)!.Value, User, Action, Resource, Status, Remote);
}

/// <summary>The answer of GET /api/v1/auth/users.</summary>
public sealed class UsersResponse
{
    public List<UserDto> Users { get; set; } = [];
}

/// <summary>The answer of GET /api/v1/auth/tokens.</summary>
public sealed class TokensResponse
{
    public List<TokenDto> Tokens { get; set; } = [];
}

/// <summary>The answer of GET /api/v1/auth/grants.</summary>
public sealed class GrantsResponse
{
    public List<GrantDto> Grants { get; set; } = [];
}

/// <summary>The answer of GET /api/v1/auth/audit: audit rows, newest first.</summary>
public sealed class AuditResponse
{
    public List<AuditEntryDto> Entries { get; set; } = [];
}

/// <summary>POST /api/v1/auth/users: a null password makes a token-only user.</summary>
public sealed class AddUserRequest
{
    public string? Name { get; set; }
    public string? Password { get; set; }
    public bool Admin { get; set; }
    public string? DefaultPermission { get; set; }
}

/// <summary>PUT /api/v1/auth/users/{name}/password.</summary>
public sealed class PasswordRequest
{
    public string? Password { get; set; }
}

/// <summary>POST /api/v1/auth/tokens: expires_at is an ISO 8601 time (none: no expiry).</summary>
public sealed class CreateTokenRequest
{
    public string? User { get; set; }
    public string? Description { get; set; }
    public string? ExpiresAt { get; set; }
}

/// <summary>The answer of POST /api/v1/auth/tokens: the token and its secret, shown this once.</summary>
public sealed class CreatedTokenResponse
{
    public TokenDto Token { get; set; } = new();
    public string Secret { get; set; } = "";
}

/// <summary>PUT /api/v1/auth/grants.</summary>
public sealed class GrantRequest
{
    public string? User { get; set; }
    public string? Kind { get; set; }
    public string? Resource { get; set; }
    public string? Permission { get; set; }
}

/// <summary>An empty answer of a call that changed something.</summary>
public sealed class DoneResponse;

/// <summary>The answer of DELETE /api/v1/auth/grants: false when the user held no grant there.</summary>
public sealed class RemovedResponse
{
    public bool Removed { get; set; }
}

/// <summary>The JSON of the auth API (snake_case, source-generated), shared by kiln server's endpoints and <see cref="AuthApiClient"/>.</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(UsersResponse))]
[JsonSerializable(typeof(TokensResponse))]
[JsonSerializable(typeof(GrantsResponse))]
[JsonSerializable(typeof(AuditResponse))]
[JsonSerializable(typeof(AddUserRequest))]
[JsonSerializable(typeof(PasswordRequest))]
[JsonSerializable(typeof(CreateTokenRequest))]
[JsonSerializable(typeof(CreatedTokenResponse))]
[JsonSerializable(typeof(GrantRequest))]
[JsonSerializable(typeof(UserDto))]
[JsonSerializable(typeof(DoneResponse))]
[JsonSerializable(typeof(RemovedResponse))]
public sealed partial class AuthJson : JsonSerializerContext;

/// <summary>How times and kinds are written on the wire.</summary>
public static class AuthWire
{
    public static string? Time(DateTimeOffset? t) => t?.UtcDateTime.ToString("O", CultureInfo.InvariantCulture);

    /// <summary>Parses an ISO 8601 time (UTC when no offset is given); a bad one is a KilnException naming the field.</summary>
    public static DateTimeOffset? Parse(string? s, string field = "time") =>
        s is null ? null
        : DateTimeOffset.TryParse(s, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var t) ? t
        : throw new KilnException($"{field}: '{s}' is not an ISO 8601 time");

    /// <summary>"experiment" or "registered_model" (as kiln auth list prints them).</summary>
    public static ResourceKind Kind(string? text) => text switch
    {
        "experiment" => ResourceKind.Experiment,
        "registered_model" => ResourceKind.RegisteredModel,
        _ => throw new KilnException($"kind: '{text}' is not a resource kind; use experiment or registered_model"),
    };
}
