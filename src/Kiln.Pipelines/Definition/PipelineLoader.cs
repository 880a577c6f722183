using System.Globalization;
using System.Text.Json.Nodes;
using Kiln.Core;
using Kiln.Core.Yaml;
using Kiln.Pipelines.Tasks;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Kiln.Pipelines.Definition;

/// <summary>Reads pipeline YAML into a validated <see cref="PipelineDefinition"/>; errors name the file, line and task.</summary>
public static class PipelineLoader
{
    private static readonly HashSet<string> s_topKeys = ["name", "description", "parameters", "tasks", "triggers", "max_concurrency"];
    private static readonly HashSet<string> s_reserved = ["kind", "depends_on", "retries", "timeout", "cache", "description"];

    public static PipelineDefinition LoadFile(string path, TaskKindRegistry kinds)
    {
        if (!File.Exists(path)) throw new Kiln.Core.KilnException($"{path}: no such pipeline file");
        return Load(File.ReadAllText(path), kinds, path);
    }

    public static PipelineDefinition Load(string yaml, TaskKindRegistry kinds, string? sourcePath = null)
    {
        var file = sourcePath ?? "pipeline";
        YamlMappingNode root;
        try
        {
            root = YamlFiles.ParseMapping(yaml, file)
                ?? throw new PipelineValidationException($"{file}:1:1: a pipeline is a YAML mapping with 'name' and 'tasks'");
        }
        catch (KilnException e) when (e is not PipelineValidationException)
        {
            throw new PipelineValidationException(e.Message, e);
        }

        var errors = new List<string>();
        string Where(YamlNode n) => $"{YamlFiles.Where(file, n)}: ";

        string? name = null, description = null;
        var maxConcurrency = 4;
        var parameters = new List<ParameterDefinition>();
        var tasks = new List<TaskDefinition>();
        var schedules = new List<CronTrigger>();
        var events = new List<string>();
        var tasksAt = YamlPosition.Of(root);

        foreach (var (k, v) in root.Children)
        {
            var key = ((YamlScalarNode)k).Value ?? "";
            switch (key)
            {
                case "name":
                    name = Scalar(v, "name", errors, Where);
                    if (name is not null && !PipelineValidator.IsName(name))
                        errors.Add($"{Where(v)}pipeline name '{name}' may hold only letters, digits, '_' and '-'");
                    break;
                case "description":
                    description = Scalar(v, "description", errors, Where);
                    break;
                case "max_concurrency":
                    if (!int.TryParse(Scalar(v, key, errors, Where), NumberStyles.Integer, CultureInfo.InvariantCulture, out maxConcurrency) || maxConcurrency < 1)
                        errors.Add($"{Where(v)}max_concurrency must be a whole number of at least 1");
                    break;
                case "parameters":
                    ReadParameters(v, parameters, errors, Where);
                    break;
                case "tasks":
                    tasksAt = YamlPosition.Of(v);
                    ReadTasks(v, tasks, errors, Where);
                    break;
                case "triggers":
                    ReadTriggers(v, schedules, events, errors, Where);
                    break;
                default:
                    errors.Add($"{Where(k)}{YamlFiles.UnknownKey(key, s_topKeys)}");
                    break;
            }
        }
        if (name is null) errors.Add($"{YamlFiles.Where(file, root)}: the pipeline has no 'name'");

        var def = new PipelineDefinition
        {
            Name = name ?? "pipeline",
            Description = description,
            Parameters = parameters,
            Tasks = tasks,
            Schedules = schedules,
            Events = events,
            MaxConcurrency = maxConcurrency,
            SourceText = yaml,
            SourcePath = file,
            TasksAt = tasksAt,
        };
        // Report the structural problems of the tasks that could be read along with the syntax ones.
        foreach (var e in PipelineValidator.Check(def, kinds))
        {
            if (!errors.Contains(e) && !(name is null && e.Contains("has no 'name'", StringComparison.Ordinal))) errors.Add(e);
        }
        if (errors.Count > 0) throw new PipelineValidationException(errors);
        return def;
    }

    private static string? Scalar(YamlNode node, string field, List<string> errors, Func<YamlNode, string> where)
    {
        if (node is YamlScalarNode s) return s.Value;
        errors.Add($"{where(node)}'{field}' must be a single value");
        return null;
    }

    private static void ReadParameters(YamlNode node, List<ParameterDefinition> result, List<string> errors, Func<YamlNode, string> where)
    {
        if (node is not YamlMappingNode map)
        {
            errors.Add($"{where(node)}'parameters' must be a mapping of name to default value");
            return;
        }
        foreach (var (k, v) in map.Children)
        {
            var name = ((YamlScalarNode)k).Value ?? "";
            if (!PipelineValidator.IsName(name)) errors.Add($"{where(k)}parameter name '{name}' may hold only letters, digits, '_' and '-'");
            switch (v)
            {
                case YamlScalarNode s:
                    // `name:` alone (null) declares a required parameter; `name: value` gives its default.
                    result.Add(new ParameterDefinition(name, IsNull(s) ? null : s.Value, null, YamlPosition.Of(k)));
                    break;
                case YamlMappingNode m:
                    string? def = null, desc = null;
                    foreach (var (pk, pv) in m.Children)
                    {
                        var pkey = ((YamlScalarNode)pk).Value;
                        if (pkey == "default") def = pv is YamlScalarNode ds && !IsNull(ds) ? ds.Value : null;
                        else if (pkey == "description") desc = (pv as YamlScalarNode)?.Value;
                        else errors.Add($"{where(pk)}parameter '{name}': {YamlFiles.UnknownKey(pkey ?? "", ["default", "description"])}");
                    }
                    result.Add(new ParameterDefinition(name, def, desc, YamlPosition.Of(k)));
                    break;
                default:
                    errors.Add($"{where(v)}parameter '{name}' must be a value or a mapping with 'default'");
                    break;
            }
        }
    }

    private static void ReadTriggers(YamlNode node, List<CronTrigger> schedules, List<string> events, List<string> errors, Func<YamlNode, string> where)
    {
        if (node is not YamlSequenceNode seq)
        {
            errors.Add($"{where(node)}'triggers' must be a list of '- cron: ...' or '- event: ...' items");
            return;
        }
        foreach (var item in seq.Children)
        {
            if (item is not YamlMappingNode m)
            {
                errors.Add($"{where(item)}a trigger must be a mapping with 'cron' or 'event'");
                continue;
            }
            string? cron = null, tz = null, missed = null, ev = null;
            YamlNode? cronNode = null, tzNode = null, missedNode = null;
            foreach (var (k, v) in m.Children)
            {
                var key = ((YamlScalarNode)k).Value;
                var value = (v as YamlScalarNode)?.Value;
                switch (key)
                {
                    case "cron": cron = value; cronNode = v; break;
                    case "timezone": tz = value; tzNode = v; break;
                    case "missed": missed = value; missedNode = v; break;
                    case "event": ev = value; break;
                    default: errors.Add($"{where(k)}trigger: {YamlFiles.UnknownKey(key ?? "", ["cron", "timezone", "missed", "event"])}"); break;
                }
            }
            if (ev is not null)
            {
                if (cron is not null) errors.Add($"{where(m)}a trigger is either 'cron' or 'event', not both");
                else events.Add(ev);
                continue;
            }
            if (cron is null)
            {
                errors.Add($"{where(m)}a trigger needs 'cron' or 'event'");
                continue;
            }
            var zone = TimeZoneInfo.Utc;
            if (tz is not null)
            {
                try
                {
                    zone = TimeZoneInfo.FindSystemTimeZoneById(tz);
                }
                catch (Exception e) when (e is TimeZoneNotFoundException or InvalidTimeZoneException)
                {
                    errors.Add($"{where(tzNode!)}unknown time zone '{tz}' (use an IANA name such as Europe/Paris)");
                }
            }
            var policy = MissedRunPolicy.Skip;
            if (missed is not null)
            {
                if (missed == "skip") policy = MissedRunPolicy.Skip;
                else if (missed is "catch_up" or "catchup") policy = MissedRunPolicy.CatchUp;
                else errors.Add($"{where(missedNode!)}missed must be 'skip' or 'catch_up', got '{missed}'");
            }
            var trigger = new CronTrigger(cron, zone, policy, YamlPosition.Of(cronNode!));
            try
            {
                _ = trigger.Cron;
                schedules.Add(trigger);
            }
            catch (Cronos.CronFormatException e)
            {
                errors.Add($"{where(cronNode!)}bad cron expression '{cron}': {e.Message}");
            }
        }
    }

    private static void ReadTasks(YamlNode node, List<TaskDefinition> result, List<string> errors, Func<YamlNode, string> where)
    {
        if (node is not YamlMappingNode map)
        {
            errors.Add($"{where(node)}'tasks' must be a mapping of task name to task");
            return;
        }
        foreach (var (k, v) in map.Children)
        {
            var name = ((YamlScalarNode)k).Value ?? "";
            if (v is not YamlMappingNode tm)
            {
                errors.Add($"{where(v)}task '{name}' must be a mapping with at least 'kind'");
                continue;
            }
            string? kind = null;
            var deps = new List<string>();
            var retry = RetryPolicy.None;
            TimeSpan? timeout = null;
            var cache = false;
            var config = new JsonObject();
            var lines = new Dictionary<string, YamlPosition>(StringComparer.Ordinal);
            foreach (var (tk, tv) in tm.Children)
            {
                var key = ((YamlScalarNode)tk).Value ?? "";
                var prefix = $"{where(tv)}task '{name}': ";
                switch (key)
                {
                    case "kind":
                        kind = (tv as YamlScalarNode)?.Value;
                        break;
                    case "description":
                        break;
                    case "depends_on":
                        if (tv is YamlScalarNode one && !IsNull(one)) deps.Add(one.Value!);
                        else if (tv is YamlSequenceNode many)
                        {
                            foreach (var d in many.Children)
                            {
                                if (d is YamlScalarNode ds && ds.Value is not null) deps.Add(ds.Value);
                                else errors.Add($"{where(d)}task '{name}': depends_on lists task names");
                            }
                        }
                        else if (tv is not YamlScalarNode) errors.Add($"{prefix}depends_on must be a task name or a list of them");
                        break;
                    case "retries":
                        retry = ReadRetry(tv, prefix, errors);
                        break;
                    case "timeout":
                        if (tv is YamlScalarNode ts && Duration.TryParse(ts.Value, out var t)) timeout = t;
                        else errors.Add($"{prefix}timeout must be a duration: {Duration.Expected}");
                        break;
                    case "cache":
                        if (tv is YamlScalarNode cs && bool.TryParse(cs.Value, out var c)) cache = c;
                        else errors.Add($"{prefix}cache must be true or false");
                        break;
                    default:
                        config[key] = ToJson(tv);
                        lines[key] = tk.Start.Line > 0 ? YamlPosition.Of(tk) : YamlPosition.Of(tv);
                        break;
                }
            }
            if (kind is null)
            {
                errors.Add($"{where(k)}task '{name}' has no 'kind'");
                continue;
            }
            result.Add(new TaskDefinition
            {
                Name = name,
                Kind = kind,
                Config = config,
                DependsOn = deps,
                Retry = retry,
                Timeout = timeout,
                Cache = cache,
                At = YamlPosition.Of(k),
                ConfigPositions = lines,
            });
        }
    }

    private static RetryPolicy ReadRetry(YamlNode node, string prefix, List<string> errors)
    {
        var p = RetryPolicy.None;
        if (node is YamlScalarNode s)
        {
            if (int.TryParse(s.Value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) && n >= 0) return p with { MaxAttempts = n + 1 };
            errors.Add($"{prefix}retries must be a whole number (extra attempts) or a mapping with count, delay, backoff, max_delay, jitter");
            return p;
        }
        if (node is not YamlMappingNode m)
        {
            errors.Add($"{prefix}retries must be a number or a mapping");
            return p;
        }
        foreach (var (k, v) in m.Children)
        {
            var key = ((YamlScalarNode)k).Value;
            var value = (v as YamlScalarNode)?.Value;
            switch (key)
            {
                case "count" when int.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) && n >= 0:
                    p = p with { MaxAttempts = n + 1 };
                    break;
                case "delay" when Duration.TryParse(value, out var d):
                    p = p with { InitialDelay = d };
                    break;
                case "max_delay" when Duration.TryParse(value, out var d):
                    p = p with { MaxDelay = d };
                    break;
                case "backoff" when double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var b) && b >= 1:
                    p = p with { Multiplier = b };
                    break;
                case "jitter" when double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var j) && j is >= 0 and <= 1:
                    p = p with { Jitter = j };
                    break;
                default:
                    errors.Add($"{prefix}retries: bad '{key}: {value}' (count: whole number >= 0, delay/max_delay: durations (docs/cli.md#durations), backoff: number >= 1, jitter: 0..1)");
                    break;
            }
        }
        return p;
    }

    private static bool IsNull(YamlScalarNode s) =>
        s.Style == ScalarStyle.Plain && (s.Value is null or "" or "~" or "null" or "Null" or "NULL");

    /// <summary>YAML to JSON: plain scalars that read as numbers, booleans or null become those; quoted ones stay strings.</summary>
    internal static JsonNode? ToJson(YamlNode node)
    {
        switch (node)
        {
            case YamlScalarNode s:
                if (s.Style != ScalarStyle.Plain) return JsonValue.Create(s.Value ?? "");
                if (IsNull(s)) return null;
                var v = s.Value!;
                if (v is "true" or "True" or "TRUE") return JsonValue.Create(true);
                if (v is "false" or "False" or "FALSE") return JsonValue.Create(false);
                if (long.TryParse(v, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var l)) return JsonValue.Create(l);
                if (double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) && double.IsFinite(d)) return JsonValue.Create(d);
                return JsonValue.Create(v);
            case YamlSequenceNode seq:
                return new JsonArray(seq.Children.Select(ToJson).ToArray());
            case YamlMappingNode map:
                var o = new JsonObject();
                foreach (var (k, v2) in map.Children) o[((YamlScalarNode)k).Value ?? ""] = ToJson(v2);
                return o;
            default:
                return null;
        }
    }
}
