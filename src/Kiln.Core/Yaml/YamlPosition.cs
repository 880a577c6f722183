using YamlDotNet.RepresentationModel;

namespace Kiln.Core.Yaml;

/// <summary>Where a thing was written in a YAML file: 1-based line and column; <see cref="None"/> for things made in code.</summary>
public readonly record struct YamlPosition(int Line, int Column)
{
    /// <summary>Not from a file (a pipeline defined in C#, a default).</summary>
    public static YamlPosition None => default;

    /// <summary>The start of <paramref name="node"/>.</summary>
    public static YamlPosition Of(YamlNode node)
    {
        ArgumentNullException.ThrowIfNull(node);
        return new((int)node.Start.Line, (int)node.Start.Column);
    }

    /// <summary>True when the position came from a file.</summary>
    public bool IsKnown => Line > 0;

    /// <summary><c>LINE:COLUMN</c>, as compilers print a position.</summary>
    public override string ToString() => $"{Line}:{Column}";
}
