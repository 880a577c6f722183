using System.Globalization;
using System.Text.Json.Nodes;
using Kiln.Core;
using Kiln.Core.Packaging;
using Kiln.Core.PredictionLog;
using Kiln.Monitoring.Drift;
using Kiln.Monitoring.Reports;
using Kiln.Pipelines.Definition;
using Kiln.Pipelines.Tasks;

namespace Kiln.Monitoring.Pipelines;

/// <summary>The monitoring's pipeline task kinds.</summary>
public static class MonitoringTaskKinds
{
    public static TaskKindRegistry AddMonitoringKinds(this TaskKindRegistry registry) => registry.Add(new DriftCheckKind());
}

/// <summary>
/// kind: drift_check — drift of a data file (or kiln serve's prediction log) against a model package's
/// reference profile; writes an HTML and a JSON report, and may fail or skip what follows.
/// </summary>
public sealed class DriftCheckKind : ITaskKind
{
    private static readonly string[] Actions = ["continue", "fail", "skip"];

    public string Name => "drift_check";

    public IEnumerable<TaskConfigError> Validate(TaskDefinition task)
    {
        foreach (var e in TaskSettings.Check(task, Name, ["model", "current"],
            ["report", "report_json", "drift_share_threshold", "test", "threshold", "columns", "on_drift", "on_no_drift", "fail_on_drift"])) yield return e;
        foreach (var e in TaskSettings.Number(task, "drift_share_threshold", 0, 1)) yield return e;
        foreach (var e in TaskSettings.Number(task, "threshold", 0, double.MaxValue)) yield return e;
        foreach (var e in TaskSettings.OneOf(task, "on_drift", Actions)) yield return e;
        foreach (var e in TaskSettings.OneOf(task, "on_no_drift", "continue", "skip")) yield return e;
        foreach (var e in TaskSettings.Bool(task, "fail_on_drift")) yield return e;
        if (task.Config["fail_on_drift"] is not null && task.Config["on_drift"] is not null)
            yield return new TaskConfigError("fail_on_drift", "give either fail_on_drift or on_drift, not both");
        if (TaskSettings.Literal(task, "test") is { } test && !StatTests.TryParse(test, out _))
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
                if (TaskSettings.IsReference(spec)) continue;
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
        var onDrift = TaskSettings.GetOneOf(c, "on_drift", Actions) ?? (TaskSettings.GetBool(c, "fail_on_drift", false) ? "fail" : "continue");
        var onNoDrift = TaskSettings.GetOneOf(c, "on_no_drift", "continue", "skip") ?? "continue";
        var resolved = await TaskSettings.ResolveModelAsync(c, "model").ConfigureAwait(false);
        var (dir, version) = (resolved.PackageDirectory, resolved.RegistryVersion?.ToString(CultureInfo.InvariantCulture));
        var html = TaskSettings.LocalPath(c, c.GetString("report") is { Length: > 0 } h ? h : Path.Combine(TaskSettings.TaskDirectory(c), "drift.html"));
        var json = TaskSettings.LocalPath(c, c.GetString("report_json") is { Length: > 0 } j ? j : Path.Combine(TaskSettings.TaskDirectory(c), "drift.json"));

        var report = await TaskSettings.CleanAsync(async () =>
        {
            var package = ModelPackage.Load(dir);
            var current = Current(c, TaskSettings.LocalPath(c, TaskSettings.Required(c, "current")), package.Name);
            c.Log.Info($"drift of {current} against the reference profile of {package.Name}{(version is null ? "" : $" version {version}")}");
            var r = await DataDrift.CompareAsync(package, current, options, c.CancellationToken).ConfigureAwait(false);
            foreach (var path in new[] { html, json }) Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            await AtomicFile.WriteAllTextAsync(json, DriftJson.Serialize(r), c.CancellationToken).ConfigureAwait(false);
            await AtomicFile.WriteAllTextAsync(html, DriftHtmlReport.Render(r, $"Drift: {package.Name}"), c.CancellationToken).ConfigureAwait(false);
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
            ["drift_share"] = TaskSettings.Output(report.DriftedShare),
            ["drifted_features"] = string.Join(",", drifted),
            ["features_drifted"] = TaskSettings.Output(report.FeaturesDrifted),
            ["features_tested"] = TaskSettings.Output(report.FeaturesTested),
            ["current_rows"] = TaskSettings.Output(report.CurrentRows),
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
            DriftShare = TaskSettings.GetNumber(c, "drift_share_threshold", 0, 1) ?? 0.5,
            Test = test,
            Threshold = TaskSettings.GetNumber(c, "threshold", 0, double.MaxValue),
            Columns = perColumn,
        };
    }
}
