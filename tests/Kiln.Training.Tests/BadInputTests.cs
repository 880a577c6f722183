using Kiln.Core;
using Kiln.Testing;

namespace Kiln.Training.Tests;

public class BadInputTests
{
    private static async Task<string> FailAsync(TempDir dir, string spec, string? data = null)
    {
        if (data is not null) await File.WriteAllTextAsync(dir.File("data.csv"), data);
        var e = await Assert.ThrowsAsync<KilnException>(async () =>
            await Trainer.TrainAsync(TrainingSpec.Load(TrainingData.Spec(dir.Path, spec)), dir.File("pkg")));
        Assert.False(Directory.Exists(dir.File("pkg")), "no package may be written on failure");
        Assert.DoesNotContain('\n', e.Message);
        return e.Message;
    }

    [Fact]
    public async Task A_missing_data_file_is_named()
    {
        using var dir = new TempDir();
        var message = await FailAsync(dir, TrainingData.BinarySpec);
        Assert.Equal("data.csv: no such file or directory", message);
    }

    [Fact]
    public async Task A_missing_column_is_named_with_the_file()
    {
        using var dir = new TempDir();
        var message = await FailAsync(dir, TrainingData.BinarySpec, "x1,x2,y\n1,2,yes\n");
        Assert.EndsWith("data.csv: column 'colour' is missing (the header has: x1, x2, y)", message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Text_in_a_numeric_column_names_line_and_column()
    {
        using var dir = new TempDir();
        var message = await FailAsync(dir, TrainingData.BinarySpec, "x1,x2,colour,y\n1,2,red,yes\n1,oops,red,no\n");
        Assert.EndsWith("data.csv: line 3, column 'x2': 'oops' is not a number", message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_single_class_label_is_refused()
    {
        using var dir = new TempDir();
        var message = await FailAsync(dir, TrainingData.BinarySpec, "x1,x2,colour,y\n1,2,red,yes\n3,4,blue,yes\n");
        Assert.Equal("data.csv: label 'y' has a single class 'yes'; a binary model needs at least two", message);
    }

    [Fact]
    public async Task An_empty_file_and_a_header_only_file_are_refused()
    {
        using var dir = new TempDir();
        Assert.EndsWith("the file is empty (no header row)", await FailAsync(dir, TrainingData.BinarySpec, ""), StringComparison.Ordinal);
        Assert.Equal("data.csv: the data has no rows", await FailAsync(dir, TrainingData.BinarySpec, "x1,x2,colour,y\n"));
    }

    [Theory]
    [InlineData("name: a\ntask: binary\ndata: d.csv\nlabel: y\nfeatures: {x: numeric}\ntrainer: {kind: xgboost}\n", "spec.yaml:6:17: 'trainer.kind' 'xgboost' is not a trainer (expected fast_forest, fast_tree, lightgbm, linear)")]
    [InlineData("name: a\ntask: binary\ndata: d.csv\nlabel: y\nfeatures: {x: numeric}\ntrainer: {kind: fast_forest, calibration_folds: 1}\n", "spec.yaml:6:10: 'trainer.calibration_folds' must be 0 (calibrate on the training rows) or at least 2")]
    [InlineData("name: a\ntask: ranking\ndata: d.csv\nlabel: y\nfeatures: {x: numeric}\n", "spec.yaml:2:7: 'task' 'ranking' is not a task (expected binary, multiclass or regression)")]
    [InlineData("name: a\ntask: binary\ndata: d.csv\nlabel: y\nfeatures: {x: numeric}\nholdot: 0.2\n", "spec.yaml:6:1: unknown key 'holdot' (did you mean 'holdout'?; expected one of: data, description, features")]
    [InlineData("name: a\ntask: binary\ndata: d.csv\nlabel: y\nfeatures: {x: number}\n", "spec.yaml:5:15: 'features.x' 'number' is not a feature type (expected numeric or categorical)")]
    [InlineData("name: a\ntask: binary\ndata: d.csv\nfeatures: {x: numeric}\n", "spec.yaml:1:1: 'label' is required")]
    [InlineData("name: a\ntask: binary\ndata: d.csv\nlabel: y\nfeatures: {x: numeric}\nholdout: 1.5\n", "spec.yaml:6:10: 'holdout' 1.5 must be between 0 and 1 (exclusive)")]
    [InlineData("name: a\ntask: binary\ndata: d.csv\nlabel: y\nfeatures: {y: numeric}\n", "spec.yaml:5:12: 'features.y' the label cannot also be a feature")]
    [InlineData("name: a\n  task: [binary\n", "spec.yaml:2:7: invalid YAML: ")]
    public void A_malformed_spec_names_the_line_column_and_key(string yaml, string expected)
    {
        var e = Assert.Throws<KilnException>(() => TrainingSpec.Parse(yaml, "spec.yaml", "/tmp"));
        Assert.StartsWith(expected, e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', e.Message);
    }
}
