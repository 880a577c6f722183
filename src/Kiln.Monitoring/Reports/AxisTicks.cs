using System.Globalization;

namespace Kiln.Monitoring.Reports;

/// <summary>
/// Round tick values for a chart axis (steps of 1, 2, 2.5 or 5 × 10^k) and short labels for them, so an axis reads
/// "0, 2,500, 5,000" rather than "0 … 1.043E+04".
/// </summary>
public static class AxisTicks
{
    private static readonly double[] Mantissas = [1, 2, 2.5, 5];

    /// <summary>4–6 round values within [min, max] (fewer only when the range is degenerate).</summary>
    public static IReadOnlyList<double> Nice(double min, double max)
    {
        if (!double.IsFinite(min) || !double.IsFinite(max)) return [];
        if (max < min) (min, max) = (max, min);
        var range = max - min;
        if (range <= 0) return [min];
        var magnitude = Math.Pow(10, Math.Floor(Math.Log10(range / 5)));
        var best = 0.0;
        var bestMiss = int.MaxValue;
        // Three decades around the guess cover every range: the step that gives closest to 5 ticks wins,
        // the larger step on a tie (fewer, rounder labels).
        foreach (var scale in (double[])[magnitude / 10, magnitude, magnitude * 10])
        {
            foreach (var m in Mantissas)
            {
                var step = m * scale;
                var miss = Math.Abs(Count(min, max, step) - 5);
                if (miss < bestMiss || (miss == bestMiss && step > best)) (best, bestMiss) = (step, miss);
            }
        }
        var first = (long)Math.Ceiling(min / best - 1e-9);
        var last = (long)Math.Floor(max / best + 1e-9);
        var decimals = Decimals(best);
        var ticks = new List<double>((int)(last - first + 1));
        // Multiplying an integer by the step (then rounding away float noise) keeps 0.1 + 0.2 artefacts out of labels.
        for (var k = first; k <= last; k++) ticks.Add(Math.Round(k * best, Math.Min(decimals + 1, 15)));
        return ticks;
    }

    /// <summary>Labels for ticks in one unit chosen by the largest (plain below 100,000, then k, M, B).</summary>
    public static string[] Labels(IReadOnlyList<double> ticks)
    {
        if (ticks.Count == 0) return [];
        var largest = 0.0;
        foreach (var t in ticks) largest = Math.Max(largest, Math.Abs(t));
        var (unit, suffix) = Unit(largest);
        // The step sets the decimals every label needs to tell neighbours apart (0.25 needs two, 2.5k one).
        var step = ticks.Count > 1 ? Math.Abs(ticks[1] - ticks[0]) / unit : 0;
        var decimals = step > 0 ? Decimals(step) : 0;
        if (step > 0 && decimals > 6) return [.. ticks.Select(Compact)]; // extraordinary magnitudes keep exponents
        // Optional decimals: "0.5" and "1" read better than "0.50" and "1.00"; a bare 0 needs no unit.
        var format = "#,0" + (decimals > 0 ? "." + new string('#', decimals) : "");
        return [.. ticks.Select(t => t == 0 ? "0" : (t / unit).ToString(format, CultureInfo.InvariantCulture) + suffix)];
    }

    /// <summary>One value, short: 10,430 → "10,430", 123,456 → "123k", 0.25 → "0.25"; exponents only below 0.0001.</summary>
    public static string Compact(double v)
    {
        if (!double.IsFinite(v)) return v.ToString(CultureInfo.InvariantCulture);
        var a = Math.Abs(v);
        if (a != 0 && (a < 1e-4 || a >= 1e15)) return v.ToString("G3", CultureInfo.InvariantCulture);
        var (unit, suffix) = Unit(a);
        var scaled = v / unit;
        // Four significant digits, as G4 gave, without its exponent.
        var digits = Math.Abs(scaled) < 1 ? 4 : Math.Max(0, 3 - (int)Math.Floor(Math.Log10(Math.Abs(scaled))));
        return Math.Round(scaled, digits).ToString("#,0." + new string('#', Math.Max(digits, 1)), CultureInfo.InvariantCulture) + suffix;
    }

    private static (double Unit, string Suffix) Unit(double largest) => largest switch
    {
        >= 1e9 => (1e9, "B"),
        >= 1e6 => (1e6, "M"),
        >= 1e5 => (1e3, "k"),
        _ => (1, ""),
    };

    private static int Count(double min, double max, double step) =>
        (int)(Math.Floor(max / step + 1e-9) - Math.Ceiling(min / step - 1e-9)) + 1;

    // The fewest decimals that write the step exactly (2.5 needs one, 0.25 two, 2000 none).
    private static int Decimals(double step)
    {
        for (var d = 0; d < 15; d++)
        {
            var scaled = step * Math.Pow(10, d);
            if (Math.Abs(scaled - Math.Round(scaled)) < 1e-6 * Math.Max(1, scaled)) return d;
        }
        return 15;
    }
}
