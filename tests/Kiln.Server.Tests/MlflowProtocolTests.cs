using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;

namespace Kiln.Server.Tests;

/// <summary>MLflow's wire protocol as a raw HTTP client sees it: field names, error bodies, status codes, limits.</summary>
public sealed class MlflowProtocolTests(ServerFixture server) : IClassFixture<ServerFixture>
{
    private HttpClient Http => server.Http;

    private async Task<(HttpStatusCode Status, JsonElement Body)> Post(string path, string json)
    {
        using var r = await Http.PostAsync(path, new StringContent(json, Encoding.UTF8, "application/json"));
        return (r.StatusCode, await ReadJson(r));
    }

    private async Task<(HttpStatusCode Status, JsonElement Body)> Get(string path)
    {
        using var r = await Http.GetAsync(path);
        return (r.StatusCode, await ReadJson(r));
    }

    private static async Task<JsonElement> ReadJson(HttpResponseMessage r)
    {
        var text = await r.Content.ReadAsStringAsync();
        return text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone();
    }

    private static void AssertError(HttpStatusCode expectedStatus, string code, (HttpStatusCode Status, JsonElement Body) response)
    {
        Assert.Equal(expectedStatus, response.Status);
        Assert.Equal(code, response.Body.GetProperty("error_code").GetString());
        Assert.False(string.IsNullOrEmpty(response.Body.GetProperty("message").GetString()));
    }

    private async Task<string> NewRun()
    {
        var (_, exp) = await Post("/api/2.0/mlflow/experiments/create", $"{{\"name\":\"p-{Guid.NewGuid():N}\"}}");
        var (_, run) = await Post("/api/2.0/mlflow/runs/create", $"{{\"experiment_id\":\"{exp.GetProperty("experiment_id").GetString()}\"}}");
        return run.GetProperty("run").GetProperty("info").GetProperty("run_id").GetString()!;
    }

    [Fact]
    public async Task Messages_use_MLflow_field_names()
    {
        var runId = await NewRun();
        var (status, body) = await Post("/api/2.0/mlflow/runs/log-batch",
            $"{{\"run_id\":\"{runId}\",\"metrics\":[{{\"key\":\"auc\",\"value\":0.75,\"timestamp\":\"1700000000000\",\"step\":\"3\"}}],\"params\":[{{\"key\":\"lr\",\"value\":\"0.1\"}}]}}");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(JsonValueKind.Object, body.ValueKind);
        var (_, got) = await Get($"/api/2.0/mlflow/runs/get?run_uuid={runId}");
        var info = got.GetProperty("run").GetProperty("info");
        Assert.Equal(runId, info.GetProperty("run_id").GetString());
        Assert.Equal(runId, info.GetProperty("run_uuid").GetString());
        Assert.Equal("RUNNING", info.GetProperty("status").GetString());
        Assert.Equal("active", info.GetProperty("lifecycle_stage").GetString());
        Assert.Equal(JsonValueKind.Number, info.GetProperty("start_time").ValueKind);
        var metric = got.GetProperty("run").GetProperty("data").GetProperty("metrics")[0];
        Assert.Equal(0.75, metric.GetProperty("value").GetDouble());
        Assert.Equal(1700000000000, metric.GetProperty("timestamp").GetInt64());
        Assert.Equal(3, metric.GetProperty("step").GetInt64());
        var (_, history) = await Get($"/api/2.0/mlflow/metrics/get-history?run_id={runId}&metric_key=auc");
        Assert.Single(history.GetProperty("metrics").EnumerateArray());
    }

    [Fact]
    public async Task Errors_use_MLflow_codes_and_statuses()
    {
        AssertError(HttpStatusCode.NotFound, "RESOURCE_DOES_NOT_EXIST", await Get("/api/2.0/mlflow/experiments/get?experiment_id=424242"));
        AssertError(HttpStatusCode.NotFound, "RESOURCE_DOES_NOT_EXIST", await Get("/api/2.0/mlflow/runs/get?run_id=nope"));
        AssertError(HttpStatusCode.BadRequest, "INVALID_PARAMETER_VALUE", await Get("/api/2.0/mlflow/experiments/get"));
        var name = $"dup-{Guid.NewGuid():N}";
        await Post("/api/2.0/mlflow/experiments/create", $"{{\"name\":\"{name}\"}}");
        AssertError(HttpStatusCode.BadRequest, "RESOURCE_ALREADY_EXISTS", await Post("/api/2.0/mlflow/experiments/create", $"{{\"name\":\"{name}\"}}"));
        var malformed = await Post("/api/2.0/mlflow/runs/create", "{\"experiment_id\": [1,2");
        AssertError(HttpStatusCode.BadRequest, "INVALID_PARAMETER_VALUE", malformed);
        AssertError(HttpStatusCode.BadRequest, "INVALID_PARAMETER_VALUE", await Post("/api/2.0/mlflow/runs/search", "{\"experiment_ids\":[\"0\"],\"filter\":\"metrics.acc >> 1\"}"));
        AssertError(HttpStatusCode.NotFound, "ENDPOINT_NOT_FOUND", await Get("/api/2.0/mlflow/no/such/endpoint"));
        AssertError(HttpStatusCode.NotFound, "RESOURCE_DOES_NOT_EXIST", await Get("/api/2.0/mlflow/registered-models/get?name=absent-model"));
    }

    [Fact]
    public async Task Log_batch_limits_are_refused_with_MLflow_errors()
    {
        var runId = await NewRun();
        var metrics = string.Join(",", Enumerable.Range(0, 1001).Select(i => $"{{\"key\":\"m\",\"value\":{i},\"timestamp\":1,\"step\":{i}}}"));
        var tooMany = await Post("/api/2.0/mlflow/runs/log-batch", $"{{\"run_id\":\"{runId}\",\"metrics\":[{metrics}]}}");
        AssertError(HttpStatusCode.BadRequest, "INVALID_PARAMETER_VALUE", tooMany);
        Assert.Contains("1000", tooMany.Body.GetProperty("message").GetString(), StringComparison.Ordinal);

        // Over 1 MB in one request, though under the count limits.
        var bigValue = new string('x', 5000);
        var tags = string.Join(",", Enumerable.Range(0, 100).Select(i => $"{{\"key\":\"t{i}\",\"value\":\"{bigValue}\"}}"));
        var pad = new string(' ', 600_000);
        var big = await Post("/api/2.0/mlflow/runs/log-batch", $"{{\"run_id\":\"{runId}\",{pad}\"tags\":[{tags}]}}");
        AssertError(HttpStatusCode.BadRequest, "INVALID_PARAMETER_VALUE", big);

        var longKey = await Post("/api/2.0/mlflow/runs/log-parameter", $"{{\"run_id\":\"{runId}\",\"key\":\"{new string('k', 251)}\",\"value\":\"v\"}}");
        AssertError(HttpStatusCode.BadRequest, "INVALID_PARAMETER_VALUE", longKey);
        var (_, run) = await Get($"/api/2.0/mlflow/runs/get?run_id={runId}");
        Assert.False(run.GetProperty("run").GetProperty("data").TryGetProperty("params", out var ps) && ps.GetArrayLength() > 0);
        Assert.Empty(run.GetProperty("run").GetProperty("data").GetProperty("metrics").EnumerateArray());
    }

    [Fact]
    public async Task Artifact_proxy_uploads_downloads_and_lists()
    {
        var runId = await NewRun();
        var (_, run) = await Get($"/api/2.0/mlflow/runs/get?run_id={runId}");
        var uri = run.GetProperty("run").GetProperty("info").GetProperty("artifact_uri").GetString()!;
        Assert.StartsWith("mlflow-artifacts:/", uri, StringComparison.Ordinal);
        var root = uri["mlflow-artifacts:/".Length..];
        using (var put = await Http.PutAsync($"/api/2.0/mlflow-artifacts/artifacts/{root}/model/kiln.json", new StringContent("{\"a\":1}")))
            Assert.Equal(HttpStatusCode.OK, put.StatusCode);
        Assert.Equal("{\"a\":1}", await Http.GetStringAsync($"/api/2.0/mlflow-artifacts/artifacts/{root}/model/kiln.json"));
        var (_, listed) = await Get($"/api/2.0/mlflow/artifacts/list?run_id={runId}");
        Assert.Equal("model", listed.GetProperty("files")[0].GetProperty("path").GetString());
        Assert.True(listed.GetProperty("files")[0].GetProperty("is_dir").GetBoolean());
        var (_, inner) = await Get($"/api/2.0/mlflow/artifacts/list?run_id={runId}&path=model");
        Assert.Equal("model/kiln.json", inner.GetProperty("files")[0].GetProperty("path").GetString());
        Assert.Equal(7, inner.GetProperty("files")[0].GetProperty("file_size").GetInt64());
        var (_, proxyList) = await Get($"/api/2.0/mlflow-artifacts/artifacts?path={root}/model");
        Assert.Equal("kiln.json", proxyList.GetProperty("files")[0].GetProperty("path").GetString());
    }

    [Theory]
    [InlineData("a%2F..%2F..%2F..%2Fescaped.txt")]
    [InlineData("a%5C..%5C..%5Cescaped.txt")]
    [InlineData("%2Ftmp%2Fescaped.txt")]
    public async Task Artifact_traversal_is_refused_with_400(string path)
    {
        using var r = await Http.PutAsync($"/api/2.0/mlflow-artifacts/artifacts/{path}", new StringContent("evil"));
        Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
        Assert.Equal("INVALID_PARAMETER_VALUE", (await ReadJson(r)).GetProperty("error_code").GetString());
        AssertNothingEscaped();
    }

    [Fact]
    public async Task Raw_dot_segments_are_refused_with_400_before_routing()
    {
        // HttpClient would normalise "..", so speak HTTP over a socket as a hostile client might.
        foreach (var target in (string[])["/api/2.0/mlflow-artifacts/artifacts/a/../../../../escaped.txt", "/api/2.0/mlflow-artifacts/artifacts/../escaped.txt",
            "/api/2.0/mlflow-artifacts/artifacts/a/%2E%2E/%2E%2E/%2e%2e/escaped.txt"])
        {
            using var tcp = new TcpClient();
            await tcp.ConnectAsync(IPAddress.Loopback, server.Address.Port);
            var stream = tcp.GetStream();
            var request = $"PUT {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 4\r\nConnection: close\r\n\r\nevil";
            await stream.WriteAsync(Encoding.ASCII.GetBytes(request));
            var response = await new StreamReader(stream).ReadToEndAsync();
            Assert.StartsWith("HTTP/1.1 400", response, StringComparison.Ordinal);
        }
        var (status, body) = await Get("/api/2.0/mlflow-artifacts/artifacts?path=../..");
        AssertError(HttpStatusCode.BadRequest, "INVALID_PARAMETER_VALUE", (status, body));
        AssertNothingEscaped();
    }

    private void AssertNothingEscaped()
    {
        var parent = Path.GetDirectoryName(server.ArtifactRoot)!;
        Assert.Empty(Directory.EnumerateFiles(parent, "escaped.txt", SearchOption.AllDirectories));
        Assert.Empty(Directory.EnumerateFiles(Path.GetDirectoryName(parent)!, "escaped.txt"));
        Assert.False(File.Exists("/tmp/escaped.txt"));
    }

    [Fact]
    public async Task Artifact_uploads_over_the_limit_are_refused()
    {
        using var r = await Http.PutAsync("/api/2.0/mlflow-artifacts/artifacts/big/too-big.bin", new ByteArrayContent(new byte[(1024 * 1024) + 1]));
        Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
        Assert.Contains("limit", (await ReadJson(r)).GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.False(Directory.Exists(Path.Combine(server.ArtifactRoot, "big")) && Directory.EnumerateFiles(Path.Combine(server.ArtifactRoot, "big")).Any());
    }

    [Fact]
    public async Task Native_api_answers_with_problem_details()
    {
        using var r = await Http.PostAsync("/api/v1/models/absent-model/aliases/production/rollback", null);
        Assert.Equal(HttpStatusCode.NotFound, r.StatusCode);
        Assert.Equal("application/problem+json", r.Content.Headers.ContentType?.MediaType);
        var body = await ReadJson(r);
        Assert.Equal(404, body.GetProperty("status").GetInt32());
        Assert.Contains("absent-model", body.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Equal("RESOURCE_DOES_NOT_EXIST", body.GetProperty("error_code").GetString());
    }

    [Fact]
    public async Task Registry_over_MLflow_endpoints_with_aliases()
    {
        var name = $"m-{Guid.NewGuid():N}"[..12];
        var runId = await NewRun();
        Assert.Equal(HttpStatusCode.OK, (await Post("/api/2.0/mlflow/registered-models/create", $"{{\"name\":\"{name}\"}}")).Status);
        var (_, v1) = await Post("/api/2.0/mlflow/model-versions/create", $"{{\"name\":\"{name}\",\"source\":\"runs:/{runId}/model\"}}");
        Assert.Equal("1", v1.GetProperty("model_version").GetProperty("version").GetString());
        Assert.Equal(runId, v1.GetProperty("model_version").GetProperty("run_id").GetString());
        await Post("/api/2.0/mlflow/model-versions/create", $"{{\"name\":\"{name}\",\"source\":\"runs:/{runId}/model\"}}");
        Assert.Equal(HttpStatusCode.OK, (await Post("/api/2.0/mlflow/registered-models/alias", $"{{\"name\":\"{name}\",\"alias\":\"champion\",\"version\":\"2\"}}")).Status);
        var (_, byAlias) = await Get($"/api/2.0/mlflow/registered-models/alias?name={name}&alias=champion");
        Assert.Equal("2", byAlias.GetProperty("model_version").GetProperty("version").GetString());
        Assert.Equal("champion", byAlias.GetProperty("model_version").GetProperty("aliases")[0].GetString());
        var (_, model) = await Get($"/api/2.0/mlflow/registered-models/get?name={name}");
        Assert.Equal("champion", model.GetProperty("registered_model").GetProperty("aliases")[0].GetProperty("alias").GetString());
        var (_, uri) = await Get($"/api/2.0/mlflow/model-versions/get-download-uri?name={name}&version=1");
        Assert.EndsWith($"/{runId}/artifacts/model", uri.GetProperty("artifact_uri").GetString(), StringComparison.Ordinal);
        var (_, search) = await Get($"/api/2.0/mlflow/model-versions/search?filter=name%3D%27{name}%27");
        Assert.Equal(2, search.GetProperty("model_versions").GetArrayLength());
        AssertError(HttpStatusCode.BadRequest, "INVALID_PARAMETER_VALUE", await Post("/api/2.0/mlflow/registered-models/alias", $"{{\"name\":\"{name}\",\"alias\":\"champion\",\"version\":\"two\"}}"));
        using var del = await Http.DeleteAsync($"/api/2.0/mlflow/registered-models/alias?name={name}&alias=champion");
        Assert.Equal(HttpStatusCode.OK, del.StatusCode);
        using var history = await Http.GetAsync($"/api/v1/models/{name}/aliases/history");
        var events = (await ReadJson(history)).GetProperty("events");
        Assert.Equal(["set", "delete"], events.EnumerateArray().Select(e => e.GetProperty("action").GetString()));
    }
}
