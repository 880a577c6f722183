using System.Globalization;
using Kiln.Core.Data;

namespace Kiln.Monitoring.Tests.Windows;

/// <summary>One logged row as kiln serve writes it (docs/serving.md, "Prediction log").</summary>
internal sealed record LogRow(string RequestId, int Row, DateTime Timestamp, double? X, string? Color, string? Prediction, double Value, double[]? Probabilities = null);

/// <summary>Writes prediction log files with kiln serve's schema, for tests that need a log with known content.</summary>
internal static class SyntheticLog
{
    public static async Task<string> WriteAsync(string logDir, string model, string version, IReadOnlyList<LogRow> rows, string[]? probabilityClasses = null,
        string? fileName = null, int rowGroupSize = 1000)
    {
        var date = rows[0].Timestamp.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
        var dir = Path.Combine(logDir, "model=" + model, "version=" + version, "date=" + date);
        Directory.CreateDirectory(dir);
        var path = Path.Combine(dir, fileName ?? $"part-{Guid.NewGuid():N}.parquet");
        var columns = new List<ParquetColumn>
        {
            new("request_id", ParquetColumnKind.Text, true),
            new("timestamp", ParquetColumnKind.Timestamp, false),
            new("model", ParquetColumnKind.Text, true),
            new("version", ParquetColumnKind.Text, true),
            new("protocol", ParquetColumnKind.Text, true),
            new("row", ParquetColumnKind.Int32, false),
            new("input_x", ParquetColumnKind.Double, true),
            new("input_color", ParquetColumnKind.Text, true),
            new("prediction", ParquetColumnKind.Text, true),
            new("value", ParquetColumnKind.Double, false),
        };
        foreach (var c in probabilityClasses ?? []) columns.Add(new("probability_" + c, ParquetColumnKind.Double, true));
        columns.Add(new("flags", ParquetColumnKind.Text, true));
        await using var stream = File.Create(path);
        using var writer = new ParquetTableWriter(stream, columns);
        for (var start = 0; start < rows.Count; start += rowGroupSize)
        {
            var part = rows.Skip(start).Take(rowGroupSize).ToList();
            writer.BeginRowGroup(part.Count);
            writer.WriteText(part.Select(r => (string?)r.RequestId).ToArray());
            writer.WriteTimestamp(part.Select(r => r.Timestamp).ToArray());
            writer.WriteText(part.Select(_ => (string?)model).ToArray());
            writer.WriteText(part.Select(_ => (string?)version).ToArray());
            writer.WriteText(part.Select(_ => (string?)"native").ToArray());
            writer.WriteInt32(part.Select(r => r.Row).ToArray());
            writer.WriteDouble(part.Select(r => r.X ?? double.NaN).ToArray());
            writer.WriteText(part.Select(r => r.Color).ToArray());
            writer.WriteText(part.Select(r => r.Prediction).ToArray());
            writer.WriteDouble(part.Select(r => r.Value).ToArray());
            for (var c = 0; c < (probabilityClasses?.Length ?? 0); c++)
            {
                var cc = c;
                writer.WriteDouble(part.Select(r => r.Probabilities is { } p ? p[cc] : double.NaN).ToArray());
            }
            writer.WriteText(part.Select(_ => (string?)null).ToArray());
            writer.EndRowGroup();
        }
        writer.Finish();
        return path;
    }
}
