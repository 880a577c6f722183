using System.Globalization;
using System.Text.Json.Serialization;
using Kiln.Auth;
using Kiln.Storage;

namespace Kiln.Server.Access;

/// <summary>Access control inside kiln server: the access state as a singleton and the admins' audit endpoint (the middleware is added by <see cref="KilnServer.BuildApp"/>).</summary>
internal sealed class AccessModule(AccessOptions options) : IKilnServerModule
{
    public void ConfigureServices(WebApplicationBuilder builder) =>
        builder.Services.AddSingleton(sp => new AccessControl(options, sp.GetService<MetadataDatabase>()));

    public void MapEndpoints(WebApplication app) =>
        app.MapGet("/api/v1/audit", async (HttpRequest req, AccessControl access, CancellationToken ct) =>
        {
            if (access.Store is null) return Results.Json(new AuditResponse(), AccessJson.Default.AuditResponse);
            var limit = int.TryParse(req.Query["limit"], NumberStyles.Integer, CultureInfo.InvariantCulture, out var l) ? l : 100;
            DateTimeOffset? since = DateTimeOffset.TryParse(req.Query["since"], CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var s) ? s : null;
            var user = req.Query["user"].ToString() is { Length: > 0 } u ? u : null;
            var rows = await access.Store.ReadAuditAsync(new AuditQuery(user, since, null, limit), ct);
            return Results.Json(new AuditResponse { Entries = rows.Select(AuditEntryDto.Of).ToList() }, AccessJson.Default.AuditResponse);
        });
}

/// <summary>The answer of GET /api/v1/audit: audit rows, newest first.</summary>
public sealed class AuditResponse
{
    public List<AuditEntryDto> Entries { get; set; } = [];
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
}

/// <summary>The JSON of the audit endpoint (used by kiln auth audit too).</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(AuditResponse))]
public sealed partial class AccessJson : JsonSerializerContext;
