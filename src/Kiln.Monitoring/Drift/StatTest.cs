using Kiln.Core.Profiling;

namespace Kiln.Monitoring.Drift;

/// <summary>The drift tests and distances Kiln computes per column.</summary>
public enum StatTest
{
    /// <summary>Two-sample Kolmogorov–Smirnov (numeric; p-value).</summary>
    Ks,
    /// <summary>Pearson's chi-square on category counts (p-value).</summary>
    ChiSquare,
    /// <summary>Two-proportion z-test (binary columns; p-value).</summary>
    Z,
    /// <summary>Wasserstein distance divided by the reference's standard deviation (numeric; distance).</summary>
    Wasserstein,
    /// <summary>Jensen–Shannon distance, natural logarithm (distance).</summary>
    JensenShannon,
    /// <summary>Population stability index (distance-like score).</summary>
    Psi,
    /// <summary>Hellinger distance (distance).</summary>
    Hellinger,
}

/// <summary>Names, kinds and default thresholds of the <see cref="StatTest"/>s (Evidently's names and defaults).</summary>
public static class StatTests
{
    /// <summary>p &lt; 0.05 means drift for the p-value tests.</summary>
    public const double DefaultPValueThreshold = 0.05;

    /// <summary>A distance ≥ 0.1 means drift (Wasserstein normed, Jensen–Shannon, Hellinger, PSI).</summary>
    public const double DefaultDistanceThreshold = 0.1;

    /// <summary>PSI below this is "none", from it up to <see cref="PsiSignificant"/> "moderate".</summary>
    public const double PsiModerate = 0.1;

    /// <summary>PSI at or above this is "significant".</summary>
    public const double PsiSignificant = 0.25;

    /// <summary>The wire name: ks, chisquare, z, wasserstein, jensenshannon, psi, hellinger.</summary>
    public static string Name(StatTest test) => test switch
    {
        StatTest.Ks => "ks",
        StatTest.ChiSquare => "chisquare",
        StatTest.Z => "z",
        StatTest.Wasserstein => "wasserstein",
        StatTest.JensenShannon => "jensenshannon",
        StatTest.Psi => "psi",
        StatTest.Hellinger => "hellinger",
        _ => throw new ArgumentOutOfRangeException(nameof(test)),
    };

    /// <summary>Parses a wire name (case-insensitive; "chi2", "chi_square", "js", "kolmogorov_smirnov" also accepted).</summary>
    public static bool TryParse(string? name, out StatTest test)
    {
        switch (name?.Trim().ToLowerInvariant())
        {
            case "ks" or "kolmogorov_smirnov": test = StatTest.Ks; return true;
            case "chisquare" or "chi_square" or "chi2": test = StatTest.ChiSquare; return true;
            case "z" or "ztest" or "z_test": test = StatTest.Z; return true;
            case "wasserstein" or "wasserstein_normed": test = StatTest.Wasserstein; return true;
            case "jensenshannon" or "jensen_shannon" or "js": test = StatTest.JensenShannon; return true;
            case "psi": test = StatTest.Psi; return true;
            case "hellinger": test = StatTest.Hellinger; return true;
            default: test = default; return false;
        }
    }

    /// <summary>True for tests whose score is a p-value (drift when p &lt; threshold); false for distances (drift when ≥).</summary>
    public static bool IsPValue(StatTest test) => test is StatTest.Ks or StatTest.ChiSquare or StatTest.Z;

    /// <summary>0.05 for p-value tests, 0.1 for distances and PSI.</summary>
    public static double DefaultThreshold(StatTest test) => IsPValue(test) ? DefaultPValueThreshold : DefaultDistanceThreshold;

    /// <summary>Whether a test can run on a column of this kind (KS and Wasserstein need numbers).</summary>
    public static bool AppliesTo(StatTest test, ColumnKind kind) =>
        kind == ColumnKind.Numeric || test is not (StatTest.Ks or StatTest.Wasserstein);

    /// <summary>The drift verdict for a score under a threshold; null when the score is NaN.</summary>
    public static bool? Drifted(StatTest test, double score, double threshold)
    {
        if (double.IsNaN(score)) return null;
        return IsPValue(test) ? score < threshold : score >= threshold;
    }

    /// <summary>PSI band: "none" below 0.1, "moderate" below 0.25, else "significant".</summary>
    public static string PsiBand(double psi) => psi < PsiModerate ? "none" : psi < PsiSignificant ? "moderate" : "significant";

    /// <summary>
    /// Evidently's default test: with a reference of at most 1000 values, KS for numeric columns with more than 5
    /// distinct values, else chi-square with more than 2 distinct values, else the z-test; with a larger reference,
    /// Wasserstein (normed) for numeric columns with more than 5 distinct values, else Jensen–Shannon.
    /// </summary>
    /// <param name="kind">The column's kind.</param>
    /// <param name="referenceCount">Non-missing reference values.</param>
    /// <param name="distinctValues">Distinct values in reference and current together.</param>
    public static StatTest Default(ColumnKind kind, long referenceCount, int distinctValues)
    {
        if (referenceCount <= 1000)
        {
            if (kind == ColumnKind.Numeric && distinctValues > 5) return StatTest.Ks;
            return distinctValues > 2 ? StatTest.ChiSquare : StatTest.Z;
        }
        return kind == ColumnKind.Numeric && distinctValues > 5 ? StatTest.Wasserstein : StatTest.JensenShannon;
    }
}
