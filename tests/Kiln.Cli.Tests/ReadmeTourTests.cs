using System.Globalization;
using Kiln.Testing;

namespace Kiln.Cli.Tests;

/// <summary>
/// Runs the README's command lines as written, in order, with the real binary in a fresh directory that
/// holds the repository's examples: `./kiln quickstart` and then every line of "A short tour" that ends
/// by itself. `kiln server` and `kiln serve` run until stopped; their lines are checked by DocsTests and
/// started for real by the server and serving tests.
/// </summary>
public class ReadmeTourTests
{
    [Fact]
    public async Task The_readme_tour_runs_as_written_on_the_example_data()
    {
        var lines = TourLines().ToList();
        Assert.Contains(lines, l => l.StartsWith("./kiln quickstart", StringComparison.Ordinal));
        Assert.True(lines.Count >= 15, $"only {lines.Count} tour lines found");

        using var dir = new TempDir("kiln-tour");
        Directory.CreateSymbolicLink(dir.File("examples"), Path.Combine(TestEnvironment.RepoRoot, "examples"));
        var ran = 0;
        var productionBeforeRetrain = 0;
        foreach (var line in lines)
        {
            var args = line.Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(1).ToList();
            if (args[0] is "server" or "serve") continue;
            if (line.Contains("retrain-on-drift", StringComparison.Ordinal)) productionBeforeRetrain = await ProductionVersionAsync(dir.Path);
            var r = await KilnCli.RunAsync(args, dir.Path);
            // kiln drift exits 2 when it finds drift (docs/cli.md, "Exit codes"), and the recent period has drifted.
            var expected = args[0] == "drift" ? 2 : 0;
            Assert.True(r.ExitCode == expected, $"{line}\nexited {r.ExitCode.ToString(CultureInfo.InvariantCulture)}\n{r}");
            ran++;
        }
        Assert.True(ran >= 15, $"ran {ran} lines");

        Assert.True(File.Exists(dir.File("report.html")), "kiln drift wrote no report.html");
        // retrain-on-drift finds drift in the recent period, retrains, beats production on the holdout and promotes.
        Assert.True(productionBeforeRetrain > 0, "production had no version before retrain-on-drift ran");
        Assert.True(await ProductionVersionAsync(dir.Path) > productionBeforeRetrain, "retrain-on-drift did not promote a new version");
    }

    private static async Task<int> ProductionVersionAsync(string cwd)
    {
        var r = await KilnCli.RunAsync(["models", "show", "fraud", "--json"], cwd);
        Assert.True(r.ExitCode == 0, r.ToString());
        using var doc = System.Text.Json.JsonDocument.Parse(r.StdOut);
        foreach (var a in doc.RootElement.GetProperty("registered_model").GetProperty("aliases").EnumerateArray())
            if (a.GetProperty("alias").GetString() == "production")
            {
                var v = a.GetProperty("version");
                return v.ValueKind == System.Text.Json.JsonValueKind.Number ? v.GetInt32() : int.Parse(v.GetString()!, CultureInfo.InvariantCulture);
            }
        return 0;
    }

    /// <summary>The ./kiln lines of README.md's first two bash blocks (two commands, the tour), comments and continuations removed.</summary>
    internal static IEnumerable<string> TourLines()
    {
        var readme = File.ReadAllLines(Path.Combine(TestEnvironment.RepoRoot, "README.md"));
        var blocks = 0;
        var inBlock = false;
        var pending = "";
        foreach (var raw in readme)
        {
            if (raw.StartsWith("```", StringComparison.Ordinal))
            {
                inBlock = !inBlock;
                if (!inBlock && ++blocks == 2) yield break;
                continue;
            }
            if (!inBlock) continue;
            var line = pending + raw.Trim();
            if (line.EndsWith('\\'))
            {
                pending = line[..^1] + " ";
                continue;
            }
            pending = "";
            var hash = line.IndexOf(" #", StringComparison.Ordinal);
            if (hash >= 0) line = line[..hash];
            foreach (var part in line.Split("&&", StringSplitOptions.TrimEntries))
                if (part.StartsWith("./kiln ", StringComparison.Ordinal)) yield return part;
        }
    }
}
