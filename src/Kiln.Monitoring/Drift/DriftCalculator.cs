using System.Buffers;
using System.Runtime.CompilerServices;
using Kiln.Core.Data;
using Kiln.Core.Profiling;
using Kiln.Monitoring.Statistics;

namespace Kiln.Monitoring.Drift;

/// <summary>
/// Compares a current window (a profile or raw data) with a reference <see cref="DatasetProfile"/>: per feature the
/// test, its score and verdict, data quality and warnings; and the dataset verdict. It never throws on bad data:
/// every odd case (empty window, all-missing or constant columns, a single row, ±Infinity, columns one side lacks)
/// gives a defined result with a named warning.
/// </summary>
public static class DriftCalculator
{
    private const string OtherLabel = "(other)";
    private const int MaxUnseenExamples = 10;

    /// <summary>Drift of a current profile (e.g. built from live traffic with <see cref="DatasetProfile.NewEmptyLike"/>).</summary>
    public static DriftReport Compare(DatasetProfile reference, DatasetProfile current, DriftOptions? options = null)
    {
        options ??= DriftOptions.Default;
        var columns = new List<(ColumnProfile Reference, ColumnSide? Current, string? Warning)>();
        foreach (var r in reference.Columns)
        {
            if (options.Ignore.Contains(r.Name)) continue;
            var c = current.Find(r.Name);
            if (c is null) columns.Add((r, null, DriftWarnings.NotInCurrent));
            else if (c.Kind != r.Kind) columns.Add((r, null, DriftWarnings.KindMismatch));
            else columns.Add((r, ColumnSide.FromProfile(c, r), null));
        }
        var currentRows = current.Rows;
        if (currentRows == 0)
        {
            foreach (var c in current.Columns) currentRows = Math.Max(currentRows, c.Rows);
        }
        var features = columns.ConvertAll(c => Feature(c.Reference, c.Current, c.Warning, currentRows == 0, options));
        var report = Build(reference, features, currentRows, options);
        foreach (var c in current.Columns)
        {
            if (reference.Find(c.Name) is null && !options.Ignore.Contains(c.Name)) report.Features.Add(NotInReference(c.Name, c.Kind));
        }
        return report;
    }

    /// <summary>
    /// Drift of raw current data (all rows). Columns are compared in parallel, each to its verdict before the next (see
    /// <see cref="CompareColumns"/>).
    /// </summary>
    public static DriftReport Compare(DatasetProfile reference, DataTable current, DriftOptions? options = null)
    {
        options ??= DriftOptions.Default;
        var rows = current.RowCount;
        var report = CompareColumns(reference, rows, (r, buffer) => current.Find(r.Name) is { } column ? SideOf(column, rows, r, buffer) : null, options);
        foreach (var c in current.Columns)
        {
            if (reference.Find(c.Name) is null && !options.Ignore.Contains(c.Name))
            {
                report.Features.Add(NotInReference(c.Name, c is NumericColumn ? ColumnKind.Numeric : ColumnKind.Categorical));
            }
        }
        return report;
    }

    /// <summary>
    /// Drift of raw current data of <paramref name="rows"/> rows whose columns are produced one at a time:
    /// <paramref name="sideOf"/> gives a reference column's current side (null when the data lacks the column), given a
    /// pooled buffer of at least <paramref name="rows"/> values to sort numbers in (null for a categorical reference).
    /// Columns run in parallel, each to its verdict before the next, so the sorted copy of a numeric column lives only
    /// while its own test runs and a million-row window reuses a few buffers instead of touching a new array per column.
    /// The first failure (a <see cref="Kiln.Core.KilnException"/> naming a file) is rethrown as itself.
    /// </summary>
    internal static DriftReport CompareColumns(DatasetProfile reference, long rows, Func<ColumnProfile, double[]?, ColumnSide?> sideOf, DriftOptions options,
        CancellationToken ct = default)
    {
        var refs = new List<ColumnProfile>();
        foreach (var r in reference.Columns) if (!options.Ignore.Contains(r.Name)) refs.Add(r);
        var features = new FeatureDrift[refs.Count];
        var length = checked((int)rows);
        try
        {
            // Each worker takes the next column in the reference's order, so columns are reached in that order (what
            // a read-ahead of the current data in its file's order counts on: ParquetColumns.StartReadAhead).
            var next = -1;
            Parallel.For(0, Math.Min(refs.Count, Environment.ProcessorCount), new ParallelOptions { CancellationToken = ct }, _ =>
            {
                int i;
                while ((i = Interlocked.Increment(ref next)) < refs.Count)
                {
                    ct.ThrowIfCancellationRequested();
                    var r = refs[i];
                    var buffer = r.Kind == ColumnKind.Numeric ? ArrayPool<double>.Shared.Rent(length) : null;
                    try
                    {
                        var side = sideOf(r, buffer);
                        features[i] = Feature(r, side, side is null ? DriftWarnings.NotInCurrent : null, rows == 0, options);
                    }
                    finally
                    {
                        if (buffer is not null) ArrayPool<double>.Shared.Return(buffer);
                    }
                }
            });
        }
        catch (AggregateException e) when (e.InnerExceptions.Count > 0)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(e.InnerExceptions[0]);
        }
        return Build(reference, features, rows, options);
    }

    /// <param name="buffer">For a numeric reference: where to sort the current values (see <see cref="ColumnSide.FromNumbers"/>).</param>
    internal static ColumnSide SideOf(Column column, int rows, ColumnProfile reference, double[]? buffer)
    {
        switch (column)
        {
            case NumericColumn n when reference.Kind == ColumnKind.Numeric:
                return ColumnSide.FromNumbers(n.Values.AsSpan(0, rows), reference, buffer: buffer);
            case NumericColumn n:
                return ColumnSide.FromNumbersAsLabels(n.Values.AsSpan(0, rows));
            case TextColumn t when reference.Kind == ColumnKind.Categorical:
                return ColumnSide.FromLabels(t.Values.AsSpan(0, rows));
            case TextColumn t:
                {
                    var values = new double[rows];
                    long unparsable = 0;
                    for (var i = 0; i < rows; i++)
                    {
                        var s = t.Values[i];
                        if (s is null || NumericColumn.TryParseCell(s, out values[i])) continue;
                        values[i] = double.NaN;
                        unparsable++;
                    }
                    return ColumnSide.FromNumbers(values, reference, unparsable, buffer);
                }
            case TimestampColumn s:
                // Compared as the ISO 8601 text a reference profile built from the same column holds.
                return SideOf(s.ToText(), rows, reference, buffer);
            default:
                return ColumnSide.FromLabels([]);
        }
    }

    private static FeatureDrift NotInReference(string name, ColumnKind kind) => new()
    {
        Name = name,
        Kind = kind,
        Quality = new FeatureQuality(),
        Warnings = { DriftWarnings.NotInReference },
    };

    private static DriftReport Build(DatasetProfile reference, IReadOnlyList<FeatureDrift> features, long currentRows, DriftOptions options)
    {
        var report = new DriftReport
        {
            ReferenceRows = reference.Rows,
            CurrentRows = currentRows,
            DriftShareThreshold = options.DriftShare,
        };
        if (currentRows == 0) report.Warnings.Add(DriftWarnings.EmptyWindow);
        foreach (var feature in features)
        {
            report.Features.Add(feature);
            if (feature.Drifted is { } d)
            {
                report.FeaturesTested++;
                if (d) report.FeaturesDrifted++;
            }
        }
        if (report.FeaturesTested == 0)
        {
            report.Warnings.Add(DriftWarnings.NoFeatureTested);
            return report;
        }
        report.DriftedShare = (double)report.FeaturesDrifted / report.FeaturesTested;
        report.DatasetDrift = report.DriftedShare >= options.DriftShare;
        return report;
    }

    private static FeatureDrift Feature(ColumnProfile reference, ColumnSide? current, string? warning, bool emptyWindow, DriftOptions options)
    {
        var feature = new FeatureDrift
        {
            Name = reference.Name,
            Kind = reference.Kind,
            Quality = new FeatureQuality
            {
                ReferenceMissingRate = reference.Rows > 0 ? (double)reference.Missing / reference.Rows : null,
            },
        };
        if (warning is not null) feature.Warnings.Add(warning);
        if (current is null) return feature;

        var refSide = ColumnSide.FromProfile(reference, null);
        Quality(feature, refSide, current);
        if (emptyWindow || current.Rows == 0) return feature; // the dataset-level empty_window says it all
        if (refSide.Count == 0) feature.Warnings.Add(DriftWarnings.EmptyReference);
        if (current.Count == 0) feature.Warnings.Add(DriftWarnings.AllMissing);
        if (refSide.Count == 0 || current.Count == 0) return feature;
        if (current.Count == 1) feature.Warnings.Add(DriftWarnings.SingleRow);
        if (current.Infinite > 0) feature.Warnings.Add(DriftWarnings.InfiniteValues);
        if (current.Unparsable > 0) feature.Warnings.Add(DriftWarnings.UnparsableValues);

        var (requested, threshold) = options.For(reference.Name);
        if (reference.Kind == ColumnKind.Numeric) Numeric(feature, refSide, current, requested, threshold);
        else Categorical(feature, refSide, current, requested, threshold);
        return feature;
    }

    private static void Quality(FeatureDrift feature, ColumnSide reference, ColumnSide current)
    {
        var q = feature.Quality;
        q.CurrentCount = current.Count;
        q.CurrentMissing = current.Missing;
        q.CurrentInfinite = current.Infinite;
        q.MissingRate = current.Rows > 0 ? (double)current.Missing / current.Rows : null;
        if (reference.Kind == ColumnKind.Numeric)
        {
            if (reference.Count > 0)
            {
                q.OutOfRangeCount = current.OutOfRange;
                q.OutOfRangeShare = current.Count > 0 ? (double)current.OutOfRange / current.Count : null;
            }
            return;
        }
        var unseen = 0;
        long unseenValues = 0;
        List<string>? examples = null;
        foreach (var (label, count) in current.Categories)
        {
            if (reference.Categories.ContainsKey(label)) continue;
            unseen++;
            unseenValues += count;
            examples ??= [];
            if (examples.Count < MaxUnseenExamples) examples.Add(label);
        }
        examples?.Sort(StringComparer.Ordinal);
        q.UnseenCategories = unseen;
        q.UnseenShare = current.Count > 0 ? (double)unseenValues / current.Count : null;
        q.UnseenExamples = examples;
        if (unseen > 0) feature.Warnings.Add(DriftWarnings.UnseenCategories);
        if (reference.Other > 0) feature.Warnings.Add(DriftWarnings.ReferenceCategoriesTruncated);
    }

    private static void Numeric(FeatureDrift feature, ColumnSide reference, ColumnSide current, StatTest? requested, double? threshold)
    {
        if (reference.Min == reference.Max) feature.Warnings.Add(DriftWarnings.ConstantReference);
        if (current.Min == current.Max) feature.Warnings.Add(DriftWarnings.ConstantCurrent);
        // Current values counted over cells hold more than seven distinct bit patterns, so at least six numbers.
        var cells = current.Cells;
        var distinct = cells is not null ? 6 : DistinctUnion(reference.Sorted.Span, current.Sorted.Span, 6);
        var test = requested ?? StatTests.Default(ColumnKind.Numeric, reference.Count, distinct);
        var lowCardinality = distinct <= 5;
        switch (test)
        {
            case StatTest.Ks:
                {
                    var r = cells is not null
                        ? KolmogorovSmirnov.TestStatistic(cells.KsStatistic(), reference.Sorted.Length, cells.Count)
                        : KolmogorovSmirnov.TestSorted(reference.Sorted.Span, current.Sorted.Span);
                    feature.Method = r.Method == KsMethod.Exact ? "exact" : "asymptotic";
                    SetPValue(feature, test, r.Statistic, r.PValue, threshold);
                    break;
                }
            case StatTest.Wasserstein:
                {
                    var w = cells is not null ? cells.Wasserstein() : Distances.WassersteinSorted(reference.Sorted.Span, current.Sorted.Span);
                    var std = double.IsNaN(reference.PopulationStd) ? FiniteSample.PopulationStd(reference.Sorted.Span) : reference.PopulationStd;
                    SetDistance(feature, test, Distances.WassersteinNormed(w, std), threshold);
                    break;
                }
            default:
                {
                    // Cell tests on numbers: value counts when there are at most 5 distinct values (as Evidently
                    // does), else the reference's quantile bins with a bin below and one above the training range.
                    double[] refCells, curCells;
                    if (lowCardinality || reference.BinCounts is null || current.BinCounts is null)
                    {
                        var labels = ValueCells(reference.Sorted.Span, current.Sorted.Span, out refCells, out curCells);
                        feature.Histogram = new FeatureHistogram { Labels = labels, Reference = Shares(refCells), Current = Shares(curCells) };
                    }
                    else
                    {
                        refCells = reference.BinCounts;
                        curCells = current.BinCounts;
                    }
                    CellTest(feature, test, refCells, curCells, threshold);
                    break;
                }
        }
        if (feature.Histogram is null && reference.BinCounts is not null && current.BinCounts is not null)
        {
            feature.Histogram = new FeatureHistogram
            {
                Edges = reference.Edges,
                Reference = Shares(reference.BinCounts),
                Current = Shares(current.BinCounts),
            };
        }
    }

    private static void Categorical(FeatureDrift feature, ColumnSide reference, ColumnSide current, StatTest? requested, double? threshold)
    {
        if (reference.Categories.Count + (reference.Other > 0 ? 1 : 0) == 1) feature.Warnings.Add(DriftWarnings.ConstantReference);
        if (current.Categories.Count + (current.Other > 0 ? 1 : 0) == 1) feature.Warnings.Add(DriftWarnings.ConstantCurrent);
        var labels = CategoryCells(reference, current, out var refCells, out var curCells);
        var test = requested ?? StatTests.Default(ColumnKind.Categorical, reference.Count, labels.Count);
        if (!StatTests.AppliesTo(test, ColumnKind.Categorical))
        {
            feature.Warnings.Add(DriftWarnings.TestNotApplicable);
            test = StatTests.Default(ColumnKind.Categorical, reference.Count, labels.Count);
            threshold = null;
        }
        feature.Histogram = new FeatureHistogram { Labels = labels, Reference = Shares(refCells), Current = Shares(curCells) };
        CellTest(feature, test, refCells, curCells, threshold);
    }

    private static void CellTest(FeatureDrift feature, StatTest test, double[] refCells, double[] curCells, double? threshold)
    {
        switch (test)
        {
            case StatTest.ChiSquare:
                {
                    var r = ChiSquare.Test(refCells, curCells);
                    SetPValue(feature, test, r.Statistic, r.PValue, threshold);
                    break;
                }
            case StatTest.Z:
                {
                    // Evidently: the first category (in sorted order) against all the others.
                    double refTotal = 0, curTotal = 0;
                    foreach (var v in refCells) refTotal += v;
                    foreach (var v in curCells) curTotal += v;
                    var first = 0;
                    while (first < refCells.Length - 1 && refCells[first] == 0 && curCells[first] == 0) first++;
                    var r = ZTest.TwoProportions(refTotal - refCells[first], refTotal, curTotal - curCells[first], curTotal);
                    SetPValue(feature, test, r.Statistic, r.PValue, threshold);
                    break;
                }
            case StatTest.JensenShannon:
                SetDistance(feature, test, Distances.JensenShannon(refCells, curCells), threshold);
                break;
            case StatTest.Hellinger:
                SetDistance(feature, test, Distances.Hellinger(refCells, curCells), threshold);
                break;
            case StatTest.Psi:
                {
                    var psi = Distances.Psi(refCells, curCells);
                    SetDistance(feature, test, psi, threshold);
                    if (!double.IsNaN(psi)) feature.PsiBand = StatTests.PsiBand(psi);
                    break;
                }
            default:
                feature.Warnings.Add(DriftWarnings.TestNotApplicable);
                break;
        }
    }

    private static void SetPValue(FeatureDrift feature, StatTest test, double statistic, double p, double? threshold)
    {
        var t = threshold ?? StatTests.DefaultThreshold(test);
        feature.Test = StatTests.Name(test);
        feature.Threshold = t;
        feature.Statistic = double.IsNaN(statistic) ? null : statistic;
        feature.PValue = double.IsNaN(p) ? null : p;
        feature.Score = feature.PValue;
        feature.Drifted = StatTests.Drifted(test, p, t);
        if (feature.Drifted is null) feature.Warnings.Add(DriftWarnings.TestUndefined);
    }

    private static void SetDistance(FeatureDrift feature, StatTest test, double distance, double? threshold)
    {
        var t = threshold ?? StatTests.DefaultThreshold(test);
        feature.Test = StatTests.Name(test);
        feature.Threshold = t;
        feature.Statistic = double.IsNaN(distance) ? null : distance;
        feature.Score = feature.Statistic;
        feature.Drifted = StatTests.Drifted(test, distance, t);
        if (feature.Drifted is null) feature.Warnings.Add(DriftWarnings.TestUndefined);
    }

    /// <summary>Distinct values in the union of two sorted spans, counting no further than <paramref name="cap"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static int DistinctUnion(ReadOnlySpan<double> a, ReadOnlySpan<double> b, int cap)
    {
        int i = 0, j = 0, distinct = 0;
        var last = double.NaN;
        while ((i < a.Length || j < b.Length) && distinct < cap)
        {
            double v;
            if (j >= b.Length || (i < a.Length && a[i] <= b[j])) v = a[i++];
            else v = b[j++];
            if (distinct == 0 || v != last)
            {
                distinct++;
                last = v;
            }
        }
        return distinct;
    }

    // Value counts of two sorted samples over the union of their values.
    private static List<string> ValueCells(ReadOnlySpan<double> a, ReadOnlySpan<double> b, out double[] aCells, out double[] bCells)
    {
        var values = new List<double>();
        int i = 0, j = 0;
        var ac = new List<double>();
        var bc = new List<double>();
        while (i < a.Length || j < b.Length)
        {
            double v;
            if (j >= b.Length || (i < a.Length && a[i] <= b[j])) v = a[i];
            else v = b[j];
            double na = 0, nb = 0;
            while (i < a.Length && a[i] == v) { i++; na++; }
            while (j < b.Length && b[j] == v) { j++; nb++; }
            values.Add(v);
            ac.Add(na);
            bc.Add(nb);
        }
        aCells = [.. ac];
        bCells = [.. bc];
        var labels = new List<string>(values.Count);
        foreach (var v in values) labels.Add(v.ToString("R", System.Globalization.CultureInfo.InvariantCulture));
        return labels;
    }

    // Cells over the union of categories, sorted by label. Current categories the reference does not know go to the
    // reference's "(other)" cell when the reference pooled some of its own (they may be among them), else each keeps
    // a cell of its own with a reference count of 0.
    private static List<string> CategoryCells(ColumnSide reference, ColumnSide current, out double[] refCells, out double[] curCells)
    {
        var labels = new List<string>(reference.Categories.Count + 1);
        foreach (var k in reference.Categories.Keys) labels.Add(k);
        var pooled = reference.Other > 0;
        long pooledCurrent = current.Other;
        foreach (var (k, v) in current.Categories)
        {
            if (reference.Categories.ContainsKey(k)) continue;
            if (pooled) pooledCurrent += v;
            else labels.Add(k);
        }
        labels.Sort(StringComparer.Ordinal);
        var hasOther = reference.Other > 0 || pooledCurrent > 0;
        refCells = new double[labels.Count + (hasOther ? 1 : 0)];
        curCells = new double[refCells.Length];
        for (var i = 0; i < labels.Count; i++)
        {
            refCells[i] = reference.Categories.GetValueOrDefault(labels[i]);
            curCells[i] = current.Categories.GetValueOrDefault(labels[i]);
        }
        if (hasOther)
        {
            refCells[^1] = reference.Other;
            curCells[^1] = pooled ? pooledCurrent : current.Other;
            labels.Add(OtherLabel);
        }
        return labels;
    }

    private static double[] Shares(double[] counts)
    {
        var total = 0.0;
        foreach (var c in counts) total += c;
        var shares = new double[counts.Length];
        if (total > 0) for (var i = 0; i < counts.Length; i++) shares[i] = counts[i] / total;
        return shares;
    }
}
