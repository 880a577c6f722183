using System.Globalization;
using System.Net.Http.Json;
using Kiln.Core.Http;
using Kiln.Features.Definitions;

namespace Kiln.Features.Registry;

/// <summary>
/// The feature registry of a kiln server, through its <c>/api/v1/features</c> API: what <c>--feature-registry
/// http://…</c> opens. Answers and refusals are those of the database the server holds.
/// </summary>
public sealed class RemoteFeatureRegistry : IFeatureRegistry
{
    private readonly KilnApiConnection _api;
    private readonly string _server;

    /// <param name="server">The server's address, e.g. http://127.0.0.1:5000.</param>
    /// <param name="http">An HttpClient to use (not disposed); null creates one.</param>
    public RemoteFeatureRegistry(Uri server, HttpClient? http = null)
    {
        _api = new KilnApiConnection(server, "api/v1/features", "does not serve a feature registry (/api/v1/features): is it a kiln server with a local --db?", http);
        _server = _api.Server;
    }

    /// <summary>The server, for messages.</summary>
    public override string ToString() => _server;

    public Task<RepositoryPlan> PlanAsync(FeatureRepository repo, CancellationToken cancellationToken = default) =>
        _api.SendAsync(HttpMethod.Post, "plan", JsonContent.Create(RepositorySnapshot.Of(repo), RegistryJsonContext.Default.RepositorySnapshot),
            RegistryJsonContext.Default.RepositoryPlan, cancellationToken);

    public async Task<(int Version, RepositoryPlan Plan)> ApplyAsync(FeatureRepository repo, string repoPath, CancellationToken cancellationToken = default)
    {
        var body = new ApplyBody(Path.GetFullPath(repoPath), RepositorySnapshot.Of(repo));
        var answer = await _api.SendAsync(HttpMethod.Post, "apply", JsonContent.Create(body, RegistryJsonContext.Default.ApplyBody),
            RegistryJsonContext.Default.ApplyAnswer, cancellationToken).ConfigureAwait(false);
        return (answer.Version, answer.Plan);
    }

    public Task<(RegistryVersion Version, FeatureRepository Repository)?> LatestAsync(string? project, CancellationToken cancellationToken = default) =>
        GetVersionAsync(project is null ? "latest" : "latest?project=" + Uri.EscapeDataString(project), cancellationToken);

    public Task<(RegistryVersion Version, FeatureRepository Repository)?> VersionAsync(string project, int version, CancellationToken cancellationToken = default) =>
        GetVersionAsync($"projects/{Uri.EscapeDataString(project)}/versions/{version.ToString(CultureInfo.InvariantCulture)}", cancellationToken);

    public async Task<IReadOnlyList<RegistryVersion>> VersionsAsync(string? project, CancellationToken cancellationToken = default)
    {
        var answer = await _api.SendAsync(HttpMethod.Get, project is null ? "versions" : "versions?project=" + Uri.EscapeDataString(project), null,
            RegistryJsonContext.Default.VersionListAnswer, cancellationToken).ConfigureAwait(false);
        return answer.Versions;
    }

    public Task RecordMaterializationAsync(string project, string view, DateTime start, DateTime end, long rows, CancellationToken cancellationToken = default) =>
        _api.SendAsync(HttpMethod.Post, "materializations",
            JsonContent.Create(new MaterializationBody(project, view, start.ToUniversalTime(), end.ToUniversalTime(), rows), RegistryJsonContext.Default.MaterializationBody),
            cancellationToken);

    public async Task<DateTime?> LastMaterializedEndAsync(string project, string view, CancellationToken cancellationToken = default)
    {
        var answer = await _api.SendAsync(HttpMethod.Get,
            $"materializations/last?project={Uri.EscapeDataString(project)}&view={Uri.EscapeDataString(view)}", null,
            RegistryJsonContext.Default.LastMaterializedAnswer, cancellationToken).ConfigureAwait(false);
        return answer.End?.ToUniversalTime();
    }

    public ValueTask DisposeAsync()
    {
        _api.Dispose();
        return ValueTask.CompletedTask;
    }

    private async Task<(RegistryVersion Version, FeatureRepository Repository)?> GetVersionAsync(string path, CancellationToken ct)
    {
        var answer = await _api.SendAsync(HttpMethod.Get, path, null, RegistryJsonContext.Default.VersionAnswer, ct).ConfigureAwait(false);
        if (!answer.Found || answer.Version is null || answer.Repository is null) return null;
        return (answer.Version, answer.Repository.ToRepository());
    }
}
