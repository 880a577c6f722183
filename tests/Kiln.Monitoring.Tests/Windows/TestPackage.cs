using Kiln.Core.Data;
using Kiln.Core.Packaging;
using Kiln.Core.Profiling;

namespace Kiln.Monitoring.Tests.Windows;

/// <summary>A package with a real reference profile (inputs x, color; outputs prediction, probability) and a placeholder model.</summary>
internal static class TestPackage
{
    public static DataTable Inputs(int rows, double shift, int seed)
    {
        var rng = new Random(seed);
        var x = new double[rows];
        var color = new string?[rows];
        for (var i = 0; i < rows; i++)
        {
            x[i] = shift + Math.Sqrt(-2 * Math.Log(1.0 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());
            color[i] = rng.Next(3) switch { 0 => "red", 1 => "green", _ => "blue" };
        }
        return new DataTable(rows).Add(new NumericColumn("x", x)).Add(new TextColumn("color", color));
    }

    /// <summary>Holdout outputs: the "yes" probability is a logistic of x, the prediction its 0.5 cut.</summary>
    public static (string Prediction, double Probability) Score(double x)
    {
        var p = 1 / (1 + Math.Exp(-x));
        return (p >= 0.5 ? "yes" : "no", p);
    }

    public static string Create(string directory, int trainingRows = 3000, string[]? multiclass = null)
    {
        var training = Inputs(trainingRows, 0, 1);
        var holdout = Inputs(1000, 0, 2);
        var x = holdout.Numeric("x").Values;
        var predictions = new string?[x.Length];
        var probabilities = new double[x.Length];
        for (var i = 0; i < x.Length; i++) (predictions[i], probabilities[i]) = Score(x[i]);
        if (multiclass is not null) for (var i = 0; i < x.Length; i++) predictions[i] = multiclass[i % multiclass.Length];
        var task = multiclass is null ? ModelTask.Binary : ModelTask.Multiclass;
        var outputs = new DataTable(x.Length).Add(new TextColumn("prediction", predictions)).Add(new NumericColumn("probability", probabilities));
        using var writer = new PackageWriter(directory);
        File.WriteAllBytes(writer.PathOf("model.onnx"), [1, 2, 3]);
        writer.WriteJson(ModelPackage.SignatureFile, new ModelSignature
        {
            Task = task,
            Inputs = [new InputField { Name = "x", Type = ColumnKind.Numeric }, new InputField { Name = "color", Type = ColumnKind.Categorical }],
            Outputs = [new OutputField { Name = "prediction", Type = "categorical" }, new OutputField { Name = "probability", Type = "numeric" }],
            Label = "label",
            ClassLabels = multiclass is null ? ["no", "yes"] : [.. multiclass],
        });
        writer.WriteJson(ModelPackage.MetadataFile, new PackageMetadata
        {
            Name = "risk",
            Task = task,
            CreatedAt = DateTimeOffset.UnixEpoch,
            Runtime = new RuntimeInfo { Kiln = "test", Dotnet = Environment.Version.ToString(), Os = "test" },
        });
        writer.WriteJson(ModelPackage.ProfileFile, new PackageProfile { Inputs = DatasetProfile.Build(training), Outputs = DatasetProfile.Build(outputs) });
        return writer.Commit("risk", task, ModelRuntime.Onnx, "model.onnx", DateTimeOffset.UnixEpoch);
    }

    /// <summary>Log rows scored like the holdout, one request per row, starting at <paramref name="start"/> every <paramref name="step"/>.</summary>
    public static List<LogRow> Rows(int n, double shift, int seed, DateTime start, TimeSpan step, string idPrefix = "r")
    {
        var data = Inputs(n, shift, seed);
        var x = data.Numeric("x").Values;
        var color = data.Text("color").Values;
        var rows = new List<LogRow>(n);
        for (var i = 0; i < n; i++)
        {
            var (prediction, p) = Score(x[i]);
            rows.Add(new LogRow($"{idPrefix}{i}", 0, start + step * i, x[i], color[i], prediction, p));
        }
        return rows;
    }
}
