using System.Globalization;

namespace Kiln.Web.Serving;

/// <summary>One sample of a Prometheus text exposition: a metric name, its labels and its value.</summary>
public sealed record PrometheusSample(string Name, IReadOnlyDictionary<string, string> Labels, double Value)
{
    /// <summary>The value of a label, or null.</summary>
    public string? Label(string key) => Labels.TryGetValue(key, out var v) ? v : null;
}

/// <summary>
/// Reads the Prometheus text exposition format (version 0.0.4, what kiln serve's /metrics writes): comment and
/// blank lines are skipped, each other line is <c>name{label="value",…} value [timestamp]</c>. No .NET package reads
/// this format (the Prometheus client libraries only write it), and the grammar is a few rules.
/// </summary>
public static class PrometheusText
{
    /// <summary>Every sample of <paramref name="text"/>.</summary>
    /// <exception cref="FormatException">a line is not a sample; the message names the line.</exception>
    public static List<PrometheusSample> Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var samples = new List<PrometheusSample>();
        var lineNumber = 0;
        foreach (var raw in text.Split('\n'))
        {
            lineNumber++;
            var line = raw.TrimEnd('\r').Trim();
            if (line.Length == 0 || line[0] == '#') continue;
            samples.Add(ParseLine(line, lineNumber));
        }
        return samples;
    }

    private static PrometheusSample ParseLine(string line, int lineNumber)
    {
        var i = 0;
        while (i < line.Length && line[i] != '{' && !char.IsWhiteSpace(line[i])) i++;
        var name = line[..i];
        if (name.Length == 0) throw Bad(lineNumber, "no metric name");
        var labels = new Dictionary<string, string>(StringComparer.Ordinal);
        if (i < line.Length && line[i] == '{')
        {
            i++;
            while (true)
            {
                while (i < line.Length && (line[i] == ',' || line[i] == ' ')) i++;
                if (i >= line.Length) throw Bad(lineNumber, "unclosed label set");
                if (line[i] == '}')
                {
                    i++;
                    break;
                }
                var eq = line.IndexOf('=', i);
                if (eq < 0 || eq + 1 >= line.Length || line[eq + 1] != '"') throw Bad(lineNumber, "a label without =\"value\"");
                var key = line[i..eq].Trim();
                i = eq + 2;
                var value = new System.Text.StringBuilder();
                while (true)
                {
                    if (i >= line.Length) throw Bad(lineNumber, $"label {key}: unclosed quote");
                    var c = line[i++];
                    if (c == '"') break;
                    if (c == '\\' && i < line.Length)
                    {
                        var e = line[i++];
                        value.Append(e switch { 'n' => '\n', _ => e });
                    }
                    else value.Append(c);
                }
                labels[key] = value.ToString();
            }
        }
        var rest = line[i..].Trim().Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (rest.Length is < 1 or > 2) throw Bad(lineNumber, "expected a value (and an optional timestamp) after the name");
        return new PrometheusSample(name, labels, ParseValue(rest[0], lineNumber));
    }

    private static double ParseValue(string s, int lineNumber) => s switch
    {
        "+Inf" or "Inf" => double.PositiveInfinity,
        "-Inf" => double.NegativeInfinity,
        "NaN" => double.NaN,
        _ => double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) ? v : throw Bad(lineNumber, $"'{s}' is not a number"),
    };

    private static FormatException Bad(int line, string why) => new($"line {line}: {why}");
}
