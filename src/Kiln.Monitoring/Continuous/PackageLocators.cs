using Kiln.Core;

namespace Kiln.Monitoring.Continuous;

/// <summary>Finds the package directory of a model URI (a directory as it is; registry URIs need a registry).</summary>
public interface IModelPackageLocator
{
    ValueTask<string> LocateAsync(string model, CancellationToken cancellationToken);
}

/// <summary>Accepts package directories only.</summary>
public sealed class DirectoryPackageLocator : IModelPackageLocator
{
    public ValueTask<string> LocateAsync(string model, CancellationToken cancellationToken) =>
        model.StartsWith("models:", StringComparison.Ordinal) || model.StartsWith("runs:", StringComparison.Ordinal)
            ? throw new KilnException($"{model}: registry URIs need a tracking store (this process has none)")
            : ValueTask.FromResult(model);
}
