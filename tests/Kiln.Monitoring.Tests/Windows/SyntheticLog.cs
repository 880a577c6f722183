using System.Globalization;
using Parquet;
using Parquet.Schema;

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
        var fields = new List<DataField>
        {
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
        };
        foreach (var c in probabilityClasses ?? []) fields.Add(new DataField<double?>("probability_" + c));
        fields.Add(new DataField<string>("flags"));
        await using var stream = File.Create(path);
        await using var writer = await ParquetWriter.CreateAsync(new ParquetSchema(fields), stream);
        for (var start = 0; start < rows.Count; start += rowGroupSize)
        {
            var part = rows.Skip(start).Take(rowGroupSize).ToList();
            using var rg = writer.CreateRowGroup();
            var f = 0;
            await rg.WriteAsync(fields[f++], part.Select(r => r.RequestId).ToArray(), null);
            await rg.WriteAsync<DateTime>(fields[f++], part.Select(r => r.Timestamp).ToArray().AsMemory(), null, null, default);
            await rg.WriteAsync(fields[f++], part.Select(_ => model).ToArray(), null);
            await rg.WriteAsync(fields[f++], part.Select(_ => version).ToArray(), null);
            await rg.WriteAsync(fields[f++], part.Select(_ => "native").ToArray(), null);
            await rg.WriteAsync<int>(fields[f++], part.Select(r => r.Row).ToArray().AsMemory(), null, null, default);
            await rg.WriteAsync<double>(fields[f++], part.Select(r => r.X).ToArray().AsMemory(), null, null, default);
            await rg.WriteAsync(fields[f++], part.Select(r => r.Color).ToArray()!, null);
            await rg.WriteAsync(fields[f++], part.Select(r => r.Prediction).ToArray()!, null);
            await rg.WriteAsync<double>(fields[f++], part.Select(r => r.Value).ToArray().AsMemory(), null, null, default);
            for (var c = 0; c < (probabilityClasses?.Length ?? 0); c++)
            {
                var cc = c;
                await rg.WriteAsync<double>(fields[f++], part.Select(r => r.Probabilities is { } p ? p[cc] : (double?)null).ToArray().AsMemory(), null, null, default);
            }
            await rg.WriteAsync(fields[f++], part.Select(_ => (string?)null).ToArray()!, null);
        }
        return path;
    }
}
