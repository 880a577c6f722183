using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Kiln.Pipelines.Definition;

/// <summary>
/// The <c>{{ params.x }}</c>, <c>{{ tasks.t.outputs.y }}</c> and <c>{{ run.id }}</c> references in
/// string values of a task's config.
/// </summary>
public static partial class Templates
{
    [GeneratedRegex(@"\{\{\s*([^{}]*?)\s*\}\}")]
    private static partial Regex Reference();

    /// <summary>Every reference in a config, as the dotted path inside the braces.</summary>
    public static IEnumerable<(string Key, string Path)> References(JsonObject config)
    {
        foreach (var (key, node) in config)
        {
            foreach (var s in Strings(node))
            {
                foreach (Match m in Reference().Matches(s)) yield return (key, m.Groups[1].Value);
            }
        }
    }

    private static IEnumerable<string> Strings(JsonNode? node)
    {
        switch (node)
        {
            case JsonValue v when v.TryGetValue<string>(out var s):
                yield return s;
                break;
            case JsonObject o:
                foreach (var (_, child) in o) foreach (var s in Strings(child)) yield return s;
                break;
            case JsonArray a:
                foreach (var child in a) foreach (var s in Strings(child)) yield return s;
                break;
        }
    }

    /// <summary>Checks one reference path; returns an error message or null.</summary>
    public static string? Check(string path, PipelineDefinition pipeline, TaskDefinition task, IReadOnlySet<string> ancestors)
    {
        var parts = path.Split('.');
        switch (parts[0])
        {
            case "params" when parts.Length == 2:
                return pipeline.Parameters.Any(p => p.Name == parts[1])
                    ? null
                    : $"refers to parameter '{parts[1]}' which is not declared under 'parameters:'";
            case "tasks" when parts.Length == 4 && parts[2] == "outputs":
                if (pipeline.FindTask(parts[1]) is null) return $"refers to the outputs of unknown task '{parts[1]}'";
                return ancestors.Contains(parts[1])
                    ? null
                    : $"refers to the outputs of task '{parts[1]}' but does not depend on it (add it to depends_on)";
            case "run" when parts.Length == 2 && parts[1] is "id" or "scheduled_time" or "trigger":
                return null;
            case "pipeline" when parts.Length == 2 && parts[1] == "name":
                return null;
            default:
                return $"has an unknown reference '{{{{ {path} }}}}' (use params.NAME, tasks.TASK.outputs.NAME, run.id, run.scheduled_time, run.trigger or pipeline.name)";
        }
    }

    /// <summary>A copy of <paramref name="config"/> with every reference replaced by its value.</summary>
    public static JsonObject Resolve(JsonObject config, Func<string, string?> lookup)
    {
        if (config.Count == 0) return [];
        return (JsonObject)ResolveNode(config, lookup)!;
    }

    private static JsonNode? ResolveNode(JsonNode? node, Func<string, string?> lookup) => node switch
    {
        JsonValue v when v.TryGetValue<string>(out var s) => JsonValue.Create(ResolveString(s, lookup)),
        JsonObject o => new JsonObject(o.Select(kv => KeyValuePair.Create(kv.Key, ResolveNode(kv.Value, lookup)))),
        JsonArray a => new JsonArray(a.Select(c => ResolveNode(c, lookup)).ToArray()),
        null => null,
        _ => node.DeepClone(),
    };

    /// <summary>Replaces every reference in one string.</summary>
    public static string ResolveString(string s, Func<string, string?> lookup)
    {
        if (!s.Contains("{{", StringComparison.Ordinal)) return s;
        return Reference().Replace(s, m => lookup(m.Groups[1].Value)
            ?? throw new Kiln.Core.KilnException($"reference '{m.Value}' has no value"));
    }

    /// <summary>The config as canonical JSON text (keys sorted), for cache keys.</summary>
    public static string Canonical(JsonNode? node)
    {
        var sb = new StringBuilder();
        Write(node, sb);
        return sb.ToString();
    }

    private static void Write(JsonNode? node, StringBuilder sb)
    {
        switch (node)
        {
            case JsonObject o:
                sb.Append('{');
                var first = true;
                foreach (var (k, v) in o.OrderBy(kv => kv.Key, StringComparer.Ordinal))
                {
                    if (!first) sb.Append(',');
                    first = false;
                    sb.Append(System.Text.Json.JsonSerializer.Serialize(k, PipelineJson.Default.String)).Append(':');
                    Write(v, sb);
                }
                sb.Append('}');
                break;
            case JsonArray a:
                sb.Append('[');
                for (var i = 0; i < a.Count; i++)
                {
                    if (i > 0) sb.Append(',');
                    Write(a[i], sb);
                }
                sb.Append(']');
                break;
            case null:
                sb.Append("null");
                break;
            default:
                sb.Append(node.ToJsonString());
                break;
        }
    }
}
