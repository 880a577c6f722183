namespace Kiln.Serving.Tests;

public sealed class OpenInferenceRestTests(ServerFixture server) : IClassFixture<ServerFixture>
{
    private string Version => Kiln.Core.Packaging.DirectoryModelLocator.ContentVersion(server.FraudPackage);

    [Fact]
    public async Task Server_metadata_liveness_and_readiness()
    {
        var (s, meta) = await server.GetAsync("/v2");
        Assert.Equal(200, s);
        Assert.Equal("kiln", meta.GetProperty("name").GetString());
        Assert.Equal(System.Text.Json.JsonValueKind.Array, meta.GetProperty("extensions").ValueKind);
        var (l, live) = await server.GetAsync("/v2/health/live");
        Assert.Equal(200, l);
        Assert.True(live.GetProperty("live").GetBoolean());
        var (r, ready) = await server.GetAsync("/v2/health/ready");
        Assert.Equal(200, r);
        Assert.True(ready.GetProperty("ready").GetBoolean());
    }

    [Fact]
    public async Task Model_metadata_lists_inputs_outputs_and_the_version()
    {
        foreach (var path in new[] { "/v2/models/fraud", $"/v2/models/fraud/versions/{Version}" })
        {
            var (s, meta) = await server.GetAsync(path);
            Assert.Equal(200, s);
            Assert.Equal("fraud", meta.GetProperty("name").GetString());
            Assert.Equal(Version, meta.GetProperty("versions")[0].GetString());
            Assert.Equal("mlnet", meta.GetProperty("platform").GetString());
            var inputs = meta.GetProperty("inputs").EnumerateArray().Select(i => (i.GetProperty("name").GetString(), i.GetProperty("datatype").GetString())).ToList();
            Assert.Equal([("amount", "FP64"), ("hour", "FP64"), ("merchant", "BYTES")], inputs);
            Assert.Equal(["prediction", "probability"], meta.GetProperty("outputs").EnumerateArray().Select(o => o.GetProperty("name").GetString()));
        }
        var (wrong, err) = await server.GetAsync("/v2/models/fraud/versions/000000000000");
        Assert.Equal(404, wrong);
        Assert.Contains("000000000000", err.GetProperty("error").GetString());
        Assert.Equal(404, (await server.GetAsync("/v2/models/nope")).Status);
        var (mr, modelReady) = await server.GetAsync("/v2/models/fraud/ready");
        Assert.Equal(200, mr);
        Assert.True(modelReady.GetProperty("ready").GetBoolean());
        Assert.Equal(200, (await server.GetAsync($"/v2/models/fraud/versions/{Version}/ready")).Status);
    }

    [Fact]
    public async Task Infer_answers_tensors_named_with_model_and_version()
    {
        var body = """
            {"id": "req-42", "inputs": [
              {"name": "amount", "shape": [2], "datatype": "FP32", "data": [12, 420.5]},
              {"name": "hour", "shape": [2, 1], "datatype": "INT32", "data": [[14], [3]]},
              {"name": "merchant", "shape": [2], "datatype": "BYTES", "data": ["grocery", "online"]}]}
            """;
        foreach (var path in new[] { "/v2/models/fraud/infer", $"/v2/models/fraud/versions/{Version}/infer" })
        {
            var (status, json, _) = await server.PostAsync(path, body);
            Assert.True(status == 200, json.ToString());
            Assert.Equal("fraud", json.GetProperty("model_name").GetString());
            Assert.Equal(Version, json.GetProperty("model_version").GetString());
            Assert.Equal("req-42", json.GetProperty("id").GetString());
            var outputs = json.GetProperty("outputs").EnumerateArray().ToDictionary(o => o.GetProperty("name").GetString()!);
            Assert.Equal("BYTES", outputs["prediction"].GetProperty("datatype").GetString());
            Assert.Equal(2, outputs["probability"].GetProperty("shape")[0].GetInt32());
            var expected = TestPackages.PredictWithMlnet(server.FraudPackage, 420.5f, 3, "online");
            Assert.Equal(expected.Probability, outputs["probability"].GetProperty("data")[1].GetDouble(), 5);
        }
    }

    [Fact]
    public async Task Requested_outputs_are_the_only_ones_sent()
    {
        var (status, json, _) = await server.PostAsync("/v2/models/spend/infer", """
            {"inputs": [{"name": "amount", "shape": [1], "datatype": "FP64", "data": [100]},
                        {"name": "hour", "shape": [1], "datatype": "FP64", "data": [10]},
                        {"name": "merchant", "shape": [1], "datatype": "BYTES", "data": ["travel"]}],
             "outputs": [{"name": "prediction"}]}
            """);
        Assert.Equal(200, status);
        Assert.Equal("prediction", json.GetProperty("outputs")[0].GetProperty("name").GetString());
        Assert.Equal(1, json.GetProperty("outputs").GetArrayLength());
    }

    public static TheoryData<string, string> Errors => new()
    {
        { """{"inputs": [{"name": "amount", "shape": [2], "datatype": "FP32", "data": [1]}, {"name": "merchant", "shape": [1], "datatype": "BYTES", "data": ["online"]}]}""", "amount" },
        { """{"inputs": [{"name": "amount", "shape": [1, 2], "datatype": "FP32", "data": [1, 2]}, {"name": "merchant", "shape": [1], "datatype": "BYTES", "data": ["online"]}]}""", "amount" },
        { """{"inputs": [{"name": "amount", "shape": [2], "datatype": "FP32", "data": [1, 2]}, {"name": "merchant", "shape": [1], "datatype": "BYTES", "data": ["online"]}]}""", "merchant" },
        { """{"inputs": [{"name": "amount", "shape": [1], "datatype": "BYTES", "data": ["1"]}, {"name": "merchant", "shape": [1], "datatype": "BYTES", "data": ["online"]}]}""", "amount" },
        { """{"inputs": [{"name": "amount", "shape": [1], "datatype": "FP32", "data": [1]}]}""", "merchant" },
        { """{"inputs": [{"name": "amount", "shape": [1], "datatype": "FP32", "data": [1]}, {"name": "merchant", "shape": [1], "datatype": "BYTES", "data": ["casino"]}]}""", "merchant" },
        { """{"inputs": [{"name": "colour", "shape": [1], "datatype": "BYTES", "data": ["red"]}]}""", "colour" },
        { """{"inputs": [{"name": "amount", "shape": [1], "datatype": "FP32", "data": ["NaN"]}, {"name": "merchant", "shape": [1], "datatype": "BYTES", "data": ["online"]}]}""", "amount" },
        { """{"inputs": [{"name": "amount", "shape": [1], "datatype": "FP32", "data": [1]}, {"name": "merchant", "shape": [1], "datatype": "BYTES", "data": ["online"]}], "outputs": [{"name": "nope"}]}""", "nope" },
        { """{"inputs": 7}""", "inputs" },
        { """{"inputs": [""", "JSON" },
    };

    [Theory]
    [MemberData(nameof(Errors))]
    public async Task Mistakes_answer_the_protocols_error_naming_the_field(string body, string field)
    {
        var (status, json, _) = await server.PostAsync("/v2/models/fraud/infer", body);
        Assert.Equal(400, status);
        Assert.Contains(field, json.GetProperty("error").GetString());
        Assert.Single(json.EnumerateObject());
    }
}
