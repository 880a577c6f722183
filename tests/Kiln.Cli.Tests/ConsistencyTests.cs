using System.Text.Json;
using System.Text.RegularExpressions;
using Kiln.Testing;

namespace Kiln.Cli.Tests;

/// <summary>
/// What a newcomer trips over (issue 21): one meaning for --json, one name for the feature registry,
/// one exit-code rule, (REQUIRED) in every help, tables that do not wrap when piped.
/// </summary>
public sealed partial class ConsistencyTests : IDisposable
{
    private static string Quickstart => Path.Combine(TestEnvironment.RepoRoot, "examples", "quickstart");

    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private Task<Proc.Result> Kiln(params string[] args) => KilnCli.RunAsync(args, _dir.Path);

    /// <summary>The quickstart package, trained and logged to a tracking store under the temp dir.</summary>
    private async Task<string> TrainAsync(string? tracking = null)
    {
        var package = _dir.File("fraud");
        string[] args = ["train", Path.Combine(Quickstart, "spec.yaml"), "--out", package];
        if (tracking is not null) args = [.. args, "--tracking-uri", tracking];
        var r = await Kiln(args);
        Assert.True(r.ExitCode == 0, r.ToString());
        return package;
    }

    /// <summary>The quickstart data with every amount multiplied: a dataset that drifts.</summary>
    private string Shifted()
    {
        var lines = File.ReadAllLines(Path.Combine(Quickstart, "transactions.csv"));
        var header = lines[0].Split(',');
        var amount = Array.IndexOf(header, "amount");
        var hour = Array.IndexOf(header, "hour");
        var distance = Array.IndexOf(header, "distance_from_home_km");
        var shifted = new List<string> { lines[0] };
        foreach (var line in lines.Skip(1).Take(2000))
        {
            var cells = line.Split(',');
            cells[amount] = "99999";
            cells[hour] = "3";
            if (cells[distance].Length > 0) cells[distance] = "5000";
            shifted.Add(string.Join(',', cells));
        }
        var path = _dir.File("shifted.csv");
        File.WriteAllLines(path, shifted);
        return path;
    }

    [Fact]
    public async Task Json_is_a_switch_for_stdout_and_json_out_writes_the_file_and_drift_exits_2()
    {
        var package = await TrainAsync();
        var same = Path.Combine(Quickstart, "transactions.csv");

        // Default: the human table on stderr, nothing on stdout; no drift on the training data itself.
        var plain = await Kiln("drift", "--model", package, "--current", same);
        Assert.True(plain.ExitCode == 0, plain.ToString());
        Assert.Equal("", plain.StdOut);
        Assert.Contains("no dataset drift", plain.StdErr, StringComparison.Ordinal);

        // --json: the report on stdout and nothing else; --json-out: the same report in a file.
        var json = await Kiln("drift", "--model", package, "--current", same, "--json", "--json-out", _dir.File("report.json"));
        Assert.True(json.ExitCode == 0, json.ToString());
        using (var printed = JsonDocument.Parse(json.StdOut))
        {
            Assert.False(printed.RootElement.GetProperty("dataset_drift").GetBoolean());
        }
        Assert.Equal(json.StdOut.TrimEnd('\n'), await File.ReadAllTextAsync(_dir.File("report.json")));

        // Drift found: exit 2 (not 1, which is an error); --fail-on-drift false leaves the verdict to the report.
        var shifted = Shifted();
        var drifted = await Kiln("drift", "--model", package, "--current", shifted, "--json-out", _dir.File("drifted.json"));
        Assert.True(drifted.ExitCode == 2, drifted.ToString());
        Assert.Equal("", drifted.StdOut);
        using (var report = JsonDocument.Parse(await File.ReadAllTextAsync(_dir.File("drifted.json"))))
        {
            Assert.True(report.RootElement.GetProperty("dataset_drift").GetBoolean());
        }
        var lenient = await Kiln("drift", "--model", package, "--current", shifted, "--fail-on-drift", "false");
        Assert.True(lenient.ExitCode == 0, lenient.ToString());

        // The old `--json FILE` is refused in one line naming --json-out, in drift and in monitor evaluate alike.
        var old = await Kiln("drift", "--model", package, "--current", same, "--json", "old.json");
        Assert.Equal(1, old.ExitCode);
        Assert.Equal("error: --json old.json: --json no longer takes a file, it prints the JSON on stdout; write the file with --json-out old.json", old.StdErr.Trim());
        Assert.False(File.Exists(_dir.File("old.json")));
        var oldEvaluate = await Kiln("monitor", "evaluate", "--model", package, "--log-dir", _dir.Path, "--json", "old.json");
        Assert.Equal(1, oldEvaluate.ExitCode);
        Assert.Contains("--json-out old.json", oldEvaluate.StdErr, StringComparison.Ordinal);
        Assert.Single(oldEvaluate.StdErr.Trim().Split('\n'));

        // Errors are 1, whatever the command.
        var missing = await Kiln("drift", "--model", _dir.File("nope"), "--current", same);
        Assert.Equal(1, missing.ExitCode);
        Assert.StartsWith("error: ", missing.StdErr, StringComparison.Ordinal);

        // kiln drift opens the current data while the package loads: a bad file is still one line naming it, and
        // when both are bad the package's error is the one reported.
        var truncated = _dir.File("truncated.parquet");
        await File.WriteAllBytesAsync(truncated, [.. "PAR1"u8, 1, 2, 3]);
        var badData = await Kiln("drift", "--model", package, "--current", truncated);
        Assert.Equal(1, badData.ExitCode);
        var line = badData.StdErr.Split('\n')[0];
        Assert.StartsWith($"error: {truncated}: not a readable Parquet file", line, StringComparison.Ordinal);
        var both = await Kiln("drift", "--model", _dir.File("nope"), "--current", truncated);
        Assert.Equal(1, both.ExitCode);
        Assert.Contains(_dir.File("nope"), both.StdErr, StringComparison.Ordinal);
        Assert.DoesNotContain("truncated", both.StdErr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Exit_codes_follow_one_rule_including_parse_errors_and_verification()
    {
        // System.CommandLine's own usage errors exit 1, as every other error.
        var unknown = await Kiln("runs", "list", "--no-such-option");
        Assert.Equal(1, unknown.ExitCode);
        Assert.Contains("--no-such-option", unknown.StdErr, StringComparison.Ordinal);
        var missingRequired = await Kiln("batch", "--input", "x.csv", "--output", "out");
        Assert.Equal(1, missingRequired.ExitCode);
        Assert.Contains("--model", missingRequired.StdErr, StringComparison.Ordinal);

        // package verify: 2 when the check finds a problem, 1 when there is nothing to check.
        var package = await TrainAsync();
        Assert.Equal(0, (await Kiln("package", "verify", package)).ExitCode);
        var bytes = await File.ReadAllBytesAsync(Path.Combine(package, "model.zip"));
        bytes[bytes.Length / 2] ^= 0xFF;
        await File.WriteAllBytesAsync(Path.Combine(package, "model.zip"), bytes);
        var mismatch = await Kiln("package", "verify", package);
        Assert.Equal(2, mismatch.ExitCode);
        Assert.Contains("SHA-256 mismatch", mismatch.StdErr, StringComparison.Ordinal);
        var absent = await Kiln("package", "verify", _dir.File("absent"));
        Assert.Equal(1, absent.ExitCode);
        Assert.Equal($"error: {_dir.File("absent")}: no such package directory", absent.StdErr.Trim());
    }

    [Fact]
    public async Task Feature_registry_is_one_option_and_the_old_name_warns()
    {
        foreach (var command in new[] { "features", "train", "serve", "server" })
        {
            var help = await Kiln(command, "--help");
            Assert.True(help.ExitCode == 0, help.ToString());
            Assert.Contains("--feature-registry", help.StdOut, StringComparison.Ordinal);
            Assert.DoesNotMatch(@"(?m)^\s+--registry\b", help.StdOut); // the old name is hidden
        }
        var old = await Kiln("features", "list", "--registry", "reg.db");
        Assert.Equal(1, old.ExitCode);
        var lines = old.StdErr.Trim().Split('\n');
        Assert.Equal("warning: --registry is now --feature-registry", lines[0]);
        Assert.Contains("nothing applied yet", lines[^1], StringComparison.Ordinal);
        var both = await Kiln("features", "list", "--registry", "a.db", "--feature-registry", "b.db");
        Assert.Equal(1, both.ExitCode);
        Assert.Contains("give --feature-registry only", both.StdErr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Piped_tables_keep_run_ids_on_one_line_and_runs_list_names_the_experiment()
    {
        var tracking = _dir.File("store");
        await TrainAsync(tracking);
        var list = await Kiln("runs", "list", "--tracking-uri", tracking, "--json");
        Assert.True(list.ExitCode == 0, list.ToString());
        var run = JsonDocument.Parse(list.StdOut).RootElement.GetProperty("runs")[0].GetProperty("info");
        var runId = run.GetProperty("run_id").GetString()!;
        var experimentId = run.GetProperty("experiment_id").GetString()!;

        var table = await Kiln("runs", "list", "--tracking-uri", tracking);
        Assert.True(table.ExitCode == 0, table.ToString());
        // stderr is a pipe here: the row is one line with the whole run id and the experiment's name and id.
        var row = Assert.Single(table.StdErr.Split('\n'), l => l.Contains(runId, StringComparison.Ordinal));
        Assert.Contains($"fraud ({experimentId})", row, StringComparison.Ordinal);
        Assert.True(row.Length > 80, row);

        var show = await Kiln("runs", "show", runId, "--tracking-uri", tracking);
        Assert.True(show.ExitCode == 0, show.ToString());
        Assert.Contains($"fraud ({experimentId})", show.StdErr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Every_required_option_says_REQUIRED_in_help()
    {
        var commands = new List<string[]>();
        await WalkAsync([], commands);
        Assert.True(commands.Count > 30, string.Join("\n", commands.Select(c => string.Join(' ', c))));
        var problems = new List<string>();
        using var gate = new SemaphoreSlim(4);
        await Task.WhenAll(commands.Select(async path =>
        {
            await gate.WaitAsync();
            try
            {
                var help = await Kiln([.. path, "--help"]);
                var marked = Marked(help.StdOut);
                // A stray token makes the parse fail before anything runs; the parser then lists every missing required option.
                var parse = await Kiln([.. path, "--no-such-option-21"]);
                var missing = RequiredError().Matches(parse.StdErr + parse.StdOut).Select(m => m.Groups[1].Value).ToHashSet();
                var name = string.Join(' ', path);
                foreach (var o in missing.Except(marked)) lock (problems) problems.Add($"kiln {name}: {o} is required but its help does not say (REQUIRED)");
                foreach (var o in marked.Except(missing)) lock (problems) problems.Add($"kiln {name}: {o} says (REQUIRED) but is not");
                if (Regex.IsMatch(help.StdOut, @"(?<!\()\b[Rr]equired\b(?!\))"))
                    lock (problems) problems.Add($"kiln {name}: help says 'required' in prose; mark the option Required instead");
            }
            finally
            {
                gate.Release();
            }
        }));
        Assert.True(problems.Count == 0, string.Join("\n", problems));

        // The one that did not say it before.
        var drift = await Kiln("drift", "--help");
        Assert.Matches(@"--model <model>\s+.*\(REQUIRED\)", drift.StdOut);
    }

    private async Task WalkAsync(string[] path, List<string[]> into)
    {
        var help = await Kiln([.. path, "--help"]);
        Assert.True(help.ExitCode == 0, help.ToString());
        if (path.Length > 0) into.Add(path);
        var section = help.StdOut.Split("Commands:", 2);
        if (section.Length < 2) return;
        foreach (Match m in SubcommandLine().Matches(section[1])) await WalkAsync([.. path, m.Groups[1].Value], into);
    }

    /// <summary>The options whose help line (or its wrapped continuation) carries (REQUIRED).</summary>
    private static HashSet<string> Marked(string help)
    {
        var marked = new HashSet<string>(StringComparer.Ordinal);
        string? current = null;
        foreach (var line in help.Split('\n'))
        {
            var option = OptionLine().Match(line);
            if (option.Success) current = option.Groups[1].Value;
            else if (!line.StartsWith("    ", StringComparison.Ordinal)) current = null;
            if (current is not null && line.Contains("(REQUIRED)", StringComparison.Ordinal)) marked.Add(current);
        }
        return marked;
    }

    [GeneratedRegex(@"Option '(--[a-z-]+)' is required", RegexOptions.CultureInvariant)]
    private static partial Regex RequiredError();

    [GeneratedRegex(@"^  (?:-[a-zA-Z], )?(--[a-z-]+)", RegexOptions.CultureInvariant)]
    private static partial Regex OptionLine();

    [GeneratedRegex(@"(?m)^  ([a-z][a-z-]*)(?: <[^>]+>)*\s{2,}", RegexOptions.CultureInvariant)]
    private static partial Regex SubcommandLine();
}
