using System.Text.Json;
using Kiln.Storage.Objects;
using Kiln.Testing;

namespace Kiln.Cli.Tests;

/// <summary>
/// Packages and batch outputs on S3-compatible storage, with the real kiln binary against a real S3-protocol server
/// (s3rver): a run logs its package to the bucket, the registry resolves it from there (verified by SHA-256), and
/// kiln batch writes its Parquet parts and manifest under an s3:// prefix.
/// </summary>
public sealed class S3ArtifactsCliTests
{
    private static string Quickstart => Path.Combine(TestEnvironment.RepoRoot, "examples", "quickstart");

    [Fact]
    public async Task A_package_on_S3_is_resolved_verified_and_scored_into_an_S3_output()
    {
        await using var s3 = await S3rver.StartAsync("kiln");
        using var dir = new TempDir("kiln-s3-cli");
        var env = new Dictionary<string, string>(s3.Environment)
        {
            ["KILN_ARTIFACTS"] = "s3://kiln/team",
            ["KILN_TRACKING_URI"] = dir.File("meta"),
            ["KILN_MODEL_CACHE"] = dir.File("cache"),
        };
        var train = await KilnCli.RunAsync(["train", Path.Combine(Quickstart, "spec.yaml"), "--out", dir.File("pkg"), "--tracking-uri", dir.File("meta"),
            "--register", "fraud"], dir.Path, env);
        Assert.True(train.ExitCode == 0, train.ToString());

        // The run's package went to the bucket, not beside the metadata database.
        using var team = new S3Storage(new S3Location("kiln", "team"), S3Settings.FromVariables(k => s3.Environment.GetValueOrDefault(k)));
        var objects = await team.ListAllAsync("");
        Assert.Contains(objects, o => o.Key.EndsWith("/kiln.json", StringComparison.Ordinal));
        Assert.False(Directory.Exists(Path.Combine(dir.File("meta"), "artifacts")));

        // Scored from the registry into S3, and the same model into a local directory: the same rows come out.
        var batch = await KilnCli.RunAsync(["batch", "--model", "models:/fraud/1", "--input", Path.Combine(Quickstart, "transactions.csv"),
            "--output", "s3://kiln/scored/run1", "--keep", "transaction_id", "--partition-rows", "3000"], dir.Path, env);
        Assert.True(batch.ExitCode == 0, batch.ToString());
        var local = await KilnCli.RunAsync(["batch", "--model", dir.File("pkg"), "--input", Path.Combine(Quickstart, "transactions.csv"),
            "--output", dir.File("local"), "--keep", "transaction_id", "--partition-rows", "3000"], dir.Path, env);
        Assert.True(local.ExitCode == 0, local.ToString());

        using var scored = new S3Storage(new S3Location("kiln", "scored/run1"), team.Settings);
        var keys = (await scored.ListAllAsync("")).Select(o => o.Key).Order(StringComparer.Ordinal).ToList();
        // Only committed parts and the manifest: no temporary object is ever left in the output.
        Assert.Equal(["_manifest.json", "part-00000-00000.parquet", "part-00000-00001.parquet", "part-00000-00002.parquet"], keys);
        using var manifestStream = (await scored.OpenReadAsync("_manifest.json"))!;
        var manifest = JsonDocument.Parse(manifestStream).RootElement;
        Assert.True(manifest.GetProperty("complete").GetBoolean());
        Assert.Equal(8000, manifest.GetProperty("rows").GetInt64());

        // Every input row once (the CSV's data lines, counted here), and each part byte for byte the part the
        // local-directory sink wrote for the same partition from the same package.
        Assert.Equal(File.ReadAllLines(Path.Combine(Quickstart, "transactions.csv")).Length - 1, manifest.GetProperty("rows").GetInt64());
        foreach (var k in keys.Where(k => k.EndsWith(".parquet", StringComparison.Ordinal)))
        {
            await using var s = (await scored.OpenReadAsync(k))!;
            using var copy = new MemoryStream();
            await s.CopyToAsync(copy);
            Assert.Equal(System.Security.Cryptography.SHA256.HashData(await File.ReadAllBytesAsync(Path.Combine(dir.File("local"), k))),
                System.Security.Cryptography.SHA256.HashData(copy.ToArray()));
        }

        // A package changed in the bucket is caught on load by its SHA-256: nothing is scored, nothing written.
        var modelFile = objects.Where(o => !o.Key.EndsWith(".json", StringComparison.Ordinal)).MaxBy(o => o.Size).Key;
        await team.PutAsync(modelFile, new MemoryStream("tampered"u8.ToArray()), long.MaxValue, () => new InvalidOperationException());
        Directory.Delete(dir.File("cache"), recursive: true);
        var tampered = await KilnCli.RunAsync(["batch", "--model", "models:/fraud/1", "--input", Path.Combine(Quickstart, "transactions.csv"),
            "--output", "s3://kiln/scored/run2", "--keep", "transaction_id"], dir.Path, env);
        Assert.Equal(1, tampered.ExitCode);
        Assert.Contains("package verification failed", tampered.StdErr, StringComparison.Ordinal);
        Assert.Empty(await new S3Storage(new S3Location("kiln", "scored/run2"), team.Settings).ListAllAsync(""));
    }

    [Fact]
    public async Task A_batch_output_in_a_bucket_that_does_not_exist_is_one_line_and_writes_nothing()
    {
        await using var s3 = await S3rver.StartAsync("kiln");
        using var dir = new TempDir("kiln-s3-nobucket");
        var train = await KilnCli.RunAsync(["train", Path.Combine(Quickstart, "spec.yaml"), "--out", dir.File("pkg")], dir.Path);
        Assert.True(train.ExitCode == 0, train.ToString());
        var r = await KilnCli.RunAsync(["batch", "--model", dir.File("pkg"), "--input", Path.Combine(Quickstart, "transactions.csv"),
            "--output", "s3://no-such-bucket/scored", "--keep", "transaction_id"], dir.Path, new Dictionary<string, string>(s3.Environment));
        Assert.Equal(1, r.ExitCode);
        var line = Assert.Single(r.StdErr.Split('\n', StringSplitOptions.RemoveEmptyEntries), l => !l.StartsWith("(run with --verbose", StringComparison.Ordinal));
        Assert.StartsWith("error: ", line, StringComparison.Ordinal);
        Assert.Contains($"s3://no-such-bucket/scored (endpoint {s3.Endpoint}): bucket 'no-such-bucket' does not exist", line, StringComparison.Ordinal);
        Assert.Equal(["kiln"], Directory.GetDirectories(s3.DataDirectory).Select(Path.GetFileName));
    }
}
