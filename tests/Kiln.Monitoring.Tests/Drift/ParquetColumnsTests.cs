using System.Text.Json;
using Kiln.Core;
using Kiln.Core.Data;
using Kiln.Core.Packaging;
using Kiln.Core.Profiling;
using Kiln.Monitoring.Drift;
using Kiln.Testing;

namespace Kiln.Monitoring.Tests.Drift;

/// <summary>
/// kiln drift reads a Parquet file column by column, each column by the worker that tests it, and counts text columns
/// straight from the file's bytes (<see cref="ParquetColumns"/>). The oracle is the whole-table path it replaced for
/// Parquet (every column read into a <see cref="DataTable"/>, then <see cref="DriftCalculator.Compare(DatasetProfile, DataTable, DriftOptions?)"/>),
/// which CSV input still takes: the reports must be equal to the last digit, for every kind of column a file can hold
/// against every kind of reference column.
/// </summary>
public sealed class ParquetColumnsTests : IDisposable
{
    private readonly TempDir _dir = new("kiln-parquet-columns");

    public void Dispose() => _dir.Dispose();

    [Theory]
    [InlineData(1_000_000, 0.0, false)] // one row group
    [InlineData(700, 0.0, false)]       // several row groups
    [InlineData(700, 0.6, false)]       // several row groups, drifted
    [InlineData(1_000_000, 0.0, true)]  // columns read ahead (as kiln drift does while the package loads)
    [InlineData(700, 0.6, true)]
    public async Task Drift_read_column_by_column_equals_the_drift_of_the_table_read_whole(int rowGroup, double shift, bool readAhead)
    {
        var training = Table(4000, 0, seed: 1, asFile: false);
        var model = Package(training);
        var current = Table(5000, shift, seed: 2, asFile: true);
        var path = _dir.File($"current-{rowGroup}-{shift}.parquet");
        await WriteAsync(current, path, rowGroup);
        var package = ModelPackage.Load(model);
        var reference = package.Profile!.Inputs;

        DriftReport columnByColumn;
        if (readAhead)
        {
            // Every column the read-ahead can take is read before the comparison starts: x, spiky and extra as numbers,
            // color and amount as text counts, code as numbers (the reference has it as labels, so the comparison reads
            // it again its own way); the timestamps are left to the comparison, and extra is never asked for.
            using var input = await DataDrift.OpenAsync(path, DataDrift.DefaultMaxExactRows, readAhead: true, CancellationToken.None);
            await input.Columns!.ReadingAhead;
            Assert.Equal(6, input.Columns.ReadAheadColumns);
            columnByColumn = await DataDrift.CompareAsync(package, input, DriftOptions.Default, CancellationToken.None);
        }
        else columnByColumn = await DataDrift.CompareAsync(package, path, DriftOptions.Default, CancellationToken.None);

        // The oracle: the file read whole into a table by the reader (every column in the reference's kind), then compared.
        var requests = reference.Columns.Where(c => current.Find(c.Name) is not null)
            .Select(c => new ColumnRequest(c.Name, c.Kind == ColumnKind.Numeric ? ColumnType.Numeric : ColumnType.Text)).ToList();
        var whole = DriftCalculator.Compare(reference, await TableReader.ReadAllAsync([path], requests), DriftOptions.Default);
        whole.AddColumnNotInReference("extra", ColumnKind.Categorical);

        Assert.Equal(DriftJson.Serialize(whole), DriftJson.Serialize(columnByColumn));
        using var doc = JsonDocument.Parse(DriftJson.Serialize(columnByColumn));
        var features = doc.RootElement.GetProperty("features").EnumerateArray().ToDictionary(f => f.GetProperty("name").GetString()!);
        Assert.Equal(["x", "spiky", "color", "code", "amount", "when", "gone", "extra"], features.Keys);
        Assert.Contains("column_not_in_current", features["gone"].GetProperty("warnings").EnumerateArray().Select(w => w.GetString()));
        Assert.Equal(shift > 0, features["x"].GetProperty("drifted").GetBoolean());
        Assert.Equal(Enumerable.Range(0, 5000).Count(i => i % 9 != 0), features["color"].GetProperty("quality").GetProperty("current_count").GetInt64());
    }

    [Fact]
    public async Task Read_ahead_stays_within_its_budget_and_closing_unused_data_is_clean()
    {
        var path = _dir.File("budget.parquet");
        await WriteAsync(Table(1000, 0, seed: 5, asFile: true), path, 300);

        // A budget of two number columns of 1,000 rows: x and spiky are read, code and extra are not; the text columns
        // cost no budget. Closed without a comparison (as when the package fails to load): the arrays go back.
        using (var input = await DataDrift.OpenAsync(path, DataDrift.DefaultMaxExactRows, readAheadBytes: 2 * 1000 * 8, CancellationToken.None))
        {
            await input.Columns!.ReadingAhead;
            Assert.Equal(4, input.Columns.ReadAheadColumns);
        }
    }

    [Fact]
    public async Task A_bad_cell_read_by_a_worker_is_one_error_naming_file_row_and_column()
    {
        var model = Package(Table(500, 0, seed: 3, asFile: false));
        var path = _dir.File("bad.parquet");
        var current = Table(400, 0, seed: 4, asFile: true);
        var amounts = ((TextColumn)current["amount"]).Values;
        amounts[123] = "twelve";
        await WriteAsync(current, path, 100);

        var error = await Assert.ThrowsAsync<KilnException>(() => DataDrift.CompareAsync(ModelPackage.Load(model), path, DriftOptions.Default, CancellationToken.None));

        Assert.Contains(path, error.Message, StringComparison.Ordinal);
        Assert.Contains("row 124", error.Message, StringComparison.Ordinal); // the file's row, in its second row group
        Assert.Contains("'amount'", error.Message, StringComparison.Ordinal);
    }

    /// <summary>
    /// x: numbers; spiky: numbers with missing and infinite values; color: labels with missing ones; code: labels that
    /// are numbers (a number column in the file); amount: numbers (text holding numbers in the file); when: timestamps
    /// in the file, their text in the reference; gone: only in the reference; extra: only in the file.
    /// </summary>
    private static DataTable Table(int rows, double shift, int seed, bool asFile)
    {
        var rng = new Random(seed);
        var x = new double[rows];
        var spiky = new double[rows];
        var color = new string?[rows];
        var code = new double[rows];
        var amount = new double[rows];
        var when = new long[rows];
        for (var i = 0; i < rows; i++)
        {
            x[i] = shift + Math.Sqrt(-2 * Math.Log(1.0 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());
            spiky[i] = (i % 50) switch { 0 => double.NaN, 1 => double.PositiveInfinity, _ => Math.Round(rng.NextDouble() * 40) / 4 };
            color[i] = i % 9 == 0 ? null : (rng.Next(4) + (shift > 0 ? 1 : 0)) switch { 0 => "red", 1 => "green", 2 => "blue", 3 => "γκρι", _ => "purple" };
            code[i] = rng.Next(1, 6);
            amount[i] = Math.Round(rng.NextDouble() * 1000, 2);
            when[i] = new DateTime(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc).AddHours(rng.Next(48)).Ticks;
        }
        var whenColumn = new TimestampColumn("when", when, utc: true);
        var table = new DataTable(rows).Add(new NumericColumn("x", x)).Add(new NumericColumn("spiky", spiky)).Add(new TextColumn("color", color));
        if (asFile)
        {
            return table.Add(new NumericColumn("code", code))
                .Add(new TextColumn("amount", [.. amount.Select(a => a.ToString("R", System.Globalization.CultureInfo.InvariantCulture))]))
                .Add(whenColumn)
                .Add(new NumericColumn("extra", [.. x]));
        }
        return table.Add(new TextColumn("code", [.. code.Select(c => c.ToString("R", System.Globalization.CultureInfo.InvariantCulture))]))
            .Add(new NumericColumn("amount", amount))
            .Add(whenColumn.ToText())
            .Add(new NumericColumn("gone", [.. x]));
    }

    private static async Task WriteAsync(DataTable table, string path, int rowGroup)
    {
        await using var stream = File.Create(path);
        var columns = table.Columns.Select(c => new ParquetColumn(c.Name, c switch
        {
            NumericColumn => ParquetColumnKind.Double,
            TimestampColumn => ParquetColumnKind.Timestamp,
            _ => ParquetColumnKind.Text,
        }, true)).ToArray();
        using var writer = new ParquetTableWriter(stream, columns);
        for (var start = 0; start < table.RowCount; start += rowGroup)
        {
            var n = Math.Min(rowGroup, table.RowCount - start);
            writer.WriteRowGroup(table.Take([.. Enumerable.Range(start, n)]));
        }
        writer.Finish();
    }

    private string Package(DataTable training)
    {
        var profile = DatasetProfile.Build(training);
        using var writer = new PackageWriter(_dir.File("model"));
        File.WriteAllBytes(writer.PathOf("model.onnx"), [1]);
        writer.WriteJson(ModelPackage.SignatureFile, new ModelSignature
        {
            Task = ModelTask.Regression,
            Inputs = [.. profile.Columns.Select(c => new InputField { Name = c.Name, Type = c.Kind })],
            Outputs = [new OutputField { Name = "score", Type = "float" }],
        });
        writer.WriteJson(ModelPackage.MetadataFile, new PackageMetadata
        {
            Name = "columns",
            Task = ModelTask.Regression,
            CreatedAt = DateTimeOffset.UnixEpoch,
            Runtime = new RuntimeInfo { Kiln = "test", Dotnet = Environment.Version.ToString(), Os = "test" },
        });
        writer.WriteJson(ModelPackage.ProfileFile, new PackageProfile { Inputs = profile, Outputs = new DatasetProfile() });
        return writer.Commit("columns", ModelTask.Regression, ModelRuntime.Onnx, "model.onnx", DateTimeOffset.UnixEpoch);
    }
}
