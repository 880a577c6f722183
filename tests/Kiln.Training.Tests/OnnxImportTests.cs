using System.Globalization;
using Kiln.Core.Data;
using Kiln.Core.Packaging;
using Kiln.Scoring;
using Kiln.Testing;
using Kiln.Training.Onnx;

namespace Kiln.Training.Tests;

public class OnnxImportTests
{
    [Fact]
    public async Task An_onnx_logistic_model_is_packaged_and_scored_like_numpy_computes_it()
    {
        // The ONNX graph is written by python3-onnx (not by Kiln): p = sigmoid(X·w + b), output [N, 2].
        using var dir = new TempDir();
        var model = dir.File("logit.onnx");
        var py = await Proc.PythonAsync(OnnxFixtures.LogisticModelPython(model, dir.File("ref.csv")) + $$"""
            X = np.loadtxt('{{dir.File("ref.csv")}}', delimiter=',', skiprows=1, dtype=np.float32)[:, :3]
            p = 1 / (1 + np.exp(-(X.astype(np.float64) @ w.astype(np.float64) + b)))
            print(' '.join(repr(float(v)) for v in p[:, 0]))
            """);
        Assert.True(py.ExitCode == 0, py.ToString());
        var expected = py.StdOut.Trim().Split(' ').Select(s => double.Parse(s, CultureInfo.InvariantCulture)).ToArray();

        var dirOut = await OnnxImporter.ImportAsync(new OnnxImportOptions(model, "logit") { Reference = dir.File("ref.csv"), Label = "label", Classes = ["neg", "pos"] }, dir.File("pkg"));
        var package = ModelPackage.Load(dirOut);
        Assert.Equal(ModelRuntime.Onnx, package.Manifest.Runtime);
        Assert.Equal(ModelTask.Binary, package.Signature.Task);
        Assert.Equal(["a", "b", "c"], package.Signature.Inputs.Select(i => i.Name));
        Assert.Equal(50, package.Profile!.Inputs.Rows);

        var reference = await TableReader.ReadAllAsync([dir.File("ref.csv")], [new("a", ColumnType.Numeric), new("b", ColumnType.Numeric), new("c", ColumnType.Numeric)]);
        using var scorer = Scorers.Open(package);
        var predictions = scorer.ScoreAll(reference);
        for (var i = 0; i < expected.Length; i++)
        {
            Assert.Equal(expected[i], predictions[i].Value, 1e-5);
            Assert.Equal(expected[i] >= 0.5 ? "pos" : "neg", predictions[i].Label);
        }
    }

    [Fact]
    public async Task A_file_that_is_not_onnx_is_refused_and_no_package_is_written()
    {
        using var dir = new TempDir();
        await File.WriteAllTextAsync(dir.File("junk.onnx"), "not a model");
        var e = await Assert.ThrowsAsync<Kiln.Core.KilnException>(() => OnnxImporter.ImportAsync(new OnnxImportOptions(dir.File("junk.onnx"), "j"), dir.File("pkg")));
        Assert.Contains("not a valid ONNX model", e.Message, StringComparison.Ordinal);
        Assert.False(Directory.Exists(dir.File("pkg")));
    }
}
