using System.Net;
using Kiln.Server.Tracking;
using Kiln.Tracking.Mlflow;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;

namespace Kiln.Server;

/// <summary>What `kiln server` starts with.</summary>
public sealed class KilnServerOptions
{
    /// <summary>The metadata database: a directory (SQLite inside), sqlite:FILE, postgresql://… or an Npgsql connection string.</summary>
    public string Db { get; set; } = Kiln.Tracking.TrackingStores.DefaultUri;

    /// <summary>The artifact root directory; by default beside the SQLite file, or ./.kiln/artifacts for PostgreSQL.</summary>
    public string? Artifacts { get; set; }

    public string Host { get; set; } = "127.0.0.1";

    /// <summary>The port; 0 picks a free one (read it back from <see cref="KilnServer.Address"/>).</summary>
    public int Port { get; set; } = 5000;

    /// <summary>The largest artifact file an upload may write.</summary>
    public long MaxArtifactBytes { get; set; } = Kiln.Tracking.Artifacts.LocalArtifactStore.DefaultMaxFileBytes;

    /// <summary>The lowest level logged to the console.</summary>
    public LogLevel LogLevel { get; set; } = LogLevel.Warning;

    /// <summary>
    /// Areas that add services and endpoints to the server (tracking is always there; the feature
    /// store, feedback and monitoring add theirs here).
    /// </summary>
    public List<IKilnServerModule> Modules { get; } = [];
}

/// <summary>An area of the control plane: registers its services, then maps its endpoints.</summary>
public interface IKilnServerModule
{
    void ConfigureServices(WebApplicationBuilder builder);

    void MapEndpoints(WebApplication app);
}

/// <summary>Builds the kiln control-plane server: MLflow's REST API, the artifact proxy and /api/v1.</summary>
public static class KilnServer
{
    public static WebApplication BuildApp(KilnServerOptions options)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ApplicationName = "kiln-server", Args = [] });
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(o => o.SingleLine = true);
        builder.Logging.SetMinimumLevel(options.LogLevel);
        builder.WebHost.UseKestrel(k =>
        {
            // Bodies are limited per endpoint (log-batch 1 MB, artifacts by MaxArtifactBytes).
            k.Limits.MaxRequestBodySize = null;
            k.AddServerHeader = false;
            if (IPAddress.TryParse(options.Host, out var ip)) k.Listen(ip, options.Port);
            else if (options.Host is "localhost") k.ListenLocalhost(options.Port);
            else k.ListenAnyIP(options.Port);
        });
        builder.Services.ConfigureHttpJsonOptions(o => o.SerializerOptions.TypeInfoResolverChain.Insert(0, MlflowJson.Default));
        builder.Services.AddProblemDetails();

        var modules = new List<IKilnServerModule> { new TrackingModule(options) };
        modules.AddRange(options.Modules);
        foreach (var m in modules) m.ConfigureServices(builder);

        var app = builder.Build();
        app.UseMiddleware<DotSegmentGuard>();
        app.MapGet("/health", () => TypedResults.Text("OK"));
        foreach (var m in modules) m.MapEndpoints(app);
        return app;
    }

    /// <summary>The http:// address the started app listens on (with the real port when 0 was asked for).</summary>
    public static Uri Address(WebApplication app)
    {
        var addresses = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses;
        var first = addresses?.FirstOrDefault() ?? throw new InvalidOperationException("the server is not listening yet");
        return new Uri(first.Replace("0.0.0.0", "127.0.0.1", StringComparison.Ordinal).Replace("[::]", "127.0.0.1", StringComparison.Ordinal));
    }
}
