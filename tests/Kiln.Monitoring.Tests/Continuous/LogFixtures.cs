using Kiln.Core.Data;
using Kiln.Core.Packaging;
using Kiln.Core.Profiling;
using Kiln.Monitoring.Tests.Windows;

namespace Kiln.Monitoring.Tests.Continuous;

/// <summary>A package with a reference profile over x (numeric) and color (categorical), and prediction-log files like kiln serve's.</summary>
internal static class LogFixtures
{
    public static DataTable Data(int rows, double shift, int seed, string thirdColor = "blue")
    {
        var rng = new Random(seed);
        var x = new double[rows];
        var color = new string?[rows];
        for (var i = 0; i < rows; i++)
        {
            var u1 = 1.0 - rng.NextDouble();
            x[i] = shift + Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * rng.NextDouble());
            color[i] = rng.Next(3) switch { 0 => "red", 1 => "green", _ => thirdColor };
        }
        return new DataTable(rows).Add(new NumericColumn("x", x)).Add(new TextColumn("color", color));
    }

    /// <summary>A package (the model file is a placeholder: only the profile is used) named <paramref name="name"/>.</summary>
    public static string Package(string directory, DataTable training, string name = "shop")
    {
        using var writer = new PackageWriter(directory);
        File.WriteAllBytes(writer.PathOf("model.onnx"), [1, 2, 3]);
        writer.WriteJson(ModelPackage.SignatureFile, new ModelSignature
        {
            Task = ModelTask.Regression,
            Inputs = [new InputField { Name = "x", Type = ColumnKind.Numeric }, new InputField { Name = "color", Type = ColumnKind.Categorical }],
            Outputs = [new OutputField { Name = "score", Type = "float" }],
        });
        writer.WriteJson(ModelPackage.MetadataFile, new PackageMetadata
        {
            Name = name,
            Task = ModelTask.Regression,
            CreatedAt = DateTimeOffset.UnixEpoch,
            Runtime = new RuntimeInfo { Kiln = "test", Dotnet = Environment.Version.ToString(), Os = "test" },
        });
        writer.WriteJson(ModelPackage.ProfileFile, new PackageProfile { Inputs = DatasetProfile.Build(training), Outputs = new DatasetProfile() });
        return writer.Commit(name, ModelTask.Regression, ModelRuntime.Onnx, "model.onnx", DateTimeOffset.UnixEpoch);
    }

    /// <summary>
    /// Writes rows as a log file of LOG_DIR/model=M/version=V/date=D/ with kiln serve's schema (request_id, timestamp as a
    /// UTC Parquet timestamp, model, version, protocol, row, input_x, input_color, prediction, value, flags), one row every
    /// <paramref name="step"/> from <paramref name="first"/>.
    /// </summary>
    public static Task<string> WriteLogAsync(string logDir, string model, string version, DataTable rows, DateTimeOffset first, TimeSpan step)
    {
        var xs = rows.Numeric("x").Values;
        var colors = rows.Text("color").Values;
        var logRows = new LogRow[rows.RowCount];
        for (var i = 0; i < logRows.Length; i++)
        {
            logRows[i] = new LogRow(Guid.NewGuid().ToString("N"), 0, (first + step * i).UtcDateTime,
                double.IsNaN(xs[i]) ? null : xs[i], colors[i], "1", 1.0);
        }
        return SyntheticLog.WriteAsync(logDir, model, version, logRows, rowGroupSize: Math.Max(1, logRows.Length));
    }

    /// <summary>Rows [from, to) of a table.</summary>
    public static DataTable Slice(DataTable t, int from, int to)
    {
        var result = new DataTable(to - from);
        foreach (var c in t.Columns)
        {
            result.Add(c switch
            {
                NumericColumn n => new NumericColumn(c.Name, n.Values[from..to]),
                TextColumn s => new TextColumn(c.Name, s.Values[from..to]),
                _ => throw new InvalidOperationException(),
            });
        }
        return result;
    }
}
