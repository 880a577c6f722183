namespace Kiln.Web.Layout;

/// <summary>
/// The UI's one stylesheet, inlined in every page (no file to fetch, nothing from a CDN). Colours are CSS variables
/// with a light and a dark set chosen by the system setting; text colours keep a contrast of at least 4.5:1.
/// </summary>
internal static class Theme
{
    /// <summary>Series colours of charts, in order (distinguishable in both themes).</summary>
    public static readonly string[] Series = ["#1e6fd9", "#d9480f", "#2b8a3e", "#9c36b5", "#c92a2a", "#0b7285", "#e67700", "#5f3dc4", "#495057", "#a61e4d"];

    public const string Css = """
:root{--bg:#f6f7f9;--fg:#1d232b;--muted:#4f5966;--card:#fff;--line:#d5dae1;--accent:#1656b8;--nav:#eceff3;--bad:#b3261e;--ok:#1b6e2a;--warn-bg:#fff3e0;--warn-fg:#7a4100;--focus:#1656b8;--grid:#e3e7ec}
@media (prefers-color-scheme: dark){:root{--bg:#15181d;--fg:#e6e9ee;--muted:#a9b2be;--card:#1f242b;--line:#38404b;--accent:#8ab4f8;--nav:#1b1f25;--bad:#ff8a80;--ok:#81c995;--warn-bg:#3b2a12;--warn-fg:#ffcc80;--focus:#8ab4f8;--grid:#2c333c}}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
a{color:var(--accent)}
:focus-visible{outline:3px solid var(--focus);outline-offset:2px}
.skip{position:absolute;left:-999px;top:0}.skip:focus{left:8px;top:8px;background:var(--card);padding:6px;z-index:9}
.shell{display:flex;min-height:100vh}
.side{width:200px;flex:none;background:var(--nav);border-right:1px solid var(--line);padding:16px 0}
.side .brand{display:block;font-weight:700;font-size:18px;padding:0 18px 12px;color:var(--fg);text-decoration:none}
.side ul{list-style:none;margin:0;padding:0}
.side li a{display:block;padding:7px 18px;color:var(--fg);text-decoration:none}
.side li a:hover{background:var(--line)}
.side li a.active{font-weight:600;border-left:4px solid var(--accent);padding-left:14px}
main{flex:1;padding:20px 28px;min-width:0}
h1{font-size:22px;margin:0 0 12px}h2{font-size:17px;margin:22px 0 8px}
.muted{color:var(--muted)}.bad{color:var(--bad)}.ok{color:var(--ok)}
table.grid{border-collapse:collapse;width:100%;background:var(--card)}
table.grid th,table.grid td{border-bottom:1px solid var(--line);padding:5px 10px;text-align:left;vertical-align:top}
table.grid th{font-weight:600;white-space:nowrap}
table.grid td.num{text-align:right;font-variant-numeric:tabular-nums}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:12px 16px;margin:0 0 14px}
form.search{display:flex;gap:8px;align-items:flex-end;flex-wrap:wrap;margin-bottom:10px}
form.search label{display:flex;flex-direction:column;font-size:12px;color:var(--muted)}
input,select,button{font:inherit;color:var(--fg);background:var(--card);border:1px solid var(--line);border-radius:4px;padding:5px 8px}
input[type=search]{min-width:420px}
button{cursor:pointer}button.danger{border-color:var(--bad);color:var(--bad)}button.primary{border-color:var(--accent);color:var(--accent)}
.error{color:var(--bad);font-weight:600}
.pager{display:flex;gap:14px;margin-top:10px}
.kv{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px}
.chart{margin:6px 0 16px}.chart svg{max-width:100%;height:auto}
.chart .axis{stroke:var(--line)}.chart .gridline{stroke:var(--grid)}.chart .threshold{stroke:#c92a2a;stroke-width:1.5}.chart text{fill:var(--muted);font-size:11px}
.legend{display:flex;gap:14px;flex-wrap:wrap;font-size:12px}.legend i{display:inline-block;width:12px;height:3px;vertical-align:middle;margin-right:4px}
.badge{display:inline-block;border-radius:10px;padding:0 8px;font-size:12px;border:1px solid var(--line)}
.state-failed{color:var(--bad);border-color:var(--bad)}.state-succeeded{color:var(--ok);border-color:var(--ok)}
.diff td.changed{font-weight:600}
svg.gantt text{fill:var(--fg)}
pre.log{background:var(--card);border:1px solid var(--line);padding:8px;overflow:auto;max-height:360px;font-size:12px}
""";
}
