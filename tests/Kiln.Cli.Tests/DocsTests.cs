using System.CommandLine;
using System.Text;
using System.Text.RegularExpressions;
using Kiln.Cli.Commands;
using Kiln.Testing;

namespace Kiln.Cli.Tests;

/// <summary>
/// The command lines quoted in README.md and docs/*.md (code blocks and inline code) name commands and
/// options that exist, so a renamed flag cannot leave the docs behind.
/// </summary>
public partial class DocsTests
{
    [Fact]
    public void Every_kiln_command_line_quoted_in_the_docs_names_real_commands_and_options()
    {
        var root = KilnCommand.Create();
        var lines = QuotedCommandLines().ToList();
        Assert.True(lines.Count > 60, $"only {lines.Count} quoted command lines found; is the extraction broken?");
        var problems = new List<string>();
        foreach (var (where, line) in lines)
            if (Check(root, line) is { } problem) problems.Add($"{where}: {line}\n    {problem}");
        Assert.True(problems.Count == 0, $"{problems.Count} quoted command lines disagree with the CLI:\n" + string.Join("\n", problems));
    }

    [Fact]
    public void The_checker_notices_an_unknown_option_and_an_unknown_command()
    {
        var root = KilnCommand.Create();
        Assert.Null(Check(root, "./kiln drift --model packages/fraud --current new.parquet [--window 1h]"));
        Assert.Contains("--no-such-flag", Check(root, "kiln drift --model m --no-such-flag"));
        Assert.Contains("'nosuch'", Check(root, "kiln nosuch --model m"));
        // Alternatives in brackets stay on their command line, so every option in them is checked.
        Assert.Equal(["kiln drift [--json|--no-such-flag]", "kiln models list"], Commands("kiln drift [--json|--no-such-flag] | grep x && kiln models list"));
        Assert.Contains("--no-such-flag", Check(root, Commands("kiln drift [--json|--no-such-flag]").Single()));
    }

    /// <summary>Null when the line's command exists and it takes every option the line names; otherwise why not.</summary>
    internal static string? Check(RootCommand root, string line)
    {
        var tokens = Tokenize(line);
        if (tokens.Count == 0 || tokens[0] is not ("kiln" or "./kiln")) return "not a kiln command line";
        Command command = root;
        var path = new List<Command> { root };
        var i = 1;
        for (; i < tokens.Count; i++)
        {
            var next = command.Subcommands.FirstOrDefault(c => c.Name == tokens[i] || c.Aliases.Contains(tokens[i]));
            if (next is null) break;
            command = next;
            path.Add(command);
        }
        if (command == root && i < tokens.Count && !tokens[i].StartsWith('-'))
            return $"'{tokens[i]}' is not a kiln command";
        var options = path.SelectMany((c, depth) => c.Options.Where(o => depth == path.Count - 1 || o.Recursive))
            .SelectMany(o => o.Aliases.Append(o.Name)).ToHashSet(StringComparer.Ordinal);
        foreach (var token in tokens.Skip(i).SelectMany(t => t.Split('|')))
        {
            var t = token.Trim('[', ']', '(', ')', '|', ',', '`');
            if (!OptionToken().IsMatch(t)) continue;
            var name = t.Split('=')[0];
            if (!options.Contains(name))
                return $"'kiln {string.Join(' ', path.Skip(1).Select(c => c.Name))}' has no option {name}";
        }
        return null;
    }

    /// <summary>Each kiln command line in a fenced code block or an inline code span, with its file and line.</summary>
    internal static IEnumerable<(string Where, string Line)> QuotedCommandLines()
    {
        var files = new[] { Path.Combine(TestEnvironment.RepoRoot, "README.md") }
            .Concat(Directory.GetFiles(Path.Combine(TestEnvironment.RepoRoot, "docs"), "*.md").Order(StringComparer.Ordinal));
        foreach (var file in files)
        {
            var name = Path.GetRelativePath(TestEnvironment.RepoRoot, file);
            var text = File.ReadAllLines(file);
            var inBlock = false;
            for (var n = 0; n < text.Length; n++)
            {
                var raw = text[n];
                if (raw.TrimStart().StartsWith("```", StringComparison.Ordinal))
                {
                    inBlock = !inBlock;
                    continue;
                }
                if (inBlock)
                {
                    var first = n;
                    var joined = new StringBuilder(raw);
                    while (joined.ToString().TrimEnd().EndsWith('\\') && n + 1 < text.Length)
                    {
                        var s = joined.ToString().TrimEnd();
                        joined.Clear().Append(s[..^1]).Append(' ').Append(text[++n].Trim());
                    }
                    foreach (var command in Commands(StripComment(joined.ToString())))
                        yield return ($"{name}:{first + 1}", command);
                }
                else
                {
                    foreach (Match m in InlineCode().Matches(raw))
                        foreach (var command in Commands(m.Groups[1].Value))
                            yield return ($"{name}:{n + 1}", command);
                }
            }
        }
    }

    /// <summary>
    /// The kiln invocations in a shell line: it may chain them with &amp;&amp;, ||, ; or a pipe. A | inside brackets
    /// (a usage line's alternatives, [--json|--json-out FILE]) separates alternatives, not commands.
    /// </summary>
    internal static IEnumerable<string> Commands(string shell)
    {
        foreach (var part in SplitShell(shell))
        {
            var s = part.StartsWith("$ ", StringComparison.Ordinal) ? part[2..] : part;
            s = EnvPrefix().Replace(s, "");
            if (!s.StartsWith("kiln ", StringComparison.Ordinal) && !s.StartsWith("./kiln ", StringComparison.Ordinal)) continue;
            // "kiln batch: 1,200,000 rows, ..." is output shown in a block, not a command.
            if (s.Split(' ', 3)[1].EndsWith(':')) continue;
            yield return s;
        }
    }

    private static IEnumerable<string> SplitShell(string shell)
    {
        var depth = 0;
        var start = 0;
        for (var i = 0; i < shell.Length; i++)
        {
            var c = shell[i];
            if (c is '[' or '(' or '{') depth++;
            else if (c is ']' or ')' or '}') depth = Math.Max(0, depth - 1);
            else if (depth == 0 && (c is ';' or '|' || (c == '&' && i + 1 < shell.Length && shell[i + 1] == '&')))
            {
                yield return shell[start..i].Trim();
                if (i + 1 < shell.Length && shell[i + 1] == c) i++; // && and ||
                start = i + 1;
            }
        }
        yield return shell[start..].Trim();
    }

    private static string StripComment(string line)
    {
        var quote = '\0';
        for (var i = 0; i < line.Length; i++)
        {
            var c = line[i];
            if (quote != '\0') { if (c == quote) quote = '\0'; }
            else if (c is '"' or '\'') quote = c;
            else if (c == '#' && (i == 0 || char.IsWhiteSpace(line[i - 1]))) return line[..i].TrimEnd();
        }
        return line.TrimEnd();
    }

    private static List<string> Tokenize(string line)
    {
        var tokens = new List<string>();
        var current = new StringBuilder();
        var quote = '\0';
        foreach (var c in line)
        {
            if (quote != '\0')
            {
                if (c == quote) quote = '\0';
                else current.Append(c);
            }
            else if (c is '"' or '\'') quote = c;
            else if (char.IsWhiteSpace(c))
            {
                if (current.Length > 0) tokens.Add(current.ToString());
                current.Clear();
            }
            else current.Append(c);
        }
        if (current.Length > 0) tokens.Add(current.ToString());
        return tokens;
    }

    [GeneratedRegex("`((?:\\./)?kiln [^`]+)`")]
    private static partial Regex InlineCode();

    [GeneratedRegex(@"^(?:[A-Z_][A-Z0-9_]*=\S*\s+)+")]
    private static partial Regex EnvPrefix();

    [GeneratedRegex(@"^--?[A-Za-z][A-Za-z0-9-]*(=.*)?$")]
    private static partial Regex OptionToken();
}
