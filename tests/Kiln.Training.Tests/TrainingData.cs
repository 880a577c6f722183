using System.Globalization;
using System.Text;

namespace Kiln.Training.Tests;

/// <summary>Small deterministic datasets written as CSV for training tests.</summary>
internal static class TrainingData
{
    /// <summary>Binary: y depends on x1, x2 and the colour; some x2 values are missing.</summary>
    public static string Binary(string path, int rows = 1200, int seed = 1)
    {
        var rng = new Random(seed);
        var sb = new StringBuilder("x1,x2,colour,y\n");
        string[] colours = ["red", "green", "blue"];
        for (var i = 0; i < rows; i++)
        {
            var x1 = rng.NextDouble() * 10;
            var x2 = rng.NextDouble() * 5;
            var c = colours[rng.Next(3)];
            var z = x1 - 5 + (c == "red" ? 2 : 0) - x2 * 0.5 + (rng.NextDouble() - 0.5) * 3;
            var x2Text = i % 37 == 0 ? "" : x2.ToString("0.###", CultureInfo.InvariantCulture);
            sb.Append(CultureInfo.InvariantCulture, $"{x1:0.###},{x2Text},{c},{(z > 0 ? "yes" : "no")}\n");
        }
        File.WriteAllText(path, sb.ToString());
        return path;
    }

    /// <summary>Multiclass: three classes separated by x1 and x2.</summary>
    public static string Multiclass(string path, int rows = 900, int seed = 2)
    {
        var rng = new Random(seed);
        var sb = new StringBuilder("x1,x2,species\n");
        string[] names = ["setosa", "versicolor", "virginica"];
        for (var i = 0; i < rows; i++)
        {
            var k = rng.Next(3);
            var x1 = k * 2 + rng.NextDouble() * 2.5;
            var x2 = (2 - k) * 1.5 + rng.NextDouble() * 2;
            sb.Append(CultureInfo.InvariantCulture, $"{x1:0.###},{x2:0.###},{names[k]}\n");
        }
        File.WriteAllText(path, sb.ToString());
        return path;
    }

    /// <summary>Regression: y = 3·x1 − 2·x2 + 5 + noise.</summary>
    public static string Regression(string path, int rows = 1000, int seed = 3)
    {
        var rng = new Random(seed);
        var sb = new StringBuilder("x1,x2,y\n");
        for (var i = 0; i < rows; i++)
        {
            var x1 = rng.NextDouble() * 10;
            var x2 = rng.NextDouble() * 10;
            var y = 3 * x1 - 2 * x2 + 5 + (rng.NextDouble() - 0.5);
            sb.Append(CultureInfo.InvariantCulture, $"{x1:0.####},{x2:0.####},{y:0.####}\n");
        }
        File.WriteAllText(path, sb.ToString());
        return path;
    }

    public static string Spec(string dir, string body)
    {
        var path = Path.Combine(dir, "spec.yaml");
        File.WriteAllText(path, body);
        return path;
    }

    public const string BinarySpec = """
        name: churn
        task: binary
        data: data.csv
        label: y
        positive: "yes"
        features:
          x1: numeric
          x2: numeric
          colour: categorical
        trainer:
          kind: fast_forest
          trees: 30
          leaves: 16
        holdout: 0.25
        seed: 7
        """;
}
