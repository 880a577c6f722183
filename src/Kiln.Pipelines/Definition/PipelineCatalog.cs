using System.Collections.Concurrent;
using Kiln.Pipelines.Tasks;

namespace Kiln.Pipelines.Definition;

/// <summary>The pipelines a process knows by name: what HTTP starts, events trigger and the scheduler runs.</summary>
public sealed class PipelineCatalog
{
    private readonly ConcurrentDictionary<string, PipelineDefinition> _pipelines = new(StringComparer.Ordinal);

    /// <summary>Adds or replaces a pipeline.</summary>
    public void Add(PipelineDefinition definition) => _pipelines[definition.Name] = definition;

    public PipelineDefinition? Find(string name) => _pipelines.GetValueOrDefault(name);

    public IReadOnlyList<PipelineDefinition> All => [.. _pipelines.Values.OrderBy(p => p.Name, StringComparer.Ordinal)];

    public IEnumerable<PipelineDefinition> ForEvent(string eventName) =>
        All.Where(p => p.Events.Contains(eventName, StringComparer.Ordinal));

    /// <summary>Loads every *.yaml / *.yml file of a directory; throws on the first invalid one.</summary>
    public int LoadDirectory(string directory, TaskKindRegistry kinds)
    {
        var n = 0;
        foreach (var file in Directory.EnumerateFiles(directory, "*.y*ml").Order(StringComparer.Ordinal))
        {
            if (!file.EndsWith(".yaml", StringComparison.OrdinalIgnoreCase) && !file.EndsWith(".yml", StringComparison.OrdinalIgnoreCase)) continue;
            Add(PipelineLoader.LoadFile(file, kinds));
            n++;
        }
        return n;
    }
}
