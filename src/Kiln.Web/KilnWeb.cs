using Kiln.Web.Layout;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace Kiln.Web;

/// <summary>
/// Kiln's web UI: Razor components rendered on the server (static rendering; forms post back with an anti-forgery
/// token), added to kiln server by its composition. Pages read the stores the server already registers. The
/// framework's blazor.web.js, served by kiln itself, adds enhanced navigation and streaming where JavaScript runs.
/// </summary>
public static class KilnWeb
{
    /// <summary>The UI's services: Razor components, anti-forgery, and what the host tells the pages.</summary>
    public static IServiceCollection AddKilnWeb(this IServiceCollection services, UiOptions? options = null)
    {
        services.AddRazorComponents();
        services.AddAntiforgery(o => o.Cookie.Name = "kiln-antiforgery");
        services.AddSingleton(options ?? new UiOptions());
        return services;
    }

    /// <summary>
    /// Maps every page (and the catch-all 404 page), each marked <see cref="BrowserPageMetadata"/>; call after UseRouting.
    /// The host adds <c>UseAntiforgery()</c> after it has signed the caller in, so that tokens are checked against the
    /// user they were issued to.
    /// </summary>
    public static WebApplication MapKilnWeb(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        app.MapGet(BlazorScript.Path, BlazorScript.Serve).ExcludeFromDescription().WithMetadata(BrowserPageMetadata.Instance);
        app.MapRazorComponents<App>().WithMetadata(BrowserPageMetadata.Instance);
        return app;
    }
}

/// <summary>The framework's blazor.web.js, embedded in this assembly at build time and served from memory.</summary>
internal static class BlazorScript
{
    /// <summary>Where pages load it from (App.razor).</summary>
    public const string Path = "/_framework/blazor.web.js";

    private static readonly Lazy<(byte[] Bytes, Microsoft.Net.Http.Headers.EntityTagHeaderValue Tag)> Content = new(() =>
    {
        using var stream = typeof(BlazorScript).Assembly.GetManifestResourceStream("Kiln.Web.blazor.web.js")
            ?? throw new InvalidOperationException("Kiln.Web was built without blazor.web.js (RequiresAspNetWebAssets)");
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        var bytes = copy.ToArray();
        var tag = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(bytes))[..16];
        return (bytes, new Microsoft.Net.Http.Headers.EntityTagHeaderValue($"\"{tag}\""));
    });

    public static IResult Serve(HttpContext http)
    {
        // Revalidated by its ETag: a kiln upgrade brings a new script under the same address.
        http.Response.Headers.CacheControl = "no-cache";
        var (bytes, tag) = Content.Value;
        return TypedResults.Bytes(bytes, "text/javascript", entityTag: tag);
    }
}

/// <summary>What the pages know of the host beyond its services.</summary>
public sealed class UiOptions
{
    /// <summary>The serving replicas' shared prediction log (kiln server --log-dir, or the monitor file's), for the monitoring and serving pages.</summary>
    public string? PredictionLog { get; init; }

    /// <summary>The continuous monitor's alert state file, when the server runs one.</summary>
    public string? AlertStateFile { get; init; }
}
