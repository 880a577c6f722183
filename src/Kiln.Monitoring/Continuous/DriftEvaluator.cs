using System.Collections.Concurrent;
using Kiln.Core;
using Kiln.Core.Packaging;
using Kiln.Core.Profiling;
using Kiln.Monitoring.Drift;

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

/// <summary>
/// Drift of a window of the prediction log against the package's reference profile (<see cref="DriftCalculator"/>).
/// The names match the monitoring data branch's WindowReport gauges where they overlap. Gauges (label <c>model</c> = the target's name): <c>kiln_monitor_window_rows</c>; when the window has at least
/// <c>min_rows</c> rows, <c>kiln_monitor_dataset_drift</c> (0/1), <c>kiln_monitor_drift_share</c>, and per tested
/// feature (labels <c>feature</c>, <c>test</c>) <c>kiln_monitor_drift_score</c> and
/// <c>kiln_monitor_drift_threshold</c>, and (label <c>feature</c>) <c>kiln_monitor_feature_drifted</c> (0/1),
/// <c>kiln_monitor_feature_missing_rate</c>, <c>kiln_monitor_feature_out_of_range_share</c> (numeric),
/// <c>kiln_monitor_feature_unseen_share</c> (categorical).
/// </summary>
public sealed class DriftEvaluator(IModelPackageLocator? locator = null) : IMonitorEvaluator
{
    private readonly IModelPackageLocator _locator = locator ?? new DirectoryPackageLocator();
    private readonly ConcurrentDictionary<string, DatasetProfile> _profiles = new(StringComparer.Ordinal);

    public string Name => "drift";

    /// <summary>The reference profile of a model (package directories are immutable, so each is loaded and verified once).</summary>
    public async Task<DatasetProfile> ReferenceAsync(string model, CancellationToken cancellationToken)
    {
        var dir = Path.GetFullPath(await _locator.LocateAsync(model, cancellationToken).ConfigureAwait(false));
        if (_profiles.TryGetValue(dir, out var cached)) return cached;
        if (!ModelPackage.IsPackage(dir)) throw new KilnException($"{dir}: not a Kiln model package (no kiln.json)");
        var profile = ModelPackage.Load(dir).Profile?.Inputs ?? throw new KilnException($"{dir}: the package has no reference profile");
        return _profiles.GetOrAdd(dir, profile);
    }

    public async Task<IReadOnlyList<Measurement>> EvaluateAsync(MonitorTarget target, DateTimeOffset windowStart, DateTimeOffset windowEnd,
        CancellationToken cancellationToken)
    {
        var reference = await ReferenceAsync(target.Model, cancellationToken).ConfigureAwait(false);
        var window = await PredictionLogWindow.ReadAsync(target.LogDirectory, target.LogModel, reference, windowStart, windowEnd, cancellationToken)
            .ConfigureAwait(false);
        var model = ("model", target.Name);
        var result = new List<Measurement>
        {
            Measurement.Of("kiln_monitor_window_rows", window.RowCount, "Prediction log rows in the monitoring window.", model),
        };
        if (window.RowCount < Math.Max(1, target.MinRows)) return result; // too few rows: the drift gauges have no data
        var report = DriftCalculator.Compare(reference, window, target.Drift);
        if (report.FeaturesTested > 0)
        {
            result.Add(Measurement.Of("kiln_monitor_dataset_drift", report.DatasetDrift ? 1 : 0, "1 when the share of drifted features reaches the threshold (drift_share), else 0.", model));
            result.Add(Measurement.Of("kiln_monitor_drift_share", report.DriftedShare, "Share of tested features that drifted.", model));
        }
        foreach (var f in report.Features)
        {
            var feature = ("feature", f.Name);
            if (f.Test is { } test && f.Score is { } score && f.Drifted is { } drifted)
            {
                result.Add(Measurement.Of("kiln_monitor_drift_score", score, "Drift score per feature: the p-value (ks, chisquare, z) or the distance (wasserstein, jensenshannon, psi, hellinger).", model, feature, ("test", test)));
                if (f.Threshold is { } threshold)
                    result.Add(Measurement.Of("kiln_monitor_drift_threshold", threshold, "The threshold the drift score is compared with.", model, feature, ("test", test)));
                result.Add(Measurement.Of("kiln_monitor_feature_drifted", drifted ? 1 : 0, "1 when the feature drifted, else 0.", model, feature));
            }
            if (f.Quality.MissingRate is { } missing)
                result.Add(Measurement.Of("kiln_monitor_feature_missing_rate", missing, "Share of missing values of the feature in the window.", model, feature));
            if (f.Quality.OutOfRangeShare is { } outside)
                result.Add(Measurement.Of("kiln_monitor_feature_out_of_range_share", outside, "Share of the feature's values outside the training range.", model, feature));
            if (f.Quality.UnseenShare is { } unseen)
                result.Add(Measurement.Of("kiln_monitor_feature_unseen_share", unseen, "Share of the feature's values in categories never seen in training.", model, feature));
        }
        return result;
    }
}
