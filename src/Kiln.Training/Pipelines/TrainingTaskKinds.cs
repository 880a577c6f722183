using System.Globalization;
using System.Text.Json.Nodes;
using Kiln.Core;
using Kiln.Core.Data;
using Kiln.Core.Packaging;
using Kiln.Pipelines.Definition;
using Kiln.Pipelines.Tasks;
using Kiln.Scoring;
using Kiln.Tracking;
using Kiln.Tracking.Pipelines;

namespace Kiln.Training.Pipelines;

/// <summary>
/// The pipeline task kinds of training: train, evaluate and gate. A gate's beats_alias reads the registry
/// through the task's tracking store (<see cref="RegistryTaskKinds.TrackingUri"/>).
/// </summary>
public static class TrainingTaskKinds
{
    public static TaskKindRegistry AddTrainingKinds(this TaskKindRegistry registry) => registry
        .Add(new TrainKind()).Add(new EvaluateKind()).Add(new GateKind());

    internal static Dictionary<string, string> MetricOutputs(ModelPackage p)
    {
        var o = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (k, v) in p.Metadata.Metrics) o[k] = TaskSettings.Output(v);
        return o;
    }
}

/// <summary>kind: train — trains a spec (optionally with other data or seed); outputs package and the holdout metrics.</summary>
internal sealed class TrainKind : ITaskKind
{
    public string Name => "train";

    public IEnumerable<TaskConfigError> Validate(TaskDefinition task) =>
        TaskSettings.Check(task, Name, ["spec"], ["data", "seed", "out"]);

    public async Task<IReadOnlyDictionary<string, string>> ExecuteAsync(TaskContext c)
    {
        var specPath = Path.GetFullPath(TaskSettings.Required(c, "spec"), c.WorkingDirectory);
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
        var outputs = TrainingTaskKinds.MetricOutputs(ModelPackage.Load(result.PackageDirectory));
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

    public IEnumerable<TaskConfigError> Validate(TaskDefinition task) => TaskSettings.Check(task, Name, ["package"], ["data"]);

    public async Task<IReadOnlyDictionary<string, string>> ExecuteAsync(TaskContext c)
    {
        var package = ModelPackage.Load(Path.GetFullPath(TaskSettings.Required(c, "package"), c.WorkingDirectory));
        if (c.GetString("data") is not { Length: > 0 } data) return TrainingTaskKinds.MetricOutputs(package);
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
        foreach (var e in TaskSettings.Check(task, Name, ["package"], ["thresholds", "beats_alias", "data"])) yield return e;
        if (task.Config["thresholds"] is { } t && t is not JsonObject) yield return new TaskConfigError("thresholds", "must be a mapping of metric to condition, e.g. auc: \">= 0.8\"");
        if (task.Config["beats_alias"] is { } b && (b is not JsonObject o || o["model"] is null || o["alias"] is null || o["metric"] is null))
            yield return new TaskConfigError("beats_alias", "must be a mapping with model, alias and metric");
    }

    public async Task<IReadOnlyDictionary<string, string>> ExecuteAsync(TaskContext c)
    {
        var package = ModelPackage.Load(Path.GetFullPath(TaskSettings.Required(c, "package"), c.WorkingDirectory));
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
            var stores = TrackingStores.Open(RegistryTaskKinds.TrackingUri(c));
            await using var storesScope = stores.ConfigureAwait(false);
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

/// <summary>Scores labelled data through a package and computes the task's metrics.</summary>
internal static class Evaluation
{
    public static async Task<Dictionary<string, double>> ScoreAsync(ModelPackage package, string data, CancellationToken ct)
    {
        var label = package.Signature.Label ?? throw new KilnException($"{package.Directory}: the package names no label column");
        var requests = package.Signature.Inputs
            .Select(i => new ColumnRequest(i.Name, i.Type == Kiln.Core.Profiling.ColumnKind.Numeric ? ColumnType.Numeric : ColumnType.Text))
            .Append(new ColumnRequest(label, package.Signature.Task == ModelTask.Regression ? ColumnType.Numeric : ColumnType.Text)).ToList();
        // A Parquet timestamp read for a categorical input is scored as the text the model was trained on.
        var table = (await TableReader.ReadAllAsync(DataSources.Resolve(data), requests, null, ct).ConfigureAwait(false)).TimestampsAsText();
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
