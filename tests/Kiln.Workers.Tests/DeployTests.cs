using System.Text.RegularExpressions;
using Kiln.Testing;

namespace Kiln.Workers.Tests;

/// <summary>deploy/kubernetes/kiln-worker.yaml: parses, names the image deploy/ builds, and its commands are ones the real CLI accepts.</summary>
public partial class DeployTests
{
    private static List<Dictionary<object, object>> Manifests()
    {
        var text = File.ReadAllText(Path.Combine(TestEnvironment.RepoRoot, "deploy", "kubernetes", "kiln-worker.yaml"));
        var yaml = new YamlDotNet.Serialization.DeserializerBuilder().Build();
        return [.. Regex.Split(text, @"^---\s*$", RegexOptions.Multiline).Select(d => yaml.Deserialize<Dictionary<object, object>>(d)).Where(d => d is not null)];
    }

    private static Dictionary<object, object> Container(Dictionary<object, object> manifest)
    {
        var template = (Dictionary<object, object>)((Dictionary<object, object>)manifest["spec"])["template"];
        return (Dictionary<object, object>)((List<object>)((Dictionary<object, object>)template["spec"])["containers"])[0];
    }

    [Fact]
    public async Task The_worker_deployment_and_the_indexed_job_run_commands_the_cli_accepts_in_the_image_deploy_builds()
    {
        var manifests = Manifests();
        Assert.Equal(["Deployment", "Job"], manifests.Select(m => (string)m["kind"]));
        var job = (Dictionary<object, object>)manifests[1]["spec"];
        Assert.Equal("Indexed", job["completionMode"]);

        var dockerfile = File.ReadAllText(Path.Combine(TestEnvironment.RepoRoot, "deploy", "Dockerfile.serve"));
        Assert.Contains("-t kiln-serve ", dockerfile);
        Assert.Contains("\"/app/kiln.dll\"", dockerfile);

        using var dir = new TempDir("kiln-deploy");
        var port = TestEnvironment.FreePort();
        foreach (var m in manifests)
        {
            var c = Container(m);
            Assert.Equal("kiln-serve:latest", c["image"]);
            var command = ((List<object>)c["command"]).Cast<string>().ToList();
            Assert.Equal(["dotnet", "/app/kiln.dll"], command[..2]);
            // $(VAR) as Kubernetes expands it: the database secret, the completion index.
            var args = command[2..].Concat(((List<object>)c["args"]).Cast<string>())
                .Select(a => a.Replace("$(KILN_DB)", $"postgresql://postgres@127.0.0.1:{port}/kiln", StringComparison.Ordinal)
                    .Replace("$(JOB_COMPLETION_INDEX)", "2", StringComparison.Ordinal)).ToList();
            var r = await KilnCli.RunAsync(args, dir.Path);
            // Every option parses: the command gets as far as the database or the model, which are not here.
            Assert.Equal(1, r.ExitCode);
            Assert.DoesNotContain("Unrecognized", r.StdErr, StringComparison.OrdinalIgnoreCase);
            Assert.StartsWith("error:", r.StdErr);
            Assert.Matches(command[2] == "worker" ? "cannot connect" : "/data/models/fraud", r.StdErr);
        }
    }

    [Fact]
    public void The_worker_pods_declare_the_metrics_port_they_listen_on_on_every_address()
    {
        var c = Container(Manifests()[0]);
        var args = ((List<object>)c["args"]).Cast<string>().ToList();
        var port = args[args.IndexOf("--metrics-port") + 1];
        Assert.Equal("0.0.0.0", args[args.IndexOf("--metrics-host") + 1]);
        var declared = ((List<object>)c["ports"]).Cast<Dictionary<object, object>>().Single(p => (string)p["name"] == "metrics");
        Assert.Equal(port, (string)declared["containerPort"]);
    }
}
