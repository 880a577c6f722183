using System.Collections.Concurrent;
using Kiln.Core;
using Kiln.Core.Packaging;
using Kiln.Monitoring.Feedback;
using Kiln.Monitoring.Windows;

namespace Kiln.Monitoring.Continuous;

/// <summary>
/// The continuous monitor's evaluator: <see cref="WindowEvaluator"/> over the target's window of the prediction log
/// (input drift and data quality, proxy metrics of the outputs, realized metrics from feedback), flattened to gauges
/// whose <c>model</c> label is the target's name. A window with fewer than <see cref="MonitorTarget.MinRows"/> rows
/// publishes only <c>kiln_monitor_window_rows</c>, so rules see no data rather than a verdict on a handful of rows.
/// </summary>
public sealed class WindowMonitorEvaluator(IModelLocator? locator = null) : IMonitorEvaluator
{
    private readonly IModelLocator _locator = locator ?? new DirectoryModelLocator();
    private readonly ConcurrentDictionary<string, ModelPackage> _packages = new(StringComparer.Ordinal);

    // Feedback is parsed once and kept between ticks, per log directory and window length (windows of one length
    // read the same days of feedback, so their cache never evicts what the next tick needs).
    private readonly ConcurrentDictionary<(string LogDirectory, TimeSpan Window), FeedbackCache> _feedback = new();

    /// <summary>Feedback files parsed so far across every target (a tick without new feedback files parses none).</summary>
    public long FeedbackFilesRead => _feedback.Values.Sum(c => c.FilesRead);

    public string Name => "window";

    public async Task<IReadOnlyList<Measurement>> EvaluateAsync(MonitorTarget target, DateTimeOffset windowStart, DateTimeOffset windowEnd,
        CancellationToken cancellationToken)
    {
        // Package directories are immutable: each is loaded (and its checksums verified) once.
        var dir = (await _locator.ResolveAsync(target.Model, cancellationToken).ConfigureAwait(false)).PackageDirectory;
        if (!_packages.TryGetValue(dir, out var package))
        {
            if (!ModelPackage.IsPackage(dir)) throw new KilnException($"{dir}: not a Kiln model package (no kiln.json)");
            package = _packages.GetOrAdd(dir, ModelPackage.Load(dir));
        }
        var report = await WindowEvaluator.EvaluateAsync(package, target.LogDirectory, target.LogModel, windowStart, windowEnd,
            new WindowOptions { Drift = target.Drift, FeedbackCache = FeedbackCacheFor(target.LogDirectory, windowEnd - windowStart) }, cancellationToken).ConfigureAwait(false);
        var model = ("model", target.Name);
        if (report.Rows < Math.Max(1, target.MinRows))
            return [Measurement.Of("kiln_monitor_window_rows", report.Rows, "Prediction log rows in the monitoring window.", model)];
        var result = new List<Measurement>();
        foreach (var g in report.ToGauges())
        {
            var labels = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var (k, v) in g.Labels) labels[k] = k == "model" ? target.Name : v;
            result.Add(new Measurement(g.Name, labels, g.Value));
        }
        return result;
    }

    private FeedbackCache FeedbackCacheFor(string logDirectory, TimeSpan window) =>
        _feedback.GetOrAdd((Path.GetFullPath(S3LogMirror.LocalDirectory(logDirectory)), window), key => new FeedbackCache(key.LogDirectory));
}
