using System.Text.Json;
using Kiln.Testing;

namespace Kiln.Serving.Tests;

public sealed class MetricsTests(ServerFixture server) : IClassFixture<ServerFixture>
{
    [Fact]
    public async Task Metrics_count_requests_by_model_version_protocol_and_status_and_pass_promtool()
    {
        var version = Kiln.Core.Packaging.DirectoryModelLocator.ContentVersion(server.FraudPackage);
        for (var i = 0; i < 3; i++) Assert.Equal(200, (await server.PostAsync("/predict", """{"amount": 5, "hour": 3, "merchant": "online"}""")).Status);
        Assert.Equal(422, (await server.PostAsync("/predict", """{"amount": "x", "hour": 3, "merchant": "online"}""")).Status);
        Assert.Equal(200, (await server.PostAsync("/invocations", """{"instances": [{"amount": 5, "hour": 3, "merchant": "online"}]}""")).Status);

        var response = await server.Http.GetAsync("/metrics");
        Assert.Equal("text/plain", response.Content.Headers.ContentType?.MediaType);
        var text = await response.Content.ReadAsStringAsync();
        Assert.Contains($"kiln_serve_requests_total{{model=\"fraud\",version=\"{version}\",protocol=\"native\",status=\"422\"}} 1", text);
        Assert.Matches($"kiln_serve_requests_total\\{{model=\"fraud\",version=\"{version}\",protocol=\"native\",status=\"200\"\\}} [1-9]", text);
        Assert.Contains($"kiln_serve_requests_total{{model=\"fraud\",version=\"{version}\",protocol=\"mlflow\",status=\"200\"}} 1", text);
        Assert.Contains("# TYPE kiln_serve_request_duration_seconds histogram", text);
        Assert.Contains($"kiln_serve_request_duration_seconds_bucket{{model=\"fraud\",version=\"{version}\",protocol=\"native\",le=\"+Inf\"}}", text);
        Assert.Contains("# TYPE kiln_serve_requests_in_flight gauge", text);
        Assert.Contains($"kiln_serve_prediction_value_bucket{{model=\"fraud\",version=\"{version}\",le=\"1\"}}", text);
        Assert.Contains($"kiln_serve_model_loads_total{{model=\"spend\",version=\"{Kiln.Core.Packaging.DirectoryModelLocator.ContentVersion(server.SpendPackage)}\",outcome=\"success\"}} 1", text);
        Assert.Contains("process_resident_memory_bytes ", text);

        var check = await Proc.RunAsync("promtool", ["check", "metrics"], stdin: text, timeout: TimeSpan.FromSeconds(30));
        Assert.True(check.ExitCode == 0, check.ToString());
    }

    [Fact]
    public async Task A_real_prometheus_scrapes_the_server()
    {
        Assert.Equal(200, (await server.PostAsync("/predict", """{"amount": 5, "hour": 3, "merchant": "online"}""")).Status);
        using var dir = new TempDir("kiln-prom");
        var port = TestEnvironment.FreePort();
        var target = $"{server.Host.HttpUri.Host}:{server.Host.HttpUri.Port}";
        File.WriteAllText(dir.File("prometheus.yml"), $"""
            global:
              scrape_interval: 1s
              evaluation_interval: 1s
            scrape_configs:
              - job_name: kiln
                scrape_interval: 1s
                scrape_timeout: 1s
                static_configs:
                  - targets: ["{target}"]
            """);
        var psi = new System.Diagnostics.ProcessStartInfo("prometheus")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in new[] { $"--config.file={dir.File("prometheus.yml")}", $"--storage.tsdb.path={dir.File("data")}", $"--web.listen-address=127.0.0.1:{port}" })
            psi.ArgumentList.Add(a);
        using var prometheus = System.Diagnostics.Process.Start(psi)!;
        var stderr = new System.Text.StringBuilder();
        prometheus.ErrorDataReceived += (_, e) => { lock (stderr) stderr.AppendLine(e.Data); };
        prometheus.OutputDataReceived += (_, e) => { };
        prometheus.BeginErrorReadLine();
        prometheus.BeginOutputReadLine();
        try
        {
            using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(5) };
            var deadline = DateTime.UtcNow.AddSeconds(30);
            string? health = null;
            var found = false;
            while (DateTime.UtcNow < deadline && !(health == "up" && found))
            {
                await Task.Delay(500);
                try
                {
                    var targets = JsonDocument.Parse(await http.GetStringAsync("/api/v1/targets")).RootElement;
                    var active = targets.GetProperty("data").GetProperty("activeTargets");
                    health = active.GetArrayLength() > 0 ? active[0].GetProperty("health").GetString() : null;
                    var query = JsonDocument.Parse(await http.GetStringAsync("/api/v1/query?query=kiln_serve_requests_total%7Bmodel%3D%22fraud%22%7D")).RootElement;
                    found = query.GetProperty("data").GetProperty("result").GetArrayLength() > 0;
                }
                catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
                {
                    // Prometheus is still starting (or the machine is too busy to answer in time).
                }
            }
            string log;
            lock (stderr) log = stderr.ToString();
            Assert.True(health == "up", $"target health {health}; prometheus said:\n{log}");
            Assert.True(found, "kiln_serve_requests_total never appeared in Prometheus");
        }
        finally
        {
            prometheus.Kill(entireProcessTree: true);
            await prometheus.WaitForExitAsync();
        }
    }
}
