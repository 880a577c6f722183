using System.Globalization;
using Kiln.Serving.Models;
using Kiln.Tracking;

namespace Kiln.Cli.Commands;

/// <summary>
/// Serves models:/NAME/VERSION, models:/NAME@ALIAS and runs:/… URIs from the model registry
/// (embedded or through a kiln server): the alias is polled with one small request, and a new
/// version's package is resolved (downloaded into the cache when remote) only when it moved.
/// </summary>
internal sealed class RegistryModelSource(TrackingStores stores) : IModelSource, IAsyncDisposable
{
    private readonly ModelResolver _resolver = new(stores);

    public bool CanResolve(string uri) =>
        uri.StartsWith("models:/", StringComparison.Ordinal) || uri.StartsWith("runs:/", StringComparison.Ordinal);

    public async Task<string> CurrentVersionAsync(string uri, CancellationToken ct)
    {
        if (uri.StartsWith("models:/", StringComparison.Ordinal))
        {
            var r = ModelUris.ParseModelsUri(uri);
            if (r.Version is { } v) return v.ToString(CultureInfo.InvariantCulture);
            if (r.Alias is { } alias) return (await _resolver.GetAliasVersionAsync(r.Name, alias, ct)).ToString(CultureInfo.InvariantCulture);
        }
        return VersionOf(await _resolver.ResolveAsync(uri, ct));
    }

    public async Task<Kiln.Serving.Models.ResolvedModel> ResolveAsync(string uri, CancellationToken ct)
    {
        var resolved = await _resolver.ResolveAsync(uri, ct);
        return new Kiln.Serving.Models.ResolvedModel(resolved.Directory, VersionOf(resolved));
    }

    private static string VersionOf(Kiln.Tracking.ResolvedModel m) =>
        m.Version?.ToString(CultureInfo.InvariantCulture) ?? LocalModelSource.VersionOf(m.Directory);

    public ValueTask DisposeAsync() => stores.DisposeAsync();
}
