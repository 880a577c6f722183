using Kiln.Core.Profiling;

namespace Kiln.Monitoring.Drift;

/// <summary>Named warnings a drift result can carry (they never stop the report).</summary>
public static class DriftWarnings
{
    /// <summary>The current window has no rows: nothing was tested.</summary>
    public const string EmptyWindow = "empty_window";
    /// <summary>No feature could be tested, so there is no dataset verdict.</summary>
    public const string NoFeatureTested = "no_feature_tested";
    /// <summary>The current data has a column the reference lacks; it is reported but not tested.</summary>
    public const string NotInReference = "column_not_in_reference";
    /// <summary>The reference has a column the current data lacks.</summary>
    public const string NotInCurrent = "column_not_in_current";
    /// <summary>Every current value of the column is missing.</summary>
    public const string AllMissing = "all_missing";
    /// <summary>The reference holds no value for the column.</summary>
    public const string EmptyReference = "empty_reference";
    /// <summary>The reference column has a single distinct value.</summary>
    public const string ConstantReference = "constant_reference";
    /// <summary>The current column has a single distinct value.</summary>
    public const string ConstantCurrent = "constant_current";
    /// <summary>The current column has a single value: tests have almost no power.</summary>
    public const string SingleRow = "single_row";
    /// <summary>±Infinity values were left out of the test (counted in the quality section).</summary>
    public const string InfiniteValues = "infinite_values";
    /// <summary>The current data holds categories the reference never saw.</summary>
    public const string UnseenCategories = "unseen_categories";
    /// <summary>The reference kept only its first categories; later ones were pooled as "other".</summary>
    public const string ReferenceCategoriesTruncated = "reference_categories_truncated";
    /// <summary>The column is numeric on one side and categorical on the other.</summary>
    public const string KindMismatch = "kind_mismatch";
    /// <summary>Current values that should be numbers could not be parsed; they count as missing.</summary>
    public const string UnparsableValues = "unparsable_values";
    /// <summary>The requested test does not apply to the column's kind; the default was used.</summary>
    public const string TestNotApplicable = "test_not_applicable";
    /// <summary>The test could not produce a score (e.g. an empty side).</summary>
    public const string TestUndefined = "test_undefined";
}

/// <summary>Drift of a current window against a reference profile: per feature and for the dataset.</summary>
public sealed class DriftReport
{
    public long ReferenceRows { get; set; }

    public long CurrentRows { get; set; }

    /// <summary>Features with a verdict.</summary>
    public int FeaturesTested { get; set; }

    public int FeaturesDrifted { get; set; }

    /// <summary>FeaturesDrifted / FeaturesTested (0 when none was tested).</summary>
    public double DriftedShare { get; set; }

    /// <summary>The share of drifted features at which the dataset drifts.</summary>
    public double DriftShareThreshold { get; set; }

    public bool DatasetDrift { get; set; }

    public List<FeatureDrift> Features { get; init; } = [];

    /// <summary>Dataset-level warnings (see <see cref="DriftWarnings"/>).</summary>
    public List<string> Warnings { get; init; } = [];

    /// <summary>
    /// Lists a current column the reference lacks (not tested), for callers that did not read it. The kind has no
    /// default: a default of categorical labelled the model's numeric probability column as categorical.
    /// </summary>
    public void AddColumnNotInReference(string name, ColumnKind kind) => Features.Add(new FeatureDrift
    {
        Name = name,
        Kind = kind,
        Quality = new FeatureQuality(),
        Warnings = { DriftWarnings.NotInReference },
    });

    /// <summary>
    /// How severe a feature's drift is, for sorting: drifted features first, then by how far past (or short of) its
    /// threshold the score is; untested features last.
    /// </summary>
    public static double Severity(FeatureDrift f)
    {
        if (f.Score is not { } score || f.Threshold is not { } threshold || f.Test is null) return double.NegativeInfinity;
        var pValue = f.PValue is not null;
        var ratio = pValue ? threshold / Math.Max(score, 1e-300) : score / Math.Max(threshold, 1e-300);
        return (f.Drifted == true ? 1e6 : 0) + Math.Min(ratio, 1e5);
    }
}

/// <summary>The drift of one feature: the test, its score, the verdict, data quality and warnings.</summary>
public sealed class FeatureDrift
{
    public required string Name { get; init; }

    public ColumnKind Kind { get; set; }

    /// <summary>The test's wire name (ks, chisquare, z, wasserstein, jensenshannon, psi, hellinger); null when untested.</summary>
    public string? Test { get; set; }

    /// <summary>The test statistic (KS D, chi-square, z) or the distance.</summary>
    public double? Statistic { get; set; }

    /// <summary>The p-value, for p-value tests.</summary>
    public double? PValue { get; set; }

    /// <summary>The value compared with the threshold: the p-value or the distance.</summary>
    public double? Score { get; set; }

    public double? Threshold { get; set; }

    /// <summary>The verdict; null when the feature was not tested.</summary>
    public bool? Drifted { get; set; }

    /// <summary>For PSI: none, moderate or significant.</summary>
    public string? PsiBand { get; set; }

    /// <summary>How the KS p-value was computed (exact or asymptotic).</summary>
    public string? Method { get; set; }

    public required FeatureQuality Quality { get; init; }

    /// <summary>Reference and current distributions, for charts.</summary>
    public FeatureHistogram? Histogram { get; set; }

    public List<string> Warnings { get; init; } = [];
}

/// <summary>Data quality of a feature in the current window, against training.</summary>
public sealed class FeatureQuality
{
    public long CurrentCount { get; set; }

    public long CurrentMissing { get; set; }

    public long CurrentInfinite { get; set; }

    /// <summary>Missing / rows in the current window.</summary>
    public double? MissingRate { get; set; }

    public double? ReferenceMissingRate { get; set; }

    /// <summary>Numeric: current values below the training minimum or above the training maximum.</summary>
    public long? OutOfRangeCount { get; set; }

    /// <summary>Numeric: OutOfRangeCount / current non-missing values.</summary>
    public double? OutOfRangeShare { get; set; }

    /// <summary>Categorical: distinct current categories the reference never saw.</summary>
    public int? UnseenCategories { get; set; }

    /// <summary>Categorical: share of current values in unseen categories.</summary>
    public double? UnseenShare { get; set; }

    /// <summary>Categorical: a few of the unseen categories, for the report.</summary>
    public List<string>? UnseenExamples { get; set; }
}

/// <summary>Reference and current shares per bin (numeric: edges with below/above bins) or per category.</summary>
public sealed class FeatureHistogram
{
    /// <summary>Numeric: the reference's bin edges (bins are [below, edge0..edge1, …, above]).</summary>
    public double[]? Edges { get; set; }

    /// <summary>Categorical (or low-cardinality numeric): the cell labels.</summary>
    public List<string>? Labels { get; set; }

    public required double[] Reference { get; init; }

    public required double[] Current { get; init; }
}
