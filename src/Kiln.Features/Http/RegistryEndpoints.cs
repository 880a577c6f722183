using Kiln.Core;
using Kiln.Features.Definitions;
using Kiln.Features.Registry;
using Kiln.Http;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Routing;

namespace Kiln.Features.Http;

/// <summary>
/// The feature registry as a REST API under <c>/api/v1/features</c>, so that <c>kiln features … --feature-registry
/// http://server</c> (<see cref="RemoteFeatureRegistry"/>) reaches the registry in the server's database. The host
/// registers the <see cref="IFeatureRegistry"/> it serves.
/// </summary>
public static class RegistryEndpoints
{
    private static readonly Func<JsonBodyError, ProblemHttpResult> s_bodyProblem = RequestBodies.Problem(Invalid);

    /// <summary>Maps plan, apply, latest, versions and the materialization history.</summary>
    public static IEndpointRouteBuilder MapKilnFeatureRegistryEndpoints(this IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapGroup("/api/v1/features").WithTags("feature registry");
        group.MapPost("/plan", PlanAsync);
        group.MapPost("/apply", ApplyAsync);
        group.MapGet("/latest", LatestAsync);
        group.MapGet("/projects/{project}/versions/{version:int}", VersionAsync);
        group.MapGet("/versions", VersionsAsync);
        group.MapPost("/materializations", RecordMaterializationAsync);
        group.MapGet("/materializations/last", LastMaterializedAsync);
        return endpoints;
    }

    private static async Task<Results<JsonHttpResult<RepositoryPlan>, ProblemHttpResult>> PlanAsync(HttpRequest http, IFeatureRegistry registry, CancellationToken ct)
    {
        var snapshot = await JsonBodies.ReadAsync(http, RegistryJsonContext.Default.RepositorySnapshot, s_bodyProblem, cancellationToken: ct).ConfigureAwait(false);
        if (snapshot.Problem is { } problem) return problem;
        if (Repository(snapshot.Value!, out var repo) is { } invalid) return invalid;
        return TypedResults.Json(await registry.PlanAsync(repo!, ct).ConfigureAwait(false), RegistryJsonContext.Default.RepositoryPlan);
    }

    private static async Task<Results<JsonHttpResult<ApplyAnswer>, ProblemHttpResult>> ApplyAsync(HttpRequest http, IFeatureRegistry registry, CancellationToken ct)
    {
        var body = await JsonBodies.ReadAsync(http, RegistryJsonContext.Default.ApplyBody, s_bodyProblem, cancellationToken: ct).ConfigureAwait(false);
        if (body.Problem is { } problem) return problem;
        if (body.Value!.Repository is null) return Invalid("repository: required");
        if (string.IsNullOrWhiteSpace(body.Value.RepoPath)) return Invalid("repo_path: required");
        if (Repository(body.Value.Repository, out var repo) is { } invalid) return invalid;
        try
        {
            var (version, plan) = await registry.ApplyAsync(repo!, body.Value.RepoPath, ct).ConfigureAwait(false);
            return TypedResults.Json(new ApplyAnswer(version, plan), RegistryJsonContext.Default.ApplyAnswer);
        }
        catch (KilnException e)
        {
            // Another apply of the project recorded the version first.
            return TypedResults.Problem(detail: e.Message, statusCode: StatusCodes.Status409Conflict, title: "Conflict");
        }
    }

    private static async Task<JsonHttpResult<VersionAnswer>> LatestAsync(string? project, IFeatureRegistry registry, CancellationToken ct) =>
        Answer(await registry.LatestAsync(string.IsNullOrEmpty(project) ? null : project, ct).ConfigureAwait(false));

    private static async Task<JsonHttpResult<VersionAnswer>> VersionAsync(string project, int version, IFeatureRegistry registry, CancellationToken ct) =>
        Answer(await registry.VersionAsync(project, version, ct).ConfigureAwait(false));

    private static async Task<JsonHttpResult<VersionListAnswer>> VersionsAsync(string? project, IFeatureRegistry registry, CancellationToken ct) =>
        TypedResults.Json(new VersionListAnswer([.. await registry.VersionsAsync(string.IsNullOrEmpty(project) ? null : project, ct).ConfigureAwait(false)]),
            RegistryJsonContext.Default.VersionListAnswer);

    private static async Task<Results<NoContent, ProblemHttpResult>> RecordMaterializationAsync(HttpRequest http, IFeatureRegistry registry, CancellationToken ct)
    {
        var body = await JsonBodies.ReadAsync(http, RegistryJsonContext.Default.MaterializationBody, s_bodyProblem, cancellationToken: ct).ConfigureAwait(false);
        if (body.Problem is { } problem) return problem;
        var m = body.Value!;
        if (string.IsNullOrEmpty(m.Project)) return Invalid("project: required");
        if (string.IsNullOrEmpty(m.View)) return Invalid("view: required");
        if (m.End < m.Start) return Invalid($"end {m.End:O} is before start {m.Start:O}");
        if (m.Rows < 0) return Invalid("rows: must not be negative");
        await registry.RecordMaterializationAsync(m.Project, m.View, m.Start, m.End, m.Rows, ct).ConfigureAwait(false);
        return TypedResults.NoContent();
    }

    private static async Task<Results<JsonHttpResult<LastMaterializedAnswer>, ProblemHttpResult>> LastMaterializedAsync(string? project, string? view,
        IFeatureRegistry registry, CancellationToken ct)
    {
        if (string.IsNullOrEmpty(project)) return Invalid("project: required (query parameter)");
        if (string.IsNullOrEmpty(view)) return Invalid("view: required (query parameter)");
        return TypedResults.Json(new LastMaterializedAnswer(await registry.LastMaterializedEndAsync(project, view, ct).ConfigureAwait(false)),
            RegistryJsonContext.Default.LastMaterializedAnswer);
    }

    private static JsonHttpResult<VersionAnswer> Answer((RegistryVersion Version, FeatureRepository Repository)? found) =>
        TypedResults.Json(found is { } f ? new VersionAnswer(true, f.Version, RepositorySnapshot.Of(f.Repository)) : new VersionAnswer(false, null, null),
            RegistryJsonContext.Default.VersionAnswer);

    /// <summary>A repository sent by a client, held to the rules a YAML repository is (unique names, references that resolve).</summary>
    private static ProblemHttpResult? Repository(RepositorySnapshot snapshot, out FeatureRepository? repo)
    {
        repo = null;
        if (string.IsNullOrWhiteSpace(snapshot.Project)) return Invalid("repository.project: required");
        if (snapshot.Entities is null || snapshot.Sources is null || snapshot.PushSources is null || snapshot.FeatureViews is null || snapshot.FeatureServices is null)
            return Invalid("repository: entities, sources, push_sources, feature_views and feature_services are required (each a list, possibly empty)");
        try
        {
            repo = snapshot.ToRepository();
            RepositoryLoader.CrossCheck(repo);
            return null;
        }
        catch (ArgumentException e)
        {
            return Invalid($"repository: two definitions of one kind share a name ({e.Message})");
        }
        catch (KilnException e)
        {
            return Invalid($"repository: {e.Message}");
        }
    }

    private static ProblemHttpResult Invalid(string detail) =>
        TypedResults.Problem(detail: detail, statusCode: StatusCodes.Status400BadRequest, title: "Invalid feature registry request");
}
