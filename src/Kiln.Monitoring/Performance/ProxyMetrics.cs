using Kiln.Core.Data;
using Kiln.Core.Packaging;
using Kiln.Core.Profiling;
using Kiln.Monitoring.Drift;
using Kiln.Monitoring.Windows;

namespace Kiln.Monitoring.Performance;

/// <summary>
/// Performance proxies without labels: how the window's predictions compare with the model's predictions on its
/// holdout rows (the package profile's outputs): the mean predicted value, the class shares, and a drift test on
/// the prediction column (and on the probability column for classifiers).
/// </summary>
public sealed class ProxyMetrics
{
    /// <summary>The output column the means are of: "probability" (binary: of the positive class; multiclass: of the predicted class) or "prediction" (regression).</summary>
    public required string ValueColumn { get; init; }

    /// <summary>Rows of the window with a finite value.</summary>
    public long Rows { get; set; }

    public double? PredictionMean { get; set; }

    public double? ReferencePredictionMean { get; set; }

    /// <summary>The sample standard deviation of the value on the holdout rows (for a z-score of the window's mean).</summary>
    public double? ReferencePredictionStd { get; set; }

    /// <summary><see cref="PredictionMean"/> − <see cref="ReferencePredictionMean"/>.</summary>
    public double? PredictionMeanShift { get; set; }

    /// <summary>Share of each predicted class in the window (classification), classes in the model's order.</summary>
    public SortedDictionary<string, double>? ClassShares { get; set; }

    /// <summary>Share of each predicted class on the holdout rows.</summary>
    public SortedDictionary<string, double>? ReferenceClassShares { get; set; }

    /// <summary>The drift test on the prediction column (class labels, or the predicted values for regression).</summary>
    public FeatureDrift? PredictionDrift { get; set; }

    /// <summary>The drift test on the probability column (classification).</summary>
    public FeatureDrift? ProbabilityDrift { get; set; }

    /// <summary>The whole output comparison (both columns, histograms, quality).</summary>
    public DriftReport? OutputDrift { get; set; }

    public List<string> Warnings { get; init; } = [];
}

/// <summary>Builds <see cref="ProxyMetrics"/> from log batches: exact means and class counts, and the output drift.</summary>
public sealed class ProxyMetricsBuilder
{
    /// <summary>The package has no profile of its holdout predictions: nothing to compare with.</summary>
    public const string NoReferenceOutputs = "no_reference_outputs";

    private readonly ModelTask _task;
    private readonly DatasetProfile? _reference;
    private readonly CurrentData? _current;
    private readonly Dictionary<string, long> _classCounts = new(StringComparer.Ordinal);
    private long _labelled;
    private double _sum;
    private long _count;

    public ProxyMetricsBuilder(ModelTask task, DatasetProfile? referenceOutputs, int maxExactRows = 100_000)
    {
        _task = task;
        _reference = referenceOutputs is { Columns.Count: > 0 } ? referenceOutputs : null;
        if (_reference is not null) _current = new CurrentData(_reference, maxExactRows, seed: 0x50726564);
    }

    private string ValueColumn => _task == ModelTask.Regression ? "prediction" : "probability";

    public void Add(LogBatch batch)
    {
        var n = batch.Rows;
        foreach (var v in batch.Values.AsSpan(0, n))
        {
            if (!double.IsFinite(v)) continue;
            _sum += v;
            _count++;
        }
        if (_task != ModelTask.Regression)
        {
            foreach (var label in batch.Predictions.AsSpan(0, n))
            {
                if (label is null) continue;
                _classCounts[label] = _classCounts.GetValueOrDefault(label) + 1;
                _labelled++;
            }
        }
        if (_current is null) return;
        var table = new DataTable(n);
        if (_task == ModelTask.Regression) table.Add(new NumericColumn("prediction", batch.Values));
        else table.Add(new TextColumn("prediction", batch.Predictions)).Add(new NumericColumn("probability", batch.Values));
        _current.Add(table);
    }

    public ProxyMetrics Build(DriftOptions? options = null)
    {
        var m = new ProxyMetrics { ValueColumn = ValueColumn, Rows = _count };
        if (_count > 0) m.PredictionMean = _sum / _count;
        if (_task != ModelTask.Regression && _labelled > 0)
        {
            m.ClassShares = new SortedDictionary<string, double>(StringComparer.Ordinal);
            foreach (var (label, count) in _classCounts) m.ClassShares[label] = (double)count / _labelled;
        }
        if (_reference is null || _current is null)
        {
            m.Warnings.Add(NoReferenceOutputs);
            return m;
        }
        if (_reference.Find(ValueColumn) is { Numeric: { } refValues } refColumn && refColumn.Count > 0)
        {
            m.ReferencePredictionMean = refValues.Mean;
            if (refValues.Std(refColumn.Count) is var std && double.IsFinite(std)) m.ReferencePredictionStd = std;
            if (m.PredictionMean is { } mean) m.PredictionMeanShift = mean - refValues.Mean;
        }
        if (_task != ModelTask.Regression && _reference.Find("prediction") is { Categorical: { } refClasses } refPrediction && refPrediction.Count > 0)
        {
            m.ReferenceClassShares = new SortedDictionary<string, double>(StringComparer.Ordinal);
            foreach (var (label, count) in refClasses.Counts) m.ReferenceClassShares[label] = (double)count / refPrediction.Count;
            // Classes the window never predicted have share 0, so both sides list the same classes.
            m.ClassShares ??= new SortedDictionary<string, double>(StringComparer.Ordinal);
            foreach (var label in refClasses.Counts.Keys) m.ClassShares.TryAdd(label, 0);
            foreach (var label in m.ClassShares.Keys) m.ReferenceClassShares.TryAdd(label, 0);
        }
        var report = _current.Compare(options);
        m.OutputDrift = report;
        foreach (var f in report.Features)
        {
            if (f.Name == "prediction") m.PredictionDrift = f;
            else if (f.Name == "probability" && _task != ModelTask.Regression) m.ProbabilityDrift = f;
        }
        return m;
    }
}
