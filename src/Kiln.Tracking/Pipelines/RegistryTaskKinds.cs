using System.Globalization;
using Kiln.Core;
using Kiln.Core.Packaging;
using Kiln.Pipelines.Definition;
using Kiln.Pipelines.Tasks;

namespace Kiln.Tracking.Pipelines;

/// <summary>
/// The pipeline task kinds of the model registry, register and set_alias, and the registry's resolver of
/// models:/ and runs:/ settings for every kind. The tracking store is the task's <c>tracking_uri</c>, else the
/// pipeline parameter <c>tracking_uri</c>, else the host's default (<see cref="TrackingTaskDefaults"/>: kiln server's
/// own store), else $KILN_TRACKING_URI, else ./.kiln.
/// </summary>
public static class RegistryTaskKinds
{
    public static TaskKindRegistry AddRegistryKinds(this TaskKindRegistry registry) => registry
        .Add(new RegisterKind()).Add(new SetAliasKind());

    /// <summary>The tracking store a task talks to.</summary>
    public static string TrackingUri(TaskContext c) =>
        TrackingStores.ResolveUri(c.GetString(TaskSettings.TrackingUriKey) ?? c.Parameters.GetValueOrDefault(TaskSettings.TrackingUriKey)
            ?? (c.Services?.GetService(typeof(TrackingTaskDefaults)) as TrackingTaskDefaults)?.TrackingUri);
}

/// <summary>What a host tells the kinds about itself: kiln server's own tracking store is the default there.</summary>
public sealed record TrackingTaskDefaults(string? TrackingUri);

/// <summary>Resolves models:/ and runs:/ settings through the task's tracking store (<see cref="RegistryTaskKinds.TrackingUri"/>).</summary>
public sealed class RegistryTaskModelResolver : ITaskModelResolver
{
    public async Task<ResolvedModel> ResolveAsync(TaskContext c, string key, string uri)
    {
        var trackingUri = RegistryTaskKinds.TrackingUri(c);
        try
        {
            var stores = TrackingStores.Open(trackingUri);
            await using var storesScope = stores.ConfigureAwait(false);
            var r = await new RegistryModelLocator(stores, local: new DirectoryModelLocator(c.WorkingDirectory)).ResolveAsync(uri, c.CancellationToken).ConfigureAwait(false);
            c.Log.Info($"{key}: {uri} is {(r.RegistryVersion is { } v ? $"version {v} of {r.Name}" : "a run's artifact")} ({r.PackageDirectory})");
            return r;
        }
        catch (KilnException e)
        {
            throw new TaskFailedException($"'{key}' {e.Message} (tracking store {trackingUri})", e);
        }
    }
}

/// <summary>kind: register — uploads the package as a run's artifacts and registers it as a new version; outputs version and model_uri.</summary>
internal sealed class RegisterKind : ITaskKind
{
    public string Name => "register";

    public IEnumerable<TaskConfigError> Validate(TaskDefinition task) => TaskSettings.Check(task, Name, ["model", "package"], ["experiment"]);

    public async Task<IReadOnlyDictionary<string, string>> ExecuteAsync(TaskContext c)
    {
        var model = TaskSettings.Required(c, "model");
        var packageDir = Path.GetFullPath(TaskSettings.Required(c, "package"), c.WorkingDirectory);
        var package = ModelPackage.Load(packageDir);
        var stores = TrackingStores.Open(RegistryTaskKinds.TrackingUri(c));
        await using var storesScope = stores.ConfigureAwait(false);
        var client = new TrackingClient(stores);
        var run = await client.StartRunAsync(c.GetString("experiment") ?? c.PipelineName, $"{c.PipelineName}/{c.RunId}",
            [new KeyValue("kiln.pipeline.run", c.RunId)], c.CancellationToken).ConfigureAwait(false);
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        await run.LogMetricsAsync([.. package.Metadata.Metrics.Select(m => new Metric(m.Key, m.Value, now, 0))], c.CancellationToken).ConfigureAwait(false);
        var source = await run.LogArtifactsAsync(packageDir, "package", c.CancellationToken).ConfigureAwait(false);
        await run.EndAsync(ct: c.CancellationToken).ConfigureAwait(false);
        var version = await client.RegisterModelAsync(model, source, $"registered by pipeline {c.PipelineName} run {c.RunId}", c.CancellationToken).ConfigureAwait(false);
        c.Log.Info($"registered models:/{model}/{version.Version} from {source}");
        return new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["version"] = version.Version.ToString(CultureInfo.InvariantCulture),
            ["model_uri"] = $"models:/{model}/{version.Version}",
            ["run_id"] = run.RunId,
        };
    }
}

/// <summary>kind: set_alias — points an alias at a version (promotion); outputs the version it held before.</summary>
internal sealed class SetAliasKind : ITaskKind
{
    public string Name => "set_alias";

    public IEnumerable<TaskConfigError> Validate(TaskDefinition task) => TaskSettings.Check(task, Name, ["model", "alias", "version"], []);

    public async Task<IReadOnlyDictionary<string, string>> ExecuteAsync(TaskContext c)
    {
        var model = TaskSettings.Required(c, "model");
        var alias = TaskSettings.Required(c, "alias");
        if (!int.TryParse(TaskSettings.Required(c, "version"), CultureInfo.InvariantCulture, out var version))
            throw new TaskFailedException($"'version' {c.GetString("version")} is not a version number");
        var stores = TrackingStores.Open(RegistryTaskKinds.TrackingUri(c));
        await using var storesScope = stores.ConfigureAwait(false);
        string previous = "";
        try
        {
            previous = (await stores.Registry.GetModelVersionByAliasAsync(model, alias, c.CancellationToken).ConfigureAwait(false)).Version.ToString(CultureInfo.InvariantCulture);
        }
        catch (TrackingException e) when (e.Code == ErrorCode.ResourceDoesNotExist)
        {
        }
        await stores.Registry.SetAliasAsync(model, alias, version, $"pipeline:{c.PipelineName}", c.CancellationToken).ConfigureAwait(false);
        c.Log.Info($"{model}@{alias}: {(previous.Length == 0 ? "(none)" : previous)} -> {version}");
        return new Dictionary<string, string>(StringComparer.Ordinal) { ["previous"] = previous, ["version"] = version.ToString(CultureInfo.InvariantCulture) };
    }
}

