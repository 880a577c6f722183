using Kiln.Auth;

namespace Kiln.Server.Access;

/// <summary>Against what a rule checks the caller's permission.</summary>
internal enum Scope
{
    /// <summary>Anyone, signed in or not (health probes).</summary>
    Open,

    /// <summary>Any signed-in user (MLflow's catch-all that only answers ENDPOINT_NOT_FOUND).</summary>
    SignedIn,

    /// <summary>The caller's default permission (the user's own, else the server's): areas without per-resource grants.</summary>
    Default,

    /// <summary>One or more experiments, found in the request.</summary>
    Experiment,

    /// <summary>A registered model, found in the request.</summary>
    RegisteredModel,

    /// <summary>Admins only: what every endpoint without a rule gets.</summary>
    Admin,
}

/// <summary>Where in a request the resource an endpoint touches is named.</summary>
internal delegate ValueTask<IReadOnlyList<string>> ResourceLookup(AccessRequest request);

/// <summary>A search answer whose array is cut down to what the caller may read: the array's property and each item's id property.</summary>
internal sealed record ResultFilter(ResourceKind Kind, string Array, string Id);

/// <summary>
/// What an endpoint needs. <paramref name="Creates"/>: the endpoint creates a resource of that kind, named by the
/// request's "name", and the (non-admin) caller is granted MANAGE on it, as MLflow does.
/// </summary>
internal sealed record AccessRule(Scope Scope, Permission Needed, ResourceLookup? Lookup = null, ResultFilter? Filter = null,
    ResourceKind? Creates = null)
{
    /// <summary>The resource is named in the JSON body, which is then read (and buffered) before the endpoint runs; never an artifact upload.</summary>
    public bool ReadsBody { get; init; }

    /// <summary>
    /// Requests that change state although the rule needs only READ, because the endpoint itself decides who may make
    /// them (the jobs dashboard's requeue and delete buttons, which need EDIT): they are audited like the others.
    /// </summary>
    public Func<HttpRequest, bool>? WritesWhen { get; init; }

    /// <summary>Calls that change state are written to the audit trail (searches sent as POST are not).</summary>
    public bool ChangesState => Needed > Permission.Read || Creates is not null || Scope == Scope.Admin;

    /// <summary>Whether this request changes state (and so goes to the audit trail when it is not a GET).</summary>
    public bool Changes(HttpRequest request) => ChangesState || WritesWhen?.Invoke(request) == true;
}

/// <summary>
/// The one table of who may call what on kiln server, in the spirit of MLflow's basic-auth plugin but with no
/// endpoint left out: <see cref="For"/> answers every endpoint, and one without a row here is admin-only (a new
/// endpoint is closed until someone adds its row). Keys are "METHOD /route/template" as routing sees them.
/// </summary>
internal static class AccessRules
{
    private static AccessRule Open => new(Scope.Open, Permission.NoPermissions);

    private static AccessRule AdminOnly { get; } = new(Scope.Admin, Permission.Manage);

    private static AccessRule Default(Permission p) => new(Scope.Default, p);

    /// <summary>Every POST of the jobs dashboard but its stats poll is one of its buttons (requeue, delete, trigger).</summary>
    private static bool JobsDashboardWrite(HttpRequest request) =>
        HttpMethods.IsPost(request.Method) && !request.Path.Equals("/jobs/stats", StringComparison.OrdinalIgnoreCase);

    private static AccessRule Exp(Permission p, ResourceLookup lookup) => new(Scope.Experiment, p, lookup) { ReadsBody = BodyLookups.Contains(lookup) };

    private static AccessRule Model(Permission p, ResourceLookup lookup) => new(Scope.RegisteredModel, p, lookup) { ReadsBody = BodyLookups.Contains(lookup) };

    private static AccessRule Search(ResourceKind kind, string array, string id) => new(Scope.Default, Permission.NoPermissions, Filter: new ResultFilter(kind, array, id));

    private static AccessRule Create(ResourceKind kind) => new(Scope.Default, Permission.Edit, Creates: kind) { ReadsBody = true };

    // Where the resource is named.
    private static readonly ResourceLookup ExperimentQuery = r => r.One(r.Query("experiment_id"));
    private static readonly ResourceLookup ExperimentBody = r => r.One(r.Body("experiment_id"));
    private static readonly ResourceLookup ExperimentByName = r => r.ExperimentNamedAsync(r.Query("experiment_name"));
    private static readonly ResourceLookup ExperimentIdsBody = r => ValueTask.FromResult(r.BodyStrings("experiment_ids"));
    private static readonly ResourceLookup RunQuery = r => r.ExperimentOfRunAsync(r.Query("run_id") ?? r.Query("run_uuid"));
    private static readonly ResourceLookup RunBody = r => r.ExperimentOfRunAsync(r.HasBody("run_id") ? r.Body("run_id") : r.Body("run_uuid"));
    private static readonly ResourceLookup ArtifactPath = r => r.One(r.FirstSegment(r.Route("path") ?? r.Query("path")));
    private static readonly ResourceLookup ModelQuery = r => r.One(r.Query("name"));
    private static readonly ResourceLookup ModelRequest = r => r.One(r.RegistryField("name"));
    private static readonly ResourceLookup ModelRoute = r => r.One(r.Route("name"));

    // The web UI's pages (Kiln.Web): route values and the compare page's ?run=… list.
    private static readonly ResourceLookup ExperimentPage = r => r.One(r.Route("ExperimentId"));
    private static readonly ResourceLookup RunPage = r => r.ExperimentOfRunAsync(r.Route("RunId"));
    private static readonly ResourceLookup ModelPage = r => r.One(r.Route("Name"));
    private static readonly ResourceLookup ComparedRuns = async r =>
    {
        var experiments = new List<string>();
        foreach (var run in r.Http.Request.Query["run"])
        {
            foreach (var e in await r.ExperimentOfRunAsync(run)) if (!experiments.Contains(e)) experiments.Add(e);
        }
        return experiments;
    };

    private static readonly HashSet<ResourceLookup> BodyLookups = [ExperimentBody, ExperimentIdsBody, RunBody, ModelRequest];

    private static readonly Dictionary<string, AccessRule> Rules = new(StringComparer.Ordinal)
    {
        ["GET /health"] = Open,
        ["GET /metrics"] = Default(Permission.Read),
        // Hangfire's dashboard of queued work (with --db postgresql://): pages and its stats poll (a POST) need READ; its
        // buttons (requeue, delete, trigger) work only for callers with EDIT (read-only otherwise, decided by the dashboard).
        ["* /jobs/{**path}"] = Default(Permission.Read) with { WritesWhen = JobsDashboardWrite },

        // MLflow tracking
        ["POST /api/2.0/mlflow/experiments/create"] = Create(ResourceKind.Experiment),
        ["GET /api/2.0/mlflow/experiments/get"] = Exp(Permission.Read, ExperimentQuery),
        ["GET /api/2.0/mlflow/experiments/get-by-name"] = Exp(Permission.Read, ExperimentByName),
        ["GET /api/2.0/mlflow/experiments/list"] = Search(ResourceKind.Experiment, "experiments", "experiment_id"),
        ["GET /api/2.0/mlflow/experiments/search"] = Search(ResourceKind.Experiment, "experiments", "experiment_id"),
        ["POST /api/2.0/mlflow/experiments/search"] = Search(ResourceKind.Experiment, "experiments", "experiment_id"),
        ["POST /api/2.0/mlflow/experiments/update"] = Exp(Permission.Edit, ExperimentBody),
        ["POST /api/2.0/mlflow/experiments/delete"] = Exp(Permission.Manage, ExperimentBody),
        ["POST /api/2.0/mlflow/experiments/restore"] = Exp(Permission.Manage, ExperimentBody),
        ["POST /api/2.0/mlflow/experiments/set-experiment-tag"] = Exp(Permission.Edit, ExperimentBody),
        ["POST /api/2.0/mlflow/experimentsset-experiment-tag"] = Exp(Permission.Edit, ExperimentBody),
        ["POST /api/2.0/mlflow/runs/create"] = Exp(Permission.Edit, ExperimentBody),
        ["GET /api/2.0/mlflow/runs/get"] = Exp(Permission.Read, RunQuery),
        ["POST /api/2.0/mlflow/runs/update"] = Exp(Permission.Edit, RunBody),
        ["POST /api/2.0/mlflow/runs/delete"] = Exp(Permission.Manage, RunBody),
        ["POST /api/2.0/mlflow/runs/restore"] = Exp(Permission.Manage, RunBody),
        ["POST /api/2.0/mlflow/runs/log-metric"] = Exp(Permission.Edit, RunBody),
        ["POST /api/2.0/mlflow/runs/log-parameter"] = Exp(Permission.Edit, RunBody),
        ["POST /api/2.0/mlflow/runs/set-tag"] = Exp(Permission.Edit, RunBody),
        ["POST /api/2.0/mlflow/runs/delete-tag"] = Exp(Permission.Edit, RunBody),
        ["POST /api/2.0/mlflow/runs/log-batch"] = Exp(Permission.Edit, RunBody),
        // Every listed experiment must be readable (MLflow checks each too).
        ["POST /api/2.0/mlflow/runs/search"] = Exp(Permission.Read, ExperimentIdsBody),
        ["GET /api/2.0/mlflow/metrics/get-history"] = Exp(Permission.Read, RunQuery),
        ["GET /api/2.0/mlflow/artifacts/list"] = Exp(Permission.Read, RunQuery),
        // Answers only ENDPOINT_NOT_FOUND: signing in is enough.
        ["* /api/2.0/mlflow/{**path}"] = new(Scope.SignedIn, Permission.NoPermissions),

        // MLflow registry
        ["POST /api/2.0/mlflow/registered-models/create"] = Create(ResourceKind.RegisteredModel),
        ["GET /api/2.0/mlflow/registered-models/get"] = Model(Permission.Read, ModelQuery),
        ["POST /api/2.0/mlflow/registered-models/rename"] = Model(Permission.Manage, ModelRequest),
        ["PATCH /api/2.0/mlflow/registered-models/update"] = Model(Permission.Edit, ModelRequest),
        ["DELETE /api/2.0/mlflow/registered-models/delete"] = Model(Permission.Manage, ModelRequest),
        ["GET /api/2.0/mlflow/registered-models/search"] = Search(ResourceKind.RegisteredModel, "registered_models", "name"),
        ["POST /api/2.0/mlflow/registered-models/get-latest-versions"] = Model(Permission.Read, ModelRequest),
        ["GET /api/2.0/mlflow/registered-models/get-latest-versions"] = Model(Permission.Read, ModelRequest),
        ["POST /api/2.0/mlflow/registered-models/set-tag"] = Model(Permission.Edit, ModelRequest),
        ["DELETE /api/2.0/mlflow/registered-models/delete-tag"] = Model(Permission.Edit, ModelRequest),
        ["POST /api/2.0/mlflow/registered-models/alias"] = Model(Permission.Edit, ModelRequest),
        ["DELETE /api/2.0/mlflow/registered-models/alias"] = Model(Permission.Edit, ModelRequest),
        ["GET /api/2.0/mlflow/registered-models/alias"] = Model(Permission.Read, ModelQuery),
        ["POST /api/2.0/mlflow/model-versions/create"] = Model(Permission.Edit, ModelRequest),
        ["GET /api/2.0/mlflow/model-versions/get"] = Model(Permission.Read, ModelQuery),
        ["PATCH /api/2.0/mlflow/model-versions/update"] = Model(Permission.Edit, ModelRequest),
        ["DELETE /api/2.0/mlflow/model-versions/delete"] = Model(Permission.Manage, ModelRequest),
        ["GET /api/2.0/mlflow/model-versions/search"] = Search(ResourceKind.RegisteredModel, "model_versions", "name"),
        ["GET /api/2.0/mlflow/model-versions/get-download-uri"] = Model(Permission.Read, ModelQuery),
        ["POST /api/2.0/mlflow/model-versions/transition-stage"] = Model(Permission.Edit, ModelRequest),
        ["POST /api/2.0/mlflow/model-versions/set-tag"] = Model(Permission.Edit, ModelRequest),
        ["DELETE /api/2.0/mlflow/model-versions/delete-tag"] = Model(Permission.Edit, ModelRequest),

        // Artifact proxy: paths are EXPERIMENT/RUN/artifacts/..., so the first segment names the experiment.
        ["PUT /api/2.0/mlflow-artifacts/artifacts/{**path}"] = Exp(Permission.Edit, ArtifactPath),
        ["GET /api/2.0/mlflow-artifacts/artifacts/{**path}"] = Exp(Permission.Read, ArtifactPath),

        // Kiln's registry additions
        ["GET /api/v1/models/{name}/aliases/history"] = Model(Permission.Read, ModelRoute),
        ["GET /api/v1/models/{name}/aliases/{alias}"] = Model(Permission.Read, ModelRoute),
        ["POST /api/v1/models/{name}/aliases/{alias}/rollback"] = Model(Permission.Edit, ModelRoute),

        // The admins' API: users, service tokens, grants and the audit trail.
        ["GET /api/v1/auth/users"] = AdminOnly,
        ["POST /api/v1/auth/users"] = AdminOnly,
        ["PUT /api/v1/auth/users/{name}/password"] = AdminOnly,
        ["DELETE /api/v1/auth/users/{name}"] = AdminOnly,
        ["GET /api/v1/auth/tokens"] = AdminOnly,
        ["POST /api/v1/auth/tokens"] = AdminOnly,
        ["POST /api/v1/auth/tokens/{id}/revoke"] = AdminOnly,
        ["GET /api/v1/auth/grants"] = AdminOnly,
        ["PUT /api/v1/auth/grants"] = AdminOnly,
        ["DELETE /api/v1/auth/grants"] = AdminOnly,
        ["GET /api/v1/auth/audit"] = AdminOnly,

        // Feature store (Feast's online API)
        ["POST /get-online-features"] = Default(Permission.Read),
        ["POST /push"] = Default(Permission.Edit),
        // The feature registry's API (RemoteFeatureRegistry): plan and reads are READ, recording a version or a materialization EDIT.
        ["POST /api/v1/features/plan"] = Default(Permission.Read),
        ["POST /api/v1/features/apply"] = Default(Permission.Edit),
        ["GET /api/v1/features/latest"] = Default(Permission.Read),
        ["GET /api/v1/features/projects/{project}/versions/{version:int}"] = Default(Permission.Read),
        ["GET /api/v1/features/versions"] = Default(Permission.Read),
        ["POST /api/v1/features/materializations"] = Default(Permission.Edit),
        ["GET /api/v1/features/materializations/last"] = Default(Permission.Read),

        // Pipelines
        ["GET /api/v1/pipelines"] = Default(Permission.Read),
        ["GET /api/v1/pipelines/runs"] = Default(Permission.Read),
        ["POST /api/v1/pipelines/runs"] = Default(Permission.Edit),
        ["GET /api/v1/pipelines/runs/{runId}"] = Default(Permission.Read),
        ["GET /api/v1/pipelines/runs/{runId}/logs"] = Default(Permission.Read),
        ["POST /api/v1/pipelines/runs/{runId}/cancel"] = Default(Permission.Edit),
        ["POST /api/v1/pipelines/runs/{runId}/resume"] = Default(Permission.Edit),
        ["POST /api/v1/pipelines/events/{eventName}"] = Default(Permission.Edit),
        ["POST /api/v1/pipelines/alertmanager"] = Default(Permission.Edit),

        // Delayed labels
        ["POST /api/v1/feedback"] = Default(Permission.Edit),

        // Vector collections (Qdrant's REST API): searches are reads; creating and dropping a collection is MANAGE.
        ["GET /collections"] = Default(Permission.Read),
        ["GET /collections/{name}"] = Default(Permission.Read),
        ["GET /collections/{name}/exists"] = Default(Permission.Read),
        ["PUT /collections/{name}"] = Default(Permission.Manage),
        ["DELETE /collections/{name}"] = Default(Permission.Manage),
        ["PUT /collections/{name}/index"] = Default(Permission.Edit),
        ["DELETE /collections/{name}/index/{field}"] = Default(Permission.Edit),
        ["POST /collections/{name}/snapshots"] = Default(Permission.Edit),
        // An export is every point of the collection (a read, but a bulk one); restoring creates a collection.
        ["GET /collections/{name}/export"] = Default(Permission.Read),
        ["PUT /collections/{name}/restore"] = Default(Permission.Manage),
        ["PUT /collections/{name}/points"] = Default(Permission.Edit),
        ["POST /collections/{name}/points"] = Default(Permission.Read),
        ["GET /collections/{name}/points/{id}"] = Default(Permission.Read),
        ["POST /collections/{name}/points/delete"] = Default(Permission.Edit),
        ["POST /collections/{name}/points/count"] = Default(Permission.Read),
        ["POST /collections/{name}/points/scroll"] = Default(Permission.Read),
        ["POST /collections/{name}/points/search"] = Default(Permission.Read),
        ["POST /collections/{name}/points/search/batch"] = Default(Permission.Read),
        ["POST /collections/{name}/points/query"] = Default(Permission.Read),

        // kiln serve replicas' heartbeats (kiln serve --register, signed in with a service token) and their list.
        ["POST /api/v1/serving/replicas"] = Default(Permission.Edit),
        ["GET /api/v1/serving/replicas"] = Default(Permission.Read),

        // The web UI (Kiln.Web). Razor pages answer GET and POST (a page's forms post back to it): reading needs READ
        // as the API's reads do; a page whose form changes state needs what the API's equivalent needs on POST.
        // Lists of experiments and models need the default READ (the page is not cut down per grant as API searches are).
        ["GET /"] = Default(Permission.Read),
        ["POST /"] = Default(Permission.Read),
        ["GET /experiments"] = Default(Permission.Read),
        ["POST /experiments"] = Default(Permission.Read),
        ["GET /experiments/{ExperimentId}"] = Exp(Permission.Read, ExperimentPage),
        ["POST /experiments/{ExperimentId}"] = Exp(Permission.Read, ExperimentPage),
        ["GET /runs/{RunId}"] = Exp(Permission.Read, RunPage),
        ["POST /runs/{RunId}"] = Exp(Permission.Read, RunPage),
        ["GET /compare"] = Exp(Permission.Read, ComparedRuns),
        ["POST /compare"] = Exp(Permission.Read, ComparedRuns),
        ["GET /models"] = Default(Permission.Read),
        ["POST /models"] = Default(Permission.Read),
        ["GET /models/{Name}"] = Model(Permission.Read, ModelPage),
        // The rollback form: as POST /api/v1/models/{name}/aliases/{alias}/rollback.
        ["POST /models/{Name}"] = Model(Permission.Edit, ModelPage),
        ["GET /monitoring"] = Default(Permission.Read),
        ["POST /monitoring"] = Default(Permission.Read),
        ["GET /monitoring/{Name}"] = Model(Permission.Read, ModelPage),
        ["POST /monitoring/{Name}"] = Model(Permission.Read, ModelPage),
        ["GET /serving"] = Default(Permission.Read),
        ["POST /serving"] = Default(Permission.Read),
        ["GET /features"] = Default(Permission.Read),
        ["POST /features"] = Default(Permission.Read),
        ["GET /pipelines"] = Default(Permission.Read),
        ["POST /pipelines"] = Default(Permission.Read),
        ["GET /pipelines/runs/{RunId}"] = Default(Permission.Read),
        // Cancel, resume and run again: as the pipeline API's POST …/cancel, …/resume and …/runs.
        ["POST /pipelines/runs/{RunId}"] = Default(Permission.Edit),
        // Browser sign-in (BrowserSessions): the sign-in page is open to everyone (its form carries an anti-forgery token,
        // and failed sign-ins are throttled per address as basic auth's are); signing out needs a session (or any sign-in).
        ["GET /signin"] = Open,
        ["POST /signin"] = Open,
        ["POST /signout"] = new(Scope.SignedIn, Permission.NoPermissions),
        // The framework's script for enhanced navigation and streaming: READ like the pages it enhances (a browser
        // sends the same credentials for it; pages work without it).
        ["GET /_framework/blazor.web.js"] = Default(Permission.Read),
        // Blazor's redirect after a form post under enhanced navigation.
        ["GET /_framework/opaque-redirect"] = Default(Permission.Read),
        ["GET /{*path:nonfile}"] = Default(Permission.Read),
        ["POST /{*path:nonfile}"] = Default(Permission.Read),
    };

    /// <summary>The keys an endpoint is looked up by: "METHOD /template" for each of its methods, "* /template" when it takes any.</summary>
    public static IReadOnlyList<string> Keys(Endpoint endpoint)
    {
        if (endpoint is not RouteEndpoint route) return [];
        var template = "/" + (route.RoutePattern.RawText ?? "").Trim('/');
        var methods = endpoint.Metadata.GetMetadata<HttpMethodMetadata>()?.HttpMethods;
        return methods is null || methods.Count == 0 ? ["* " + template] : methods.Select(m => m + " " + template).ToList();
    }

    /// <summary>The rule of an endpoint for a request's method; admin-only when the table has no row (and for a non-route endpoint).</summary>
    public static AccessRule For(Endpoint? endpoint, string method)
    {
        if (endpoint is not RouteEndpoint route) return AdminOnly;
        var template = "/" + (route.RoutePattern.RawText ?? "").Trim('/');
        return Rules.GetValueOrDefault(method + " " + template) ?? Rules.GetValueOrDefault("* " + template) ?? AdminOnly;
    }

    /// <summary>True when the table has a row for the key (the endpoint test checks every endpoint has one).</summary>
    public static bool IsListed(string key) => Rules.ContainsKey(key);
}
