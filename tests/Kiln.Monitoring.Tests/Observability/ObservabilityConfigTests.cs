using System.Text.Json;
using System.Text.RegularExpressions;
using Kiln.Testing;

namespace Kiln.Monitoring.Tests.Observability;

/// <summary>
/// deploy/observability checked with the real tools: promtool (Debian's prometheus 2.42) checks the configuration
/// and every rule file and runs the rule unit tests; amtool (prometheus-alertmanager 0.25) checks the Alertmanager
/// configuration. Dashboards are checked for the structure Grafana needs (Grafana itself is not installable here).
/// </summary>
public sealed class ObservabilityConfigTests
{
    private static async Task<Proc.Result> RunAsync(string tool, params string[] args)
    {
        var r = await Proc.RunAsync(ObservabilityFiles.Tool(tool), args, ObservabilityFiles.Root, timeout: TimeSpan.FromMinutes(2));
        Assert.True(r.ExitCode == 0, $"{tool} {string.Join(' ', args)}: {r}");
        return r;
    }

    [Fact]
    public async Task Promtool_accepts_the_scrape_configuration_and_every_rule_file()
    {
        var config = await RunAsync("promtool", "check", "config", "prometheus/prometheus.yml");
        Assert.Contains("2 rule files found", config.StdOut + config.StdErr);
        foreach (var file in ObservabilityFiles.RuleFiles) await RunAsync("promtool", "check", "rules", file);
    }

    [Fact]
    public async Task Promtool_accepts_the_prometheus_rule_objects_groups_and_they_equal_the_rule_files()
    {
        // The PrometheusRule's spec is a rule file's content: promtool checks it as one.
        var rule = (Dictionary<object, object>)ObservabilityFiles.Yaml(Path.Combine(ObservabilityFiles.Prometheus, "operator", "kiln-prometheusrule.yaml"))!;
        Assert.Equal("monitoring.coreos.com/v1", rule["apiVersion"]);
        Assert.Equal("PrometheusRule", rule["kind"]);
        var groups = (List<object>)((Dictionary<object, object>)rule["spec"])["groups"];
        var fromFiles = ObservabilityFiles.RuleFiles.SelectMany(f => (List<object>)((Dictionary<object, object>)ObservabilityFiles.Yaml(f)!)["groups"]).ToList();
        Assert.Equal(fromFiles.Count, groups.Count);
        for (var i = 0; i < groups.Count; i++)
        {
            var name = ((Dictionary<object, object>)fromFiles[i])["name"];
            Assert.True(ObservabilityFiles.YamlEqual(fromFiles[i], groups[i]), $"group {name}: the PrometheusRule differs from the rule files; copy the rule files' groups into it");
        }

        using var dir = new TempDir("kiln-promrule");
        var spec = new YamlDotNet.Serialization.SerializerBuilder().Build().Serialize(new Dictionary<string, object> { ["groups"] = groups });
        await File.WriteAllTextAsync(dir.File("spec.yml"), spec);
        await RunAsync("promtool", "check", "rules", dir.File("spec.yml"));
    }

    [Fact]
    public async Task Every_alert_has_a_summary_a_description_a_runbook_section_and_a_unit_test_both_ways()
    {
        var alerts = ObservabilityFiles.Rules().Where(r => r.ContainsKey("alert")).ToList();
        Assert.True(alerts.Count >= 10, $"{alerts.Count} alerts");
        var doc = await File.ReadAllTextAsync(Path.Combine(TestEnvironment.RepoRoot, "docs", "observability.md"));
        var tests = (List<object>)((Dictionary<object, object>)ObservabilityFiles.Yaml(Path.Combine(ObservabilityFiles.Prometheus, "tests", "kiln.rules.test.yml"))!)["tests"];
        var cases = tests.Cast<Dictionary<object, object>>()
            .SelectMany(t => (t.TryGetValue("alert_rule_test", out var a) ? (List<object>)a : []).Cast<Dictionary<object, object>>())
            .Select(a => ((string)a["alertname"], ((List<object>)a["exp_alerts"]).Count)).ToList();
        foreach (var a in alerts)
        {
            var name = (string)a["alert"];
            var annotations = (Dictionary<object, object>)a["annotations"];
            Assert.True(annotations.ContainsKey("summary") && annotations.ContainsKey("description"), $"{name}: summary and description");
            var anchor = name.ToLowerInvariant();
            Assert.Equal($"docs/observability.md#{anchor}", annotations["runbook"]);
            Assert.True(Regex.IsMatch(doc, $"^### {Regex.Escape(name)}$", RegexOptions.Multiline), $"docs/observability.md has no runbook section '### {name}'");
            Assert.True(cases.Any(c => c.Item1 == name && c.Count > 0), $"{name}: no promtool test where it fires");
            Assert.True(cases.Any(c => c.Item1 == name && c.Count == 0), $"{name}: no promtool test where it stays silent");
        }
    }

    [Fact]
    public async Task Promtool_rule_unit_tests_pass()
    {
        var r = await RunAsync("promtool", "test", "rules", "prometheus/tests/kiln.rules.test.yml");
        Assert.Contains("SUCCESS", r.StdOut + r.StdErr);
    }

    [Fact]
    public async Task Promtool_rule_unit_tests_fail_when_an_alert_threshold_is_broken()
    {
        // The unit tests can fail: with the error-ratio threshold raised to 50%, the 10% error case no longer fires.
        using var dir = new TempDir("kiln-promtest");
        Directory.CreateDirectory(dir.File("rules"));
        Directory.CreateDirectory(dir.File("tests"));
        File.Copy(Path.Combine(ObservabilityFiles.Prometheus, "rules", "kiln.rules.yml"), dir.File("rules/kiln.rules.yml"));
        var thresholds = await File.ReadAllTextAsync(Path.Combine(ObservabilityFiles.Prometheus, "rules", "thresholds.rules.yml"));
        await File.WriteAllTextAsync(dir.File("rules/thresholds.rules.yml"), thresholds.Replace("serve_error_ratio\n        expr: vector(0.05)", "serve_error_ratio\n        expr: vector(0.5)", StringComparison.Ordinal));
        File.Copy(Path.Combine(ObservabilityFiles.Prometheus, "tests", "kiln.rules.test.yml"), dir.File("tests/kiln.rules.test.yml"));
        var r = await Proc.RunAsync(ObservabilityFiles.Tool("promtool"), ["test", "rules", "tests/kiln.rules.test.yml"], dir.Path);
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains("KilnServeHighErrorRatio fires", r.StdOut + r.StdErr);
    }

    [Fact]
    public async Task Amtool_accepts_the_alertmanager_configuration_and_it_routes_pipeline_events_to_kiln_server()
    {
        await RunAsync("amtool", "check-config", "alertmanager/alertmanager.yml");
        // amtool's routing test: a drift alert with pipeline_event reaches kiln's receiver (and the team's), others only the team's.
        var drift = await RunAsync("amtool", "config", "routes", "test", "--config.file=alertmanager/alertmanager.yml", "alertname=KilnDatasetDrift", "pipeline_event=drift_alert", "model=fraud");
        Assert.Equal("kiln-pipelines,team", drift.StdOut.Trim());
        var other = await RunAsync("amtool", "config", "routes", "test", "--config.file=alertmanager/alertmanager.yml", "alertname=KilnTargetDown");
        Assert.Equal("team", other.StdOut.Trim());
    }

    [Fact]
    public void Each_pod_monitor_selects_the_pods_of_a_kubernetes_deployment_with_the_job_label_the_rules_use()
    {
        var monitors = Documents(Path.Combine(ObservabilityFiles.Prometheus, "operator", "kiln-podmonitor.yaml")).ToList();
        var deployments = Directory.EnumerateFiles(Path.Combine(TestEnvironment.RepoRoot, "deploy", "kubernetes"), "*.yaml")
            .SelectMany(Documents).Where(d => (string)d["kind"] == "Deployment").ToList();
        // One PodMonitor for each process the static configuration scrapes.
        var jobs = new List<string>();
        foreach (var monitor in monitors)
        {
            var spec = (Dictionary<object, object>)monitor["spec"];
            var match = (Dictionary<object, object>)((Dictionary<object, object>)spec["selector"])["matchLabels"];
            var endpoint = (Dictionary<object, object>)((List<object>)spec["podMetricsEndpoints"])[0];
            var template = deployments.Select(d => (Dictionary<object, object>)((Dictionary<object, object>)d["spec"])["template"])
                .SingleOrDefault(t => match.All(kv => ((Dictionary<object, object>)((Dictionary<object, object>)t["metadata"])["labels"]).TryGetValue(kv.Key, out var v) && Equals(v, kv.Value)));
            Assert.True(template is not null, $"PodMonitor {((Dictionary<object, object>)monitor["metadata"])["name"]} selects no Deployment of deploy/kubernetes/");
            var podLabels = (Dictionary<object, object>)((Dictionary<object, object>)template!["metadata"])["labels"];
            var ports = ((List<object>)((Dictionary<object, object>)((List<object>)((Dictionary<object, object>)template["spec"])["containers"])[0])["ports"])
                .Cast<Dictionary<object, object>>().Select(p => (string)p["name"]);
            Assert.Contains((string)endpoint["port"], ports);
            // The job label is the pod's app.kubernetes.io/name, as the rules and the static configuration name the job.
            jobs.Add((string)podLabels[spec["jobLabel"]]);
        }
        Assert.Equal(["kiln-serve", "kiln-server", "kiln-worker"], jobs.Order(StringComparer.Ordinal));
        var staticJobs = Regex.Matches(File.ReadAllText(Path.Combine(ObservabilityFiles.Prometheus, "prometheus.yml")), @"^\s*- job_name: (\S+)", RegexOptions.Multiline)
            .Select(m => m.Groups[1].Value);
        Assert.All(jobs, j => Assert.Contains(j, staticJobs));
    }

    [Fact]
    public async Task The_kiln_server_deployment_runs_options_kiln_server_has()
    {
        var deployment = Documents(Path.Combine(TestEnvironment.RepoRoot, "deploy", "kubernetes", "kiln-server.yaml")).Single(d => (string)d["kind"] == "Deployment");
        var template = (Dictionary<object, object>)((Dictionary<object, object>)deployment["spec"])["template"];
        var container = (Dictionary<object, object>)((List<object>)((Dictionary<object, object>)template["spec"])["containers"])[0];
        // The image of deploy/Dockerfile.serve holds the CLI at /app/kiln.dll; the server overrides the entry point.
        Assert.Contains("/app/kiln.dll", File.ReadAllText(Path.Combine(TestEnvironment.RepoRoot, "deploy", "Dockerfile.serve")));
        Assert.Equal(["dotnet", "/app/kiln.dll"], ((List<object>)container["command"]).Cast<string>());
        var args = ((List<object>)container["args"]).Cast<string>().ToList();
        Assert.Equal("server", args[0]);
        var help = await KilnCli.RunAsync(["server", "--help"]);
        Assert.Equal(0, help.ExitCode);
        foreach (var option in args.Where(a => a.StartsWith("--", StringComparison.Ordinal)))
            Assert.True(Regex.IsMatch(help.StdOut, $@"(^|\s|,){Regex.Escape(option)}(\s|,|$)", RegexOptions.Multiline), $"kiln server has no option {option}");
    }

    private static IEnumerable<Dictionary<object, object>> Documents(string file)
    {
        var yaml = new YamlDotNet.Serialization.DeserializerBuilder().Build();
        foreach (var text in Regex.Split(File.ReadAllText(file), @"^---\s*$", RegexOptions.Multiline))
        {
            if (yaml.Deserialize<Dictionary<object, object>>(text) is { } doc) yield return doc;
        }
    }

    [Fact]
    public async Task Every_dashboard_has_a_uid_a_title_panels_with_datasource_and_targets_and_only_defined_variables()
    {
        var dashboards = ObservabilityFiles.Dashboards;
        Assert.Equal(["kiln-model-health.json", "kiln-platform.json", "kiln-serving.json"], dashboards.Select(Path.GetFileName));
        var uids = new HashSet<string>();
        foreach (var file in dashboards)
        {
            var name = Path.GetFileName(file);
            using var doc = JsonDocument.Parse(await File.ReadAllTextAsync(file));
            var d = doc.RootElement;
            var uid = d.GetProperty("uid").GetString()!;
            Assert.True(uid.Length is > 0 and <= 40 && uids.Add(uid), $"{name}: uid '{uid}'");
            Assert.StartsWith("Kiln / ", d.GetProperty("title").GetString());
            var variables = d.GetProperty("templating").GetProperty("list").EnumerateArray().ToDictionary(v => v.GetProperty("name").GetString()!, v => v);
            Assert.Equal("datasource", variables["datasource"].GetProperty("type").GetString());
            Assert.Equal("prometheus", variables["datasource"].GetProperty("query").GetString());
            if (name != "kiln-platform.json") Assert.True(variables.ContainsKey("model") && variables.ContainsKey("version"), $"{name}: model and version variables");

            var ids = new HashSet<long>();
            var panels = ObservabilityFiles.Panels(d).ToList();
            Assert.True(panels.Count(p => p.GetProperty("type").GetString() != "row") >= 6, $"{name}: panels");
            foreach (var p in panels)
            {
                var title = p.GetProperty("title").GetString();
                Assert.True(ids.Add(p.GetProperty("id").GetInt64()), $"{name}: panel id of '{title}' repeats");
                var grid = p.GetProperty("gridPos");
                Assert.True(grid.GetProperty("x").GetInt32() + grid.GetProperty("w").GetInt32() <= 24, $"{name}: '{title}' is wider than the grid");
                if (p.GetProperty("type").GetString() == "row") continue;
                Assert.Equal("${datasource}", p.GetProperty("datasource").GetProperty("uid").GetString());
                var targets = p.GetProperty("targets").EnumerateArray().ToList();
                Assert.True(targets.Count > 0, $"{name}: '{title}' has no targets");
                foreach (var t in targets)
                {
                    Assert.Equal("${datasource}", t.GetProperty("datasource").GetProperty("uid").GetString());
                    Assert.False(string.IsNullOrWhiteSpace(t.GetProperty("expr").GetString()), $"{name}: '{title}' has an empty expression");
                }
            }
            // Every variable used (in expressions, variable queries, datasources) is defined or built in.
            var used = Regex.Matches(d.GetRawText(), @"\$\{(\w+)(?::\w+)?\}|\$(\w+)").Select(m => m.Groups[1].Success ? m.Groups[1].Value : m.Groups[2].Value)
                .Where(v => !v.StartsWith("__", StringComparison.Ordinal)).Distinct();
            foreach (var v in used) Assert.True(variables.ContainsKey(v), $"{name}: ${v} is used but not defined");
            // Each variable's query only uses variables defined before it (Grafana resolves them in order).
            var seen = new List<string>();
            foreach (var (vname, v) in variables)
            {
                if (v.TryGetProperty("definition", out var def))
                    foreach (Match m in Regex.Matches(def.GetString()!, @"\$(\w+)")) Assert.Contains(m.Groups[1].Value, seen);
                seen.Add(vname);
            }
        }
    }

    [Fact]
    public async Task Promtool_parses_every_expression_of_the_dashboards()
    {
        // promtool check rules parses each expression: one recording rule per dashboard expression.
        using var dir = new TempDir("kiln-dash-exprs");
        var rules = ObservabilityFiles.Expressions().Select((e, i) => new Dictionary<string, string> { ["record"] = $"kiln:dashboard_expr_{i}", ["expr"] = ObservabilityFiles.Plain(e.Expr) }).ToList();
        Assert.True(rules.Count > 50, $"{rules.Count} expressions");
        var yaml = new YamlDotNet.Serialization.SerializerBuilder().Build()
            .Serialize(new Dictionary<string, object> { ["groups"] = new[] { new Dictionary<string, object> { ["name"] = "dashboards", ["rules"] = rules } } });
        await File.WriteAllTextAsync(dir.File("exprs.yml"), yaml);
        await RunAsync("promtool", "check", "rules", dir.File("exprs.yml"));
    }

    [Fact]
    public void Metric_names_are_read_from_expressions_as_prometheus_parses_them()
    {
        Assert.Equal(["kiln_serve_request_duration_seconds_bucket"],
            ObservabilityFiles.MetricNames("histogram_quantile(0.99, sum by (model, le) (rate(kiln_serve_request_duration_seconds_bucket{model=~\"$model\",le!=\"x y\"}[5m])))"));
        Assert.Equal(["kiln:serve_error_ratio:rate5m", "kiln:threshold:serve_error_ratio"],
            ObservabilityFiles.MetricNames("kiln:serve_error_ratio:rate5m > on () group_left () kiln:threshold:serve_error_ratio"));
        Assert.Equal(["kiln_serve_model_ready", "kiln_serve_model_ready", "up", "kiln_serve_model_ready"],
            ObservabilityFiles.MetricNames("(max_over_time(kiln_serve_model_ready[1h]) unless on (job, instance, model) kiln_serve_model_ready == 1) or on (job, instance) (up{job=\"kiln-serve\"} == 1 unless on (job, instance) kiln_serve_model_ready == 1)"));
    }
}
