using Kiln.Web;

namespace Kiln.Server.Composition;

/// <summary>The web UI (Kiln.Web) at /: server-rendered pages over the stores the other modules register.</summary>
internal sealed class WebUiModule(UiOptions options) : IKilnServerModule
{
    public void ConfigureServices(WebApplicationBuilder builder) => builder.Services.AddKilnWeb(options);

    public void MapEndpoints(WebApplication app) => app.MapKilnWeb();
}
