using System.Globalization;
using Kiln.Core;
using Kiln.Core.Packaging;
using Kiln.Core.Yaml;
using Kiln.Monitoring.Alerts;
using Kiln.Monitoring.Drift;
using YamlDotNet.RepresentationModel;

namespace Kiln.Monitoring.Continuous;

/// <summary>
/// Reads monitoring.yaml. Every mistake is a <see cref="KilnException"/> naming the file, the line and the key
/// (<c>monitoring.yaml:14: rules[0].for: '5x' is not a duration (examples: 30s, 5m, 1h)</c>); unknown keys are
/// refused, so a typo never silently disables an alert. Relative paths are relative to the file's directory.
/// </summary>
public static class MonitorConfigLoader
{
    private static readonly string[] s_top = ["interval", "external_url", "pipelines_url", "webhook", "feedback", "state_dir", "targets", "rules"];
    private static readonly string[] s_feedback = ["compact_after"];
    private static readonly string[] s_webhook = ["timeout", "attempts", "initial_backoff", "max_backoff", "queue"];
    private static readonly string[] s_target = ["model", "name", "log_model", "log_dir", "window", "min_rows", "drift", "options"];
    private static readonly string[] s_drift = ["drift_share", "test", "threshold", "columns", "ignore"];
    private static readonly string[] s_rule = ["name", "metric", "labels", "condition", "threshold", "for", "clear_for", "severity", "no_data", "webhook", "pipeline_event", "summary"];

    public static MonitorConfig LoadFile(string path, MonitorDefaults? defaults = null)
    {
        if (!File.Exists(path)) throw new KilnException($"{path}: no such monitoring file");
        return Load(File.ReadAllText(path), path, defaults);
    }

    /// <summary>
    /// Loads a --monitor file for a process (kiln serve, kiln server), with the check that depends on it: a rule that
    /// raises a pipeline event needs pipelines_url, or pipelines running in this very process.
    /// </summary>
    public static MonitorConfig LoadForHost(string path, string? logDirectory, bool pipelinesInProcess) =>
        LoadFile(path, new MonitorDefaults { LogDirectory = logDirectory, PipelinesInProcess = pipelinesInProcess });

    public static MonitorConfig Load(string yaml, string file, MonitorDefaults? defaults = null)
    {
        defaults ??= new MonitorDefaults();
        var baseDir = Path.GetDirectoryName(Path.GetFullPath(file)) ?? Directory.GetCurrentDirectory();
        var root = YamlFiles.ParseMapping(yaml, file)
            ?? throw new KilnException($"{file}:1:1: monitoring configuration is a YAML mapping with 'targets' and 'rules'");
        var r = new Reader(file);
        var interval = TimeSpan.FromMinutes(1);
        Uri? external = null, pipelines = null;
        var delivery = new HttpDeliveryOptions();
        var compactAfter = MonitorConfig.DefaultFeedbackCompactAfter;
        string? stateDir = null;
        var targets = new List<MonitorTarget>();
        var rules = new List<AlertRule>();
        (AlertRule Rule, YamlNode At)? firstEvent = null;
        foreach (var (key, value) in r.Mapping(root, "", s_top))
        {
            switch (key)
            {
                case "interval": interval = r.Duration(value, key, positive: true); break;
                case "external_url": external = r.HttpUrl(value, key, asBase: true); break;
                case "pipelines_url": pipelines = r.HttpUrl(value, key, asBase: true); break;
                case "webhook": delivery = ReadDelivery(r, value); break;
                case "state_dir": stateDir = Path.GetFullPath(r.String(value, key), baseDir); break;
                case "feedback":
                    foreach (var (k, v) in r.Mapping(value, key, s_feedback)) compactAfter = r.Int(v, "feedback." + k, 0, int.MaxValue);
                    break;
                case "targets":
                    var i = 0;
                    foreach (var t in r.Sequence(value, key)) targets.Add(ReadTarget(r, t, $"targets[{i++}]", baseDir, defaults));
                    break;
                case "rules":
                    var j = 0;
                    foreach (var n in r.Sequence(value, key))
                    {
                        var rule = ReadRule(r, n, $"rules[{j++}]");
                        rules.Add(rule);
                        if (rule.PipelineEvent is not null && firstEvent is null)
                            firstEvent = (rule, n is YamlMappingNode ruleMap && ruleMap.Children.TryGetValue(new YamlScalarNode("pipeline_event"), out var eventNode) ? eventNode : n);
                    }
                    break;
            }
        }
        // Alert state: state_dir, else beside the prediction log (hidden from data readers by its '_').
        // A log in a bucket has no local folder to keep it in: state_dir, or the state stays in memory.
        if (stateDir is null && (defaults.LogDirectory ?? targets.FirstOrDefault()?.LogDirectory) is { } log && !Windows.S3LogMirror.IsS3(log))
            stateDir = Path.Combine(log, MonitorConfig.DefaultStateFolder);
        if (defaults.PipelinesInProcess == false && pipelines is null && firstEvent is { } raised)
            throw new KilnException($"{YamlFiles.Where(file, raised.At)}: rule '{raised.Rule.Name}' raises pipeline event '{raised.Rule.PipelineEvent}', " +
                "but this process runs no pipelines: set pipelines_url to a kiln server started with --pipelines (or run the monitor in that server)");
        Unique(r, root, targets.Select(t => t.Name), "targets", "name");
        Unique(r, root, rules.Select(x => x.Name), "rules", "name");
        return new MonitorConfig
        {
            File = file,
            Interval = interval,
            ExternalUrl = external,
            PipelinesUrl = pipelines,
            Delivery = delivery,
            FeedbackCompactAfter = compactAfter,
            StateDirectory = stateDir,
            Targets = targets,
            Rules = rules,
        };
    }

    /// <summary>Refuses a second entry of <paramref name="list"/> with a name already used, at that entry's name (or the entry, when its name was derived).</summary>
    private static void Unique(Reader r, YamlMappingNode root, IEnumerable<string> names, string list, string key)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var i = 0;
        foreach (var n in names)
        {
            if (!seen.Add(n))
            {
                YamlNode at = root;
                if (root.Children.TryGetValue(new YamlScalarNode(list), out var entries) && entries is YamlSequenceNode { Children.Count: var count } sequence && i < count)
                    at = sequence.Children[i] is YamlMappingNode entry && entry.Children.TryGetValue(new YamlScalarNode(key), out var value) ? value : sequence.Children[i];
                throw new KilnException($"{YamlFiles.Where(r.File, at)}: {list}[{i}].{key}: '{n}' is already the {key} of an earlier entry");
            }
            i++;
        }
    }

    private static HttpDeliveryOptions ReadDelivery(Reader r, YamlNode node)
    {
        var o = new HttpDeliveryOptions();
        foreach (var (key, value) in r.Mapping(node, "webhook", s_webhook))
        {
            var path = "webhook." + key;
            o = key switch
            {
                "timeout" => o with { AttemptTimeout = r.Duration(value, path, positive: true) },
                "attempts" => o with { MaxAttempts = r.Int(value, path, 1, 100) },
                "initial_backoff" => o with { InitialBackoff = r.Duration(value, path) },
                "max_backoff" => o with { MaxBackoff = r.Duration(value, path) },
                _ => o with { QueueCapacity = r.Int(value, path, 1, 1_000_000) },
            };
        }
        return o;
    }

    private static MonitorTarget ReadTarget(Reader r, YamlNode node, string path, string baseDir, MonitorDefaults defaults)
    {
        string? model = null, name = null, logModel = null, logDir = null;
        var window = TimeSpan.FromHours(1);
        long minRows = 1;
        var drift = DriftOptions.Default;
        var options = new Dictionary<string, string>(StringComparer.Ordinal);
        YamlNode? modelNode = null;
        foreach (var (key, value) in r.Mapping(node, path, s_target))
        {
            var p = path + "." + key;
            switch (key)
            {
                case "model": model = r.String(value, p); modelNode = value; break;
                case "name": name = r.String(value, p); break;
                case "log_model": logModel = r.String(value, p); break;
                case "log_dir":
                    var dir = r.String(value, p);
                    logDir = Windows.S3LogMirror.IsS3(dir) ? dir : Path.GetFullPath(dir, baseDir);
                    break;
                case "window": window = r.Duration(value, p, positive: true); break;
                case "min_rows": minRows = r.Int(value, p, 1, int.MaxValue); break;
                case "drift": drift = ReadDrift(r, value, p); break;
                case "options":
                    foreach (var (k, v) in r.Mapping(value, p, null)) options[k] = r.String(v, p + "." + k);
                    break;
            }
        }
        if (model is null) throw new KilnException($"{YamlFiles.Where(r.File, node)}: {path}.model is required (a package directory or models:/NAME@ALIAS)");
        var isUri = model.StartsWith("models:", StringComparison.Ordinal) || model.StartsWith("runs:", StringComparison.Ordinal);
        if (!isUri)
        {
            model = Path.GetFullPath(model, baseDir);
            if (!ModelPackage.IsPackage(model)) throw new KilnException($"{YamlFiles.Where(r.File, modelNode!)}: {path}.model: '{model}' is not a model package directory (no kiln.json)");
        }
        name ??= logModel ?? DefaultName(model, isUri)
            ?? throw new KilnException($"{YamlFiles.Where(r.File, node)}: {path}.name is required for '{model}' (the model label)");
        logDir ??= defaults.LogDirectory
            ?? throw new KilnException($"{YamlFiles.Where(r.File, node)}: {path}.log_dir is required (the prediction log directory; kiln serve uses its --log-dir when set)");
        return new MonitorTarget
        {
            Name = name,
            Model = model,
            LogModel = logModel ?? name,
            LogDirectory = logDir,
            Window = window,
            MinRows = minRows,
            Drift = drift,
            Options = options,
        };
    }

    /// <summary>models:/NAME/VERSION and models:/NAME@ALIAS give NAME; a package directory its package name.</summary>
    private static string? DefaultName(string model, bool isUri)
    {
        if (!isUri) return ModelPackage.Load(model, verify: false).Name;
        if (!model.StartsWith("models:/", StringComparison.Ordinal)) return null;
        var rest = model["models:/".Length..];
        var end = rest.IndexOfAny(['/', '@']);
        return end > 0 ? rest[..end] : rest.Length > 0 ? rest : null;
    }

    private static DriftOptions ReadDrift(Reader r, YamlNode node, string path)
    {
        var share = 0.5;
        StatTest? test = null;
        double? threshold = null;
        var columns = new Dictionary<string, ColumnDriftOptions>(StringComparer.Ordinal);
        var ignore = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (key, value) in r.Mapping(node, path, s_drift))
        {
            var p = path + "." + key;
            switch (key)
            {
                case "drift_share": share = r.Double(value, p, 0, 1); break;
                case "test": test = r.Test(value, p); break;
                case "threshold": threshold = r.Double(value, p, 0, double.MaxValue); break;
                case "columns":
                    foreach (var (col, spec) in r.Mapping(value, p, null)) columns[col] = ReadColumn(r, spec, p + "." + col);
                    break;
                case "ignore":
                    foreach (var n in r.Sequence(value, p)) ignore.Add(r.String(n, p));
                    break;
            }
        }
        return new DriftOptions { DriftShare = share, Test = test, Threshold = threshold, Columns = columns, Ignore = ignore };
    }

    /// <summary>"psi", "psi:0.2" or {test: psi, threshold: 0.2}.</summary>
    private static ColumnDriftOptions ReadColumn(Reader r, YamlNode node, string path)
    {
        if (node is YamlScalarNode s)
        {
            var text = s.Value ?? "";
            var colon = text.IndexOf(':', StringComparison.Ordinal);
            var test = r.Test(s, path, colon < 0 ? text : text[..colon]);
            double? threshold = null;
            if (colon >= 0)
            {
                if (!double.TryParse(text[(colon + 1)..], NumberStyles.Float, CultureInfo.InvariantCulture, out var t) || t < 0)
                    throw r.Error(node, path, $"threshold '{text[(colon + 1)..]}' is not a non-negative number");
                threshold = t;
            }
            return new ColumnDriftOptions { Test = test, Threshold = threshold };
        }
        StatTest? tt = null;
        double? th = null;
        foreach (var (key, value) in r.Mapping(node, path, ["test", "threshold"]))
        {
            if (key == "test") tt = r.Test(value, path + ".test");
            else th = r.Double(value, path + ".threshold", 0, double.MaxValue);
        }
        return new ColumnDriftOptions { Test = tt, Threshold = th };
    }

    private static AlertRule ReadRule(Reader r, YamlNode node, string path)
    {
        string? name = null, metric = null, severity = null, pipelineEvent = null, summary = null;
        var labels = new Dictionary<string, string>(StringComparer.Ordinal);
        var condition = AlertCondition.Above;
        double? threshold = null;
        TimeSpan forTime = TimeSpan.Zero, clearFor = TimeSpan.Zero;
        var noData = NoDataPolicy.Keep;
        var webhooks = new List<Uri>();
        foreach (var (key, value) in r.Mapping(node, path, s_rule))
        {
            var p = path + "." + key;
            switch (key)
            {
                case "name": name = r.Name(value, p); break;
                case "metric":
                    metric = r.String(value, p);
                    if (GaugePublisher.MetricName(metric) != metric) throw r.Error(value, p, $"'{metric}' is not a metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)");
                    break;
                case "labels":
                    foreach (var (k, v) in r.Mapping(value, p, null)) labels[k] = r.String(v, p + "." + k);
                    break;
                case "condition":
                    var c = r.String(value, p);
                    if (!AlertRule.TryParseCondition(c, out condition)) throw r.Error(value, p, $"'{c}' is not a condition (above, below, above_or_equal, below_or_equal)");
                    break;
                case "threshold": threshold = r.Double(value, p, double.MinValue, double.MaxValue); break;
                case "for": forTime = r.Duration(value, p); break;
                case "clear_for": clearFor = r.Duration(value, p); break;
                case "severity": severity = r.Name(value, p); break;
                case "no_data":
                    var nd = r.String(value, p);
                    noData = nd switch
                    {
                        "keep" => NoDataPolicy.Keep,
                        "ok" => NoDataPolicy.Ok,
                        "alerting" => NoDataPolicy.Alerting,
                        _ => throw r.Error(value, p, $"'{nd}' is not a no-data policy (keep, ok, alerting)"),
                    };
                    break;
                case "webhook":
                    if (value is YamlSequenceNode) foreach (var u in r.Sequence(value, p)) webhooks.Add(r.HttpUrl(u, p));
                    else webhooks.Add(r.HttpUrl(value, p));
                    break;
                case "pipeline_event": pipelineEvent = r.Name(value, p); break;
                case "summary": summary = r.String(value, p); break;
            }
        }
        if (name is null) throw new KilnException($"{YamlFiles.Where(r.File, node)}: {path}.name is required");
        if (metric is null) throw new KilnException($"{YamlFiles.Where(r.File, node)}: {path}.metric is required (e.g. kiln_monitor_dataset_drift)");
        if (threshold is null) throw new KilnException($"{YamlFiles.Where(r.File, node)}: {path}.threshold is required");
        return new AlertRule
        {
            Name = name,
            Metric = metric,
            Labels = labels,
            Condition = condition,
            Threshold = threshold.Value,
            For = forTime,
            ClearFor = clearFor,
            Severity = severity ?? "warning",
            NoData = noData,
            Webhooks = webhooks,
            PipelineEvent = pipelineEvent,
            Summary = summary,
        };
    }

    /// <summary>Typed reads of YAML nodes that fail with file, line and key.</summary>
    private sealed class Reader(string file)
    {
        public string File { get; } = file;

        public KilnException Error(YamlNode node, string path, string message) => new($"{YamlFiles.Where(File, node)}: {path}: {message}");

        public IEnumerable<(string Key, YamlNode Value)> Mapping(YamlNode node, string path, string[]? allowed)
        {
            if (node is not YamlMappingNode m) throw Error(node, path.Length == 0 ? "(top)" : path, "expected a mapping (key: value lines)");
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var (k, v) in m.Children)
            {
                var key = (k as YamlScalarNode)?.Value ?? throw Error(k, path, "keys must be plain names");
                var full = path.Length == 0 ? key : path + "." + key;
                if (allowed is not null && Array.IndexOf(allowed, key) < 0)
                    throw path.Length == 0 ? new KilnException($"{YamlFiles.Where(File, k)}: {YamlFiles.UnknownKey(key, allowed)}") : Error(k, path, YamlFiles.UnknownKey(key, allowed));
                if (!seen.Add(key)) throw Error(k, full, "given twice");
                yield return (key, v);
            }
        }

        public IEnumerable<YamlNode> Sequence(YamlNode node, string path) =>
            node is YamlSequenceNode s ? s.Children : throw Error(node, path, "expected a list (lines starting with '- ')");

        public string String(YamlNode node, string path) =>
            node is YamlScalarNode { Value: { Length: > 0 } v } ? v : throw Error(node, path, "expected a non-empty value");

        /// <summary>A name: letters, digits, '_', '-', '.'.</summary>
        public string Name(YamlNode node, string path)
        {
            var s = String(node, path);
            foreach (var c in s)
            {
                if (!(char.IsAsciiLetterOrDigit(c) || c is '_' or '-' or '.')) throw Error(node, path, $"'{s}' may hold only letters, digits, '_', '-' and '.'");
            }
            return s;
        }

        public double Double(YamlNode node, string path, double min, double max)
        {
            var s = String(node, path);
            if (!double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) || !double.IsFinite(v))
                throw Error(node, path, $"'{s}' is not a number");
            if (v < min || v > max) throw Error(node, path, $"{s} is out of range [{min.ToString(CultureInfo.InvariantCulture)}, {max.ToString(CultureInfo.InvariantCulture)}]");
            return v;
        }

        public int Int(YamlNode node, string path, int min, int max)
        {
            var s = String(node, path);
            if (!int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v)) throw Error(node, path, $"'{s}' is not a whole number");
            if (v < min || v > max) throw Error(node, path, $"{s} is out of range [{min}, {max}]");
            return v;
        }

        public TimeSpan Duration(YamlNode node, string path, bool positive = false)
        {
            var s = String(node, path);
            if (!Kiln.Core.Duration.TryParse(s, out var d) || (positive && d <= TimeSpan.Zero))
                throw Error(node, path, $"'{s}' is not a {(positive ? "positive " : "")}duration; write {Kiln.Core.Duration.Expected}");
            return d;
        }

        public Uri HttpUrl(YamlNode node, string path, bool asBase = false)
        {
            var s = String(node, path);
            if (!Uri.TryCreate(s, UriKind.Absolute, out var u) || (u.Scheme != Uri.UriSchemeHttp && u.Scheme != Uri.UriSchemeHttps))
                throw Error(node, path, $"'{s}' is not an http(s) URL");
            // A base URL that relative paths are resolved against ends with '/'.
            return !asBase || u.AbsolutePath.EndsWith('/') ? u : new Uri(u.GetLeftPart(UriPartial.Path) + "/");
        }

        public StatTest Test(YamlNode node, string path, string? text = null)
        {
            text ??= String(node, path);
            return StatTests.TryParse(text, out var t) ? t
                : throw Error(node, path, $"unknown test '{text}' (ks, chisquare, z, wasserstein, jensenshannon, psi, hellinger)");
        }
    }
}
