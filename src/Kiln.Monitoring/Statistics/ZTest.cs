namespace Kiln.Monitoring.Statistics;

/// <summary>
/// The two-proportion z-test for a binary column, as Evidently's "z" test does: the share of the second category
/// in each sample, the pooled share P, z = (p1 - p2) / sqrt(P(1-P)(1/n1 + 1/n2)), two-sided p = 2·(1 - Φ(|z|)).
/// </summary>
public static class ZTest
{
    /// <summary>Tests the share of "successes" (one of the two categories) in reference and current.</summary>
    public static PValueResult TwoProportions(double referenceSuccesses, double referenceTotal, double currentSuccesses, double currentTotal)
    {
        if (referenceTotal <= 0 || currentTotal <= 0) return new PValueResult(double.NaN, double.NaN);
        var p1 = referenceSuccesses / referenceTotal;
        var p2 = currentSuccesses / currentTotal;
        var pooled = (p1 * referenceTotal + p2 * currentTotal) / (referenceTotal + currentTotal);
        var variance = pooled * (1 - pooled) * (1.0 / referenceTotal + 1.0 / currentTotal);
        if (variance <= 0)
        {
            // Both samples hold a single and the same category: Evidently returns p = 1 here.
            return new PValueResult(0, 1.0);
        }
        var z = (p1 - p2) / Math.Sqrt(variance);
        // Evidently computes 2 * (1 - norm.cdf(|z|)); the tail is computed directly so it stays exact far out.
        var p = 2 * SpecialFunctions.NormalSf(Math.Abs(z));
        return new PValueResult(z, Math.Min(1.0, p));
    }
}
