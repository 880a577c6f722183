using System.Globalization;
using System.Net;
using System.Text;
using Kiln.Pipelines.Http;
using Microsoft.AspNetCore.Components;

namespace Kiln.Web.Charts;

/// <summary>
/// A pipeline run's DAG and the timeline of its attempts as SVG: tasks in columns by depth (a task sits one column right
/// of its deepest dependency), edges from dependency to task, each box filled by the task's state (failed is red).
/// </summary>
internal static class PipelineGraph
{
    private const int BoxW = 170, BoxH = 44, GapX = 60, GapY = 18, Pad = 10;

    /// <summary>The fill and text colour of a task state (both themes: the fills are dark enough for white text).</summary>
    public static (string Fill, string Text) Colors(string state) => state switch
    {
        "failed" => ("#c92a2a", "#fff"),
        "succeeded" => ("#2b8a3e", "#fff"),
        "running" => ("#1e6fd9", "#fff"),
        "cancelled" => ("#5c636e", "#fff"),
        "skipped" or "upstream_failed" => ("#868e96", "#fff"),
        _ => ("#adb5bd", "#1d232b"),
    };

    public static MarkupString Dag(IReadOnlyList<TaskDto> tasks)
    {
        var byName = tasks.ToDictionary(t => t.Task, StringComparer.Ordinal);
        var depth = new Dictionary<string, int>(StringComparer.Ordinal);
        int Depth(string name, int guard)
        {
            if (depth.TryGetValue(name, out var d)) return d;
            if (guard > tasks.Count || !byName.TryGetValue(name, out var t)) return 0;
            d = t.DependsOn.Count == 0 ? 0 : t.DependsOn.Max(p => Depth(p, guard + 1)) + 1;
            depth[name] = d;
            return d;
        }
        foreach (var t in tasks) Depth(t.Task, 0);
        var columns = tasks.GroupBy(t => depth[t.Task]).OrderBy(g => g.Key).Select(g => g.ToList()).ToList();
        var pos = new Dictionary<string, (double X, double Y)>(StringComparer.Ordinal);
        for (var c = 0; c < columns.Count; c++)
        {
            for (var r = 0; r < columns[c].Count; r++) pos[columns[c][r].Task] = (Pad + c * (BoxW + GapX), Pad + r * (BoxH + GapY));
        }
        var width = Pad * 2 + Math.Max(1, columns.Count) * (BoxW + GapX) - GapX;
        var height = Pad * 2 + Math.Max(1, columns.Count == 0 ? 1 : columns.Max(c => c.Count)) * (BoxH + GapY) - GapY;
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"<svg class=\"dag\" viewBox=\"0 0 {width} {height}\" width=\"{width}\" height=\"{height}\" role=\"img\" aria-label=\"task graph\">");
        sb.Append("<defs><marker id=\"arrow\" viewBox=\"0 0 8 8\" refX=\"8\" refY=\"4\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto\"><path d=\"M0,0 L8,4 L0,8 z\" fill=\"#868e96\"/></marker></defs>");
        foreach (var t in tasks)
        {
            foreach (var dep in t.DependsOn)
            {
                if (!pos.TryGetValue(dep, out var from)) continue;
                var to = pos[t.Task];
                sb.Append(CultureInfo.InvariantCulture, $"<line x1=\"{from.X + BoxW}\" y1=\"{from.Y + BoxH / 2.0}\" x2=\"{to.X - 2}\" y2=\"{to.Y + BoxH / 2.0}\" stroke=\"#868e96\" stroke-width=\"1.5\" marker-end=\"url(#arrow)\"/>");
            }
        }
        foreach (var t in tasks)
        {
            var (x, y) = pos[t.Task];
            var (fill, text) = Colors(t.State);
            sb.Append(CultureInfo.InvariantCulture, $"<g class=\"task\" data-task=\"{E(t.Task)}\" data-state=\"{E(t.State)}\"><title>{E(t.Task)}: {E(t.State)}</title>");
            sb.Append(CultureInfo.InvariantCulture, $"<rect x=\"{x}\" y=\"{y}\" width=\"{BoxW}\" height=\"{BoxH}\" rx=\"6\" fill=\"{fill}\"/>");
            sb.Append(CultureInfo.InvariantCulture, $"<text x=\"{x + 10}\" y=\"{y + 18}\" fill=\"{text}\" font-size=\"13\" font-weight=\"600\">{E(Short(t.Task, 22))}</text>");
            sb.Append(CultureInfo.InvariantCulture, $"<text x=\"{x + 10}\" y=\"{y + 35}\" fill=\"{text}\" font-size=\"11\">{E(t.Kind)} · {E(t.State)}</text></g>");
        }
        sb.Append("</svg>");
        return new MarkupString(sb.ToString());
    }

    /// <summary>A Gantt chart: one row per attempt, a bar from its start to its end (or to now while it runs).</summary>
    public static MarkupString Timeline(IReadOnlyList<AttemptDto> attempts, DateTimeOffset now)
    {
        if (attempts.Count == 0) return new MarkupString("<p class=\"muted\">No attempts yet.</p>");
        const int label = 200, row = 24, width = 860;
        var start = attempts.Min(a => a.StartedAt);
        var end = attempts.Max(a => a.FinishedAt ?? now);
        var span = Math.Max(1, (end - start).TotalMilliseconds);
        var height = attempts.Count * row + 26;
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"<svg class=\"gantt\" viewBox=\"0 0 {width} {height}\" width=\"{width}\" height=\"{height}\" role=\"img\" aria-label=\"attempts over time\">");
        var i = 0;
        foreach (var a in attempts.OrderBy(a => a.StartedAt))
        {
            var y = i * row + 4;
            var x0 = label + (a.StartedAt - start).TotalMilliseconds / span * (width - label - 10);
            var x1 = label + ((a.FinishedAt ?? now) - start).TotalMilliseconds / span * (width - label - 10);
            var (fill, _) = Colors(a.State);
            var took = Format.Duration((a.FinishedAt ?? now) - a.StartedAt);
            sb.Append(CultureInfo.InvariantCulture, $"<g class=\"attempt\" data-task=\"{E(a.Task)}\" data-state=\"{E(a.State)}\"><title>{E(a.Task)} attempt {a.Attempt}: {E(a.State)}, {E(took)}</title>");
            sb.Append(CultureInfo.InvariantCulture, $"<text x=\"0\" y=\"{y + 14}\" font-size=\"12\">{E(Short(a.Task, 24))} #{a.Attempt}</text>");
            sb.Append(CultureInfo.InvariantCulture, $"<rect x=\"{x0:0.#}\" y=\"{y}\" width=\"{Math.Max(2, x1 - x0):0.#}\" height=\"{row - 8}\" rx=\"3\" fill=\"{fill}\"/></g>");
            i++;
        }
        var axisY = attempts.Count * row + 18;
        sb.Append(CultureInfo.InvariantCulture, $"<text x=\"{label}\" y=\"{axisY}\" font-size=\"11\">{E(Format.Time(start))}</text>");
        sb.Append(CultureInfo.InvariantCulture, $"<text x=\"{width - 10}\" y=\"{axisY}\" font-size=\"11\" text-anchor=\"end\">+{E(Format.Duration(end - start))}</text>");
        sb.Append("</svg>");
        return new MarkupString(sb.ToString());
    }

    private static string Short(string s, int n) => s.Length <= n ? s : s[..(n - 1)] + "…";

    private static string E(string s) => WebUtility.HtmlEncode(s);
}
