using System.Globalization;
using Kiln.Features.Definitions;
using Kiln.Features.Offline;
using Kiln.Features.Online;
using Kiln.Features.Registry;
using Kiln.Pipelines.Definition;
using Kiln.Pipelines.Tasks;

namespace Kiln.Features.Pipelines;

/// <summary>The feature store's pipeline task kinds.</summary>
public static class FeatureTaskKinds
{
    public static TaskKindRegistry AddFeatureKinds(this TaskKindRegistry registry) => registry.Add(new MaterializeKind());
}

/// <summary>
/// kind: materialize — loads the latest feature values per entity into the online store, for a window
/// [start, end] or (without start) incrementally from where each view last ended (kiln features materialize).
/// </summary>
public sealed class MaterializeKind : ITaskKind
{
    public string Name => "materialize";

    public IEnumerable<TaskConfigError> Validate(TaskDefinition task)
    {
        foreach (var e in TaskSettings.Check(task, Name, ["repo"], ["start", "end", "views", "registry", "online_store"])) yield return e;
        foreach (var e in TaskSettings.Time(task, "start")) yield return e;
        foreach (var e in TaskSettings.Time(task, "end")) yield return e;
        foreach (var e in TaskSettings.List(task, "views")) yield return e;
        if (TaskSettings.Literal(task, "start") is { } s && TaskSettings.Literal(task, "end") is { } en
            && TaskSettings.ParseTime(s) is { } start && TaskSettings.ParseTime(en) is { } end && end < start)
            yield return new TaskConfigError("end", $"{en} is before start {s}");
    }

    public async Task<IReadOnlyDictionary<string, string>> ExecuteAsync(TaskContext c)
    {
        var repoPath = TaskSettings.LocalPath(c, TaskSettings.Required(c, "repo"));
        var registryLocation = TaskSettings.LocalPath(c, c.GetString("registry") is { Length: > 0 } r ? r
            : Environment.GetEnvironmentVariable("KILN_FEATURE_REGISTRY") ?? Path.Combine(".kiln", "kiln.db"));
        var onlineLocation = TaskSettings.LocalPath(c, c.GetString("online_store") is { Length: > 0 } o ? o
            : Environment.GetEnvironmentVariable("KILN_ONLINE_STORE") ?? OnlineStores.DefaultPath);
        var end = TaskSettings.GetTime(c, "end", "now");
        DateTime? start = c.GetString("start") is { Length: > 0 } ? TaskSettings.GetTime(c, "start", "") : null;
        var views = TaskSettings.GetList(c, "views");
        var results = await TaskSettings.CleanAsync(async () =>
        {
            var repo = RepositoryLoader.Load(repoPath);
            await RepositoryValidator.ValidateAsync(repo, c.CancellationToken).ConfigureAwait(false);
            var registryDir = Path.GetDirectoryName(registryLocation);
            if (!registryLocation.Contains("://", StringComparison.Ordinal) && !registryLocation.StartsWith("Host=", StringComparison.OrdinalIgnoreCase) && registryDir is { Length: > 0 })
                Directory.CreateDirectory(registryDir);
            if (!onlineLocation.Contains("://", StringComparison.Ordinal) && Path.GetDirectoryName(onlineLocation) is { Length: > 0 } onlineDir)
                Directory.CreateDirectory(onlineDir);
            var registry = await FeatureRegistry.OpenAsync(registryLocation, c.CancellationToken).ConfigureAwait(false);
            await using var registryScope = registry.ConfigureAwait(false);
            var store = await OnlineStores.OpenAsync(onlineLocation, c.CancellationToken).ConfigureAwait(false);
            await using var storeScope = store.ConfigureAwait(false);
            var progress = new LogProgress(c.Log);
            c.Log.Info(start is { } s
                ? $"materializing {repo.Project} from {s:O} to {end:O} into {onlineLocation}"
                : $"materializing {repo.Project} incrementally up to {end:O} into {onlineLocation}");
            return start is { } from
                ? await Materializer.MaterializeAsync(repo, store, registry, views.Length == 0 ? null : views, from, end, progress, c.CancellationToken).ConfigureAwait(false)
                : await Materializer.MaterializeIncrementalAsync(repo, store, registry, views.Length == 0 ? null : views, end, progress, c.CancellationToken).ConfigureAwait(false);
        }, m => m.Replace("--end", "end", StringComparison.Ordinal).Replace("--start", "start", StringComparison.Ordinal)).ConfigureAwait(false);
        var outputs = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["views"] = string.Join(",", results.Select(x => x.View)),
            ["rows"] = TaskSettings.Output(results.Sum(x => x.Rows)),
            ["written"] = TaskSettings.Output(results.Sum(x => x.Written)),
            ["end"] = end.ToString("O", CultureInfo.InvariantCulture),
            ["online_store"] = onlineLocation,
        };
        foreach (var x in results)
        {
            outputs[$"rows_{x.View}"] = TaskSettings.Output(x.Rows);
            outputs[$"written_{x.View}"] = TaskSettings.Output(x.Written);
        }
        return outputs;
    }

    private sealed class LogProgress(ITaskLog log) : IProgress<string>
    {
        public void Report(string value) => log.Info(value);
    }
}

