using Kiln.Core.Data;
using Kiln.Scoring;
using Kiln.Testing;
using Kiln.Training;

namespace Kiln.Batch.Tests;

/// <summary>
/// One small model for every batch test: the quickstart fraud spec (binary; numeric and categorical
/// inputs, one nullable input) with 10 trees, trained by Kiln.Training, and the quickstart rows.
/// </summary>
public sealed class BatchFixture : IAsyncLifetime
{
    private readonly TempDir _dir = new("kiln-batch-model");

    public static readonly ColumnRequest[] Columns =
    [
        new("transaction_id", ColumnType.Text),
        new("amount", ColumnType.Numeric),
        new("hour", ColumnType.Numeric),
        new("merchant_category", ColumnType.Text),
        new("card_present", ColumnType.Text),
        new("distance_from_home_km", ColumnType.Numeric),
        new("customer_age", ColumnType.Numeric),
    ];

    public string Package => Path.Combine(_dir.Path, "fraud");

    public string Csv => QuickstartSpec.Transactions;

    /// <summary>The quickstart rows (8,000).</summary>
    public DataTable Rows { get; private set; } = new();

    public async Task InitializeAsync()
    {
        var spec = TrainingSpec.Parse(QuickstartSpec.Yaml(), "test-spec", _dir.Path);
        await Trainer.TrainAsync(spec, Package);
        Rows = await TableReader.ReadAllAsync([Csv], Columns);
    }

    public Task DisposeAsync()
    {
        _dir.Dispose();
        return Task.CompletedTask;
    }

    /// <summary>What the scorer predicts for every row of a table (the oracle for batch output).</summary>
    public Prediction[] Expected(DataTable table)
    {
        using var scorer = Scorers.Open(Package);
        return scorer.ScoreAll(table);
    }

    /// <summary>The rows repeated <paramref name="copies"/> times, ids made unique as "id#copy".</summary>
    public DataTable Repeat(int copies)
    {
        var parts = new List<DataTable>();
        for (var c = 0; c < copies; c++)
        {
            var all = Enumerable.Range(0, Rows.RowCount).ToArray();
            var t = Rows.Take(all);
            var ids = t.Text("transaction_id").Values;
            for (var i = 0; i < ids.Length; i++) ids[i] = $"{ids[i]}#{c}";
            parts.Add(t);
        }
        return DataTable.Concat(parts);
    }

    /// <summary>Writes a table as Parquet with row groups of <paramref name="rowGroupRows"/> rows (numbers as nullable doubles).</summary>
    public static async Task WriteParquetAsync(DataTable table, string path, int rowGroupRows)
    {
        var columns = table.Columns.Select(c => new ParquetColumn(c.Name, c is NumericColumn ? ParquetColumnKind.Double : ParquetColumnKind.Text, true)).ToArray();
        await using var stream = File.Create(path);
        using var writer = new ParquetTableWriter(stream, columns);
        for (var start = 0; start < table.RowCount; start += rowGroupRows)
        {
            var n = Math.Min(rowGroupRows, table.RowCount - start);
            writer.WriteRowGroup(table.Take([.. Enumerable.Range(start, n)]));
        }
        writer.Finish();
    }

    /// <summary>Writes a table as CSV (invariant numbers, empty cells for missing values).</summary>
    public static void WriteCsv(DataTable table, string path)
    {
        using var w = new StreamWriter(path);
        w.Write(string.Join(',', table.Columns.Select(c => c.Name)) + "\n");
        for (var r = 0; r < table.RowCount; r++)
        {
            w.Write(string.Join(',', table.Columns.Select(c => c switch
            {
                NumericColumn n => double.IsNaN(n.Values[r]) ? "" : n.Values[r].ToString("R", System.Globalization.CultureInfo.InvariantCulture),
                TextColumn t => t.Values[r] ?? "",
                _ => "",
            })));
            w.Write('\n');
        }
    }

    /// <summary>Reads every part of an output directory, in part-name order, as one table.</summary>
    public static async Task<DataTable> ReadPartsAsync(string directory, params ColumnRequest[] columns)
    {
        var parts = new List<DataTable>();
        foreach (var file in Directory.GetFiles(directory, "part-*.parquet").Order(StringComparer.Ordinal))
        {
            await foreach (var t in ParquetTable.ReadRowGroupsAsync(file, columns)) parts.Add(t);
        }
        return parts.Count == 0 ? new DataTable(0) : DataTable.Concat(parts);
    }

    public static readonly ColumnRequest[] OutputColumns =
    [
        new("transaction_id", ColumnType.Text),
        new("prediction", ColumnType.Text),
        new("probability", ColumnType.Numeric),
    ];
}

[CollectionDefinition("batch")]
public sealed class BatchCollection : ICollectionFixture<BatchFixture>;
