using System.Globalization;
using System.Text;
using Kiln.Core;
using Kiln.Core.Data;
using Kiln.Core.Packaging;
using Kiln.Scoring.MlNet;
using Kiln.Scoring.Trees;
using Kiln.Testing;
using Kiln.Training;
using Microsoft.ML;

namespace Kiln.Scoring.Tests;

/// <summary>
/// Kiln's tree evaluator against ML.NET itself (the oracle: the same package scored with KILN_TREE_EVALUATOR=mlnet,
/// ML.NET's whole transformer chain) on packages trained by Kiln's trainer: every prediction's label and value equal
/// to the bit on a large sample that includes the trees' own thresholds and their float neighbours, missing numbers
/// and unseen or missing categories.
/// </summary>
public sealed class TreeEvaluatorTests
{
    [Theory]
    [InlineData("binary", "fast_forest", 1_000_000)]
    [InlineData("binary", "fast_tree", 200_000)]
    [InlineData("binary", "lightgbm", 200_000)]
    [InlineData("regression", "fast_forest", 200_000)]
    [InlineData("regression", "fast_tree", 200_000)]
    [InlineData("regression", "lightgbm", 200_000)]
    [InlineData("multiclass", "fast_forest", 200_000)]
    [InlineData("multiclass", "fast_tree", 200_000)]
    [InlineData("multiclass", "lightgbm", 200_000)]
    public async Task Kiln_evaluator_equals_ML_NET_to_the_bit(string task, string kind, int rows)
    {
        using var dir = new TempDir("kiln-trees");
        var package = ModelPackage.Load(await TrainAsync(dir, task, kind));
        using var kiln = new MlnetScorer(package, "kiln");
        using var mlnet = new MlnetScorer(package, "mlnet");
        Assert.True(kiln.TreeEvaluator == "kiln", kiln.TreeEvaluatorReason);
        Assert.Equal("mlnet", mlnet.TreeEvaluator);
        Assert.False(kiln.ReadsFeaturesDirectly); // the colour's one-hot encoding runs in ML.NET's prefix

        var sample = Sample(package, rows, seed: 11);
        var expected = mlnet.ScoreAll(sample);
        var actual = kiln.ScoreAll(sample);
        var mismatches = 0;
        var first = -1;
        for (var i = 0; i < rows; i++)
        {
            if (expected[i].Label == actual[i].Label && BitConverter.DoubleToInt64Bits(expected[i].Value) == BitConverter.DoubleToInt64Bits(actual[i].Value)
                && SameBits(expected[i].Probabilities, actual[i].Probabilities)) continue;
            mismatches++;
            if (first < 0) first = i;
        }
        Assert.True(mismatches == 0, $"{mismatches} of {rows} rows differ; first row {first}: ML.NET {expected[Math.Max(first, 0)]}, Kiln {actual[Math.Max(first, 0)]}");
        // The sample reaches both sides of the model: not one constant answer (every class, for multiclass).
        Assert.True(actual.Select(p => p.Value).Distinct().Count() > 100);
        if (task == "multiclass")
        {
            Assert.Equal(["a", "b", "c"], actual.Select(p => p.Label).Distinct().Order(StringComparer.Ordinal));
            Assert.Contains("3 classes × 40 trees", kiln.TreeEvaluatorReason, StringComparison.Ordinal);
        }
    }

    /// <summary>
    /// Numeric inputs only: the prefix is a missing-value replacement and a concatenation, so the features are read
    /// straight from the input columns; the answers equal ML.NET's whole chain to the bit, and the prefix's own (the same
    /// numbers given as text, which only the prefix reads) too.
    /// </summary>
    [Theory]
    [InlineData("binary", "fast_forest")]
    [InlineData("regression", "fast_tree")]
    [InlineData("multiclass", "lightgbm")]
    public async Task Numeric_inputs_are_read_straight_from_the_columns_with_the_same_answers(string task, string kind)
    {
        using var dir = new TempDir("kiln-trees");
        var package = ModelPackage.Load(await TrainAsync(dir, task, kind, categorical: false));
        using var kiln = new MlnetScorer(package, "kiln");
        using var mlnet = new MlnetScorer(package, "mlnet");
        Assert.True(kiln.TreeEvaluator == "kiln", kiln.TreeEvaluatorReason);
        Assert.True(kiln.ReadsFeaturesDirectly);

        const int Rows = 100_000;
        var sample = Sample(package, Rows, seed: 13);
        Assert.Contains(((NumericColumn)sample["x2"]).Values, double.IsNaN);
        var asText = new DataTable(Rows);
        foreach (var name in new[] { "x1", "x2" })
        {
            asText.Add(new TextColumn(name, [.. ((NumericColumn)sample[name]).Values.Select(v => double.IsNaN(v) ? null : v.ToString("R", CultureInfo.InvariantCulture))]));
        }
        var expected = mlnet.ScoreAll(sample);
        var direct = kiln.ScoreAll(sample);
        var throughPrefix = kiln.ScoreAll(asText);
        for (var i = 0; i < Rows; i++)
        {
            foreach (var actual in new[] { direct[i], throughPrefix[i] })
            {
                Assert.True(expected[i].Label == actual.Label && BitConverter.DoubleToInt64Bits(expected[i].Value) == BitConverter.DoubleToInt64Bits(actual.Value)
                    && SameBits(expected[i].Probabilities, actual.Probabilities), $"row {i}: ML.NET {expected[i]}, Kiln {actual}");
            }
        }
        Assert.True(direct.Select(p => p.Value).Distinct().Count() > 100);
    }

    private static bool SameBits(float[]? a, float[]? b)
    {
        if (a is null || b is null) return a is null && b is null;
        if (a.Length != b.Length) return false;
        for (var i = 0; i < a.Length; i++) if (BitConverter.SingleToInt32Bits(a[i]) != BitConverter.SingleToInt32Bits(b[i])) return false;
        return true;
    }

    [Fact]
    public async Task An_unknown_evaluator_is_refused_in_one_line()
    {
        using var dir = new TempDir("kiln-trees");
        var package = ModelPackage.Load(await TrainAsync(dir, "binary", "fast_tree"));
        var e = Assert.Throws<KilnException>(() => new MlnetScorer(package, "fastest"));
        Assert.Equal("KILN_TREE_EVALUATOR='fastest': expected 'kiln' (the default) or 'mlnet'", e.Message);
    }

    [Fact]
    public async Task The_load_check_agrees_with_ML_NET_on_vectors_at_the_thresholds()
    {
        using var dir = new TempDir("kiln-trees");
        var package = ModelPackage.Load(await TrainAsync(dir, "binary", "lightgbm"));
        var ml = new MLContext(seed: 0);
        var model = ml.Model.Load(package.ModelPath, out var schema);
        var trees = MlnetTreeModel.TryCreate(model, schema, ModelTask.Binary, out var reason);
        Assert.True(trees is not null, reason);
        Assert.True(trees.Calibrated);
        Assert.Null(trees.Verify(ml, vectors: 2000, seed: 5));
    }

    /// <summary>Trains a small model on data with a categorical column and missing numbers, as users' data has them.</summary>
    private static async Task<string> TrainAsync(TempDir dir, string task, string kind, bool categorical = true)
    {
        var rng = new Random(3);
        var csv = new StringBuilder("x1,x2,colour,y,k,r\n");
        string[] colours = ["red", "green", "blue", "grey"];
        for (var i = 0; i < 3000; i++)
        {
            var x1 = rng.NextDouble() * 10;
            var x2 = rng.NextDouble() * 5;
            var c = colours[rng.Next(colours.Length)];
            var z = x1 - 5 + (c == "red" ? 2 : c == "blue" ? -1 : 0) - x2 * 0.5 + (rng.NextDouble() - 0.5) * 3;
            var x2Text = i % 37 == 0 ? "" : x2.ToString("0.####", CultureInfo.InvariantCulture);
            csv.Append(CultureInfo.InvariantCulture, $"{x1:0.####},{x2Text},{c},{(z > 0 ? "yes" : "no")},{(z > 1 ? "a" : z > -1 ? "b" : "c")},{z:0.####}\n");
        }
        await File.WriteAllTextAsync(dir.File("data.csv"), csv.ToString());
        var label = task switch { "binary" => "y", "regression" => "r", _ => "k" };
        await File.WriteAllTextAsync(dir.File("spec.yaml"), $"""
            name: trees
            task: {task}
            data: data.csv
            label: {label}
            {(task == "binary" ? "positive: \"yes\"" : "")}
            features:
              x1: numeric
              x2: numeric
            {(categorical ? "  colour: categorical" : "")}
            trainer:
              kind: {kind}
              trees: 40
              leaves: 32
            holdout: 0.2
            seed: 5
            """);
        var result = await Trainer.TrainAsync(TrainingSpec.Load(dir.File("spec.yaml")), dir.File("package"));
        return result.PackageDirectory;
    }

    /// <summary>
    /// Rows whose numbers are drawn from the model's own thresholds (feature 0 is x1, 1 is x2: the trainer concatenates
    /// the numeric columns first), one float step either side of them, uniform values, and missing; colours seen,
    /// unseen and missing. Values are floats held as doubles, so the scorer's cast to float keeps them exact.
    /// </summary>
    private static DataTable Sample(ModelPackage package, int rows, int seed)
    {
        var ml = new MLContext(seed: 0);
        var model = ml.Model.Load(package.ModelPath, out var schema);
        var trees = MlnetTreeModel.TryCreate(model, schema, package.Signature.Task, out var reason)
            ?? throw new InvalidOperationException(reason);
        var thresholds = new List<float>[] { [], [] };
        foreach (var tree in trees.Ensembles.SelectMany(e => e.Trees))
        {
            for (var n = 0; n < tree.NodeCount; n++)
            {
                if (tree.CategoricalFeatures?[n] is null && tree.SplitFeatures[n] < 2) thresholds[tree.SplitFeatures[n]].Add(tree.Thresholds[n]);
            }
        }
        Assert.NotEmpty(thresholds[0]);
        var rng = new Random(seed);
        double Number(int feature, double scale)
        {
            var t = thresholds[feature];
            return rng.Next(8) switch
            {
                0 => double.NaN,
                1 or 2 when t.Count > 0 => t[rng.Next(t.Count)],
                3 when t.Count > 0 => MathF.BitIncrement(t[rng.Next(t.Count)]),
                4 when t.Count > 0 => MathF.BitDecrement(t[rng.Next(t.Count)]),
                _ => (float)(rng.NextDouble() * scale),
            };
        }
        var x1 = new double[rows];
        var x2 = new double[rows];
        var colour = new string?[rows];
        string?[] colours = ["red", "green", "blue", "grey", "purple", null];
        for (var i = 0; i < rows; i++)
        {
            x1[i] = Number(0, 10);
            x2[i] = Number(1, 5);
            colour[i] = colours[rng.Next(colours.Length)];
        }
        return new DataTable(rows).Add(new NumericColumn("x1", x1)).Add(new NumericColumn("x2", x2)).Add(new TextColumn("colour", colour));
    }
}
