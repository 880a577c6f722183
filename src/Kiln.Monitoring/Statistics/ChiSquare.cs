namespace Kiln.Monitoring.Statistics;

/// <summary>The result of a test with a statistic and a p-value.</summary>
/// <param name="Statistic">The test statistic.</param>
/// <param name="PValue">The p-value; NaN when the test is undefined (an empty side).</param>
/// <param name="DegreesOfFreedom">Degrees of freedom where the test has them, else 0.</param>
public readonly record struct PValueResult(double Statistic, double PValue, int DegreesOfFreedom = 0);

/// <summary>
/// Pearson's chi-square goodness-of-fit of current category counts against the reference's shares, as Evidently's
/// "chisquare" test does: expected_i = reference_i / Σreference · Σcurrent, then scipy.stats.chisquare(observed,
/// expected). Cells empty on both sides are left out (Evidently builds its cells from the categories present on
/// either side). A category present in the current data but absent from the reference has expected count 0: its
/// term is +∞ and the p-value 0, as scipy computes it: the reference says the category cannot occur.
/// </summary>
public static class ChiSquare
{
    /// <summary>Tests current counts against reference counts, cell by cell (both spans index the same categories).</summary>
    public static PValueResult Test(ReadOnlySpan<double> referenceCounts, ReadOnlySpan<double> currentCounts)
    {
        if (referenceCounts.Length != currentCounts.Length)
        {
            throw new ArgumentException("reference and current counts must have the same categories", nameof(currentCounts));
        }
        double referenceTotal = 0, currentTotal = 0;
        var cells = 0;
        for (var i = 0; i < referenceCounts.Length; i++)
        {
            referenceTotal += referenceCounts[i];
            currentTotal += currentCounts[i];
            if (referenceCounts[i] > 0 || currentCounts[i] > 0) cells++;
        }
        if (referenceTotal <= 0 || currentTotal <= 0) return new PValueResult(double.NaN, double.NaN);
        var scale = currentTotal / referenceTotal;
        var statistic = 0.0;
        for (var i = 0; i < referenceCounts.Length; i++)
        {
            double r = referenceCounts[i], c = currentCounts[i];
            if (r <= 0 && c <= 0) continue;
            var expected = r * scale;
            if (expected <= 0)
            {
                statistic = double.PositiveInfinity;
                continue;
            }
            var d = c - expected;
            statistic += d * d / expected;
        }
        var dof = cells - 1;
        if (dof <= 0) return new PValueResult(statistic, statistic > 0 ? 0.0 : 1.0, 0);
        var p = double.IsPositiveInfinity(statistic) ? 0.0 : SpecialFunctions.ChiSquareSf(statistic, dof);
        return new PValueResult(statistic, p, dof);
    }
}
