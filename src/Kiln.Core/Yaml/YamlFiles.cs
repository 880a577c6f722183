using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Kiln.Core.Yaml;

/// <summary>
/// What every YAML file Kiln reads (training specs, feature repositories, pipelines, monitoring.yaml) shares:
/// parsing with errors that carry the line and column, where a node is, and unknown keys refused with the
/// nearest valid key suggested. Each area keeps its own schema; this is only the reading.
/// </summary>
public static class YamlFiles
{
    /// <summary>The documents of a YAML text; a syntax error is one line, <c>SOURCE:LINE:COLUMN: invalid YAML: …</c>.</summary>
    public static IReadOnlyList<YamlDocument> Parse(TextReader text, string source)
    {
        ArgumentNullException.ThrowIfNull(text);
        var stream = new YamlStream();
        try
        {
            stream.Load(text);
        }
        catch (YamlException e)
        {
            var inner = e;
            while (inner.InnerException is YamlException i) inner = i;
            throw new KilnException($"{source}:{e.Start.Line}:{e.Start.Column}: invalid YAML: {inner.Message}", e);
        }
        return [.. stream.Documents];
    }

    /// <summary>The root mapping of the first document, or null when the text is empty or its root is not a mapping.</summary>
    public static YamlMappingNode? ParseMapping(string text, string source) =>
        Parse(new StringReader(text), source) is [{ RootNode: YamlMappingNode root }, ..] ? root : null;

    /// <summary><c>SOURCE:LINE:COLUMN</c> of a node, as compilers print a position.</summary>
    public static string Where(string source, YamlNode node)
    {
        ArgumentNullException.ThrowIfNull(node);
        return $"{source}:{node.Start.Line}:{node.Start.Column}";
    }

    /// <summary><c>unknown key 'servce' (did you mean 'service'?; expected one of: a, b)</c>.</summary>
    public static string UnknownKey(string key, IEnumerable<string> allowed)
    {
        var known = allowed.ToList();
        var hint = Nearest(key, known) is { } near ? $"did you mean '{near}'?; " : "";
        return $"unknown key '{key}' ({hint}expected one of: {string.Join(", ", known)})";
    }

    /// <summary>The known name closest to <paramref name="name"/> within a few edits (a typo), or null.</summary>
    public static string? Nearest(string name, IEnumerable<string> known)
    {
        ArgumentNullException.ThrowIfNull(name);
        string? best = null;
        var bestDistance = int.MaxValue;
        // Two edits, or a third of a long name: close enough to be a typo, not a different word.
        var limit = Math.Max(2, name.Length / 3);
        foreach (var k in known)
        {
            var d = Distance(name, k);
            if (d <= limit && d < bestDistance)
            {
                best = k;
                bestDistance = d;
            }
        }
        return best;
    }

    private static int Distance(string a, string b)
    {
        var previous = new int[b.Length + 1];
        var current = new int[b.Length + 1];
        for (var j = 0; j <= b.Length; j++) previous[j] = j;
        for (var i = 1; i <= a.Length; i++)
        {
            current[0] = i;
            for (var j = 1; j <= b.Length; j++)
            {
                var substitute = previous[j - 1] + (char.ToLowerInvariant(a[i - 1]) == char.ToLowerInvariant(b[j - 1]) ? 0 : 1);
                current[j] = Math.Min(Math.Min(previous[j] + 1, current[j - 1] + 1), substitute);
            }
            (previous, current) = (current, previous);
        }
        return previous[b.Length];
    }
}
