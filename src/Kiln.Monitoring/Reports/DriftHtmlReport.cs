using System.Globalization;
using System.Net;
using System.Text;
using Kiln.Core.Profiling;
using Kiln.Monitoring.Drift;

namespace Kiln.Monitoring.Reports;

/// <summary>
/// A self-contained HTML drift report: a summary, then one card per feature sorted by severity with the reference
/// and current distributions side by side as inline SVG, the test, its score and verdict, data quality and warnings.
/// It loads nothing from the network.
/// </summary>
public static class DriftHtmlReport
{
    private const int ChartWidth = 560;
    private const int ChartHeight = 150;

    /// <summary>
    /// The report's stylesheet, scoped to its container (<c>.drift-report</c>) so a page can embed it. Colours are CSS
    /// variables with the standalone report's values as fallbacks: the web UI's theme (light or dark) sets them.
    /// </summary>
    public const string Styles =
        ".drift-report{color:var(--fg,#1d232b)}.drift-report .sub{color:var(--muted,#5b6573);margin-bottom:18px}" +
        ".drift-report .summary{display:flex;gap:12px;flex-wrap:wrap;margin-bottom:20px}" +
        ".drift-report .tile{background:var(--card,#fff);border-radius:8px;padding:12px 16px;box-shadow:0 1px 2px #0002;min-width:150px}" +
        ".drift-report .tile b{display:block;font-size:22px}.drift-report .bad{color:var(--bad,#c62828)}.drift-report .ok{color:var(--ok,#2e7d32)}.drift-report .muted{color:var(--muted,#5b6573)}" +
        ".drift-report .card{background:var(--card,#fff);border-radius:8px;padding:14px 18px;margin:0 0 14px;box-shadow:0 1px 2px #0002;border:0;border-left:6px solid #9aa4b1}" +
        ".drift-report .card.drift{border-left-color:#c62828}.drift-report .card.nodrift{border-left-color:#2e7d32}" +
        ".drift-report .head{display:flex;justify-content:space-between;align-items:baseline;gap:12px;flex-wrap:wrap}" +
        ".drift-report .name{font-weight:600;font-size:16px}.drift-report .verdict{font-weight:600}" +
        ".drift-report table{border-collapse:collapse;margin-top:6px}.drift-report td{padding:1px 12px 1px 0;vertical-align:top}" +
        ".drift-report .warn{display:inline-block;background:var(--warn-bg,#fff3e0);color:var(--warn-fg,#8a4b00);border-radius:4px;padding:0 6px;margin:2px 4px 0 0;font-size:12px}" +
        ".drift-report .legend span{display:inline-block;width:10px;height:10px;margin:0 4px 0 10px}" +
        ".drift-report svg text{fill:var(--muted,#5b6573)}";

    /// <summary>Renders the report as a standalone page (what <c>kiln drift --html</c> and the drift_check task write).</summary>
    public static string Render(DriftReport report, string title)
    {
        var sb = new StringBuilder(64 * 1024);
        sb.Append("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>").Append(E(title)).Append("</title>\n<style>")
          .Append("body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#1d232b;background:#f6f7f9}")
          .Append("h1{font-size:22px;margin:0 0 4px}")
          .Append(Styles)
          .Append("</style></head><body>\n<div class=\"drift-report\">");
        sb.Append("<h1>").Append(E(title)).Append("</h1>");
        Body(sb, report);
        sb.Append("</div></body></html>\n");
        return sb.ToString();
    }

    /// <summary>
    /// The report's content without the page around it (for the web UI, which adds <see cref="Styles"/> once and wraps
    /// it in an element of class <c>drift-report</c>): the summary, then one card per feature, drifted first.
    /// </summary>
    public static string Fragment(DriftReport report)
    {
        var sb = new StringBuilder(64 * 1024);
        Body(sb, report);
        return sb.ToString();
    }

    private static void Body(StringBuilder sb, DriftReport report)
    {
        sb.Append("<div class=\"sub\">Drift of the current data against the model's reference profile</div>\n");

        var verdict = report.DatasetDrift ? "<b class=\"bad\">drift</b>" : report.FeaturesTested == 0 ? "<b class=\"muted\">not tested</b>" : "<b class=\"ok\">no drift</b>";
        sb.Append("<div class=\"summary\">")
          .Append("<div class=\"tile\">dataset").Append(verdict).Append("</div>")
          .Append("<div class=\"tile\">drifted features<b>").Append(report.FeaturesDrifted).Append(" / ").Append(report.FeaturesTested).Append("</b></div>")
          .Append("<div class=\"tile\">drifted share<b>").Append(F(report.DriftedShare)).Append("</b><span class=\"muted\">threshold ").Append(F(report.DriftShareThreshold)).Append("</span></div>")
          .Append("<div class=\"tile\">rows<b>").Append(report.CurrentRows.ToString("N0", CultureInfo.InvariantCulture)).Append("</b><span class=\"muted\">reference ")
          .Append(report.ReferenceRows.ToString("N0", CultureInfo.InvariantCulture)).Append("</span></div>")
          .Append("</div>\n");
        foreach (var w in report.Warnings) sb.Append("<span class=\"warn\">").Append(E(w)).Append("</span>");
        sb.Append("<div class=\"legend muted\">bars:<span style=\"background:#7a8797\"></span>reference<span style=\"background:#1e88e5\"></span>current</div>\n");

        var features = new List<FeatureDrift>(report.Features);
        features.Sort((a, b) => DriftReport.Severity(b).CompareTo(DriftReport.Severity(a)));
        foreach (var f in features) Card(sb, f);
    }

    private static void Card(StringBuilder sb, FeatureDrift f)
    {
        var cls = f.Drifted switch { true => "card drift", false => "card nodrift", null => "card" };
        var verdict = f.Drifted switch { true => "<span class=\"verdict bad\">drift</span>", false => "<span class=\"verdict ok\">no drift</span>", null => "<span class=\"verdict muted\">not tested</span>" };
        sb.Append("<div class=\"").Append(cls).Append("\"><div class=\"head\"><span class=\"name\">").Append(E(f.Name))
          .Append("</span> <span class=\"muted\">").Append(f.Kind == ColumnKind.Numeric ? "numeric" : "categorical").Append("</span>").Append(verdict).Append("</div>\n<table>");
        if (f.Test is not null)
        {
            Row(sb, "test", f.Test + (f.Method is null ? "" : $" ({f.Method})"));
            if (f.PValue is { } p) Row(sb, "p-value", $"{G(p)} (drift when &lt; {G(f.Threshold ?? 0)})", raw: true);
            else if (f.Score is { } s) Row(sb, "distance", $"{G(s)} (drift when ≥ {G(f.Threshold ?? 0)})" + (f.PsiBand is null ? "" : $", {f.PsiBand}"));
            if (f.Statistic is { } st && f.PValue is not null) Row(sb, "statistic", G(st));
        }
        var q = f.Quality;
        if (q.MissingRate is { } mr) Row(sb, "missing", $"{P(mr)} (training {(q.ReferenceMissingRate is { } r ? P(r) : "–")})");
        if (q.OutOfRangeShare is { } oor) Row(sb, "outside training range", $"{P(oor)} ({q.OutOfRangeCount:N0})");
        if (q.UnseenCategories is > 0) Row(sb, "unseen categories", $"{q.UnseenCategories} ({P(q.UnseenShare ?? 0)}): {string.Join(", ", q.UnseenExamples ?? [])}");
        if (q.CurrentInfinite > 0) Row(sb, "±infinity", q.CurrentInfinite.ToString("N0", CultureInfo.InvariantCulture));
        sb.Append("</table>");
        foreach (var w in f.Warnings) sb.Append("<span class=\"warn\">").Append(E(w)).Append("</span>");
        if (f.Histogram is { } h) Chart(sb, h);
        sb.Append("</div>\n");
    }

    private static void Row(StringBuilder sb, string key, string value, bool raw = false) =>
        sb.Append("<tr><td class=\"muted\">").Append(E(key)).Append("</td><td>").Append(raw ? value : E(value)).Append("</td></tr>");

    // Grouped bars: for each bin, the reference share (grey) beside the current share (blue).
    private static void Chart(StringBuilder sb, FeatureHistogram h)
    {
        var n = Math.Min(h.Reference.Length, h.Current.Length);
        if (n == 0) return;
        var max = 0.0;
        for (var i = 0; i < n; i++) max = Math.Max(max, Math.Max(h.Reference[i], h.Current[i]));
        if (max <= 0) return;
        const int bottom = 28;
        var plot = ChartHeight - bottom;
        var slot = (double)ChartWidth / n;
        var bar = Math.Max(1.0, slot * 0.4);
        sb.Append("<div><svg width=\"").Append(ChartWidth).Append("\" height=\"").Append(ChartHeight).Append("\" role=\"img\">");
        sb.Append("<line x1=\"0\" y1=\"").Append(plot).Append("\" x2=\"").Append(ChartWidth).Append("\" y2=\"").Append(plot).Append("\" stroke=\"#c5cbd3\"/>");
        for (var i = 0; i < n; i++)
        {
            var x = i * slot + slot * 0.1;
            Bar(sb, x, plot, bar, h.Reference[i] / max * (plot - 4), "#7a8797", $"{Label(h, i)}: reference {P(h.Reference[i])}");
            Bar(sb, x + bar, plot, bar, h.Current[i] / max * (plot - 4), "#1e88e5", $"{Label(h, i)}: current {P(h.Current[i])}");
            if (n <= 24 && h.Labels is not null)
            {
                sb.Append("<text x=\"").Append(F(x + bar)).Append("\" y=\"").Append(plot + 14).Append("\" font-size=\"10\" text-anchor=\"middle\" fill=\"#5b6573\">")
                  .Append(E(Shorten(Label(h, i)))).Append("</text>");
            }
        }
        if (h.Edges is { Length: >= 2 } edges)
        {
            // Ticks at round values, placed where they fall among the bin edges (the edges need not be evenly
            // spaced): a reader sees the scale of the data, not two bare extremes.
            var ticks = AxisTicks.Nice(edges[0], edges[^1]);
            var labels = AxisTicks.Labels(ticks);
            for (var t = 0; t < ticks.Count; t++)
            {
                var x = ValueX(edges, ticks[t], slot);
                sb.Append("<line x1=\"").Append(F(x)).Append("\" y1=\"").Append(plot).Append("\" x2=\"").Append(F(x)).Append("\" y2=\"").Append(plot + 4).Append("\" stroke=\"#9aa4b1\"/>");
                sb.Append("<text class=\"tick\" x=\"").Append(F(x)).Append("\" y=\"").Append(plot + 14).Append("\" font-size=\"10\" text-anchor=\"middle\" fill=\"#5b6573\">")
                  .Append(E(labels[t])).Append("</text>");
            }
            sb.Append("<text x=\"0\" y=\"").Append(plot + 26).Append("\" font-size=\"10\" fill=\"#9aa4b1\">below</text>");
            sb.Append("<text x=\"").Append(ChartWidth).Append("\" y=\"").Append(plot + 26).Append("\" font-size=\"10\" text-anchor=\"end\" fill=\"#9aa4b1\">above</text>");
        }
        sb.Append("</svg></div>");
    }

    // Bin i (1..edges.Length-1) spans [edges[i-1], edges[i]) and occupies slot i; slot 0 is "below", the last "above".
    private static double ValueX(double[] edges, double value, double slot)
    {
        for (var j = 0; j < edges.Length - 1; j++)
        {
            if (value > edges[j + 1] && j < edges.Length - 2) continue;
            var width = edges[j + 1] - edges[j];
            var within = width > 0 ? Math.Clamp((value - edges[j]) / width, 0, 1) : 0;
            return slot * (1 + j + within);
        }
        return slot;
    }

    private static void Bar(StringBuilder sb, double x, int baseline, double width, double height, string color, string tip)
    {
        sb.Append("<rect x=\"").Append(F(x)).Append("\" y=\"").Append(F(baseline - height)).Append("\" width=\"").Append(F(width))
          .Append("\" height=\"").Append(F(height)).Append("\" fill=\"").Append(color).Append("\"><title>").Append(E(tip)).Append("</title></rect>");
    }

    private static string Label(FeatureHistogram h, int i)
    {
        if (h.Labels is { } labels && i < labels.Count) return labels[i];
        if (h.Edges is { } e)
        {
            if (i == 0) return $"below {AxisTicks.Compact(e[0])}";
            if (i == e.Length) return $"above {AxisTicks.Compact(e[^1])}";
            return $"[{AxisTicks.Compact(e[i - 1])}, {AxisTicks.Compact(e[i])}" + (i == e.Length - 1 ? "]" : ")");
        }
        return $"bin {i}";
    }

    private static string Shorten(string s) => s.Length <= 10 ? s : s[..9] + "…";

    private static string E(string s) => WebUtility.HtmlEncode(s);

    private static string F(double v) => v.ToString("0.##", CultureInfo.InvariantCulture);

    private static string G(double v) => v.ToString("G4", CultureInfo.InvariantCulture);

    private static string P(double share) => (share * 100).ToString("0.##", CultureInfo.InvariantCulture) + "%";
}
