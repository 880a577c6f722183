using System.Globalization;
using System.Text.Json;
using Kiln.Testing;

namespace Kiln.Serving.Tests;

/// <summary>An ONNX model wrapped by `kiln package onnx` (the real CLI) and served over HTTP.</summary>
public sealed class OnnxServingTests
{
    [Fact]
    public async Task An_onnx_package_answers_predict_and_v2_infer_as_numpy_computes_it()
    {
        // The ONNX graph is written by python3-onnx (not by Kiln): p = sigmoid(X·w + b), output [N, 2].
        using var dir = new TempDir("kiln-onnx-serve");
        var model = dir.File("logit.onnx");
        var reference = dir.File("ref.csv");
        var rows = dir.File("rows.csv");
        var py = await Proc.PythonAsync(OnnxFixtures.LogisticModelPython(model, reference) + $$"""
            R = np.array([[0.5, -1.0, 2.0], [-0.25, 0.75, 0.0], [1.5, 1.5, -1.5]], dtype=np.float32)
            np.savetxt('{{rows}}', R, delimiter=',', fmt='%.7g')
            p = 1 / (1 + np.exp(-(R.astype(np.float64) @ w.astype(np.float64) + b)))
            print(' '.join(repr(float(v)) for v in p[:, 0]))
            """);
        Assert.True(py.ExitCode == 0, py.ToString());
        // Probabilities of class "pos" for the three rows, from numpy (the line printed above).
        var expected = py.StdOut.Trim().Split(' ').Select(s => double.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        var inputs = File.ReadAllLines(rows).Select(l => l.Split(',').Select(v => double.Parse(v, CultureInfo.InvariantCulture)).ToArray()).ToArray();

        var packageDir = dir.File("pkg");
        var cli = await KilnCli.RunAsync(["package", "onnx", model, "--name", "logit", "--reference", reference, "--label", "label", "--classes", "neg,pos", "--out", packageDir]);
        Assert.True(cli.ExitCode == 0, cli.ToString());

        await using var server = await OwnServer.StartAsync(new ServeOptions
        {
            Models = [new ModelSpec(packageDir)], Port = 0, GrpcPort = null, PollInterval = TimeSpan.Zero,
        });
        var version = Kiln.Core.Packaging.DirectoryModelLocator.ContentVersion(packageDir);

        // POST /predict: one object, then the three rows as a batch.
        var (status, one) = await server.PostAsync("/predict", Row(inputs[0]));
        Assert.Equal(200, status);
        Assert.Equal("logit", one.GetProperty("model").GetString());
        Assert.Equal(version, one.GetProperty("version").GetString());
        Assert.Equal(expected[0], one.GetProperty("probability").GetDouble(), 1e-5);
        Assert.Equal(expected[0] >= 0.5 ? "pos" : "neg", one.GetProperty("prediction").GetString());
        var (batchStatus, batch) = await server.PostAsync("/predict", "[" + string.Join(",", inputs.Select(Row)) + "]");
        Assert.Equal(200, batchStatus);
        var predictions = batch.GetProperty("predictions").EnumerateArray().ToArray();
        for (var i = 0; i < expected.Length; i++)
        {
            Assert.Equal(expected[i], predictions[i].GetProperty("probability").GetDouble(), 1e-5);
            Assert.Equal(expected[i] >= 0.5 ? "pos" : "neg", predictions[i].GetProperty("prediction").GetString());
        }

        // Open Inference Protocol v2: one FP32 tensor per input.
        string Tensor(string name, int column) =>
            $$"""{"name": "{{name}}", "datatype": "FP32", "shape": [{{inputs.Length}}], "data": [{{string.Join(", ", inputs.Select(r => r[column].ToString("R", CultureInfo.InvariantCulture)))}}]}""";
        var (v2Status, v2) = await server.PostAsync("/v2/models/logit/infer", $$"""{"inputs": [{{Tensor("a", 0)}}, {{Tensor("b", 1)}}, {{Tensor("c", 2)}}]}""");
        Assert.Equal(200, v2Status);
        Assert.Equal(version, v2.GetProperty("model_version").GetString());
        var outputs = v2.GetProperty("outputs").EnumerateArray().ToDictionary(o => o.GetProperty("name").GetString()!);
        var probability = outputs["probability"].GetProperty("data").EnumerateArray().Select(e => e.GetDouble()).ToArray();
        var labels = outputs["prediction"].GetProperty("data").EnumerateArray().Select(e => e.GetString()).ToArray();
        for (var i = 0; i < expected.Length; i++)
        {
            Assert.Equal(expected[i], probability[i], 1e-5);
            Assert.Equal(expected[i] >= 0.5 ? "pos" : "neg", labels[i]);
        }
        Assert.Equal("onnxruntime_onnx", (await server.GetAsync("/v2/models/logit")).Body.GetProperty("platform").GetString());
    }

    private static string Row(double[] r) =>
        JsonSerializer.Serialize(new Dictionary<string, double> { ["a"] = r[0], ["b"] = r[1], ["c"] = r[2] });
}
