using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Kiln.Core;
using Kiln.Core.Packaging;
using Kiln.Core.Profiling;
using Kiln.Monitoring.Drift;
using Kiln.Monitoring.Feedback;
using Kiln.Monitoring.Performance;

namespace Kiln.Monitoring.Windows;

/// <summary>How a window is evaluated.</summary>
public sealed class WindowOptions
{
    /// <summary>Drift options for the inputs (tests, thresholds, drift share).</summary>
    public DriftOptions? Drift { get; init; }

    /// <summary>Drift options for the outputs (the prediction and probability columns); default: the same tests' defaults.</summary>
    public DriftOptions? OutputDrift { get; init; }

    /// <summary>Up to this many rows the drift tests see every row; beyond, the window is folded into a bounded profile.</summary>
    public int MaxExactRows { get; init; } = 100_000;

    /// <summary>Join the window with the feedback store (LOG_DIR/_feedback) for realized metrics.</summary>
    public bool Feedback { get; init; } = true;

    /// <summary>
    /// Read the feedback through this cache (files parsed once, across evaluations) instead of reading every file again;
    /// it must be the cache of the window's log directory.
    /// </summary>
    public FeedbackCache? FeedbackCache { get; init; }

    /// <summary>Only this version's rows; null = every version of the model.</summary>
    public string? Version { get; init; }
}

/// <summary>Warnings of a window report (besides the drift, proxy and realized ones).</summary>
public static class WindowWarnings
{
    /// <summary>The window holds no logged row.</summary>
    public const string EmptyWindow = DriftWarnings.EmptyWindow;

    /// <summary>No logged prediction of the window has a label yet.</summary>
    public const string NoFeedback = RealizedWarnings.NoFeedback;

    /// <summary>The window was larger than <see cref="WindowOptions.MaxExactRows"/>: drift was computed on profiles (samples for KS/Wasserstein).</summary>
    public const string Summarized = "summarized";

    /// <summary>Rows of several model versions are in the window.</summary>
    public const string SeveralVersions = "several_versions";
}

/// <summary>One evaluated window: drift of the inputs, proxy metrics of the outputs, realized metrics from feedback.</summary>
public sealed class WindowReport
{
    public required string Model { get; init; }

    /// <summary>The version asked for (null = all).</summary>
    public string? Version { get; init; }

    /// <summary>The versions whose rows are in the window.</summary>
    public List<string> Versions { get; init; } = [];

    public required DateTimeOffset From { get; init; }

    public required DateTimeOffset To { get; init; }

    public required string Task { get; init; }

    /// <summary>Logged rows in the window.</summary>
    public long Rows { get; set; }

    /// <summary>True when the drift tests saw every row (the window held at most MaxExactRows).</summary>
    public bool Exact { get; set; }

    public required DriftReport Drift { get; init; }

    public required ProxyMetrics Proxy { get; init; }

    public RealizedMetrics? Realized { get; set; }

    public List<string> Warnings { get; init; } = [];

    /// <summary>The report as gauges (name, labels, value), ready for /metrics; see docs/monitoring.md.</summary>
    public IReadOnlyList<MonitorGauge> ToGauges() => MonitorGauges.From(this);
}

/// <summary>One gauge sample: kiln_monitor_… {labels} value.</summary>
public sealed record MonitorGauge(string Name, IReadOnlyList<KeyValuePair<string, string>> Labels, double Value)
{
    public override string ToString()
    {
        var labels = string.Join(",", Labels.Select(l => $"{l.Key}=\"{l.Value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal)}\""));
        return $"{Name}{{{labels}}} {Value.ToString("R", CultureInfo.InvariantCulture)}";
    }
}

/// <summary>Evaluates a window of the prediction log against a model package (its reference profile and classes).</summary>
public static class WindowEvaluator
{
    /// <summary>Evaluates the rows of <paramref name="model"/> logged under <paramref name="logDirectory"/> in [from, to).</summary>
    public static Task<WindowReport> EvaluateAsync(ModelPackage package, string logDirectory, string model, DateTimeOffset from, DateTimeOffset to,
        WindowOptions? options = null, CancellationToken ct = default) =>
        EvaluateAsync(package, new LogWindow(logDirectory, model, from, to, options?.Version), options, ct);

    public static async Task<WindowReport> EvaluateAsync(ModelPackage package, LogWindow window, WindowOptions? options = null, CancellationToken ct = default)
    {
        options ??= new WindowOptions();
        var profile = package.Profile ?? throw new KilnException($"{package.Directory}: the package has no reference profile");
        // Labels come after their predictions: files received before the window's first day (less a day for clock
        // skew between replicas) cannot hold labels for it.
        var since = DateOnly.FromDateTime(window.From.UtcDateTime).AddDays(-1);
        // A log in a bucket is read through a local mirror of the window's partitions (and feedback).
        window = await S3LogMirror.LocalizeAsync(window, options.Feedback ? since : null, ct).ConfigureAwait(false);
        var task = package.Signature.Task;
        var classes = package.Signature.ClassLabels ?? [];
        var inputs = new CurrentData(profile.Inputs, options.MaxExactRows);
        var proxy = new ProxyMetricsBuilder(task, profile.Outputs, options.MaxExactRows);
        IReadOnlyDictionary<(string, int), StoredLabel>? labels = null;
        if (options.Feedback)
        {
            if (options.FeedbackCache is { } cache)
            {
                if (!string.Equals(Path.GetFullPath(cache.LogDirectory), Path.GetFullPath(window.LogDirectory), StringComparison.Ordinal))
                    throw new ArgumentException($"the feedback cache is for {cache.LogDirectory}, not {window.LogDirectory}", nameof(options));
                labels = await cache.GetAsync(since, ct).ConfigureAwait(false);
            }
            else labels = await new FeedbackStore(window.LogDirectory).ReadAsync(since, ct).ConfigureAwait(false);
        }
        var realized = options.Feedback ? new RealizedMetricsBuilder(task, classes) : null;
        var versions = new List<string>();
        long rows = 0;
        var probs = new double[task == ModelTask.Multiclass ? classes.Count : 0];
        await foreach (var batch in PredictionLogReader.ReadAsync(window, ct).ConfigureAwait(false))
        {
            rows += batch.Rows;
            if (!versions.Contains(batch.Version)) versions.Add(batch.Version);
            inputs.Add(batch.Inputs);
            proxy.Add(batch);
            if (realized is null || labels is not { Count: > 0 }) continue;
            // Multiclass: the log's probability_<class> columns, in the package's class order.
            var columns = new double[]?[probs.Length];
            for (var c = 0; c < probs.Length; c++)
                foreach (var p in batch.Probabilities) if (p.Key == classes[c]) columns[c] = p.Value;
            for (var i = 0; i < batch.Rows; i++)
            {
                if (!labels.TryGetValue((batch.RequestIds[i], batch.RowIndexes[i]), out var label)) continue;
                for (var c = 0; c < probs.Length; c++) probs[c] = columns[c] is { } col ? col[i] : double.NaN;
                realized.Add(batch.Predictions[i], batch.Values[i], probs, label.Label);
            }
        }
        var report = new WindowReport
        {
            Model = window.Model,
            Version = window.Version,
            Versions = versions,
            From = window.From,
            To = window.To,
            Task = task.ToString().ToLowerInvariant(),
            Rows = rows,
            Exact = inputs.Exact,
            Drift = inputs.Compare(options.Drift),
            Proxy = proxy.Build(options.OutputDrift),
            Realized = realized?.Build(rows),
        };
        if (rows == 0) report.Warnings.Add(WindowWarnings.EmptyWindow);
        if (!inputs.Exact) report.Warnings.Add(WindowWarnings.Summarized);
        if (versions.Count > 1) report.Warnings.Add(WindowWarnings.SeveralVersions);
        if (report.Proxy.Warnings.Contains(ProxyMetricsBuilder.NoReferenceOutputs)) report.Warnings.Add(ProxyMetricsBuilder.NoReferenceOutputs);
        if (rows > 0 && report.Realized is { LabelledRows: 0 }) report.Warnings.Add(WindowWarnings.NoFeedback);
        return report;
    }

    /// <summary>Drift of the inputs only (kiln drift --log-dir): the window's rows against a reference profile.</summary>
    public static async Task<(DriftReport Report, long Rows, bool Exact)> InputDriftAsync(DatasetProfile reference, LogWindow window,
        DriftOptions? options = null, int maxExactRows = 100_000, CancellationToken ct = default)
    {
        var inputs = new CurrentData(reference, maxExactRows);
        window = await S3LogMirror.LocalizeAsync(window, null, ct).ConfigureAwait(false);
        await foreach (var batch in PredictionLogReader.ReadAsync(window, ct).ConfigureAwait(false)) inputs.Add(batch.Inputs);
        return (inputs.Compare(options), inputs.Rows, inputs.Exact);
    }
}

/// <summary>Flattens a <see cref="WindowReport"/> into gauges (docs/monitoring.md lists them).</summary>
public static class MonitorGauges
{
    public static IReadOnlyList<MonitorGauge> From(WindowReport r)
    {
        var g = new List<MonitorGauge>();
        var model = new KeyValuePair<string, string>("model", r.Model);
        KeyValuePair<string, string>[] Labels(params (string Key, string Value)[] extra)
        {
            var l = new List<KeyValuePair<string, string>> { model };
            if (r.Version is not null) l.Add(new("version", r.Version));
            foreach (var (k, v) in extra) l.Add(new(k, v));
            return [.. l];
        }
        void Add(string name, double? value, params (string Key, string Value)[] extra)
        {
            if (value is { } v) g.Add(new MonitorGauge(name, Labels(extra), v));
        }
        Add("kiln_monitor_window_rows", r.Rows);
        foreach (var f in r.Drift.Features)
        {
            if (f.Test is not null)
            {
                Add("kiln_monitor_drift_score", f.Score, ("feature", f.Name), ("test", f.Test));
                Add("kiln_monitor_drift_threshold", f.Threshold, ("feature", f.Name), ("test", f.Test));
            }
            if (f.Drifted is { } d) Add("kiln_monitor_feature_drifted", d ? 1 : 0, ("feature", f.Name));
            Add("kiln_monitor_feature_missing_rate", f.Quality.MissingRate, ("feature", f.Name));
            Add("kiln_monitor_feature_out_of_range_share", f.Quality.OutOfRangeShare, ("feature", f.Name));
            Add("kiln_monitor_feature_unseen_share", f.Quality.UnseenShare, ("feature", f.Name));
        }
        if (r.Drift.FeaturesTested > 0)
        {
            Add("kiln_monitor_dataset_drift", r.Drift.DatasetDrift ? 1 : 0);
            Add("kiln_monitor_drift_share", r.Drift.DriftedShare);
        }
        Add("kiln_monitor_prediction_mean", r.Proxy.PredictionMean);
        Add("kiln_monitor_reference_prediction_mean", r.Proxy.ReferencePredictionMean);
        Add("kiln_monitor_reference_prediction_std", r.Proxy.ReferencePredictionStd);
        if (r.Proxy.ClassShares is { } shares) foreach (var (c, s) in shares) Add("kiln_monitor_class_share", s, ("class", c));
        if (r.Proxy.PredictionDrift is { Test: { } pt } pd)
        {
            Add("kiln_monitor_prediction_drift_score", pd.Score, ("test", pt));
            if (pd.Drifted is { } d) Add("kiln_monitor_prediction_drifted", d ? 1 : 0);
        }
        if (r.Realized is { } m)
        {
            Add("kiln_monitor_labelled_rows", m.LabelledRows);
            Add("kiln_monitor_label_coverage", m.LabelCoverage);
            Add("kiln_monitor_realized_accuracy", m.Accuracy);
            Add("kiln_monitor_realized_auc", m.Auc);
            Add("kiln_monitor_realized_f1", m.F1);
            Add("kiln_monitor_realized_log_loss", m.LogLoss);
            Add("kiln_monitor_realized_rmse", m.Rmse);
            Add("kiln_monitor_realized_mae", m.Mae);
        }
        return g;
    }
}

/// <summary>JSON for window reports: snake_case, nulls left out.</summary>
public static class WindowJson
{
    public static JsonSerializerOptions Options { get; } = DriftJson.CreateOptions(WindowJsonContext.Default);

    public static string Serialize(WindowReport report) => JsonSerializer.Serialize(report, Options);

    public static WindowReport? Deserialize(string json) => JsonSerializer.Deserialize<WindowReport>(json, Options);
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals)]
[JsonSerializable(typeof(WindowReport))]
internal sealed partial class WindowJsonContext : JsonSerializerContext;
