using Kiln.Core.Packaging;
using Kiln.Tracking;

namespace Kiln.Cli.Commands;

/// <summary>The one-shot resolution of a command's --model: a package directory as it is, a registry URI through $KILN_TRACKING_URI (default ./.kiln).</summary>
internal static class ModelLocators
{
    public static async Task<ResolvedModel> ResolveAsync(string uri, CancellationToken ct)
    {
        // Only a registry URI opens the tracking store: a package directory must not create ./.kiln as a side effect.
        if (!DirectoryModelLocator.IsRegistryUri(uri)) return await new DirectoryModelLocator().ResolveAsync(uri, ct);
        await using var stores = TrackingStores.Open(null);
        return await new RegistryModelLocator(stores).ResolveAsync(uri, ct);
    }
}
