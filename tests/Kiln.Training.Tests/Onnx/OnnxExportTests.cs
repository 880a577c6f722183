using Kiln.Core;
using Kiln.Core.Data;
using Kiln.Core.Packaging;
using Kiln.Scoring;
using Kiln.Testing;
using Kiln.Training.Onnx;

namespace Kiln.Training.Tests.Onnx;

/// <summary>
/// The export of every kind of pipeline Kiln trains (one-hot and hashed categories, mean replacement, normalization;
/// forests, boosted trees, LightGBM and linear models; binary, multiclass, regression), read back as an ONNX package
/// and scored against the ML.NET package on rows of the quickstart data the export never compared on.
/// </summary>
public sealed class OnnxExportTests
{
    private static string Transactions => Path.Combine(TestEnvironment.RepoRoot, "examples", "quickstart", "transactions.csv");

    private static string Recent => Path.Combine(TestEnvironment.RepoRoot, "examples", "quickstart", "recent.csv");

    [Theory]
    [InlineData("multiclass", "merchant_category", "{amount: numeric, hour: numeric, card_present: categorical, distance_from_home_km: numeric}", "fast_forest")]
    [InlineData("multiclass", "merchant_category", "{amount: numeric, hour: numeric, card_present: categorical}", "lightgbm")]
    [InlineData("regression", "amount", "{hour: numeric, merchant_category: {type: categorical, encoding: hash}, distance_from_home_km: numeric}", "lightgbm")]
    [InlineData("regression", "amount", "{hour: numeric, merchant_category: categorical, customer_age: numeric}", "fast_tree")]
    [InlineData("binary", "is_fraud", "{amount: numeric, hour: numeric, merchant_category: categorical, distance_from_home_km: numeric}", "linear")]
    public async Task Every_trained_pipeline_exports_and_scores_like_its_package(string task, string label, string features, string trainer)
    {
        using var dir = new TempDir("kiln-export");
        var yaml = $"name: m\ntask: {task}\ndata: {Transactions}\nlabel: {label}\nfeatures: {features}\ntrainer: {{kind: {trainer}, trees: 20, leaves: 16}}\n";
        await File.WriteAllTextAsync(dir.File("spec.yaml"), yaml);
        var trained = await Trainer.TrainAsync(TrainingSpec.Load(dir.File("spec.yaml")), dir.File("pkg"));

        var result = await OnnxExporter.ExportAsync(new OnnxExportOptions(trained.PackageDirectory, dir.File("m.onnx")));
        Assert.Equal(1600, result.SampleRows);   // the holdout, found again
        var imported = ModelPackage.Load(await OnnxImporter.ImportAsync(new OnnxImportOptions(dir.File("m.onnx"), "m"), dir.File("onnx")));
        var original = ModelPackage.Load(trained.PackageDirectory);
        Assert.Equal(original.Signature.Task, imported.Signature.Task);
        Assert.Equal(original.Signature.ClassLabels, imported.Signature.ClassLabels);
        Assert.Equal(original.Signature.Inputs.Select(i => (i.Name, i.Type, i.Nullable)), imported.Signature.Inputs.Select(i => (i.Name, i.Type, i.Nullable)));

        // Rows the export did not compare on: the quickstart's recent traffic.
        var columns = original.Signature.Inputs.Select(i => new ColumnRequest(i.Name, i.Type == Kiln.Core.Profiling.ColumnKind.Numeric ? ColumnType.Numeric : ColumnType.Text)).ToList();
        var rows = await TableReader.ReadAllAsync([Recent], columns);
        using var mlnet = Scorers.Open(original);
        using var onnx = Scorers.Open(imported);
        var expected = mlnet.ScoreAll(rows);
        var actual = onnx.ScoreAll(rows);
        for (var i = 0; i < expected.Length; i++)
        {
            var scale = task == "regression" ? Math.Max(1, Math.Abs(expected[i].Value)) : 1;
            Assert.True(Math.Abs(expected[i].Value - actual[i].Value) <= 1e-5 * scale, $"row {i}: ML.NET {expected[i].Value} vs ONNX {actual[i].Value}");
            Assert.Equal(expected[i].Label, actual[i].Label);
            if (expected[i].Probabilities is { } p)
                for (var c = 0; c < p.Length; c++) Assert.True(Math.Abs(p[c] - actual[i].Probabilities![c]) <= 1e-5, $"row {i}, class {c}");
        }
    }

    [Fact]
    public async Task An_onnx_package_is_not_exported_again()
    {
        using var dir = new TempDir("kiln-export-onnx");
        var py = await Proc.PythonAsync(OnnxFixtures.LogisticModelPython(dir.File("m.onnx"), dir.File("ref.csv")));
        Assert.True(py.ExitCode == 0, py.ToString());
        var package = await OnnxImporter.ImportAsync(new OnnxImportOptions(dir.File("m.onnx"), "m") { Reference = dir.File("ref.csv"), Label = "label" }, dir.File("pkg"));
        var e = await Assert.ThrowsAsync<KilnException>(() => OnnxExporter.ExportAsync(new OnnxExportOptions(package, dir.File("out.onnx"))));
        Assert.Equal($"{package}: the package's model is already ONNX (model.onnx); export takes ML.NET packages", e.Message);
        Assert.False(File.Exists(dir.File("out.onnx")));
    }
}
