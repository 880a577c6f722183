using System.Globalization;
using System.Text.Json;
using Kiln.Core;
using Kiln.Core.Data;
using Kiln.Core.Packaging;
using Kiln.Core.Profiling;
using Kiln.Scoring;
using Kiln.Scoring.Validation;
using Kiln.Testing;
using Kiln.Training.Onnx;

namespace Kiln.Training.Tests.Onnx;

/// <summary>
/// Writes the models of onnx_models.py once per test class: graphs shaped as skl2onnx writes them (float64, int64,
/// int32, bool and string inputs; named and packed; ZipMap and tensor outputs), built by python3-onnx from
/// scikit-learn models, with scikit-learn's own predictions on the reference rows beside them.
/// </summary>
public sealed class SklearnShapedModels : IAsyncLifetime
{
    public TempDir Dir { get; } = new("kiln-onnx-kinds");

    public async Task InitializeAsync()
    {
        var script = Path.Combine(TestEnvironment.RepoRoot, "tests", "Kiln.Training.Tests", "Onnx", "onnx_models.py");
        var r = await Proc.RunAsync(Proc.Python, [script, Dir.Path]);
        Assert.True(r.ExitCode == 0, r.ToString());
    }

    public Task DisposeAsync()
    {
        Dir.Dispose();
        return Task.CompletedTask;
    }

    public string File(string name) => Dir.File(name);

    /// <summary>scikit-learn's predict_proba / predict on the reference rows: one array of columns per row.</summary>
    public double[][] Expected(string model) =>
        [.. System.IO.File.ReadAllLines(File(model + ".expected.csv")).Skip(1)
            .Select(line => line.Split(',').Select(v => double.Parse(v, CultureInfo.InvariantCulture)).ToArray())];
}

public sealed class OnnxInputKindsTests(SklearnShapedModels models) : IClassFixture<SklearnShapedModels>
{
    private async Task<(ModelPackage Package, DataTable Reference)> ImportAsync(string model, string label, IReadOnlyList<ColumnRequest> columns)
    {
        var dir = await OnnxImporter.ImportAsync(new OnnxImportOptions(models.File(model + ".onnx"), model)
        {
            Reference = models.File(model + ".csv"),
            Label = label,
        }, models.File("pkg-" + model));
        var package = ModelPackage.Load(dir);
        var reference = await TableReader.ReadAllAsync([models.File(model + ".csv")], columns, null);
        return (package, reference);
    }

    private static ColumnRequest Num(string name) => new(name, ColumnType.Numeric);

    [Fact]
    public async Task A_packed_float64_input_scores_like_sklearn_predict_proba()
    {
        var (package, reference) = await ImportAsync("double_packed", "label", [Num("x1"), Num("x2"), Num("x3")]);
        Assert.Equal(["x1", "x2", "x3"], package.Signature.Inputs.Select(i => i.Name));
        Assert.All(package.Signature.Inputs, i => Assert.Equal("float64", i.TensorType));
        Assert.Equal(ModelTask.Binary, package.Signature.Task);

        using var scorer = Scorers.Open(package);
        var predictions = scorer.ScoreAll(reference);
        var expected = models.Expected("double_packed");
        Assert.Equal(300, predictions.Length);
        for (var i = 0; i < expected.Length; i++)
        {
            // LinearClassifier computes in float32; scikit-learn in float64.
            Assert.True(Math.Abs(predictions[i].Value - expected[i][0]) < 1e-5, $"row {i}: kiln {predictions[i].Value} vs sklearn {expected[i][0]}");
            Assert.Equal(expected[i][0] >= 0.5 ? "1" : "0", predictions[i].Label);
        }
    }

    [Fact]
    public async Task Named_int64_float64_int32_bool_and_string_inputs_and_a_zipmap_score_like_sklearn()
    {
        var (package, reference) = await ImportAsync("named_zipmap", "plan",
            [Num("age"), Num("income"), Num("visits"), Num("member"), new("city", ColumnType.Text)]);
        var signature = package.Signature;
        Assert.Equal(ModelTask.Multiclass, signature.Task);
        Assert.Equal(["basic", "plus", "pro"], signature.ClassLabels);   // the ZipMap's keys
        Assert.Equal(["int64", "float64", "int32", "bool", "string"], signature.Inputs.Select(i => i.TensorType));
        var city = signature.FindInput("city")!;
        Assert.Equal(ColumnKind.Categorical, city.Type);
        Assert.Equal(["lyon", "oslo", "porto", "turin"], city.Categories);

        using var scorer = Scorers.Open(package);
        var predictions = scorer.ScoreAll(reference);
        var expected = models.Expected("named_zipmap");
        Assert.Equal(400, predictions.Length);
        for (var i = 0; i < expected.Length; i++)
        {
            for (var c = 0; c < 3; c++)
                Assert.True(Math.Abs(predictions[i].Probabilities![c] - expected[i][c]) < 1e-5, $"row {i}, class {c}: kiln {predictions[i].Probabilities![c]} vs sklearn {expected[i][c]}");
            var best = Array.IndexOf(expected[i], expected[i].Max());
            Assert.Equal(signature.ClassLabels![best], predictions[i].Label);
        }
    }

    [Fact]
    public async Task Kiln_batch_takes_true_and_false_in_a_csv_column_for_a_bool_input_and_scores_like_sklearn()
    {
        var (package, _) = await ImportAsync("named_zipmap", "plan",
            [Num("age"), Num("income"), Num("visits"), Num("member"), new("city", ColumnType.Text)]);
        // The reference rows with the bool input spelled as a CSV writer of booleans spells it (pandas writes True/False).
        var lines = await File.ReadAllLinesAsync(models.File("named_zipmap.csv"));
        var member = Array.IndexOf(lines[0].Split(','), "member");
        var spelled = lines.Select((line, i) =>
        {
            if (i == 0) return line;
            var cells = line.Split(',');
            cells[member] = cells[member] == "1" ? (i % 2 == 0 ? "True" : "true") : (i % 2 == 0 ? "False" : "false");
            return string.Join(',', cells);
        });
        using var dir = new TempDir("kiln-bool-batch");
        await File.WriteAllLinesAsync(dir.File("in.csv"), spelled);

        var run = await KilnCli.RunAsync(["batch", "--model", package.Directory, "--input", dir.File("in.csv"), "--output", dir.File("out")]);
        Assert.True(run.ExitCode == 0, run.ToString());
        var output = await TableReader.ReadAllAsync(Directory.GetFiles(dir.File("out"), "part-*.parquet").Order(StringComparer.Ordinal).ToList(),
            [new("probability_basic", ColumnType.Numeric), new("probability_plus", ColumnType.Numeric), new("probability_pro", ColumnType.Numeric)], null);
        var expected = models.Expected("named_zipmap");
        Assert.Equal(expected.Length, output.RowCount);
        for (var i = 0; i < expected.Length; i++)
        {
            Assert.True(Math.Abs(output.Numeric("probability_basic").Values[i] - expected[i][0]) < 1e-5, $"row {i}");
            Assert.True(Math.Abs(output.Numeric("probability_pro").Values[i] - expected[i][2]) < 1e-5, $"row {i}");
        }

        // Anything else in a bool column is still a bad row, named.
        await File.WriteAllLinesAsync(dir.File("bad.csv"), [lines[0], .. lines.Skip(1).Take(3).Select(l => { var c = l.Split(','); c[member] = "yes"; return string.Join(',', c); })]);
        var bad = await KilnCli.RunAsync(["batch", "--model", package.Directory, "--input", dir.File("bad.csv"), "--output", dir.File("out-bad")]);
        Assert.Equal(1, bad.ExitCode);
        Assert.Contains($"{dir.File("bad.csv")}: row 1, column 'member': ", bad.StdErr);
    }

    [Fact]
    public async Task A_packed_int64_input_and_a_zipmap_with_integer_keys_score_like_sklearn()
    {
        var (package, reference) = await ImportAsync("int_zipmap", "label", [Num("c1"), Num("c2"), Num("c3")]);
        Assert.Equal(ModelTask.Binary, package.Signature.Task);
        Assert.Equal(["0", "1"], package.Signature.ClassLabels);
        Assert.All(package.Signature.Inputs, i => Assert.Equal("int64", i.TensorType));

        using var scorer = Scorers.Open(package);
        var predictions = scorer.ScoreAll(reference);
        var expected = models.Expected("int_zipmap");
        for (var i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(predictions[i].Value - expected[i][0]) < 1e-5, $"row {i}: kiln {predictions[i].Value} vs sklearn {expected[i][0]}");
    }

    [Fact]
    public async Task Rank1_float64_inputs_and_a_float64_output_score_like_sklearn_regression()
    {
        var (package, reference) = await ImportAsync("double_regression", "target", [Num("a"), Num("b")]);
        Assert.Equal(ModelTask.Regression, package.Signature.Task);
        using var scorer = Scorers.Open(package);
        var predictions = scorer.ScoreAll(reference);
        var expected = models.Expected("double_regression");
        for (var i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(predictions[i].Value - expected[i][0]) < 1e-9, $"row {i}: kiln {predictions[i].Value} vs sklearn {expected[i][0]}");
    }

    [Fact]
    public async Task Requests_are_checked_against_the_tensor_types_with_serving_messages()
    {
        var (package, _) = await ImportAsync("named_zipmap", "plan",
            [Num("age"), Num("income"), Num("visits"), Num("member"), new("city", ColumnType.Text)]);

        static Dictionary<string, JsonElement> Row(string json) => JsonSerializer.Deserialize<Dictionary<string, JsonElement>>(json)!;
        // JSON booleans (and 0/1) fill a bool tensor; strings fill a string tensor.
        var ok = JsonRowsDecoder.ToTable([Row("""{"age": 40, "income": 50.5, "visits": 3, "member": true, "city": "oslo"}"""),
                                          Row("""{"age": 41, "income": 50.5, "visits": 3, "member": 0, "city": "lyon"}""")], package.Signature);
        Assert.Equal([1.0, 0.0], ok.Numeric("member").Values);

        var e = Assert.Throws<KilnException>(() => JsonRowsDecoder.ToTable([Row("""{"age": 40.5, "income": 50.5, "visits": 3, "member": true, "city": "oslo"}""")], package.Signature));
        Assert.Contains("age", e.Message, StringComparison.Ordinal);
        Assert.Contains("40.5 is not an integer (the model takes int64)", e.Message, StringComparison.Ordinal);

        e = Assert.Throws<KilnException>(() => JsonRowsDecoder.ToTable([Row("""{"age": 40, "income": 50.5, "visits": 3, "member": 2, "city": "oslo"}""")], package.Signature));
        Assert.Contains("2 is not a boolean (send true, false, 0 or 1)", e.Message, StringComparison.Ordinal);

        e = Assert.Throws<KilnException>(() => JsonRowsDecoder.ToTable([Row("""{"age": 40, "income": 50.5, "visits": 3, "member": true, "city": "paris"}""")], package.Signature));
        Assert.Contains("category 'paris' was never seen in training", e.Message, StringComparison.Ordinal);

        // A float input still refuses a boolean, as before.
        e = Assert.Throws<KilnException>(() => JsonRowsDecoder.ToTable([Row("""{"age": 40, "income": true, "visits": 3, "member": true, "city": "oslo"}""")], package.Signature));
        Assert.Contains("expected a number, got a boolean", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_zipmap_model_without_reference_takes_its_classes_from_the_map_and_refuses_wrong_ones()
    {
        var dir = await OnnxImporter.ImportAsync(new OnnxImportOptions(models.File("named_zipmap.onnx"), "bare"), models.File("pkg-bare"));
        var package = ModelPackage.Load(dir);
        Assert.Equal(["basic", "plus", "pro"], package.Signature.ClassLabels);
        Assert.Equal(["age", "income", "visits", "member", "city"], package.Signature.Inputs.Select(i => i.Name));

        var e = await Assert.ThrowsAsync<KilnException>(() => OnnxImporter.ImportAsync(
            new OnnxImportOptions(models.File("named_zipmap.onnx"), "wrong") { Classes = ["a", "b", "c"] }, models.File("pkg-wrong")));
        Assert.Equal("--classes a,b,c: the model's ZipMap output 'output_probability' names its classes basic, plus, pro", e.Message);
        Assert.False(Directory.Exists(models.File("pkg-wrong")));
    }

    [Fact]
    public async Task An_input_type_kiln_cannot_feed_is_refused_in_one_line_naming_the_input()
    {
        var e = await Assert.ThrowsAsync<KilnException>(() => OnnxImporter.ImportAsync(
            new OnnxImportOptions(models.File("float16_input.onnx"), "half"), models.File("pkg-half")));
        Assert.Equal($"{models.File("float16_input.onnx")}: graph input 'half' is Float16; Kiln feeds float, double, int64, int32, bool and string tensors", e.Message);
        Assert.False(Directory.Exists(models.File("pkg-half")));
    }
}
