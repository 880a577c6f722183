using System.Globalization;
using System.Text.Json.Nodes;
using Kiln.Batch;
using Kiln.Core.Packaging;
using Kiln.Core.PredictionLog;
using Kiln.Features.Definitions;
using Kiln.Features.Offline;
using Kiln.Features.Online;
using Kiln.Features.Registry;
using Kiln.Monitoring.Drift;
using Kiln.Monitoring.Reports;
using Kiln.Pipelines.Definition;
using Kiln.Pipelines.Tasks;

namespace Kiln.Cli.Pipelines;

/// <summary>The pipeline task kinds over data: batch_score, materialize and drift_check.</summary>
internal static class DataTaskKinds
{
    public static TaskKindRegistry AddDataKinds(this TaskKindRegistry registry) => registry
        .Add(new BatchScoreKind()).Add(new MaterializeKind()).Add(new DriftCheckKind());

    internal static string Number(double value) => value.ToString("R", CultureInfo.InvariantCulture);

    internal static string Number(long value) => value.ToString(CultureInfo.InvariantCulture);
}

/// <summary>kind: batch_score — scores a file, directory, glob or SQL table with a model into Parquet parts or a table (kiln batch).</summary>
internal sealed class BatchScoreKind : ITaskKind
{
    public string Name => "batch_score";

    public IEnumerable<TaskConfigError> Validate(TaskDefinition task)
    {
        foreach (var e in ModelTaskKinds.Check(task, Name, ["model", "input", "output"],
            ["keep", "key", "on_bad_row", "resume", "shard", "batch_rows", "partition_rows", "threads", "rejects"])) yield return e;
        foreach (var e in KindSettings.List(task, "keep")) yield return e;
        foreach (var e in KindSettings.OneOf(task, "on_bad_row", "fail", "skip")) yield return e;
        foreach (var e in KindSettings.Bool(task, "resume")) yield return e;
        foreach (var e in KindSettings.Int(task, "batch_rows", 1)) yield return e;
        foreach (var e in KindSettings.Int(task, "partition_rows", 1)) yield return e;
        foreach (var e in KindSettings.Int(task, "threads", 0)) yield return e;
        if (KindSettings.Literal(task, "shard") is { } shard)
        {
            string? problem = null;
            try { ShardSpec.Parse(shard); }
            catch (Kiln.Core.KilnException) { problem = $"'{shard}' is not i/N with 0 <= i < N (for example 0/3)"; }
            if (problem is not null) yield return new TaskConfigError("shard", problem);
        }
        if (KindSettings.Literal(task, "key") is { } key && task.Config["keep"] is { } keep && !KindSettings.IsReference(keep))
        {
            var kept = keep is JsonArray a ? a.Select(x => x?.ToString() ?? "") : (keep.ToString()).Split(',', StringSplitOptions.TrimEntries);
            if (!kept.Contains(key)) yield return new TaskConfigError("key", $"'{key}' must also be a 'keep' column");
        }
    }

    public async Task<IReadOnlyDictionary<string, string>> ExecuteAsync(TaskContext c)
    {
        var resolved = await KindSettings.ResolveModelAsync(c, "model").ConfigureAwait(false);
        var model = ModelTaskKinds.Required(c, "model");
        var output = KindSettings.LocalPath(c, ModelTaskKinds.Required(c, "output"));
        // A retry (or a run resumed after a crash) finishes what the earlier attempt wrote instead of refusing its output.
        var resume = KindSettings.GetBool(c, "resume", c.Attempt > 1);
        var options = new BatchOptions
        {
            Model = model,
            Input = KindSettings.LocalPath(c, ModelTaskKinds.Required(c, "input")),
            Output = output,
            Keep = KindSettings.GetList(c, "keep"),
            Key = c.GetString("key") is { Length: > 0 } k ? k : null,
            Shard = Shard(c),
            OnBadRow = KindSettings.GetOneOf(c, "on_bad_row", "fail", "skip") == "skip" ? BadRowPolicy.Skip : BadRowPolicy.Fail,
            Resume = resume,
            BatchRows = KindSettings.GetInt(c, "batch_rows", 65_536, 1),
            PartitionRows = KindSettings.GetInt(c, "partition_rows", 1_000_000, 1),
            Threads = KindSettings.GetInt(c, "threads", 0, 0),
            RejectsDirectory = c.GetString("rejects") is { Length: > 0 } r ? KindSettings.LocalPath(c, r) : null,
            Resolved = resolved,
        };
        c.Log.Info($"scoring {options.Input} with {model} into {output}{(resume ? " (resuming)" : "")}");
        var job = new BatchJob(options);
        var result = await KindSettings.CleanAsync(async () =>
        {
            var run = job.RunAsync(c.CancellationToken);
            while (!c.CancellationToken.IsCancellationRequested
                && await Task.WhenAny(run, Task.Delay(TimeSpan.FromSeconds(5), c.CancellationToken)).ConfigureAwait(false) != run)
            {
                if (job.Status.Scoring) c.Log.Info($"{job.Status.RowsDone:N0} rows, {job.Status.PartsDone} parts" + (job.Status.RowsTotal is { } t ? $" of {t:N0} rows" : ""));
            }
            return await run.ConfigureAwait(false);
        }, Rewrite).ConfigureAwait(false);
        c.Log.Info($"{result.Rows:N0} rows in {result.PartsWritten} parts ({result.PartsResumed} already done), {result.Rejected:N0} rejected, in {result.Seconds:0.0} s -> {result.Output}");
        var outputs = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["output"] = result.Output,
            ["rows"] = DataTaskKinds.Number(result.Rows),
            ["rejected"] = DataTaskKinds.Number(result.Rejected),
            ["unseen_categories"] = DataTaskKinds.Number(result.UnseenCategories),
            ["parts_written"] = DataTaskKinds.Number(result.PartsWritten),
            ["parts_resumed"] = DataTaskKinds.Number(result.PartsResumed),
            ["package"] = resolved.PackageDirectory,
            ["model_version"] = resolved.RegistryVersion?.ToString(CultureInfo.InvariantCulture) ?? "",
        };
        if (result.RejectsDirectory is { } rejects) outputs["rejects"] = rejects;
        return outputs;
    }

    private static ShardSpec Shard(TaskContext c)
    {
        if (c.GetString("shard") is not { Length: > 0 } text) return ShardSpec.All;
        try
        {
            return ShardSpec.Parse(text);
        }
        catch (Kiln.Core.KilnException)
        {
            throw new TaskFailedException($"'shard' is '{text}', not i/N with 0 <= i < N (for example 0/3)");
        }
    }

    /// <summary>kiln batch names its options as flags; a task names them as settings.</summary>
    private static string Rewrite(string message) => message
        .Replace("pass --resume to finish it", "set 'resume: true' to finish it", StringComparison.Ordinal)
        .Replace("--batch-rows", "batch_rows", StringComparison.Ordinal).Replace("--partition-rows", "partition_rows", StringComparison.Ordinal)
        .Replace("--keep", "keep", StringComparison.Ordinal).Replace("--key", "key", StringComparison.Ordinal)
        .Replace("--threads", "threads", StringComparison.Ordinal).Replace("--resume", "resume", StringComparison.Ordinal)
        .Replace("--model", "model", StringComparison.Ordinal);
}

/// <summary>
/// kind: materialize — loads the latest feature values per entity into the online store, for a window
/// [start, end] or (without start) incrementally from where each view last ended (kiln features materialize).
/// </summary>
internal sealed class MaterializeKind : ITaskKind
{
    public string Name => "materialize";

    public IEnumerable<TaskConfigError> Validate(TaskDefinition task)
    {
        foreach (var e in ModelTaskKinds.Check(task, Name, ["repo"], ["start", "end", "views", "registry", "online_store"])) yield return e;
        foreach (var e in KindSettings.Time(task, "start")) yield return e;
        foreach (var e in KindSettings.Time(task, "end")) yield return e;
        foreach (var e in KindSettings.List(task, "views")) yield return e;
        if (KindSettings.Literal(task, "start") is { } s && KindSettings.Literal(task, "end") is { } en
            && KindSettings.ParseTime(s) is { } start && KindSettings.ParseTime(en) is { } end && end < start)
            yield return new TaskConfigError("end", $"{en} is before start {s}");
    }

    public async Task<IReadOnlyDictionary<string, string>> ExecuteAsync(TaskContext c)
    {
        var repoPath = KindSettings.LocalPath(c, ModelTaskKinds.Required(c, "repo"));
        var registryLocation = KindSettings.LocalPath(c, c.GetString("registry") is { Length: > 0 } r ? r
            : Environment.GetEnvironmentVariable("KILN_FEATURE_REGISTRY") ?? Path.Combine(".kiln", "kiln.db"));
        var onlineLocation = KindSettings.LocalPath(c, c.GetString("online_store") is { Length: > 0 } o ? o
            : Environment.GetEnvironmentVariable("KILN_ONLINE_STORE") ?? OnlineStores.DefaultPath);
        var end = KindSettings.GetTime(c, "end", "now");
        DateTime? start = c.GetString("start") is { Length: > 0 } ? KindSettings.GetTime(c, "start", "") : null;
        var views = KindSettings.GetList(c, "views");
        var results = await KindSettings.CleanAsync(async () =>
        {
            var repo = RepositoryLoader.Load(repoPath);
            await RepositoryValidator.ValidateAsync(repo, c.CancellationToken).ConfigureAwait(false);
            var registryDir = Path.GetDirectoryName(registryLocation);
            if (!registryLocation.Contains("://", StringComparison.Ordinal) && !registryLocation.StartsWith("Host=", StringComparison.OrdinalIgnoreCase) && registryDir is { Length: > 0 })
                Directory.CreateDirectory(registryDir);
            if (!onlineLocation.Contains("://", StringComparison.Ordinal) && Path.GetDirectoryName(onlineLocation) is { Length: > 0 } onlineDir)
                Directory.CreateDirectory(onlineDir);
            await using var registry = await FeatureRegistry.OpenAsync(registryLocation, c.CancellationToken).ConfigureAwait(false);
            await using var store = await OnlineStores.OpenAsync(onlineLocation, c.CancellationToken).ConfigureAwait(false);
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
            ["rows"] = DataTaskKinds.Number(results.Sum(x => x.Rows)),
            ["written"] = DataTaskKinds.Number(results.Sum(x => x.Written)),
            ["end"] = end.ToString("O", CultureInfo.InvariantCulture),
            ["online_store"] = onlineLocation,
        };
        foreach (var x in results)
        {
            outputs[$"rows_{x.View}"] = DataTaskKinds.Number(x.Rows);
            outputs[$"written_{x.View}"] = DataTaskKinds.Number(x.Written);
        }
        return outputs;
    }

    private sealed class LogProgress(ITaskLog log) : IProgress<string>
    {
        public void Report(string value) => log.Info(value);
    }
}

/// <summary>
/// kind: drift_check — drift of a data file (or kiln serve's prediction log) against a model package's
/// reference profile; writes an HTML and a JSON report, and may fail or skip what follows.
/// </summary>
internal sealed class DriftCheckKind : ITaskKind
{
    private static readonly string[] Actions = ["continue", "fail", "skip"];

    public string Name => "drift_check";

    public IEnumerable<TaskConfigError> Validate(TaskDefinition task)
    {
        foreach (var e in ModelTaskKinds.Check(task, Name, ["model", "current"],
            ["report", "report_json", "drift_share_threshold", "test", "threshold", "columns", "on_drift", "on_no_drift", "fail_on_drift"])) yield return e;
        foreach (var e in KindSettings.Number(task, "drift_share_threshold", 0, 1)) yield return e;
        foreach (var e in KindSettings.Number(task, "threshold", 0, double.MaxValue)) yield return e;
        foreach (var e in KindSettings.OneOf(task, "on_drift", Actions)) yield return e;
        foreach (var e in KindSettings.OneOf(task, "on_no_drift", "continue", "skip")) yield return e;
        foreach (var e in KindSettings.Bool(task, "fail_on_drift")) yield return e;
        if (task.Config["fail_on_drift"] is not null && task.Config["on_drift"] is not null)
            yield return new TaskConfigError("fail_on_drift", "give either fail_on_drift or on_drift, not both");
        if (KindSettings.Literal(task, "test") is { } test && !StatTests.TryParse(test, out _))
            yield return new TaskConfigError("test", $"unknown test '{test}' ({TestNames})");
        if (task.Config["columns"] is { } columns)
        {
            if (columns is not JsonObject map)
            {
                yield return new TaskConfigError("columns", "must be a mapping of column to test, e.g. age: psi:0.2 or age: {test: psi, threshold: 0.2}");
                yield break;
            }
            foreach (var (column, spec) in map)
            {
                if (KindSettings.IsReference(spec)) continue;
                if (ColumnOptions(spec, out var problem) is null) yield return new TaskConfigError("columns", $"column '{column}': {problem}");
            }
        }
    }

    private const string TestNames = "ks, chisquare, z, wasserstein, jensenshannon, psi, hellinger";

    /// <summary>"psi", "psi:0.2" or {test: psi, threshold: 0.2}.</summary>
    private static ColumnDriftOptions? ColumnOptions(JsonNode? spec, out string problem)
    {
        problem = "";
        string? testName;
        string? thresholdText;
        switch (spec)
        {
            case JsonObject o:
                if (o.Select(kv => kv.Key).FirstOrDefault(k => k is not ("test" or "threshold")) is { } extra)
                {
                    problem = $"unknown key '{extra}' (test, threshold)";
                    return null;
                }
                testName = o["test"]?.ToString();
                thresholdText = o["threshold"]?.ToString();
                break;
            case JsonValue v:
                var s = v.ToString();
                var colon = s.IndexOf(':', StringComparison.Ordinal);
                testName = colon < 0 ? s : s[..colon];
                thresholdText = colon < 0 ? null : s[(colon + 1)..];
                break;
            default:
                problem = "must be TEST, TEST:THRESHOLD or {test, threshold}";
                return null;
        }
        StatTest? test = null;
        if (!string.IsNullOrWhiteSpace(testName))
        {
            if (!StatTests.TryParse(testName, out var t))
            {
                problem = $"unknown test '{testName}' ({TestNames})";
                return null;
            }
            test = t;
        }
        double? threshold = null;
        if (thresholdText is not null)
        {
            if (!double.TryParse(thresholdText, NumberStyles.Float, CultureInfo.InvariantCulture, out var x) || x < 0)
            {
                problem = $"threshold '{thresholdText}' is not a non-negative number";
                return null;
            }
            threshold = x;
        }
        if (test is null && threshold is null)
        {
            problem = "names neither a test nor a threshold";
            return null;
        }
        return new ColumnDriftOptions { Test = test, Threshold = threshold };
    }

    public async Task<IReadOnlyDictionary<string, string>> ExecuteAsync(TaskContext c)
    {
        var options = Options(c);
        var onDrift = KindSettings.GetOneOf(c, "on_drift", Actions) ?? (KindSettings.GetBool(c, "fail_on_drift", false) ? "fail" : "continue");
        var onNoDrift = KindSettings.GetOneOf(c, "on_no_drift", "continue", "skip") ?? "continue";
        var resolved = await KindSettings.ResolveModelAsync(c, "model").ConfigureAwait(false);
        var (dir, version) = (resolved.PackageDirectory, resolved.RegistryVersion?.ToString(CultureInfo.InvariantCulture));
        var html = KindSettings.LocalPath(c, c.GetString("report") is { Length: > 0 } h ? h : Path.Combine(KindSettings.TaskDirectory(c), "drift.html"));
        var json = KindSettings.LocalPath(c, c.GetString("report_json") is { Length: > 0 } j ? j : Path.Combine(KindSettings.TaskDirectory(c), "drift.json"));

        var report = await KindSettings.CleanAsync(async () =>
        {
            var package = ModelPackage.Load(dir);
            var current = Current(c, KindSettings.LocalPath(c, ModelTaskKinds.Required(c, "current")), package.Name);
            c.Log.Info($"drift of {current} against the reference profile of {package.Name}{(version is null ? "" : $" version {version}")}");
            var r = await DataDrift.CompareAsync(package, current, options, c.CancellationToken).ConfigureAwait(false);
            foreach (var path in new[] { html, json }) Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            await Commands.Cli.WriteAtomicAsync(json, DriftJson.Serialize(r), null, c.CancellationToken).ConfigureAwait(false);
            await Commands.Cli.WriteAtomicAsync(html, DriftHtmlReport.Render(r, $"Drift: {package.Name}"), null, c.CancellationToken).ConfigureAwait(false);
            return r;
        }).ConfigureAwait(false);

        var drifted = report.Features.Where(f => f.Drifted == true).OrderByDescending(DriftReport.Severity).Select(f => f.Name).ToList();
        foreach (var f in report.Features.Where(f => f.Test is not null).OrderByDescending(DriftReport.Severity))
        {
            c.Log.Info($"{f.Name}: {f.Test} {f.Score?.ToString("G4", CultureInfo.InvariantCulture) ?? "-"} (threshold {f.Threshold?.ToString("G4", CultureInfo.InvariantCulture) ?? "-"}): {(f.Drifted == true ? "drift" : "ok")}");
        }
        foreach (var w in report.Warnings) c.Log.Info($"warning: {w}");
        var verdict = $"{(report.DatasetDrift ? "dataset drift" : "no dataset drift")}: {report.FeaturesDrifted}/{report.FeaturesTested} features drifted " +
            $"(share {report.DriftedShare.ToString("0.###", CultureInfo.InvariantCulture)}, threshold {report.DriftShareThreshold.ToString(CultureInfo.InvariantCulture)}), {report.CurrentRows:N0} rows; report {html}";
        c.Log.Info(verdict);
        if (report.DatasetDrift && onDrift == "fail") throw new TaskFailedException(verdict);
        if (report.DatasetDrift && onDrift == "skip") throw new TaskSkippedException(verdict);
        if (!report.DatasetDrift && onNoDrift == "skip") throw new TaskSkippedException(verdict);
        return new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["dataset_drift"] = report.DatasetDrift ? "true" : "false",
            ["drift_share"] = DataTaskKinds.Number(report.DriftedShare),
            ["drifted_features"] = string.Join(",", drifted),
            ["features_drifted"] = DataTaskKinds.Number(report.FeaturesDrifted),
            ["features_tested"] = DataTaskKinds.Number(report.FeaturesTested),
            ["current_rows"] = DataTaskKinds.Number(report.CurrentRows),
            ["report"] = html,
            ["report_json"] = json,
            ["package"] = dir,
            ["model_version"] = version ?? "",
        };
    }

    /// <summary>
    /// The root of kiln serve's prediction log holds one model=NAME folder per model: read only the package's model.
    /// </summary>
    private static string Current(TaskContext c, string current, string model)
    {
        if (!Directory.Exists(current)) return current;
        var models = PredictionLogLayout.Models(current);
        if (models.Count == 0) return current;
        var mine = PredictionLogLayout.ModelDirectory(current, model);
        if (Directory.Exists(mine))
        {
            if (models.Count > 1) c.Log.Info($"current: reading the prediction log of model {model} only ({mine})");
            return mine;
        }
        throw new TaskFailedException($"'current' {current} is a prediction log without model {model} (it has {string.Join(", ", models)})");
    }

    private static DriftOptions Options(TaskContext c)
    {
        StatTest? test = null;
        if (c.GetString("test") is { Length: > 0 } name)
        {
            if (!StatTests.TryParse(name, out var t)) throw new TaskFailedException($"'test' is '{name}', not one of {TestNames}");
            test = t;
        }
        var perColumn = new Dictionary<string, ColumnDriftOptions>(StringComparer.Ordinal);
        if (c.Config["columns"] is JsonObject map)
        {
            foreach (var (column, spec) in map)
                perColumn[column] = ColumnOptions(spec, out var problem) ?? throw new TaskFailedException($"'columns' column '{column}': {problem}");
        }
        return new DriftOptions
        {
            DriftShare = KindSettings.GetNumber(c, "drift_share_threshold", 0, 1) ?? 0.5,
            Test = test,
            Threshold = KindSettings.GetNumber(c, "threshold", 0, double.MaxValue),
            Columns = perColumn,
        };
    }
}
