// The prediction-log reader as it was before it read text and double columns through Kiln's own decoder
// (every column through Parquet.Net): the peer of PredictionLogReader in the `logread` benchmark (LogReadBench.cs).
// Kept here only, unchanged apart from its names.
using Kiln.Core;
using Kiln.Core.Data;
using Kiln.Core.PredictionLog;
using Kiln.Monitoring.Windows;
using Parquet;
using Parquet.Schema;

/// <summary>The old log reader (Parquet.Net for every column).</summary>
internal static class OldLogReader
{
    private const string InputPrefix = PredictionLogLayout.InputPrefix;
    private const string ProbabilityPrefix = PredictionLogLayout.ProbabilityPrefix;

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
            var times = await OldLogColumns.ReadTimesAsync(rg, timestamp, rows, file.Path, ct).ConfigureAwait(false);
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

            var ids = Select(await OldLogColumns.ReadStringsAsync(rg, requestId, rows, ct).ConfigureAwait(false), keep, kept, all);
            var rowIndexes = row is null ? new int[kept] : Select(await OldLogColumns.ReadIntsAsync(rg, row, rows, file.Path, ct).ConfigureAwait(false), keep, kept, all);
            var labels = prediction is null ? new string?[kept] : Select(await OldLogColumns.ReadStringsAsync(rg, prediction, rows, ct).ConfigureAwait(false), keep, kept, all);
            var values = Select(await OldLogColumns.ReadDoublesAsync(rg, value, rows, file.Path, ct).ConfigureAwait(false), keep, kept, all);
            var table = new DataTable(kept);
            foreach (var f in inputs)
            {
                var name = f.Name[InputPrefix.Length..];
                if (OldLogColumns.IsText(f)) table.Add(new TextColumn(name, Select(await OldLogColumns.ReadStringsAsync(rg, f, rows, ct).ConfigureAwait(false), keep, kept, all)));
                else table.Add(new NumericColumn(name, Select(await OldLogColumns.ReadDoublesAsync(rg, f, rows, file.Path, ct).ConfigureAwait(false), keep, kept, all)));
            }
            var probs = new List<KeyValuePair<string, double[]>>(probabilities.Count);
            foreach (var f in probabilities)
                probs.Add(new(f.Name[ProbabilityPrefix.Length..], Select(await OldLogColumns.ReadDoublesAsync(rg, f, rows, file.Path, ct).ConfigureAwait(false), keep, kept, all)));
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
                return OldLogColumns.Utc(max) < from || OldLogColumns.Utc(min) >= to;
            if (kilnWritten && stats?.MinValue is long minMicros && stats.MaxValue is long maxMicros)
                return DateTime.UnixEpoch.AddTicks(maxMicros * 10) < from || DateTime.UnixEpoch.AddTicks(minMicros * 10) >= to;
        }
        catch (Exception e) when (e is InvalidOperationException or NotSupportedException or ArgumentException or InvalidCastException)
        {
            // No usable statistics: read the timestamps.
        }
        return false;
    }

    private static T[] Select<T>(T[] values, int[] index, int count, bool all)
    {
        if (all) return values;
        var result = new T[count];
        for (var i = 0; i < count; i++) result[i] = values[index[i]];
        return result;
    }
}

/// <summary>Reads Parquet columns of any numeric, string or timestamp type as the log reader needs them.</summary>
internal static class OldLogColumns
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
