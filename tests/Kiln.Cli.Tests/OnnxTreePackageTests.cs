using System.Globalization;
using Kiln.Core.Data;
using Kiln.Testing;

namespace Kiln.Cli.Tests;

/// <summary>
/// An ONNX tree ensemble through the real CLI: `kiln package onnx` and `kiln package show` say which evaluator scores it
/// (Kiln's, or ONNX Runtime's under KILN_TREE_EVALUATOR=mlnet), and `kiln batch` with either gives the same
/// probabilities, which are scikit-learn's predict_proba within float rounding (the graph is written from scikit-learn's
/// trees by tests/Kiln.Testing/sklearn_trees_to_onnx.py).
/// </summary>
public sealed class OnnxTreePackageTests
{
    [Fact]
    public async Task A_forest_imported_from_ONNX_is_scored_by_Kiln_and_the_switch_sends_it_back_to_ONNX_Runtime()
    {
        using var dir = new TempDir();
        var made = await Proc.RunAsync(Proc.Python, [Path.Combine(TestEnvironment.RepoRoot, "tests", "Kiln.Testing", "sklearn_trees_to_onnx.py"), "rf-binary", dir.Path, "3000", "20", "6"]);
        Assert.True(made.ExitCode == 0, made.ToString());
        var package = dir.File("pkg");
        var import = await KilnCli.RunAsync(["package", "onnx", dir.File("model.onnx"), "--name", "forest", "--task", "binary", "--features", "f0,f1,f2,f3", "--classes", "0,1", "--out", package]);
        Assert.True(import.ExitCode == 0, import.ToString());
        Assert.Contains("Kiln's tree evaluator", import.StdErr, StringComparison.Ordinal);

        var show = await KilnCli.RunAsync(["package", "show", package]);
        Assert.True(show.ExitCode == 0, show.ToString());
        Assert.Contains("scored by: Kiln's tree evaluator", show.StdOut, StringComparison.Ordinal);
        Assert.Contains("TreeEnsembleClassifier", show.StdOut, StringComparison.Ordinal);
        var mlnet = new Dictionary<string, string> { ["KILN_TREE_EVALUATOR"] = "mlnet" };
        var back = await KilnCli.RunAsync(["package", "show", package], env: mlnet);
        Assert.True(back.ExitCode == 0, back.ToString());
        Assert.Contains("scored by: ONNX Runtime", back.StdOut, StringComparison.Ordinal);

        var csv = dir.File("test.csv");
        var kiln = await KilnCli.RunAsync(["batch", "--model", package, "--input", csv, "--output", dir.File("kiln")]);
        Assert.True(kiln.ExitCode == 0, kiln.ToString());
        var ort = await KilnCli.RunAsync(["batch", "--model", package, "--input", csv, "--output", dir.File("ort")], env: mlnet);
        Assert.True(ort.ExitCode == 0, ort.ToString());
        var kilnRows = await ProbabilitiesAsync(dir.File("kiln"));
        var ortRows = await ProbabilitiesAsync(dir.File("ort"));
        var sklearn = File.ReadAllLines(csv).Skip(1).Select(l => double.Parse(l.Split(',')[5], CultureInfo.InvariantCulture)).ToArray();
        Assert.Equal(2000, kilnRows.Length);
        Assert.Equal(ortRows.Length, kilnRows.Length);
        for (var i = 0; i < kilnRows.Length; i++)
        {
            Assert.True(Math.Abs(kilnRows[i] - ortRows[i]) <= 1e-6, $"row {i}: Kiln {kilnRows[i]} vs ONNX Runtime {ortRows[i]}");
            Assert.True(Math.Abs(kilnRows[i] - sklearn[i]) <= 1e-5, $"row {i}: Kiln {kilnRows[i]} vs scikit-learn {sklearn[i]}");
        }
    }

    private static async Task<double[]> ProbabilitiesAsync(string directory)
    {
        var table = await TableReader.ReadAllAsync(DataSources.Resolve(directory), [new ColumnRequest("probability", ColumnType.Numeric)]);
        return table.Numeric("probability").Values[..table.RowCount];
    }
}
