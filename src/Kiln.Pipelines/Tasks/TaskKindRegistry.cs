using System.Diagnostics.CodeAnalysis;

namespace Kiln.Pipelines.Tasks;

/// <summary>The task kinds a pipeline may use, by name. Areas add theirs with <see cref="Add"/>.</summary>
public sealed class TaskKindRegistry
{
    private readonly Dictionary<string, ITaskKind> _kinds = new(StringComparer.Ordinal);

    /// <summary>A registry with the built-in kinds: shell, noop and csharp.</summary>
    public static TaskKindRegistry CreateDefault()
    {
        var r = new TaskKindRegistry();
        r.Add(new ShellTaskKind());
        r.Add(new NoopTaskKind());
        r.Add(new CSharpStepTaskKind());
        return r;
    }

    public TaskKindRegistry Add(ITaskKind kind)
    {
        ArgumentNullException.ThrowIfNull(kind);
        _kinds[kind.Name] = kind;
        return this;
    }

    public bool TryGet(string name, [NotNullWhen(true)] out ITaskKind? kind) => _kinds.TryGetValue(name, out kind);

    public IEnumerable<string> Names => _kinds.Keys;
}
