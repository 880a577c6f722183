using System.Globalization;
using Kiln.Core;
using Kiln.Core.Data;

namespace Kiln.Monitoring.Feedback;

/// <summary>
/// Bulk import of labels from a CSV or Parquet file: every row is checked first, and the labels are written as one
/// feedback file only when the whole file is good, so a bad file writes nothing.
/// </summary>
public static class FeedbackImport
{
    public const string DefaultIdColumn = "request_id";
    public const string DefaultLabelColumn = "label";
    public const string DefaultRowColumn = "row";

    /// <summary>Reads and validates the file; throws a <see cref="KilnException"/> naming the row and column at fault.</summary>
    public static async Task<List<FeedbackItem>> ReadAsync(string path, string idColumn = DefaultIdColumn, string labelColumn = DefaultLabelColumn,
        string? rowColumn = null, CancellationToken ct = default)
    {
        if (!File.Exists(path)) throw new KilnException($"{path}: no such file");
        if (!DataSources.IsDataFile(path)) throw new KilnException($"{path}: not a .csv or .parquet file");
        var names = await TableReader.ReadColumnNamesAsync(path, ct).ConfigureAwait(false);
        void Need(string column, string option)
        {
            if (!names.Contains(column))
                throw new KilnException($"{path}: no column '{column}' ({option}); the file has: {string.Join(", ", names)}");
        }
        Need(idColumn, "--id-column");
        Need(labelColumn, "--label-column");
        // The row column is optional unless named: without it every label is for row 0 of its request.
        var rowName = rowColumn ?? (names.Contains(DefaultRowColumn) ? DefaultRowColumn : null);
        if (rowColumn is not null) Need(rowColumn, "--row-column");
        var requests = new List<ColumnRequest> { new(idColumn, ColumnType.Text), new(labelColumn, ColumnType.Text) };
        if (rowName is not null && rowName != idColumn && rowName != labelColumn) requests.Add(new(rowName, ColumnType.Text));
        var table = await TableReader.ReadAllAsync([path], requests, null, ct).ConfigureAwait(false);
        if (table.RowCount == 0) throw new KilnException($"{path}: the file has no rows");
        var ids = table.Text(idColumn).Values;
        var labels = table.Text(labelColumn).Values;
        var rows = rowName is null ? null : table.Text(rowName).Values;
        var items = new List<FeedbackItem>(table.RowCount);
        for (var i = 0; i < table.RowCount; i++)
        {
            var where = $"{path}: row {i + 1}";
            var id = ids[i];
            if (string.IsNullOrWhiteSpace(id)) throw new KilnException($"{where}, column '{idColumn}': the request id is empty");
            var label = labels[i];
            if (string.IsNullOrEmpty(label)) throw new KilnException($"{where}, column '{labelColumn}': the label is empty");
            var row = 0;
            if (rows is not null)
            {
                var text = rows[i];
                if (string.IsNullOrWhiteSpace(text)) throw new KilnException($"{where}, column '{rowName}': the row index is empty");
                if (!int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out row))
                {
                    // Parquet integers arrive as numbers ("3"); floats holding whole numbers ("3.0") are accepted too.
                    if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) || d != Math.Floor(d) || d > int.MaxValue || d < int.MinValue)
                        throw new KilnException($"{where}, column '{rowName}': '{text}' is not an integer row index");
                    row = (int)d;
                }
                if (row < 0) throw new KilnException($"{where}, column '{rowName}': the row index {row} is negative");
            }
            items.Add(new FeedbackItem(id, row, label));
        }
        return items;
    }

    /// <summary>Validates the file, then stores all its labels as one file; returns the count.</summary>
    public static async Task<int> ImportAsync(FeedbackStore store, string path, string idColumn = DefaultIdColumn, string labelColumn = DefaultLabelColumn,
        string? rowColumn = null, CancellationToken ct = default)
    {
        var items = await ReadAsync(path, idColumn, labelColumn, rowColumn, ct).ConfigureAwait(false);
        await store.AppendAsync(items, null, ct).ConfigureAwait(false);
        return items.Count;
    }
}
