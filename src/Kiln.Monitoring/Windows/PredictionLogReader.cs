using Kiln.Core;
using Kiln.Core.Data;
using Kiln.Core.PredictionLog;

namespace Kiln.Monitoring.Windows;

/// <summary>
/// The rows of one row group of the prediction log that fall in a window: request ids, row indexes,
/// timestamps, the inputs under their own names (the log's input_ prefix dropped), and the outputs.
/// </summary>
public sealed class LogBatch
{
    public required string File { get; init; }

    public required string Version { get; init; }

    public required int Rows { get; init; }

    public required string[] RequestIds { get; init; }

    /// <summary>Index of each row within its request.</summary>
    public required int[] RowIndexes { get; init; }

    /// <summary>UTC times of scoring.</summary>
    public required DateTime[] Timestamps { get; init; }

    /// <summary>The inputs: numbers as <see cref="NumericColumn"/> (NaN = missing), categories as <see cref="TextColumn"/>.</summary>
    public required DataTable Inputs { get; init; }

    /// <summary>Predicted class labels (null for regression).</summary>
    public required string?[] Predictions { get; init; }

    /// <summary>The log's value: positive-class probability (binary), winner's probability (multiclass), prediction (regression).</summary>
    public required double[] Values { get; init; }

    /// <summary>Multiclass only: each class's probability (NaN when missing), by class label.</summary>
    public required IReadOnlyList<KeyValuePair<string, double[]>> Probabilities { get; init; }
}

/// <summary>
/// Reads a window of the prediction log written by kiln serve (docs/serving.md): partitions outside the window's dates
/// are never opened, row groups whose timestamp range misses the window are skipped, and the rest are read one row group
/// at a time, so memory stays bounded by the row group size whatever the window holds. Text and double columns (ids,
/// inputs, predictions, values, probabilities) are read by Kiln's one Parquet reader (<see cref="ParquetFile"/>), as
/// kiln drift reads them; row groups are skipped by their timestamp statistics.
/// </summary>
public static class PredictionLogReader
{
    private const string InputPrefix = PredictionLogLayout.InputPrefix;
    private const string ProbabilityPrefix = PredictionLogLayout.ProbabilityPrefix;

    /// <summary>The window's rows, one batch per row group (only the rows inside [from, to)).</summary>
    public static async IAsyncEnumerable<LogBatch> ReadAsync(LogWindow window,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct = default)
    {
        foreach (var file in PredictionLogFiles.Find(window))
        {
            await foreach (var batch in ReadFileAsync(file, window.From.UtcDateTime, window.To.UtcDateTime, ct).ConfigureAwait(false))
                yield return batch;
        }
    }

    /// <summary>Reads the whole window into memory (for small windows and tests): every batch concatenated.</summary>
    public static async Task<LogBatch> ReadAllAsync(LogWindow window, CancellationToken ct = default)
    {
        var batches = new List<LogBatch>();
        await foreach (var b in ReadAsync(window, ct).ConfigureAwait(false)) batches.Add(b);
        return Concat(batches);
    }

    /// <summary>The rows of one log file inside [from, to).</summary>
    public static async IAsyncEnumerable<LogBatch> ReadFileAsync(LogFile file, DateTime from, DateTime to,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct = default)
    {
        await Task.Yield(); // reading is synchronous; do not run it on the caller's stack
        using var reader = ParquetFile.Open(file.Path);
        ParquetField Required(string name) => reader.Find(name) is { } f
            ? (f.Type == ParquetValueType.Unsupported ? reader.Readable(name) : f)
            : throw new KilnException($"{file.Path}: column '{name}' is missing; is this a kiln serve prediction log?");
        var requestId = Required(PredictionLogLayout.RequestId);
        var timestamp = Required(PredictionLogLayout.Timestamp);
        if (timestamp.Type != ParquetValueType.Timestamp) throw new KilnException($"{file.Path}: column '{timestamp.Name}' is not a timestamp");
        var row = reader.Find(PredictionLogLayout.Row);
        var prediction = reader.Find(PredictionLogLayout.Prediction);
        var value = Required(PredictionLogLayout.Value);
        var inputs = new List<ParquetField>();
        var probabilities = new List<ParquetField>();
        foreach (var f in reader.Fields)
        {
            if (f.Name.StartsWith(InputPrefix, StringComparison.Ordinal)) inputs.Add(reader.Readable(f.Name));
            else if (f.Name.StartsWith(ProbabilityPrefix, StringComparison.Ordinal)) probabilities.Add(reader.Readable(f.Name));
        }

        for (var g = 0; g < reader.RowGroupCount; g++)
        {
            ct.ThrowIfCancellationRequested();
            var rows = checked((int)reader.RowGroupRows[g]);
            if (rows == 0) continue;
            if (reader.TimestampRange(g, timestamp) is { } range && (Utc(range.Max) < from || Utc(range.Min) >= to)) continue;
            var times = reader.ReadTimestamps(g, timestamp);
            for (var i = 0; i < rows; i++) times[i] = Utc(times[i]);
            // Keep the rows inside the window; most row groups are wholly in or out.
            var keep = new int[rows];
            var kept = 0;
            for (var i = 0; i < rows; i++)
            {
                var t = times[i];
                if (t >= from && t < to) keep[kept++] = i;
            }
            if (kept == 0) continue;
            var all = kept == rows;

            var ids = Select(reader.ReadText(g, requestId), keep, kept, all);
            var rowIndexes = row is null ? new int[kept] : Select(Ints(reader.ReadNumbers(g, row)), keep, kept, all);
            var labels = prediction is null ? new string?[kept] : Select(reader.ReadText(g, prediction), keep, kept, all);
            var values = Select(Numbers(reader, g, value), keep, kept, all);
            var table = new DataTable(kept);
            foreach (var f in inputs)
            {
                var name = f.Name[InputPrefix.Length..];
                if (f.Type is ParquetValueType.Text or ParquetValueType.Timestamp) table.Add(new TextColumn(name, Select(reader.ReadText(g, f), keep, kept, all)));
                else table.Add(new NumericColumn(name, Select(reader.ReadNumbers(g, f), keep, kept, all)));
            }
            var probs = new List<KeyValuePair<string, double[]>>(probabilities.Count);
            foreach (var f in probabilities)
                probs.Add(new(f.Name[ProbabilityPrefix.Length..], Select(Numbers(reader, g, f), keep, kept, all)));
            yield return new LogBatch
            {
                File = file.Path,
                Version = file.Version,
                Rows = kept,
                RequestIds = ids!,
                RowIndexes = rowIndexes,
                Timestamps = Select(times, keep, kept, all),
                Inputs = table,
                Predictions = labels,
                Values = values,
                Probabilities = probs,
            };
        }
    }

    /// <summary>A log timestamp as UTC: a timestamp without a time zone is taken as UTC.</summary>
    internal static DateTime Utc(DateTime t) => t.Kind == DateTimeKind.Local ? t.ToUniversalTime() : DateTime.SpecifyKind(t, DateTimeKind.Utc);

    /// <summary>A column as numbers; text that is not a number becomes NaN (a log's outputs are never refused cell by cell).</summary>
    private static double[] Numbers(ParquetFile reader, int group, ParquetField field)
    {
        if (field.Type != ParquetValueType.Text) return reader.ReadNumbers(group, field);
        var s = reader.ReadText(group, field);
        var d = new double[s.Length];
        for (var i = 0; i < d.Length; i++) d[i] = NumericColumn.ParseOrNaN(s[i]);
        return d;
    }

    internal static int[] Ints(double[] d)
    {
        var result = new int[d.Length];
        for (var i = 0; i < d.Length; i++) result[i] = double.IsNaN(d[i]) ? 0 : (int)d[i];
        return result;
    }

    private static T[] Select<T>(T[] values, int[] index, int count, bool all)
    {
        if (all) return values;
        var result = new T[count];
        for (var i = 0; i < count; i++) result[i] = values[index[i]];
        return result;
    }

    /// <summary>Concatenates batches (columns a batch lacks are filled with missing values).</summary>
    public static LogBatch Concat(IReadOnlyList<LogBatch> batches)
    {
        var n = 0;
        foreach (var b in batches) n += b.Rows;
        var ids = new string[n];
        var rowIndexes = new int[n];
        var times = new DateTime[n];
        var labels = new string?[n];
        var values = new double[n];
        var inputNames = new List<(string Name, bool Text)>();
        var probNames = new List<string>();
        foreach (var b in batches)
        {
            foreach (var c in b.Inputs.Columns) if (!inputNames.Exists(x => x.Name == c.Name)) inputNames.Add((c.Name, c is TextColumn));
            foreach (var p in b.Probabilities) if (!probNames.Contains(p.Key)) probNames.Add(p.Key);
        }
        var inputs = new Array[inputNames.Count];
        for (var i = 0; i < inputs.Length; i++)
        {
            if (inputNames[i].Text) inputs[i] = new string?[n];
            else
            {
                var d = new double[n];
                Array.Fill(d, double.NaN);
                inputs[i] = d;
            }
        }
        var probs = new double[probNames.Count][];
        for (var i = 0; i < probs.Length; i++)
        {
            probs[i] = new double[n];
            Array.Fill(probs[i], double.NaN);
        }
        var at = 0;
        foreach (var b in batches)
        {
            b.RequestIds.CopyTo(ids, at);
            b.RowIndexes.CopyTo(rowIndexes, at);
            b.Timestamps.CopyTo(times, at);
            b.Predictions.CopyTo(labels, at);
            b.Values.CopyTo(values, at);
            for (var i = 0; i < inputNames.Count; i++)
            {
                switch (b.Inputs.Find(inputNames[i].Name))
                {
                    case NumericColumn nc when inputs[i] is double[] d: nc.Values.AsSpan(0, b.Rows).CopyTo(d.AsSpan(at)); break;
                    case TextColumn tc when inputs[i] is string?[] s: tc.Values.AsSpan(0, b.Rows).CopyTo(s.AsSpan(at)); break;
                    case NumericColumn nc when inputs[i] is string?[] s:
                        for (var r = 0; r < b.Rows; r++) s[at + r] = double.IsNaN(nc.Values[r]) ? null : nc.Values[r].ToString("R", System.Globalization.CultureInfo.InvariantCulture);
                        break;
                    case TextColumn tc when inputs[i] is double[] d:
                        for (var r = 0; r < b.Rows; r++) d[at + r] = NumericColumn.ParseOrNaN(tc.Values[r]);
                        break;
                }
            }
            foreach (var p in b.Probabilities) p.Value.CopyTo(probs[probNames.IndexOf(p.Key)], at);
            at += b.Rows;
        }
        var table = new DataTable(n);
        for (var i = 0; i < inputNames.Count; i++)
            table.Add(inputs[i] is double[] d ? new NumericColumn(inputNames[i].Name, d) : new TextColumn(inputNames[i].Name, (string?[])inputs[i]));
        var probabilities = new List<KeyValuePair<string, double[]>>();
        for (var i = 0; i < probNames.Count; i++) probabilities.Add(new(probNames[i], probs[i]));
        return new LogBatch
        {
            File = batches.Count == 1 ? batches[0].File : "",
            Version = batches.Count > 0 && batches.All(b => b.Version == batches[0].Version) ? batches[0].Version : "",
            Rows = n,
            RequestIds = ids,
            RowIndexes = rowIndexes,
            Timestamps = times,
            Inputs = table,
            Predictions = labels,
            Values = values,
            Probabilities = probabilities,
        };
    }
}
