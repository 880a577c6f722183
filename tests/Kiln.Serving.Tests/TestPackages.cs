using System.Text.Json;
using Kiln.Core.Packaging;
using Kiln.Core.Profiling;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Kiln.Serving.Tests;

/// <summary>
/// Builds real ML.NET model packages for the tests (until `kiln train` lands): card transactions
/// with amount (numeric), hour (numeric, nullable) and merchant (categorical), a FastTree binary
/// "fraud" model and a FastTree regression "spend" model, written through Kiln's PackageWriter.
/// </summary>
public static class TestPackages
{
    public static readonly string[] Merchants = ["fuel", "grocery", "online", "travel"];

    public sealed class Txn
    {
        [ColumnName("amount")] public float Amount { get; set; }

        [ColumnName("hour")] public float Hour { get; set; }

        [ColumnName("merchant")] public string Merchant { get; set; } = "";

        [ColumnName("Label")] public bool IsFraud { get; set; }
    }

    public sealed class SpendRow
    {
        [ColumnName("amount")] public float Amount { get; set; }

        [ColumnName("hour")] public float Hour { get; set; }

        [ColumnName("merchant")] public string Merchant { get; set; } = "";

        [ColumnName("Label")] public float Spend { get; set; }
    }

    public sealed class FraudOutput
    {
        public bool PredictedLabel { get; set; }

        public float Probability { get; set; }
    }

    public static List<Txn> Rows(int n, int seed)
    {
        var rng = new Random(seed);
        var rows = new List<Txn>(n);
        for (var i = 0; i < n; i++)
        {
            var merchant = Merchants[rng.Next(Merchants.Length)];
            var amount = (float)Math.Round(Math.Exp(3 + rng.NextDouble() * 3), 2);
            var hour = rng.Next(24);
            var risk = (amount > 150 ? 0.4 : 0.05) + (merchant == "online" ? 0.3 : 0) + (hour < 6 ? 0.2 : 0);
            rows.Add(new Txn { Amount = amount, Hour = hour, Merchant = merchant, IsFraud = rng.NextDouble() < risk });
        }
        return rows;
    }

    /// <summary>Trains and writes the binary fraud model; different seeds/trees give different versions.</summary>
    public static string CreateFraud(string directory, int seed = 1, int trees = 20, string name = "fraud")
    {
        var ml = new MLContext(seed);
        var rows = Rows(2000, seed);
        var data = ml.Data.LoadFromEnumerable(rows);
        var pipeline = ml.Transforms.Categorical.OneHotEncoding("merchant_oh", "merchant")
            .Append(ml.Transforms.Concatenate("Features", "amount", "hour", "merchant_oh"))
            .Append(ml.BinaryClassification.Trainers.FastTree(labelColumnName: "Label", numberOfLeaves: 8, numberOfTrees: trees, minimumExampleCountPerLeaf: 10));
        var model = pipeline.Fit(data);
        return Write(directory, name, ModelTask.Binary, ml, model, data.Schema, ["legit", "fraud"], rows.Select(r => (double)r.Amount));
    }

    /// <summary>Trains and writes a regression model (predicts a spend figure).</summary>
    public static string CreateSpend(string directory, int seed = 2, string name = "spend")
    {
        var ml = new MLContext(seed);
        var rows = Rows(1000, seed).Select(r => new SpendRow { Amount = r.Amount, Hour = r.Hour, Merchant = r.Merchant, Spend = r.Amount * 0.5f + r.Hour }).ToList();
        var data = ml.Data.LoadFromEnumerable(rows);
        var pipeline = ml.Transforms.Categorical.OneHotEncoding("merchant_oh", "merchant")
            .Append(ml.Transforms.Concatenate("Features", "amount", "hour", "merchant_oh"))
            .Append(ml.Regression.Trainers.FastTree(labelColumnName: "Label", numberOfLeaves: 8, numberOfTrees: 10, minimumExampleCountPerLeaf: 10));
        var model = pipeline.Fit(data);
        return Write(directory, name, ModelTask.Regression, ml, model, data.Schema, null, rows.Select(r => (double)r.Amount));
    }

    private static string Write(string directory, string name, ModelTask task, MLContext ml, ITransformer model, DataViewSchema schema,
        List<string>? classLabels, IEnumerable<double> amounts)
    {
        using var writer = new PackageWriter(directory);
        ml.Model.Save(model, schema, writer.PathOf("model.zip"));
        var a = amounts.ToList();
        writer.WriteJson(ModelPackage.SignatureFile, new ModelSignature
        {
            Task = task,
            Inputs =
            [
                new InputField { Name = "amount", Type = ColumnKind.Numeric, Nullable = false, Min = a.Min(), Max = a.Max() },
                new InputField { Name = "hour", Type = ColumnKind.Numeric, Nullable = true, Min = 0, Max = 23 },
                new InputField { Name = "merchant", Type = ColumnKind.Categorical, Nullable = false, Categories = [.. Merchants] },
            ],
            Outputs = task == ModelTask.Regression
                ? [new OutputField { Name = "prediction", Type = "numeric" }]
                : [new OutputField { Name = "prediction", Type = "categorical" }, new OutputField { Name = "probability", Type = "numeric" }],
            Label = task == ModelTask.Regression ? "spend" : "is_fraud",
            ClassLabels = classLabels,
        });
        writer.WriteJson(ModelPackage.MetadataFile, new PackageMetadata
        {
            Name = name,
            Task = task,
            CreatedAt = DateTimeOffset.UtcNow,
            Runtime = new RuntimeInfo { Kiln = "test", Dotnet = Environment.Version.ToString(), Os = "linux" },
        });
        File.WriteAllText(writer.PathOf(ModelPackage.InputExampleFile), """[{"amount": 42.5, "hour": 13, "merchant": "grocery"}]""");
        return writer.Commit(name, task, ModelRuntime.Mlnet, "model.zip", DateTimeOffset.UtcNow);
    }

    /// <summary>Independent oracle: ML.NET's own typed PredictionEngine over the same model file.</summary>
    public static FraudOutput PredictWithMlnet(string packageDirectory, float amount, float hour, string merchant)
    {
        var ml = new MLContext(0);
        var model = ml.Model.Load(Path.Combine(packageDirectory, "model.zip"), out _);
        var engine = ml.Model.CreatePredictionEngine<Txn, FraudOutput>(model);
        return engine.Predict(new Txn { Amount = amount, Hour = hour, Merchant = merchant });
    }

    /// <summary>Breaks a package the way a bad upload would: the model file no longer matches its checksum.</summary>
    /// <summary>Replaces a package directory the way a deploy does: set the old one aside, move the new one in.</summary>
    public static void ReplaceDirectory(string source, string target)
    {
        var aside = target + ".old-" + Guid.NewGuid().ToString("N");
        Directory.Move(target, aside);
        Directory.Move(source, target);
        Directory.Delete(aside, recursive: true);
    }

    public static void Corrupt(string packageDirectory)
    {
        var path = Path.Combine(packageDirectory, "model.zip");
        var bytes = File.ReadAllBytes(path);
        bytes[bytes.Length / 2] ^= 0xFF;
        File.WriteAllBytes(path, bytes);
    }

    public static JsonElement Json(string text) => JsonDocument.Parse(text).RootElement.Clone();
}
