using Kiln.Core;
using Kiln.Core.Data;
using Kiln.Core.PredictionLog;
using Parquet;
using Parquet.Schema;

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
/// inputs, predictions, values, probabilities) go through Kiln's own Parquet decoder, as kiln drift reads them
/// (<see cref="ParquetTable.ReadTextChunkAsync"/>); the file's metadata, statistics, timestamps and other column
/// types through Parquet.Net.
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
        ParquetReader reader;
        try
        {
            reader = await ParquetReader.CreateAsync(file.Path, null, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or InvalidDataException or NotSupportedException or ArgumentException or InvalidOperationException)
        {
            throw new KilnException($"{file.Path}: not a readable Parquet file ({e.Message})", e);
        }
        await using var readerScope = reader.ConfigureAwait(false);
        // Kiln's decoder reads column chunks by positional reads of this handle.
        using var handle = File.OpenHandle(file.Path, FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.RandomAccess);
        var fields = reader.Schema.GetDataFields();
        DataField Required(string name) => Array.Find(fields, f => f.Name == name)
            ?? throw new KilnException($"{file.Path}: column '{name}' is missing; is this a kiln serve prediction log?");
        var requestId = Required(PredictionLogLayout.RequestId);
        var timestamp = Required(PredictionLogLayout.Timestamp);
        var row = Array.Find(fields, f => f.Name == PredictionLogLayout.Row);
        var prediction = Array.Find(fields, f => f.Name == PredictionLogLayout.Prediction);
        var value = Required(PredictionLogLayout.Value);
        var inputs = new List<DataField>();
        var probabilities = new List<DataField>();
        foreach (var f in fields)
        {
            if (f.Name.StartsWith(InputPrefix, StringComparison.Ordinal)) inputs.Add(f);
            else if (f.Name.StartsWith(ProbabilityPrefix, StringComparison.Ordinal)) probabilities.Add(f);
        }

        var kilnWritten = reader.Metadata?.CreatedBy?.StartsWith(Kiln.Core.Data.ParquetFlatWriter.CreatedBy, StringComparison.Ordinal) == true;
        for (var g = 0; g < reader.RowGroupCount; g++)
        {
            ct.ThrowIfCancellationRequested();
            using var rg = reader.OpenRowGroupReader(g);
            var rows = checked((int)rg.RowCount);
            if (rows == 0 || OutsideByStatistics(rg, timestamp, kilnWritten, from, to)) continue;
            var times = await LogColumns.ReadTimesAsync(rg, timestamp, rows, file.Path, ct).ConfigureAwait(false);
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

            var chunk = new ChunkSource(rg, rows, handle, file.Path, g);
            var ids = Select(await StringsAsync(chunk, requestId, ct).ConfigureAwait(false), keep, kept, all);
            var rowIndexes = row is null ? new int[kept] : Select(await LogColumns.ReadIntsAsync(rg, row, rows, file.Path, ct).ConfigureAwait(false), keep, kept, all);
            var labels = prediction is null ? new string?[kept] : Select(await StringsAsync(chunk, prediction, ct).ConfigureAwait(false), keep, kept, all);
            var values = Select(await DoublesAsync(chunk, value, ct).ConfigureAwait(false), keep, kept, all);
            var table = new DataTable(kept);
            foreach (var f in inputs)
            {
                var name = f.Name[InputPrefix.Length..];
                if (LogColumns.IsText(f)) table.Add(new TextColumn(name, Select(await StringsAsync(chunk, f, ct).ConfigureAwait(false), keep, kept, all)));
                else table.Add(new NumericColumn(name, Select(await DoublesAsync(chunk, f, ct).ConfigureAwait(false), keep, kept, all)));
            }
            var probs = new List<KeyValuePair<string, double[]>>(probabilities.Count);
            foreach (var f in probabilities)
                probs.Add(new(f.Name[ProbabilityPrefix.Length..], Select(await DoublesAsync(chunk, f, ct).ConfigureAwait(false), keep, kept, all)));
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

    /// <summary>
    /// True when the row group's min/max timestamp statistics show it holds no row of the window. Parquet.Net
    /// returns INT64 timestamp statistics as raw numbers; they are trusted (as microseconds) only in files Kiln's
    /// own writer made, whose unit is known (statistics Parquet.Net wrote were seen in another unit than the column's).
    /// </summary>
    private static bool OutsideByStatistics(ParquetRowGroupReader rg, DataField timestamp, bool kilnWritten, DateTime from, DateTime to)
    {
        try
        {
            var stats = rg.GetStatistics(timestamp);
            if (stats?.MinValue is DateTime min && stats.MaxValue is DateTime max)
                return LogColumns.Utc(max) < from || LogColumns.Utc(min) >= to;
            if (kilnWritten && stats?.MinValue is long minMicros && stats.MaxValue is long maxMicros)
                return DateTime.UnixEpoch.AddTicks(maxMicros * 10) < from || DateTime.UnixEpoch.AddTicks(minMicros * 10) >= to;
        }
        catch (Exception e) when (e is InvalidOperationException or NotSupportedException or ArgumentException or InvalidCastException)
        {
            // No usable statistics: read the timestamps.
        }
        return false;
    }

    /// <summary>One row group of one open log file, for the column reads.</summary>
    private readonly record struct ChunkSource(ParquetRowGroupReader Group, int Rows, Microsoft.Win32.SafeHandles.SafeFileHandle File, string Path, int Index);

    /// <summary>A column as text: text columns through Kiln's decoder, numbers formatted as before.</summary>
    private static async Task<string?[]> StringsAsync(ChunkSource c, DataField field, CancellationToken ct) =>
        LogColumns.IsText(field)
            ? await ParquetTable.ReadTextChunkAsync(c.Group, field, c.Rows, c.File, c.Path, c.Index, ct).ConfigureAwait(false)
            : await LogColumns.ReadStringsAsync(c.Group, field, c.Rows, ct).ConfigureAwait(false);

    /// <summary>A column as numbers: doubles and text (parsed; unparsable = NaN) through Kiln's decoder, other number types through Parquet.Net.</summary>
    private static async Task<double[]> DoublesAsync(ChunkSource c, DataField field, CancellationToken ct)
    {
        if (field.ClrType == typeof(double)) return await ParquetTable.ReadDoubleChunkAsync(c.Group, field, c.Rows, c.File, c.Path, c.Index, ct).ConfigureAwait(false);
        if (!LogColumns.IsText(field)) return await LogColumns.ReadDoublesAsync(c.Group, field, c.Rows, c.Path, ct).ConfigureAwait(false);
        var s = await ParquetTable.ReadTextChunkAsync(c.Group, field, c.Rows, c.File, c.Path, c.Index, ct).ConfigureAwait(false);
        var d = new double[c.Rows];
        for (var i = 0; i < d.Length; i++) d[i] = NumericColumn.ParseOrNaN(s[i]);
        return d;
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

/// <summary>Reads Parquet columns of any numeric, string or timestamp type as the log reader needs them.</summary>
internal static class LogColumns
{
    public static bool IsText(DataField f) => f.ClrType == typeof(string) || f.ClrType == typeof(ReadOnlyMemory<char>);

    public static async Task<string?[]> ReadStringsAsync(ParquetRowGroupReader rg, DataField field, int rows, CancellationToken ct)
    {
        if (IsText(field))
        {
            var s = new string?[rows];
            await rg.ReadAsync(field, s.AsMemory(), null, ct).ConfigureAwait(false);
            return s;
        }
        var d = await ReadDoublesAsync(rg, field, rows, "", ct).ConfigureAwait(false);
        var text = new string?[rows];
        for (var i = 0; i < rows; i++) text[i] = double.IsNaN(d[i]) ? null : d[i].ToString("R", System.Globalization.CultureInfo.InvariantCulture);
        return text;
    }

    public static async Task<double[]> ReadDoublesAsync(ParquetRowGroupReader rg, DataField field, int rows, string path, CancellationToken ct)
    {
        var t = field.ClrType;
        if (t == typeof(double)) return await ReadAs<double>(rg, field, rows, v => v, ct).ConfigureAwait(false);
        if (t == typeof(float)) return await ReadAs<float>(rg, field, rows, v => v, ct).ConfigureAwait(false);
        if (t == typeof(int)) return await ReadAs<int>(rg, field, rows, v => v, ct).ConfigureAwait(false);
        if (t == typeof(long)) return await ReadAs<long>(rg, field, rows, v => v, ct).ConfigureAwait(false);
        if (t == typeof(short)) return await ReadAs<short>(rg, field, rows, v => v, ct).ConfigureAwait(false);
        if (t == typeof(bool)) return await ReadAs<bool>(rg, field, rows, v => v ? 1 : 0, ct).ConfigureAwait(false);
        if (t == typeof(decimal)) return await ReadAs<decimal>(rg, field, rows, v => (double)v, ct).ConfigureAwait(false);
        if (IsText(field))
        {
            var s = await ReadStringsAsync(rg, field, rows, ct).ConfigureAwait(false);
            var d = new double[rows];
            for (var i = 0; i < rows; i++) d[i] = NumericColumn.ParseOrNaN(s[i]);
            return d;
        }
        throw new KilnException($"{path}: column '{field.Name}' has type {t.Name}, not a number");
    }

    public static async Task<int[]> ReadIntsAsync(ParquetRowGroupReader rg, DataField field, int rows, string path, CancellationToken ct)
    {
        var d = await ReadDoublesAsync(rg, field, rows, path, ct).ConfigureAwait(false);
        var result = new int[rows];
        for (var i = 0; i < rows; i++) result[i] = double.IsNaN(d[i]) ? 0 : (int)d[i];
        return result;
    }

    public static async Task<DateTime[]> ReadTimesAsync(ParquetRowGroupReader rg, DataField field, int rows, string path, CancellationToken ct)
    {
        if (field.ClrType != typeof(DateTime)) throw new KilnException($"{path}: column '{field.Name}' is not a timestamp");
        var result = new DateTime[rows];
        if (field.IsNullable)
        {
            var values = new DateTime?[rows];
            await rg.ReadAsync(field, values.AsMemory(), null, ct).ConfigureAwait(false);
            for (var i = 0; i < rows; i++) result[i] = values[i] is { } v ? Utc(v) : DateTime.MinValue;
        }
        else
        {
            await rg.ReadAsync(field, result.AsMemory(), null, ct).ConfigureAwait(false);
            for (var i = 0; i < rows; i++) result[i] = Utc(result[i]);
        }
        return result;
    }

    /// <summary>A log timestamp as UTC: Parquet's UTC-adjusted timestamps may come back as local or unspecified kinds.</summary>
    public static DateTime Utc(DateTime t) => t.Kind == DateTimeKind.Local ? t.ToUniversalTime() : DateTime.SpecifyKind(t, DateTimeKind.Utc);

    private static async Task<double[]> ReadAs<T>(ParquetRowGroupReader rg, DataField field, int rows, Func<T, double> convert, CancellationToken ct)
        where T : struct
    {
        var result = new double[rows];
        if (field.IsNullable)
        {
            var values = new T?[rows];
            await rg.ReadAsync(field, values.AsMemory(), null, ct).ConfigureAwait(false);
            for (var i = 0; i < rows; i++) result[i] = values[i] is { } v ? convert(v) : double.NaN;
        }
        else
        {
            var values = new T[rows];
            await rg.ReadAsync(field, values.AsMemory(), null, ct).ConfigureAwait(false);
            for (var i = 0; i < rows; i++) result[i] = convert(values[i]);
        }
        return result;
    }
}
