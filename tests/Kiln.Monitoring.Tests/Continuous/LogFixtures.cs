using System.Globalization;
using Kiln.Core.Data;
using Kiln.Core.Packaging;
using Kiln.Core.Profiling;
using Parquet;
using Parquet.Schema;

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
    public static async Task<string> WriteLogAsync(string logDir, string model, string version, DataTable rows, DateTimeOffset first, TimeSpan step)
    {
        var n = rows.RowCount;
        var stamps = new DateTime[n];
        var ids = new string?[n];
        var rowIndex = new int[n];
        var x = new double?[n];
        var xs = rows.Numeric("x").Values;
        for (var i = 0; i < n; i++)
        {
            stamps[i] = (first + step * i).UtcDateTime;
            ids[i] = Guid.NewGuid().ToString("N");
            x[i] = double.IsNaN(xs[i]) ? null : xs[i];
        }
        string?[] Repeat(string? v) => Enumerable.Repeat(v, n).ToArray();
        var date = first.UtcDateTime.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
        var dir = Path.Combine(logDir, "model=" + model, "version=" + version, "date=" + date);
        Directory.CreateDirectory(dir);
        var path = Path.Combine(dir, $"part-{Guid.NewGuid():N}.parquet");
        DataField[] fields =
        [
            new DataField<string>("request_id"),
            new DateTimeDataField("timestamp", DateTimeFormat.Timestamp, isAdjustedToUTC: true, unit: DateTimeTimeUnit.Micros),
            new DataField<string>("model"),
            new DataField<string>("version"),
            new DataField<string>("protocol"),
            new DataField<int>("row"),
            new DataField<double?>("input_x"),
            new DataField<string>("input_color"),
            new DataField<string>("prediction"),
            new DataField<double>("value"),
            new DataField<string>("flags"),
        ];
        await using var stream = File.Create(path);
        await using (var writer = await ParquetWriter.CreateAsync(new ParquetSchema(fields), stream))
        {
            using var rg = writer.CreateRowGroup();
            var f = 0;
            await rg.WriteAsync(fields[f++], ids, null);
            await rg.WriteAsync<DateTime>(fields[f++], stamps.AsMemory(), null, null, default);
            await rg.WriteAsync(fields[f++], Repeat(model), null);
            await rg.WriteAsync(fields[f++], Repeat(version), null);
            await rg.WriteAsync(fields[f++], Repeat("native"), null);
            await rg.WriteAsync<int>(fields[f++], rowIndex.AsMemory(), null, null, default);
            await rg.WriteAsync<double>(fields[f++], x.AsMemory(), null, null, default);
            await rg.WriteAsync(fields[f++], rows.Text("color").Values, null);
            await rg.WriteAsync(fields[f++], Repeat("1"), null);
            await rg.WriteAsync<double>(fields[f++], Enumerable.Repeat(1.0, n).ToArray().AsMemory(), null, null, default);
            await rg.WriteAsync(fields[f++], Repeat(null), null);
        }
        return path;
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
