using System.Globalization;
using System.Text.Json.Nodes;
using Kiln.Core;
using Kiln.Core.Data;
using Kiln.Core.Packaging;
using Kiln.Pipelines.Definition;
using Kiln.Pipelines.Tasks;
using Kiln.Scoring;
using Kiln.Tracking;
using Kiln.Training;

namespace Kiln.Cli.Pipelines;

/// <summary>
/// The pipeline task kinds that close the loop: train, evaluate, gate, register and set_alias.
/// Each takes its settings from the task's YAML; the tracking store is the task's
/// <c>tracking_uri</c>, else the pipeline parameter <c>tracking_uri</c>, else (in kiln server) the server's own store,
/// else $KILN_TRACKING_URI, else ./.kiln.
/// </summary>
internal static class ModelTaskKinds
{
    public static TaskKindRegistry AddModelKinds(this TaskKindRegistry registry) => registry
        .Add(new TrainKind()).Add(new EvaluateKind()).Add(new GateKind()).Add(new RegisterKind()).Add(new SetAliasKind());

    internal static string TrackingUri(TaskContext c) =>
        TrackingStores.ResolveUri(c.GetString("tracking_uri") ?? c.Parameters.GetValueOrDefault("tracking_uri")
            ?? (c.Services?.GetService(typeof(KindDefaults)) as KindDefaults)?.TrackingUri);

    internal static IEnumerable<TaskConfigError> Check(TaskDefinition task, string kind, string[] required, string[] optional)
    {
        foreach (var r in required)
            if (task.Config[r] is null) yield return new TaskConfigError(null, $"kind {kind} needs '{r}'");
        foreach (var (key, _) in task.Config)
            if (!required.Contains(key) && !optional.Contains(key) && key != "tracking_uri")
                yield return new TaskConfigError(key, $"is not a setting of kind {kind} ({string.Join(", ", required.Concat(optional).Append("tracking_uri"))})");
    }

    internal static string Required(TaskContext c, string key) =>
        c.GetString(key) is { Length: > 0 } v ? v : throw new TaskFailedException($"'{key}' is empty");

    internal static Dictionary<string, string> MetricOutputs(ModelPackage p)
    {
        var o = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (k, v) in p.Metadata.Metrics) o[k] = v.ToString("R", CultureInfo.InvariantCulture);
        return o;
    }
}

/// <summary>What a host tells the kinds about itself: kiln server's own tracking store is the default there.</summary>
internal sealed record KindDefaults(string? TrackingUri);

/// <summary>kind: train — trains a spec (optionally with other data or seed); outputs package and the holdout metrics.</summary>
internal sealed class TrainKind : ITaskKind
{
    public string Name => "train";

    public IEnumerable<TaskConfigError> Validate(TaskDefinition task) =>
        ModelTaskKinds.Check(task, Name, ["spec"], ["data", "seed", "out"]);

    public async Task<IReadOnlyDictionary<string, string>> ExecuteAsync(TaskContext c)
    {
        var specPath = Path.GetFullPath(ModelTaskKinds.Required(c, "spec"), c.WorkingDirectory);
        var spec = TrainingSpec.Load(specPath);
        if (c.GetString("data") is { Length: > 0 } data) spec = spec with { Data = Path.GetFullPath(data, c.WorkingDirectory), FeaturesFrom = null };
        if (c.GetString("seed") is { Length: > 0 } seedText)
        {
            if (!int.TryParse(seedText, CultureInfo.InvariantCulture, out var seed)) throw new TaskFailedException($"'seed' {seedText} is not a whole number");
            spec = spec with { Seed = seed };
        }
        var output = c.GetString("out") is { Length: > 0 } o ? Path.GetFullPath(o, c.WorkingDirectory)
            : Path.Combine(c.WorkingDirectory, ".kiln", "pipeline-runs", c.RunId, c.Task.Name, spec.Name);
        c.Log.Info($"training {spec.Name} ({spec.Trainer.Kind}) on {spec.Data}");
        var result = await Trainer.TrainAsync(spec, output, new LogProgress(c.Log), c.CancellationToken).ConfigureAwait(false);
        var outputs = ModelTaskKinds.MetricOutputs(ModelPackage.Load(result.PackageDirectory));
        outputs["package"] = result.PackageDirectory;
        c.Log.Info($"package {result.PackageDirectory}: {string.Join(", ", result.Metrics.Select(m => $"{m.Key}={m.Value:0.####}"))}");
        return outputs;
    }

    private sealed class LogProgress(ITaskLog log) : ITrainingProgress
    {
        public void Stage(string description) => log.Info(description);

        public void RowsRead(long rows) { }
    }
}

/// <summary>kind: evaluate — the package's holdout metrics, or metrics on other labelled data scored through the package.</summary>
internal sealed class EvaluateKind : ITaskKind
{
    public string Name => "evaluate";

    public IEnumerable<TaskConfigError> Validate(TaskDefinition task) => ModelTaskKinds.Check(task, Name, ["package"], ["data"]);

    public async Task<IReadOnlyDictionary<string, string>> ExecuteAsync(TaskContext c)
    {
        var package = ModelPackage.Load(Path.GetFullPath(ModelTaskKinds.Required(c, "package"), c.WorkingDirectory));
        if (c.GetString("data") is not { Length: > 0 } data) return ModelTaskKinds.MetricOutputs(package);
        var metrics = await Evaluation.ScoreAsync(package, Path.GetFullPath(data, c.WorkingDirectory), c.CancellationToken).ConfigureAwait(false);
        c.Log.Info($"on {data}: {string.Join(", ", metrics.Select(m => $"{m.Key}={m.Value:0.####}"))}");
        return metrics.ToDictionary(m => m.Key, m => m.Value.ToString("R", CultureInfo.InvariantCulture));
    }
}

/// <summary>
/// kind: gate — passes when every threshold holds and (with beats_alias) the package beats the
/// alias's current version on the same labelled data; otherwise the task and its dependents are skipped.
/// </summary>
internal sealed class GateKind : ITaskKind
{
    public string Name => "gate";

    public IEnumerable<TaskConfigError> Validate(TaskDefinition task)
    {
        foreach (var e in ModelTaskKinds.Check(task, Name, ["package"], ["thresholds", "beats_alias", "data"])) yield return e;
        if (task.Config["thresholds"] is { } t && t is not JsonObject) yield return new TaskConfigError("thresholds", "must be a mapping of metric to condition, e.g. auc: \">= 0.8\"");
        if (task.Config["beats_alias"] is { } b && (b is not JsonObject o || o["model"] is null || o["alias"] is null || o["metric"] is null))
            yield return new TaskConfigError("beats_alias", "must be a mapping with model, alias and metric");
    }

    public async Task<IReadOnlyDictionary<string, string>> ExecuteAsync(TaskContext c)
    {
        var package = ModelPackage.Load(Path.GetFullPath(ModelTaskKinds.Required(c, "package"), c.WorkingDirectory));
        var data = c.GetString("data") is { Length: > 0 } d ? Path.GetFullPath(d, c.WorkingDirectory) : null;
        var mine = data is null ? package.Metadata.Metrics.ToDictionary(m => m.Key, m => m.Value)
            : await Evaluation.ScoreAsync(package, data, c.CancellationToken).ConfigureAwait(false);
        var outputs = mine.ToDictionary(m => m.Key, m => m.Value.ToString("R", CultureInfo.InvariantCulture));

        if (c.Config["thresholds"] is JsonObject thresholds)
        {
            foreach (var (metric, node) in thresholds)
            {
                var condition = node?.ToString() ?? "";
                if (!mine.TryGetValue(metric, out var value)) throw new TaskFailedException($"thresholds: the package has no metric '{metric}' ({string.Join(", ", mine.Keys)})");
                if (!Holds(value, condition)) throw new TaskSkippedException($"{metric} = {value:0.####} does not satisfy '{condition}'");
                c.Log.Info($"{metric} = {value:0.####} satisfies '{condition}'");
            }
        }
        if (c.Config["beats_alias"] is JsonObject beats)
        {
            var model = beats["model"]!.ToString();
            var alias = beats["alias"]!.ToString();
            var metric = beats["metric"]!.ToString();
            if (!mine.TryGetValue(metric, out var value)) throw new TaskFailedException($"beats_alias: the package has no metric '{metric}'");
            await using var stores = TrackingStores.Open(ModelTaskKinds.TrackingUri(c));
            ResolvedModel holder;
            try
            {
                holder = await new RegistryModelLocator(stores).ResolveAsync($"models:/{model}@{alias}", c.CancellationToken).ConfigureAwait(false);
            }
            catch (TrackingException e) when (e.Code == ErrorCode.ResourceDoesNotExist)
            {
                c.Log.Info($"models:/{model}@{alias} does not exist yet: nothing to beat");
                outputs["previous"] = "";
                return outputs;
            }
            var holderPackage = ModelPackage.Load(holder.PackageDirectory);
            var theirs = data is null ? holderPackage.Metadata.Metrics.GetValueOrDefault(metric, double.NaN)
                : (await Evaluation.ScoreAsync(holderPackage, data, c.CancellationToken).ConfigureAwait(false)).GetValueOrDefault(metric, double.NaN);
            var lowerIsBetter = metric is "rmse" or "mae" or "log_loss";
            var better = double.IsNaN(theirs) || (lowerIsBetter ? value < theirs : value > theirs);
            outputs["previous"] = holder.RegistryVersion?.ToString(CultureInfo.InvariantCulture) ?? "";
            outputs[$"previous_{metric}"] = theirs.ToString("R", CultureInfo.InvariantCulture);
            if (!better) throw new TaskSkippedException($"{metric} {value:0.####} does not beat version {holder.RegistryVersion} of {model}@{alias} ({theirs:0.####})");
            c.Log.Info($"{metric} {value:0.####} beats version {holder.RegistryVersion} of {model}@{alias} ({theirs:0.####})");
        }
        return outputs;
    }

    /// <summary>Evaluates a condition like "&gt;= 0.8", "&lt; 0.3" or "0.9" (meaning &gt;=).</summary>
    internal static bool Holds(double value, string condition)
    {
        var s = condition.Trim();
        string op = ">=";
        foreach (var candidate in new[] { ">=", "<=", "==", ">", "<" })
        {
            if (s.StartsWith(candidate, StringComparison.Ordinal)) { op = candidate; s = s[candidate.Length..].Trim(); break; }
        }
        if (!double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var bound))
            throw new TaskFailedException($"'{condition}' is not a condition (use >=, >, <=, < or == and a number)");
        return op switch { ">=" => value >= bound, ">" => value > bound, "<=" => value <= bound, "<" => value < bound, _ => value == bound };
    }
}

/// <summary>kind: register — uploads the package as a run's artifacts and registers it as a new version; outputs version and model_uri.</summary>
internal sealed class RegisterKind : ITaskKind
{
    public string Name => "register";

    public IEnumerable<TaskConfigError> Validate(TaskDefinition task) => ModelTaskKinds.Check(task, Name, ["model", "package"], ["experiment"]);

    public async Task<IReadOnlyDictionary<string, string>> ExecuteAsync(TaskContext c)
    {
        var model = ModelTaskKinds.Required(c, "model");
        var packageDir = Path.GetFullPath(ModelTaskKinds.Required(c, "package"), c.WorkingDirectory);
        var package = ModelPackage.Load(packageDir);
        await using var stores = TrackingStores.Open(ModelTaskKinds.TrackingUri(c));
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

    public IEnumerable<TaskConfigError> Validate(TaskDefinition task) => ModelTaskKinds.Check(task, Name, ["model", "alias", "version"], []);

    public async Task<IReadOnlyDictionary<string, string>> ExecuteAsync(TaskContext c)
    {
        var model = ModelTaskKinds.Required(c, "model");
        var alias = ModelTaskKinds.Required(c, "alias");
        if (!int.TryParse(ModelTaskKinds.Required(c, "version"), CultureInfo.InvariantCulture, out var version))
            throw new TaskFailedException($"'version' {c.GetString("version")} is not a version number");
        await using var stores = TrackingStores.Open(ModelTaskKinds.TrackingUri(c));
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

/// <summary>Scores labelled data through a package and computes the task's metrics.</summary>
internal static class Evaluation
{
    public static async Task<Dictionary<string, double>> ScoreAsync(ModelPackage package, string data, CancellationToken ct)
    {
        var label = package.Signature.Label ?? throw new KilnException($"{package.Directory}: the package names no label column");
        var requests = package.Signature.Inputs
            .Select(i => new ColumnRequest(i.Name, i.Type == Kiln.Core.Profiling.ColumnKind.Numeric ? ColumnType.Numeric : ColumnType.Text))
            .Append(new ColumnRequest(label, package.Signature.Task == ModelTask.Regression ? ColumnType.Numeric : ColumnType.Text)).ToList();
        var table = await TableReader.ReadAllAsync(DataSources.Resolve(data), requests, null, ct).ConfigureAwait(false);
        using var scorer = Scorers.Open(package);
        var predictions = scorer.ScoreAll(table);
        var n = table.RowCount;
        if (n == 0) throw new KilnException($"{data}: no rows to evaluate on");
        if (package.Signature.Task == ModelTask.Regression)
        {
            var y = table.Numeric(label).Values;
            double se = 0, ae = 0;
            for (var i = 0; i < n; i++) { var e = predictions[i].Value - y[i]; se += e * e; ae += Math.Abs(e); }
            return new() { ["rmse"] = Math.Sqrt(se / n), ["mae"] = ae / n };
        }
        var truth = table.Text(label).Values;
        var correct = 0;
        for (var i = 0; i < n; i++) if (predictions[i].Label == truth[i]) correct++;
        var metrics = new Dictionary<string, double> { ["accuracy"] = correct / (double)n };
        if (package.Signature.Task == ModelTask.Binary && package.Signature.ClassLabels is [_, var positive])
            metrics["auc"] = Auc([.. predictions.Select(p => p.Value)], [.. truth.Take(n).Select(t => t == positive)]);
        return metrics;
    }

    /// <summary>Area under the ROC curve by the rank-sum (Mann–Whitney) formula, ties counted half.</summary>
    public static double Auc(double[] scores, bool[] positive)
    {
        var order = Enumerable.Range(0, scores.Length).OrderBy(i => scores[i]).ToArray();
        var ranks = new double[scores.Length];
        for (var i = 0; i < order.Length;)
        {
            var j = i;
            while (j + 1 < order.Length && scores[order[j + 1]] == scores[order[i]]) j++;
            var rank = (i + j) / 2.0 + 1;
            for (var k = i; k <= j; k++) ranks[order[k]] = rank;
            i = j + 1;
        }
        double pos = positive.Count(p => p), neg = positive.Length - pos, sum = 0;
        for (var i = 0; i < ranks.Length; i++) if (positive[i]) sum += ranks[i];
        return pos == 0 || neg == 0 ? double.NaN : (sum - pos * (pos + 1) / 2) / (pos * neg);
    }
}
