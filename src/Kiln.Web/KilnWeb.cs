using Kiln.Web.Layout;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace Kiln.Web;

/// <summary>
/// Kiln's web UI: Razor components rendered on the server (static rendering; forms post back with an anti-forgery
/// token), added to kiln server by its composition. Pages read the stores the server already registers.
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
        app.MapRazorComponents<App>().WithMetadata(BrowserPageMetadata.Instance);
        return app;
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
