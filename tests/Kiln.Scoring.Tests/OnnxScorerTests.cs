using System.Globalization;
using Kiln.Core.Data;
using Kiln.Testing;
using Kiln.Training.Onnx;

namespace Kiln.Scoring.Tests;

/// <summary>
/// The ONNX scorer on examples/onnx/churn.onnx against numpy: the graph's weights read with python3-onnx and
/// its logistic function computed in float64, independently of ONNX Runtime, on all of the example's rows.
/// </summary>
public sealed class OnnxScorerTests
{
    private static string Example => Path.Combine(TestEnvironment.RepoRoot, "examples", "onnx");

    [Fact]
    public async Task Churn_probabilities_match_onnx_reference_evaluator()
    {
        using var dir = new TempDir("kiln-scoring-onnx");
        var package = await OnnxImporter.ImportAsync(new OnnxImportOptions(Path.Combine(Example, "churn.onnx"), "churn")
        {
            Reference = Path.Combine(Example, "churn.csv"),
            Label = "churned",
            Features = ["tenure_months", "monthly_charges", "support_calls"],
            Classes = ["stay", "churn"],
        }, dir.File("churn"));

        var data = await TableReader.ReadAllAsync([Path.Combine(Example, "churn.csv")],
            [new ColumnRequest("tenure_months", ColumnType.Numeric), new ColumnRequest("monthly_charges", ColumnType.Numeric), new ColumnRequest("support_calls", ColumnType.Numeric)]);
        using var scorer = Scorers.Open(package);
        var predictions = scorer.ScoreAll(data);

        var oracle = await Proc.PythonAsync($$"""
            import numpy as np, onnx
            from onnx import numpy_helper
            X = np.loadtxt('{{Path.Combine(Example, "churn.csv")}}', delimiter=',', skiprows=1, usecols=(0, 1, 2), dtype=np.float32)
            init = {t.name: numpy_helper.to_array(t) for t in onnx.load('{{Path.Combine(Example, "churn.onnx")}}').graph.initializer}
            p = 1 / (1 + np.exp(-(X.astype(np.float64) @ init['W'].astype(np.float64) + init['B'])))
            print('\n'.join(repr(float(v)) for v in p[:, 0]))
            """);
        Assert.True(oracle.ExitCode == 0, oracle.ToString());
        var expected = oracle.StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(s => double.Parse(s, CultureInfo.InvariantCulture)).ToArray();

        Assert.Equal(expected.Length, predictions.Length);
        Assert.Equal(2000, predictions.Length);
        for (var i = 0; i < expected.Length; i++)
        {
            Assert.True(Math.Abs(predictions[i].Value - expected[i]) < 1e-5, $"row {i}: kiln {predictions[i].Value} vs numpy {expected[i]}");
            Assert.Equal(expected[i] >= 0.5 ? "churn" : "stay", predictions[i].Label);
        }
    }
}
