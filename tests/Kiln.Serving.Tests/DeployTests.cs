using Kiln.Testing;
using YamlDotNet.RepresentationModel;

namespace Kiln.Serving.Tests;

public sealed class DeployTests
{
    private static readonly string Deploy = Path.Combine(TestEnvironment.RepoRoot, "deploy");

    /// <summary>The documents of kiln serve's manifest (kiln server's and kiln worker's are checked by their own areas' tests).</summary>
    private static List<YamlMappingNode> Documents()
    {
        var stream = new YamlStream();
        using var reader = new StreamReader(Path.Combine(Deploy, "kubernetes", "kiln-serve.yaml"));
        stream.Load(reader);
        return [.. stream.Documents.Select(d => (YamlMappingNode)d.RootNode)];
    }

    private static YamlNode At(YamlNode node, params object[] path)
    {
        foreach (var step in path)
        {
            node = step switch
            {
                string key => ((YamlMappingNode)node).Children[new YamlScalarNode(key)],
                int index => ((YamlSequenceNode)node).Children[index],
                _ => throw new ArgumentException("bad path"),
            };
        }
        return node;
    }

    private static string S(YamlNode node, params object[] path) => ((YamlScalarNode)At(node, path)).Value!;

    [Fact]
    public void Kubernetes_manifests_probe_health_and_ready_and_wire_the_ports()
    {
        var docs = Documents();
        var kinds = docs.Select(d => S(d, "kind")).Order().ToList();
        Assert.Equal(["Deployment", "HorizontalPodAutoscaler", "Service"], kinds);

        var deployment = docs.Single(d => S(d, "kind") == "Deployment");
        var container = At(deployment, "spec", "template", "spec", "containers", 0);
        Assert.Equal("/health", S(container, "livenessProbe", "httpGet", "path"));
        Assert.Equal("/ready", S(container, "readinessProbe", "httpGet", "path"));
        var ports = ((YamlSequenceNode)At(container, "ports")).Children.ToDictionary(p => S(p, "name"), p => S(p, "containerPort"));
        Assert.Equal("8080", ports["http"]);
        Assert.Equal("8081", ports["grpc"]);
        Assert.Equal("http", S(container, "livenessProbe", "httpGet", "port"));
        Assert.Equal("true", S(deployment, "spec", "template", "spec", "securityContext", "runAsNonRoot"));
        var selector = S(deployment, "spec", "selector", "matchLabels", "app.kubernetes.io/name");
        Assert.Equal(selector, S(deployment, "spec", "template", "metadata", "labels", "app.kubernetes.io/name"));

        var service = docs.Single(d => S(d, "kind") == "Service");
        Assert.Equal(selector, S(service, "spec", "selector", "app.kubernetes.io/name"));
        var targets = ((YamlSequenceNode)At(service, "spec", "ports")).Children.Select(p => S(p, "targetPort")).ToList();
        Assert.All(targets, t => Assert.Contains(t, ports.Keys));

        var hpa = docs.Single(d => S(d, "kind") == "HorizontalPodAutoscaler");
        Assert.Equal("autoscaling/v2", S(hpa, "apiVersion"));
        Assert.Equal("Deployment", S(hpa, "spec", "scaleTargetRef", "kind"));
        Assert.Equal(S(deployment, "metadata", "name"), S(hpa, "spec", "scaleTargetRef", "name"));
        Assert.True(int.Parse(S(hpa, "spec", "minReplicas"), System.Globalization.CultureInfo.InvariantCulture) >= 1);
    }

    [Fact]
    public void The_dockerfile_is_multi_stage_non_root_with_a_health_check()
    {
        var lines = File.ReadAllLines(Path.Combine(Deploy, "Dockerfile.serve"));
        Assert.Equal(2, lines.Count(l => l.StartsWith("FROM ", StringComparison.Ordinal)));
        var user = lines.Last(l => l.StartsWith("USER ", StringComparison.Ordinal));
        Assert.NotEqual("USER root", user);
        Assert.NotEqual("USER 0", user);
        Assert.Contains(lines, l => l.StartsWith("HEALTHCHECK", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Contains("/health", StringComparison.Ordinal));
        Assert.Contains("EXPOSE 8080 8081", lines);
        Assert.Contains(lines, l => l.StartsWith("ENTRYPOINT", StringComparison.Ordinal) && l.Contains("\"serve\"", StringComparison.Ordinal));
    }
}
