using Kiln.Testing;

namespace Kiln.Cli.Tests;

/// <summary>The real kiln binary, as a user runs it.</summary>
public class CliTests
{
    private static string Quickstart => Path.Combine(TestEnvironment.RepoRoot, "examples", "quickstart");

    [Theory]
    [InlineData("--help")]
    [InlineData("train --help")]
    [InlineData("quickstart --help")]
    [InlineData("package --help")]
    [InlineData("package verify --help")]
    [InlineData("package show --help")]
    [InlineData("package onnx --help")]
    [InlineData("package export onnx --help")]
    public async Task Every_command_has_help(string args)
    {
        var r = await KilnCli.RunAsync(args.Split(' '));
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("Usage:", r.StdOut, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Train_then_verify_and_show_a_package()
    {
        using var dir = new TempDir();
        var out_ = dir.File("fraud");
        var r = await KilnCli.RunAsync(["train", Path.Combine(Quickstart, "spec.yaml"), "--out", out_, "--json"], dir.Path);
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("\"auc\"", r.StdOut, StringComparison.Ordinal);
        Assert.Contains("Training fast_forest", r.StdErr, StringComparison.Ordinal); // progress is shown

        var verify = await KilnCli.RunAsync(["package", "verify", out_]);
        Assert.True(verify.ExitCode == 0, verify.ToString());
        Assert.StartsWith("ok: 5 files verified against kiln.json", verify.StdOut, StringComparison.Ordinal);

        var show = await KilnCli.RunAsync(["package", "show", out_]);
        Assert.True(show.ExitCode == 0, show.ToString());
        Assert.Contains("merchant_category", show.StdOut, StringComparison.Ordinal);
        Assert.Contains("auc", show.StdOut, StringComparison.Ordinal);

        // One flipped byte in the model: verify exits 2 (the check found a problem) and names the file.
        var model = Path.Combine(out_, "model.zip");
        var bytes = await File.ReadAllBytesAsync(model);
        bytes[bytes.Length / 2] ^= 0xFF;
        await File.WriteAllBytesAsync(model, bytes);
        verify = await KilnCli.RunAsync(["package", "verify", out_]);
        Assert.Equal(2, verify.ExitCode);
        Assert.Contains("model.zip: SHA-256 mismatch", verify.StdErr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_bad_spec_fails_with_one_line_and_writes_nothing()
    {
        using var dir = new TempDir();
        await File.WriteAllTextAsync(dir.File("spec.yaml"), "name: x\ntask: binary\ndata: nowhere.csv\nlabel: y\nfeatures: {a: numeric}\n");
        var r = await KilnCli.RunAsync(["train", dir.File("spec.yaml"), "--out", dir.File("pkg")], dir.Path);
        Assert.Equal(1, r.ExitCode);
        Assert.Equal("error: nowhere.csv: no such file or directory", r.StdErr.Trim());
        Assert.False(Directory.Exists(dir.File("pkg")));

        r = await KilnCli.RunAsync(["train", dir.File("missing.yaml")], dir.Path);
        Assert.Equal(1, r.ExitCode);
        Assert.StartsWith("error: ", r.StdErr, StringComparison.Ordinal);
        Assert.Contains("missing.yaml: no such spec file", r.StdErr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Train_logs_the_run_and_registers_versions_that_resolve_and_roll_back()
    {
        using var dir = new TempDir();
        var tracking = dir.File("store");
        var spec = Path.Combine(Quickstart, "spec.yaml");
        for (var i = 0; i < 2; i++)
        {
            var r = await KilnCli.RunAsync(["train", spec, "--out", dir.File($"pkg{i}"), "--tracking-uri", tracking, "--register", "fraud"], dir.Path);
            Assert.True(r.ExitCode == 0, r.ToString());
            Assert.Contains($"Registered models:/fraud/{i + 1}", r.StdErr, StringComparison.Ordinal);
        }
        var runs = await KilnCli.RunAsync(["runs", "list", "--tracking-uri", tracking, "--experiment", "fraud"], dir.Path);
        Assert.True(runs.ExitCode == 0, runs.ToString());
        var versions = await KilnCli.RunAsync(["models", "versions", "fraud", "--tracking-uri", tracking], dir.Path);
        Assert.True(versions.ExitCode == 0, versions.ToString());
        Assert.Contains("runs:/", versions.StdOut + versions.StdErr, StringComparison.Ordinal);

        Assert.Equal(0, (await KilnCli.RunAsync(["models", "alias", "set", "fraud", "production", "1", "--tracking-uri", tracking], dir.Path)).ExitCode);
        Assert.Equal(0, (await KilnCli.RunAsync(["models", "alias", "set", "fraud", "production", "2", "--tracking-uri", tracking], dir.Path)).ExitCode);
        var rollback = await KilnCli.RunAsync(["models", "rollback", "fraud", "production", "--tracking-uri", tracking], dir.Path);
        Assert.True(rollback.ExitCode == 0, rollback.ToString());
        var history = await KilnCli.RunAsync(["models", "history", "fraud", "--tracking-uri", tracking], dir.Path);
        Assert.True(history.ExitCode == 0, history.ToString());
        Assert.Equal(3, history.StdErr.Split('\n').Count(l => l.Contains("production", StringComparison.Ordinal))); // tables go to stderr

        var noStore = await KilnCli.RunAsync(["train", spec, "--out", dir.File("x"), "--register", "fraud"], dir.Path);
        Assert.Equal(1, noStore.ExitCode);
        Assert.Contains("--register needs --tracking-uri", noStore.StdErr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_retraining_loop_promotes_a_first_model_and_skips_one_that_does_not_beat_it()
    {
        using var dir = new TempDir();
        var store = dir.File("store");
        string[] Args(params string[] extra) =>
        [
            "pipeline", "run", Path.Combine(TestEnvironment.RepoRoot, "examples", "pipelines", "quickstart-loop.yaml"),
            "--param", $"spec={Path.Combine(Quickstart, "spec.yaml")}", "--param", $"data={Path.Combine(Quickstart, "transactions.csv")}",
            "--param", $"tracking_uri={store}", .. extra,
        ];
        var first = await KilnCli.RunAsync(Args(), dir.Path);
        Assert.True(first.ExitCode == 0, first.ToString());
        var versions = await KilnCli.RunAsync(["models", "show", "fraud", "--tracking-uri", store], dir.Path);
        Assert.True(versions.ExitCode == 0, versions.ToString());
        Assert.Contains("production", versions.StdErr, StringComparison.Ordinal);

        // The same data and seed give the same AUC: it does not beat production, so nothing is registered.
        var second = await KilnCli.RunAsync(Args(), dir.Path);
        Assert.True(second.ExitCode == 0, second.ToString());
        var list = await KilnCli.RunAsync(["models", "versions", "fraud", "--tracking-uri", store], dir.Path);
        Assert.True(list.ExitCode == 0, list.ToString());
        Assert.Equal(1, list.StdErr.Split('\n').Count(l => l.Contains("runs:/", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task Quickstart_trains_and_scores_the_example()
    {
        using var dir = new TempDir();
        var r = await KilnCli.RunAsync(["quickstart", "--dir", Quickstart], dir.Path);
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.True(File.Exists(Path.Combine(dir.Path, ".kiln", "packages", "fraud", "kiln.json")));
        Assert.True(File.Exists(Path.Combine(dir.Path, ".kiln", "kiln.db")));
        Assert.Contains("models:/fraud@production", r.StdErr, StringComparison.Ordinal);
        Assert.Contains("\"model\":\"fraud\",\"version\":\"1\"", r.StdErr.Replace("\n", "", StringComparison.Ordinal), StringComparison.Ordinal);

        // The served prediction was logged; kiln drift reads the log (input_<name> columns) against the package.
        var drift = await KilnCli.RunAsync(["drift", "--model", "models:/fraud@production", "--current", Path.Combine(".kiln", "prediction-log"),
            "--json-out", dir.File("drift.json")], dir.Path);
        Assert.True(drift.ExitCode is 0 or 2, drift.ToString());
        using var report = System.Text.Json.JsonDocument.Parse(await File.ReadAllTextAsync(dir.File("drift.json")));
        Assert.Equal(1, report.RootElement.GetProperty("current_rows").GetInt32());
        Assert.Equal(6, report.RootElement.GetProperty("features_tested").GetInt32());
        Assert.Contains("probability", r.StdErr, StringComparison.Ordinal);
        Assert.DoesNotContain("already held", r.StdErr, StringComparison.Ordinal);

        // Run again in the same directory: it says that it registered another version and moved production.
        var again = await KilnCli.RunAsync(["quickstart", "--dir", Quickstart], dir.Path);
        Assert.True(again.ExitCode == 0, again.ToString());
        var said = System.Text.RegularExpressions.Regex.Replace(again.StdErr, @"\s+", " "); // the console wraps at 80 columns when piped
        Assert.Contains("already held 1 version(s) of fraud", said, StringComparison.Ordinal);
        Assert.Contains("moved production from 1 to it", said, StringComparison.Ordinal);
        Assert.Contains("./kiln models rollback fraud production", said, StringComparison.Ordinal);
    }
}
