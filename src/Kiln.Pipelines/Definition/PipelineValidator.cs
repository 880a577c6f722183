using Kiln.Core.Yaml;
using Kiln.Pipelines.Tasks;

namespace Kiln.Pipelines.Definition;

/// <summary>The load-time checks shared by YAML and code pipelines: names, dependencies, cycles, kinds, references.</summary>
public static class PipelineValidator
{
    /// <summary>Throws <see cref="PipelineValidationException"/> listing every problem found.</summary>
    public static void Validate(PipelineDefinition p, TaskKindRegistry kinds)
    {
        var errors = Check(p, kinds);
        if (errors.Count > 0) throw new PipelineValidationException(errors);
    }

    /// <summary>Every problem of a pipeline, one line each.</summary>
    public static List<string> Check(PipelineDefinition p, TaskKindRegistry kinds)
    {
        var errors = new List<string>();
        if (string.IsNullOrWhiteSpace(p.Name)) errors.Add($"{p.Where(YamlPosition.None)}the pipeline has no 'name'");
        if (p.Tasks.Count == 0) errors.Add($"{p.Where(p.TasksAt)}the pipeline has no tasks");
        if (p.MaxConcurrency < 1) errors.Add($"{p.Where(YamlPosition.None)}max_concurrency must be at least 1, got {p.MaxConcurrency}");

        var byName = new Dictionary<string, TaskDefinition>(StringComparer.Ordinal);
        foreach (var t in p.Tasks)
        {
            if (!byName.TryAdd(t.Name, t)) errors.Add($"{p.Where(t.At)}task '{t.Name}' is defined twice");
            if (!IsName(t.Name)) errors.Add($"{p.Where(t.At)}task name '{t.Name}' may hold only letters, digits, '_' and '-'");
        }

        foreach (var t in p.Tasks)
        {
            foreach (var d in t.DependsOn)
            {
                if (d == t.Name) errors.Add($"{p.Where(t.At)}task '{t.Name}' depends on itself");
                else if (!byName.ContainsKey(d)) errors.Add($"{p.Where(t.At)}task '{t.Name}' depends on unknown task '{d}'{Suggest(d, byName.Keys)}");
            }
            if (!kinds.TryGet(t.Kind, out var kind))
            {
                errors.Add($"{p.Where(t.At)}task '{t.Name}' has unknown kind '{t.Kind}' (known kinds: {string.Join(", ", kinds.Names.Order(StringComparer.Ordinal))})");
            }
            else
            {
                foreach (var e in kind.Validate(t))
                {
                    var line = e.Field is not null && t.ConfigPositions.TryGetValue(e.Field, out var l) ? l : t.At;
                    errors.Add($"{p.Where(line)}task '{t.Name}': {(e.Field is null ? "" : $"'{e.Field}' ")}{e.Message}");
                }
            }
            if (t.Retry.MaxAttempts < 1) errors.Add($"{p.Where(t.At)}task '{t.Name}': retries must not be negative");
            if (t.Timeout is { } to && to <= TimeSpan.Zero) errors.Add($"{p.Where(t.At)}task '{t.Name}': timeout must be positive");
        }

        var cycle = FindCycle(p.Tasks, byName);
        if (cycle is not null)
        {
            var first = byName[cycle[0]];
            errors.Add($"{p.Where(first.At)}tasks form a cycle: {string.Join(" -> ", cycle)} -> {cycle[0]} (each depends on the next)");
        }
        else if (errors.Count == 0)
        {
            foreach (var t in p.Tasks)
            {
                HashSet<string>? ancestors = null;
                foreach (var (key, path) in Templates.References(t.Config))
                {
                    ancestors ??= AncestorsOf(t, byName);
                    var problem = Templates.Check(path, p, t, ancestors);
                    if (problem is not null)
                    {
                        var line = t.ConfigPositions.TryGetValue(key, out var l) ? l : t.At;
                        errors.Add($"{p.Where(line)}task '{t.Name}': '{key}' {problem}");
                    }
                }
            }
        }

        foreach (var s in p.Schedules)
        {
            try
            {
                _ = s.Cron;
            }
            catch (Cronos.CronFormatException e)
            {
                errors.Add($"{p.Where(s.At)}bad cron expression '{s.Expression}': {e.Message}");
            }
        }

        return errors;
    }

    internal static bool IsName(string s) =>
        s.Length > 0 && s.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-');

    private static string Suggest(string name, IEnumerable<string> known) =>
        Kiln.Core.Yaml.YamlFiles.Nearest(name, known) is { } close ? $" (did you mean '{close}'?)" : "";

    /// <summary>One cycle as the list of tasks on it, in dependency order; null when the graph is acyclic.</summary>
    internal static List<string>? FindCycle(IReadOnlyList<TaskDefinition> tasks, Dictionary<string, TaskDefinition> byName)
    {
        // Iterative depth-first search (10,000-task pipelines must not overflow the stack).
        var color = new Dictionary<string, int>(StringComparer.Ordinal); // 0 white, 1 on stack, 2 done
        var parent = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var root in tasks)
        {
            if (color.GetValueOrDefault(root.Name) != 0) continue;
            var stack = new Stack<(string Name, int Next)>();
            stack.Push((root.Name, 0));
            color[root.Name] = 1;
            while (stack.Count > 0)
            {
                var (name, next) = stack.Pop();
                var deps = byName[name].DependsOn;
                if (next < deps.Count)
                {
                    stack.Push((name, next + 1));
                    var d = deps[next];
                    if (!byName.ContainsKey(d) || d == name) continue;
                    var c = color.GetValueOrDefault(d);
                    if (c == 0)
                    {
                        color[d] = 1;
                        parent[d] = name;
                        stack.Push((d, 0));
                    }
                    else if (c == 1)
                    {
                        // name depends on d, and d is below on the stack: walk back from name to d.
                        var path = new List<string> { name };
                        var cur = name;
                        while (cur != d)
                        {
                            cur = parent[cur];
                            path.Add(cur);
                        }
                        // path runs name, ..., d with each depending on the one before: reverse it so each depends on the next.
                        path.Reverse();
                        return path;
                    }
                }
                else
                {
                    color[name] = 2;
                }
            }
        }
        return null;
    }

    /// <summary>Every task that <paramref name="task"/> depends on, directly or not.</summary>
    internal static HashSet<string> AncestorsOf(TaskDefinition task, Dictionary<string, TaskDefinition> byName)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var queue = new Queue<TaskDefinition>();
        queue.Enqueue(task);
        while (queue.Count > 0)
        {
            foreach (var d in queue.Dequeue().DependsOn)
            {
                if (seen.Add(d) && byName.TryGetValue(d, out var dt)) queue.Enqueue(dt);
            }
        }
        return seen;
    }

    /// <summary>Tasks in an order where each comes after its dependencies (the graph must be acyclic).</summary>
    internal static List<TaskDefinition> TopologicalOrder(IReadOnlyList<TaskDefinition> tasks, Dictionary<string, TaskDefinition> byName)
    {
        var indegree = new Dictionary<string, int>(StringComparer.Ordinal);
        var dependents = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        foreach (var t in tasks)
        {
            indegree[t.Name] = t.DependsOn.Count;
            foreach (var d in t.DependsOn)
            {
                if (!dependents.TryGetValue(d, out var list)) dependents[d] = list = [];
                list.Add(t.Name);
            }
        }
        var queue = new Queue<string>(tasks.Where(t => t.DependsOn.Count == 0).Select(t => t.Name));
        var order = new List<TaskDefinition>(tasks.Count);
        while (queue.Count > 0)
        {
            var n = queue.Dequeue();
            order.Add(byName[n]);
            if (!dependents.TryGetValue(n, out var ds)) continue;
            foreach (var d in ds) if (--indegree[d] == 0) queue.Enqueue(d);
        }
        return order;
    }
}
