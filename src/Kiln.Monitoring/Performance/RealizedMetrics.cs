using System.Globalization;
using Kiln.Core.Packaging;

namespace Kiln.Monitoring.Performance;

/// <summary>Warnings of the realized metrics.</summary>
public static class RealizedWarnings
{
    /// <summary>No logged prediction of the window has a label yet.</summary>
    public const string NoFeedback = "no_feedback";

    /// <summary>Some labels are not among the model's classes (or, for regression, not numbers); they are left out of the metrics.</summary>
    public const string UnknownLabels = "unknown_labels";

    /// <summary>Binary AUC needs both classes among the labels.</summary>
    public const string AucUndefined = "auc_undefined_single_class";
}

/// <summary>
/// Metrics of the window's predictions against their delayed labels. Classification: accuracy, AUC (binary, from the
/// positive-class probability), F1 (binary: of the positive class; multiclass: macro over the classes present in the
/// labels or the predictions, as scikit-learn's f1_score(average="macro")), log-loss. Regression: RMSE, MAE.
/// </summary>
public sealed class RealizedMetrics
{
    /// <summary>Window rows with a label.</summary>
    public long LabelledRows { get; set; }

    /// <summary>Labelled rows whose label is not a class of the model (or not a number, for regression); not in the metrics.</summary>
    public long UnknownLabelRows { get; set; }

    /// <summary>Rows the metrics are computed on.</summary>
    public long EvaluatedRows { get; set; }

    /// <summary>Labelled rows / window rows.</summary>
    public double? LabelCoverage { get; set; }

    public double? Accuracy { get; set; }

    public double? Auc { get; set; }

    public double? F1 { get; set; }

    /// <summary>"binary" (of <see cref="PositiveClass"/>) or "macro".</summary>
    public string? F1Average { get; set; }

    public string? PositiveClass { get; set; }

    public double? LogLoss { get; set; }

    public double? Rmse { get; set; }

    public double? Mae { get; set; }

    public List<string> Warnings { get; init; } = [];
}

/// <summary>Collects (prediction, label) pairs for <see cref="RealizedMetrics"/>; memory grows with the labelled rows only.</summary>
public sealed class RealizedMetricsBuilder
{
    private readonly ModelTask _task;
    private readonly string[] _classes;
    private readonly Dictionary<string, int> _classIndex = new(StringComparer.Ordinal);
    private readonly List<(double Number, int Index)> _numericClasses = [];
    private readonly long[,] _confusion;
    private readonly long[] _predictedOutside;
    private readonly List<double> _scores = [];
    private readonly List<bool> _positives = [];
    private double _logLossSum;
    private long _logLossRows;
    private bool _logLossUndefined;
    private double _squaredError;
    private double _absoluteError;
    private long _labelled;
    private long _unknown;
    private long _evaluated;
    private long _correct;

    public RealizedMetricsBuilder(ModelTask task, IReadOnlyList<string>? classLabels)
    {
        _task = task;
        _classes = task == ModelTask.Regression ? [] : [.. classLabels ?? []];
        for (var i = 0; i < _classes.Length; i++)
        {
            _classIndex.TryAdd(_classes[i], i);
            if (double.TryParse(_classes[i], NumberStyles.Float, CultureInfo.InvariantCulture, out var d)) _numericClasses.Add((d, i));
        }
        _confusion = new long[_classes.Length, _classes.Length];
        _predictedOutside = new long[_classes.Length];
    }

    public IReadOnlyList<string> Classes => _classes;

    /// <summary>
    /// The class a label names: the class label itself, or a class whose label is the same number ("1" and 1.0), so that
    /// labels posted as JSON numbers match classes written as text; -1 when none.
    /// </summary>
    public int ClassOf(string? label)
    {
        if (label is null) return -1;
        if (_classIndex.TryGetValue(label, out var i)) return i;
        if (_numericClasses.Count > 0 && double.TryParse(label, NumberStyles.Float, CultureInfo.InvariantCulture, out var d))
            foreach (var (number, index) in _numericClasses) if (number == d) return index;
        return -1;
    }

    /// <summary>
    /// Adds one labelled prediction. <paramref name="probabilities"/>: multiclass only, each class's probability in
    /// <see cref="Classes"/> order (NaN when not logged).
    /// </summary>
    public void Add(string? predicted, double value, ReadOnlySpan<double> probabilities, string label)
    {
        _labelled++;
        if (_task == ModelTask.Regression)
        {
            if (!double.TryParse(label, NumberStyles.Float, CultureInfo.InvariantCulture, out var y) || !double.IsFinite(y) || !double.IsFinite(value))
            {
                _unknown++;
                return;
            }
            _evaluated++;
            var e = value - y;
            _squaredError += e * e;
            _absoluteError += Math.Abs(e);
            return;
        }
        var truth = ClassOf(label);
        if (truth < 0)
        {
            _unknown++;
            return;
        }
        _evaluated++;
        var guess = ClassOf(predicted);
        if (guess == truth) _correct++;
        if (guess >= 0) _confusion[truth, guess]++;
        else _predictedOutside[truth]++; // a prediction that is no class: wrong, and in no cell
        if (_task == ModelTask.Binary)
        {
            if (double.IsFinite(value))
            {
                _scores.Add(value);
                _positives.Add(truth == 1);
                // scikit-learn's log_loss: clip to [eps, 1 − eps] with eps the float64 machine epsilon.
                var p = Math.Clamp(value, Eps, 1 - Eps);
                _logLossSum += -Math.Log(truth == 1 ? p : 1 - p);
                _logLossRows++;
            }
            else _logLossUndefined = true;
        }
        else
        {
            if (probabilities.Length != _classes.Length) { _logLossUndefined = true; return; }
            double sum = 0;
            foreach (var p in probabilities)
            {
                if (!double.IsFinite(p)) { _logLossUndefined = true; return; }
                sum += Math.Clamp(p, Eps, 1 - Eps);
            }
            _logLossSum += -Math.Log(Math.Clamp(probabilities[truth], Eps, 1 - Eps) / sum);
            _logLossRows++;
        }
    }

    private const double Eps = 2.220446049250313e-16; // numpy.finfo(float64).eps

    /// <summary>The metrics; <paramref name="windowRows"/> gives the label coverage.</summary>
    public RealizedMetrics Build(long windowRows)
    {
        var m = new RealizedMetrics
        {
            LabelledRows = _labelled,
            UnknownLabelRows = _unknown,
            EvaluatedRows = _evaluated,
            LabelCoverage = windowRows > 0 ? (double)_labelled / windowRows : null,
        };
        if (_labelled == 0) m.Warnings.Add(RealizedWarnings.NoFeedback);
        if (_unknown > 0) m.Warnings.Add(RealizedWarnings.UnknownLabels);
        if (_evaluated == 0) return m;
        if (_task == ModelTask.Regression)
        {
            m.Rmse = Math.Sqrt(_squaredError / _evaluated);
            m.Mae = _absoluteError / _evaluated;
            return m;
        }
        m.Accuracy = (double)_correct / _evaluated;
        if (!_logLossUndefined && _logLossRows == _evaluated) m.LogLoss = _logLossSum / _logLossRows;
        var k = _classes.Length;
        if (_task == ModelTask.Binary && k == 2)
        {
            m.PositiveClass = _classes[1];
            m.F1Average = "binary";
            var tp = _confusion[1, 1];
            var fp = _confusion[0, 1];
            var fn = _confusion[1, 0] + RowOutside(1);
            m.F1 = 2 * tp + fp + fn == 0 ? 0 : 2.0 * tp / (2 * tp + fp + fn);
            m.Auc = Auc(_scores, _positives);
            if (m.Auc is null) m.Warnings.Add(RealizedWarnings.AucUndefined);
        }
        else
        {
            // Macro F1 over the classes that occur among the labels or the predictions (scikit-learn's unique_labels).
            m.F1Average = "macro";
            double sum = 0;
            var present = 0;
            for (var c = 0; c < k; c++)
            {
                long tp = _confusion[c, c], fp = 0, fn = RowOutside(c), truth = RowOutside(c), predicted = 0;
                for (var o = 0; o < k; o++)
                {
                    truth += _confusion[c, o];
                    predicted += _confusion[o, c];
                    if (o != c) { fp += _confusion[o, c]; fn += _confusion[c, o]; }
                }
                if (truth == 0 && predicted == 0) continue;
                present++;
                sum += 2 * tp + fp + fn == 0 ? 0 : 2.0 * tp / (2 * tp + fp + fn);
            }
            m.F1 = present > 0 ? sum / present : null;
        }
        return m;
    }

    /// <summary>Labelled rows of class c whose prediction is not a class at all (wrong, and in no cell).</summary>
    private long RowOutside(int c) => _predictedOutside[c];

    /// <summary>ROC AUC as the Mann–Whitney statistic with average ranks for ties (equal to scikit-learn's roc_auc_score).</summary>
    public static double? Auc(IReadOnlyList<double> scores, IReadOnlyList<bool> positives)
    {
        var n = scores.Count;
        long nPos = 0;
        foreach (var p in positives) if (p) nPos++;
        var nNeg = n - nPos;
        if (nPos == 0 || nNeg == 0) return null;
        var order = new int[n];
        for (var i = 0; i < n; i++) order[i] = i;
        var keys = new double[n];
        for (var i = 0; i < n; i++) keys[i] = scores[i];
        Array.Sort(keys, order);
        double rankSum = 0;
        for (var i = 0; i < n;)
        {
            var j = i;
            while (j + 1 < n && keys[j + 1] == keys[i]) j++;
            var rank = (i + j + 2) / 2.0; // average of ranks i+1 … j+1
            for (var t = i; t <= j; t++) if (positives[order[t]]) rankSum += rank;
            i = j + 1;
        }
        return (rankSum - nPos * (nPos + 1) / 2.0) / ((double)nPos * nNeg);
    }
}
