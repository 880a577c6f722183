using System.Text.Json;
using System.Text.RegularExpressions;
using Kiln.Testing;
using YamlDotNet.Serialization;

namespace Kiln.Monitoring.Tests.Observability;

/// <summary>The files under deploy/observability and what the tests read from them.</summary>
internal static partial class ObservabilityFiles
{
    public static string Root => Path.Combine(TestEnvironment.RepoRoot, "deploy", "observability");

    public static string Prometheus => Path.Combine(Root, "prometheus");

    public static string[] RuleFiles => [Path.Combine(Prometheus, "rules", "thresholds.rules.yml"), Path.Combine(Prometheus, "rules", "kiln.rules.yml")];

    public static string[] Dashboards => Directory.GetFiles(Path.Combine(Root, "grafana", "dashboards"), "*.json").Order(StringComparer.Ordinal).ToArray();

    /// <summary>A tool of Debian's prometheus / prometheus-alertmanager packages; the test fails (never skips) without it.</summary>
    public static string Tool(string name)
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            var path = Path.Combine(dir, name);
            if (File.Exists(path)) return path;
        }
        throw new InvalidOperationException($"{name} is not installed: install Debian's prometheus and prometheus-alertmanager packages (./test.sh does)");
    }

    public static object? Yaml(string file) => new DeserializerBuilder().Build().Deserialize<object>(File.ReadAllText(file));

    /// <summary>Every group of the rule files: (group, rules as YAML maps).</summary>
    public static IEnumerable<Dictionary<object, object>> Rules() =>
        RuleFiles.SelectMany(f => ((List<object>)((Dictionary<object, object>)Yaml(f)!)["groups"]).Cast<Dictionary<object, object>>())
            .SelectMany(g => ((List<object>)g["rules"]).Cast<Dictionary<object, object>>());

    public static IEnumerable<string> AlertNames() => Rules().Where(r => r.ContainsKey("alert")).Select(r => (string)r["alert"]);

    public static HashSet<string> RecordedNames() => [.. Rules().Where(r => r.ContainsKey("record")).Select(r => (string)r["record"])];

    /// <summary>Every PromQL expression of the rules and dashboards, with where it comes from.</summary>
    public static List<(string Where, string Expr)> Expressions()
    {
        var list = Rules().Select(r => ((string)(r.TryGetValue("alert", out var a) ? a : r["record"]), ((string)r["expr"]).Trim())).ToList();
        foreach (var file in Dashboards)
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(file));
            foreach (var p in Panels(doc.RootElement))
            {
                if (!p.TryGetProperty("targets", out var targets)) continue;
                foreach (var t in targets.EnumerateArray())
                    list.Add(($"{Path.GetFileName(file)}: {p.GetProperty("title").GetString()}", t.GetProperty("expr").GetString()!));
            }
            foreach (var v in doc.RootElement.GetProperty("templating").GetProperty("list").EnumerateArray())
            {
                if (v.GetProperty("type").GetString() == "query" && LabelValues().Match(v.GetProperty("definition").GetString()!) is { Success: true } m)
                    list.Add(($"{Path.GetFileName(file)}: variable {v.GetProperty("name").GetString()}", m.Groups[1].Value));
            }
        }
        return list;
    }

    /// <summary>Panels, including those nested in collapsed rows.</summary>
    public static IEnumerable<JsonElement> Panels(JsonElement dashboard)
    {
        foreach (var p in dashboard.GetProperty("panels").EnumerateArray())
        {
            yield return p;
            if (p.TryGetProperty("panels", out var nested)) foreach (var n in nested.EnumerateArray()) yield return n;
        }
    }

    /// <summary>A Grafana expression made plain PromQL: variables become a match-anything regex or a duration.</summary>
    public static string Plain(string expr) =>
        GrafanaVariable().Replace(expr, m => m.Value.Contains("__rate_interval", StringComparison.Ordinal) || m.Value.Contains("__interval", StringComparison.Ordinal) ? "5m" : ".*");

    /// <summary>
    /// The metric names an expression reads (an expression promtool has parsed): identifiers outside strings, label
    /// matchers, grouping lists and ranges that are neither functions nor keywords.
    /// </summary>
    public static IEnumerable<string> MetricNames(string expr)
    {
        var s = Strings().Replace(Plain(expr), "\"\"");
        s = Braces().Replace(s, " ");
        s = Grouping().Replace(s, " ");
        s = Brackets().Replace(s, " ");
        foreach (Match m in Identifier().Matches(s))
        {
            var name = m.Groups[1].Value;
            var after = s[(m.Index + m.Length)..].TrimStart();
            if (after.StartsWith('(')) continue; // a function
            if (Keywords.Contains(name)) continue;
            yield return name;
        }
    }

    private static readonly HashSet<string> Keywords = ["by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset", "atan2", "inf", "nan", "Inf", "NaN"];

    [GeneratedRegex(@"\$\{[^}]+\}|\$\w+")]
    private static partial Regex GrafanaVariable();

    [GeneratedRegex("\"(?:[^\"\\\\]|\\\\.)*\"|'(?:[^'\\\\]|\\\\.)*'")]
    private static partial Regex Strings();

    [GeneratedRegex(@"\{[^}]*\}")]
    private static partial Regex Braces();

    [GeneratedRegex(@"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")]
    private static partial Regex Grouping();

    [GeneratedRegex(@"\[[^\]]*\]")]
    private static partial Regex Brackets();

    [GeneratedRegex(@"(?<![\w:.])([a-zA-Z_:][a-zA-Z0-9_:]*)")]
    private static partial Regex Identifier();

    [GeneratedRegex(@"^label_values\((.+),\s*\w+\)$")]
    private static partial Regex LabelValues();

    /// <summary>Structural equality of two YAML object graphs.</summary>
    public static bool YamlEqual(object? a, object? b) => (a, b) switch
    {
        (null, null) => true,
        (Dictionary<object, object> x, Dictionary<object, object> y) => x.Count == y.Count && x.All(p => y.TryGetValue(p.Key, out var v) && YamlEqual(p.Value, v)),
        (List<object> x, List<object> y) => x.Count == y.Count && x.Zip(y).All(p => YamlEqual(p.First, p.Second)),
        (string x, string y) => x.TrimEnd('\n') == y.TrimEnd('\n'),
        _ => false,
    };
}
