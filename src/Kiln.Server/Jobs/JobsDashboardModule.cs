using Hangfire;
using Hangfire.Dashboard;
using Kiln.Auth;
using Kiln.Server.Access;

namespace Kiln.Server.Jobs;

/// <summary>
/// Hangfire's dashboard of Kiln's queued work (distributed batch partitions on kiln worker) at /jobs, when the server's
/// database is the PostgreSQL the workers share. Kiln's access control decides who sees it (READ, like the rest of
/// the server); the dashboard is read-only for a caller without EDIT, so its requeue, delete and trigger buttons are
/// gone and their POSTs refused.
/// </summary>
internal sealed class JobsDashboardModule(JobStorage storage) : IKilnServerModule
{
    public const string Path = "/jobs";

    public void ConfigureServices(WebApplicationBuilder builder) =>
        // The dashboard's services only: the storage is given to the dashboard itself, and no job runs in the server.
        builder.Services.AddHangfire(_ => { });

    public void MapEndpoints(WebApplication app) => app.MapHangfireDashboard(Path, new DashboardOptions
    {
        DashboardTitle = "Kiln jobs",
        AppPath = "/",
        Authorization = [new KilnDashboardAuthorization()],
        IsReadOnlyFunc = context => !KilnDashboardAuthorization.MayWrite(context),
        // The dashboard's stats poll is a POST every few seconds per open page: once every 5 s is enough.
        StatsPollingInterval = 5_000,
    }, storage).WithMetadata(Kiln.Web.BrowserPageMetadata.Instance); // a browser's session counts here (its POSTs check anti-forgery)
}

/// <summary>
/// Lets the dashboard serve a request Kiln's access middleware admitted (it runs before every endpoint and refuses
/// the others with 401 or 403), replacing Hangfire's default of local requests only.
/// </summary>
internal sealed class KilnDashboardAuthorization : IDashboardAuthorizationFilter
{
    public bool Authorize(DashboardContext context) => AccessItems.DefaultPermissionOf(context.GetHttpContext()) is not null;

    /// <summary>EDIT or more where the caller holds no grant (an admin; anyone while access control is off).</summary>
    public static bool MayWrite(DashboardContext context) => AccessItems.DefaultPermissionOf(context.GetHttpContext()) >= Permission.Edit;
}
