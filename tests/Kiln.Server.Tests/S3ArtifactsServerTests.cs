using Kiln.Storage.Objects;
using Kiln.Testing;

namespace Kiln.Server.Tests;

/// <summary>`kiln server --artifacts s3://…` against a real S3-protocol server (s3rver), driven by clients written by others.</summary>
public sealed class S3ArtifactsServerTests
{
    [Fact]
    public async Task Npm_mlflow_client_logs_and_downloads_artifacts_through_the_proxy_into_S3()
    {
        var js = Path.Combine(TestEnvironment.RepoRoot, "tests", "js");
        Assert.True(Directory.Exists(Path.Combine(js, "node_modules", "mlflow")),
            "tests/js/node_modules/mlflow is missing: run `npm install` in tests/js (test.sh does)");
        await using var s3 = await S3rver.StartAsync("kiln");
        using var dir = new TempDir("kiln-s3-server");
        await using var server = await RealServer.StartAsync(dir.Path, dir.Path, ["--artifacts", "s3://kiln/mlflow"], env: s3.Environment);
        var result = await Proc.RunAsync("node", ["mlflow-artifacts.js"], js,
            env: new Dictionary<string, string> { ["KILN_URL"] = server.Address.ToString().TrimEnd('/') }, timeout: TimeSpan.FromMinutes(2));
        Assert.True(result.ExitCode == 0, $"{result}\nserver log:\n{server.Log}");
        var words = result.StdOut.Trim().Split(' ');
        Assert.Equal("ARTIFACTS OK", $"{words[0]} {words[1]}");
        var root = words[3];

        // The files are objects in the bucket, under the prefix, and not on the server's disk.
        using var storage = new S3Storage(new S3Location("kiln", "mlflow"), S3Settings.FromVariables(k => s3.Environment.GetValueOrDefault(k)));
        Assert.Equal(20L * 1024 * 1024, await storage.SizeAsync($"{root}/model/weights.bin"));
        Assert.Equal(5L, await storage.SizeAsync($"{root}/notes.txt"));
        Assert.False(Directory.Exists(Path.Combine(dir.Path, "artifacts")));
        // 20 MiB is past the 16 MiB threshold: it went up in two parts.
        Assert.Contains("Stored part 2 of", s3.Log, StringComparison.Ordinal);
        // The refused traversal wrote nothing anywhere in the bucket.
        Assert.DoesNotContain(await storage.ListAllAsync(""), o => o.Key.Contains("escape", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("option")]
    [InlineData("environment")]
    public async Task A_bucket_that_does_not_exist_stops_the_server_in_one_line(string how)
    {
        await using var s3 = await S3rver.StartAsync("kiln");
        using var dir = new TempDir("kiln-s3-nobucket");
        var env = new Dictionary<string, string>(s3.Environment);
        List<string> args = ["server", "--db", dir.Path, "--port", TestEnvironment.FreePort().ToString(System.Globalization.CultureInfo.InvariantCulture)];
        if (how == "option") args.AddRange(["--artifacts", "s3://no-such-bucket/mlflow"]);
        else env["KILN_ARTIFACTS"] = "s3://no-such-bucket/mlflow";
        var r = await KilnCli.RunAsync(args, dir.Path, env, TimeSpan.FromMinutes(2));
        Assert.Equal(1, r.ExitCode);
        Assert.Equal("", r.StdOut);
        // One error line (and the CLI's usual pointer to --verbose).
        var line = Assert.Single(r.StdErr.Split('\n', StringSplitOptions.RemoveEmptyEntries), l => !l.StartsWith("(run with --verbose", StringComparison.Ordinal));
        Assert.StartsWith("error: ", line, StringComparison.Ordinal);
        Assert.Contains($"s3://no-such-bucket/mlflow (endpoint {s3.Endpoint}): bucket 'no-such-bucket' does not exist", line, StringComparison.Ordinal);
        Assert.DoesNotContain("no-such-bucket", string.Join(',', Directory.GetDirectories(s3.DataDirectory)), StringComparison.Ordinal);
    }
}
