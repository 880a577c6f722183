using System.Globalization;
using Kiln.Core.Data;
using Kiln.Core.Profiling;

namespace Kiln.Monitoring.Continuous;

/// <summary>
/// Reads the rows of <c>kiln serve</c>'s prediction log that fall in a time window, for the reference's input
/// columns (stored as <c>input_NAME</c>), under the input's own name. Only complete files are read
/// (LOG_DIR/model=M/version=*/date=YYYY-MM-DD/*.parquet, every version); partitions of other dates and files last
/// written before the window starts are skipped without being opened.
/// </summary>
/// <remarks>A small reader for the continuous monitor; the monitoring data branch's window reader may replace it.</remarks>
public static class PredictionLogWindow
{
    private const string InputPrefix = "input_";

    /// <summary>The directory of a model's log: the name as the log writer spells it ('/', '\\', '=' and control characters become '_').</summary>
    public static string ModelDirectory(string logDirectory, string model)
    {
        var chars = model.ToCharArray();
        for (var i = 0; i < chars.Length; i++) if (chars[i] is '/' or '\\' or '=' || char.IsControl(chars[i])) chars[i] = '_';
        return Path.Combine(logDirectory, "model=" + new string(chars));
    }

    /// <summary>The complete log files that may hold rows of [start, end).</summary>
    public static IReadOnlyList<string> Files(string logDirectory, string model, DateTimeOffset start, DateTimeOffset end)
    {
        var root = ModelDirectory(logDirectory, model);
        var files = new List<string>();
        if (!Directory.Exists(root)) return files;
        var firstDate = start.UtcDateTime.Date;
        var lastDate = end.UtcDateTime.Date;
        foreach (var version in Directory.EnumerateDirectories(root, "version=*"))
        {
            foreach (var dateDir in Directory.EnumerateDirectories(version, "date=*"))
            {
                var text = Path.GetFileName(dateDir)["date=".Length..];
                if (!DateTime.TryParseExact(text, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var date)) continue;
                if (date < firstDate || date > lastDate) continue;
                foreach (var file in Directory.EnumerateFiles(dateDir, "*.parquet"))
                {
                    if (Path.GetFileName(file).StartsWith('.')) continue; // a file being written
                    if (File.GetLastWriteTimeUtc(file) < start.UtcDateTime) continue; // every row in it is older
                    files.Add(file);
                }
            }
        }
        files.Sort(StringComparer.Ordinal);
        return files;
    }

    /// <summary>Reads the window's rows of the reference's columns (absent columns are missing values).</summary>
    public static async Task<DataTable> ReadAsync(string logDirectory, string model, DatasetProfile reference, DateTimeOffset start, DateTimeOffset end,
        CancellationToken cancellationToken)
    {
        var columns = reference.Columns;
        var numbers = new List<double>?[columns.Count];
        var texts = new List<string?>?[columns.Count];
        for (var c = 0; c < columns.Count; c++)
        {
            if (columns[c].Kind == ColumnKind.Numeric) numbers[c] = [];
            else texts[c] = [];
        }
        var rows = 0;
        foreach (var file in Files(logDirectory, model, start, end))
        {
            var names = new HashSet<string>(await TableReader.ReadColumnNamesAsync(file, cancellationToken).ConfigureAwait(false), StringComparer.Ordinal);
            if (!names.Contains("timestamp")) continue;
            var requests = new List<ColumnRequest> { new("timestamp", ColumnType.Text) };
            foreach (var c in columns)
            {
                if (names.Contains(InputPrefix + c.Name))
                    requests.Add(new ColumnRequest(InputPrefix + c.Name, c.Kind == ColumnKind.Numeric ? ColumnType.Numeric : ColumnType.Text));
            }
            await foreach (var batch in TableReader.ReadBatchesAsync(file, requests, 1 << 16, cancellationToken).ConfigureAwait(false))
            {
                var stamps = batch.Text("timestamp").Values;
                var sources = new Column?[columns.Count];
                for (var c = 0; c < columns.Count; c++) sources[c] = batch.Find(InputPrefix + columns[c].Name);
                for (var r = 0; r < batch.RowCount; r++)
                {
                    if (!DateTimeOffset.TryParse(stamps[r], CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var at)) continue;
                    if (at < start || at >= end) continue;
                    rows++;
                    for (var c = 0; c < columns.Count; c++)
                    {
                        var source = sources[c];
                        if (numbers[c] is { } n) n.Add(source is NumericColumn nc ? nc.Values[r] : double.NaN);
                        else texts[c]!.Add(source is TextColumn tc ? tc.Values[r] : null);
                    }
                }
            }
        }
        var table = new DataTable(rows);
        for (var c = 0; c < columns.Count; c++)
        {
            table.Add(numbers[c] is { } n ? new NumericColumn(columns[c].Name, [.. n]) : new TextColumn(columns[c].Name, [.. texts[c]!]));
        }
        return table;
    }
}
