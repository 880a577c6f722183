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
/// are never opened, row groups whose timestamp range misses the window are skipped, and the rest are handed out one row group
/// at a time with the next one read ahead, so memory stays bounded by two row groups whatever the window holds. Text and double columns (ids,
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

    /// <summary>Row groups with fewer cells than this are read on one thread.</summary>
    private const long ParallelCells = 200_000;

    /// <summary>
    /// The rows of one log file inside [from, to). While the caller works on one row group the next is read (one group
    /// ahead, so memory stays bounded by two groups), and a group's columns are read on up to four threads, each with a
    /// reader of its own, as <see cref="ParquetTable.ReadAllAsync"/> reads a file for kiln drift.
    /// </summary>
    public static async IAsyncEnumerable<LogBatch> ReadFileAsync(LogFile file, DateTime from, DateTime to,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct = default)
    {
        await Task.Yield(); // reading is synchronous; do not run it on the caller's stack
        var readers = new List<ParquetFile> { ParquetFile.Open(file.Path) };
        Task<LogBatch?>? ahead = null;
        try
        {
            var columns = LogColumns.Of(readers[0], file.Path);
            var groups = new List<int>();
            for (var g = 0; g < readers[0].RowGroupCount; g++)
            {
                if (readers[0].RowGroupRows[g] == 0) continue;
                if (readers[0].TimestampRange(g, columns.Timestamp) is { } range && (Utc(range.Max) < from || Utc(range.Min) >= to)) continue;
                groups.Add(g);
            }
            for (var i = 0; i < groups.Count; i++)
            {
                var group = groups[i];
                var current = ahead ?? Task.Run(() => ReadGroup(file, readers, columns, group, from, to, ct), ct);
                var batch = await current.ConfigureAwait(false);
                ahead = null;
                if (i + 1 < groups.Count)
                {
                    var following = groups[i + 1];
                    ahead = Task.Run(() => ReadGroup(file, readers, columns, following, from, to, ct), ct);
                }
                if (batch is not null) yield return batch;
            }
        }
        finally
        {
            // A caller that stops early may leave a read ahead running on the readers: let it end before they close.
            if (ahead is not null)
            {
                try
                {
                    await ahead.ConfigureAwait(false);
                }
                catch (Exception)
                {
                    // nobody wants that row group any more; its error, if any, is not the caller's
                }
            }
            foreach (var r in readers) r.Dispose();
        }
    }

    /// <summary>The log's columns in one file, found once.</summary>
    private sealed record LogColumns(ParquetField RequestId, ParquetField Timestamp, ParquetField? Row, ParquetField? Prediction,
        ParquetField Value, IReadOnlyList<ParquetField> Inputs, IReadOnlyList<ParquetField> Probabilities)
    {
        public static LogColumns Of(ParquetFile reader, string path)
        {
            ParquetField Required(string name) => reader.Find(name) is { } f
                ? (f.Type == ParquetValueType.Unsupported ? reader.Readable(name) : f)
                : throw new KilnException($"{path}: column '{name}' is missing; is this a kiln serve prediction log?");
            var requestId = Required(PredictionLogLayout.RequestId);
            var timestamp = Required(PredictionLogLayout.Timestamp);
            if (timestamp.Type != ParquetValueType.Timestamp) throw new KilnException($"{path}: column '{timestamp.Name}' is not a timestamp");
            var value = Required(PredictionLogLayout.Value);
            var inputs = new List<ParquetField>();
            var probabilities = new List<ParquetField>();
            foreach (var f in reader.Fields)
            {
                if (f.Name.StartsWith(InputPrefix, StringComparison.Ordinal)) inputs.Add(reader.Readable(f.Name));
                else if (f.Name.StartsWith(ProbabilityPrefix, StringComparison.Ordinal)) probabilities.Add(reader.Readable(f.Name));
            }
            return new LogColumns(requestId, timestamp, reader.Find(PredictionLogLayout.Row), reader.Find(PredictionLogLayout.Prediction),
                value, inputs, probabilities);
        }
    }

    /// <summary>One row group's rows inside [from, to), or null when none is. Uses readers[0] for the timestamps, then
    /// reads the other columns on as many readers as pay (opening more into <paramref name="readers"/>).</summary>
    private static LogBatch? ReadGroup(LogFile file, List<ParquetFile> readers, LogColumns c, int g, DateTime from, DateTime to,
        CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        var rows = checked((int)readers[0].RowGroupRows[g]);
        var times = readers[0].ReadTimestamps(g, c.Timestamp);
        for (var i = 0; i < rows; i++) times[i] = Utc(times[i]);
        // Keep the rows inside the window; most row groups are wholly in or out.
        var keep = new int[rows];
        var kept = 0;
        for (var i = 0; i < rows; i++)
        {
            var t = times[i];
            if (t >= from && t < to) keep[kept++] = i;
        }
        if (kept == 0) return null;
        var all = kept == rows;

        string?[] ids = [];
        var rowIndexes = c.Row is null ? new int[kept] : [];
        var labels = c.Prediction is null ? new string?[kept] : [];
        double[] values = [];
        var inputs = new Column[c.Inputs.Count];
        var probs = new double[c.Probabilities.Count][];
        var reads = new List<Action<ParquetFile>>
        {
            r => ids = Select(r.ReadText(g, c.RequestId), keep, kept, all),
            r => values = Select(Numbers(r, g, c.Value), keep, kept, all),
        };
        if (c.Row is { } row) reads.Add(r => rowIndexes = Select(Ints(r.ReadNumbers(g, row)), keep, kept, all));
        if (c.Prediction is { } prediction) reads.Add(r => labels = Select(r.ReadText(g, prediction), keep, kept, all));
        for (var k = 0; k < c.Inputs.Count; k++)
        {
            var index = k;
            var f = c.Inputs[k];
            var name = f.Name[InputPrefix.Length..];
            reads.Add(f.Type is ParquetValueType.Text or ParquetValueType.Timestamp
                ? r => inputs[index] = new TextColumn(name, Select(r.ReadText(g, f), keep, kept, all))
                : r => inputs[index] = new NumericColumn(name, Select(r.ReadNumbers(g, f), keep, kept, all)));
        }
        for (var k = 0; k < c.Probabilities.Count; k++)
        {
            var index = k;
            var f = c.Probabilities[k];
            reads.Add(r => probs[index] = Select(Numbers(r, g, f), keep, kept, all));
        }
        Run(file.Path, readers, reads, (long)rows * reads.Count, ct);

        var table = new DataTable(kept);
        foreach (var column in inputs) table.Add(column);
        var probabilities = new List<KeyValuePair<string, double[]>>(probs.Length);
        for (var k = 0; k < probs.Length; k++) probabilities.Add(new(c.Probabilities[k].Name[ProbabilityPrefix.Length..], probs[k]));
        return new LogBatch
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
            Probabilities = probabilities,
        };
    }

    /// <summary>Runs the column reads on one reader when there is little to read, else on up to four, each thread taking
    /// the next read as it finishes one.</summary>
    private static void Run(string path, List<ParquetFile> readers, List<Action<ParquetFile>> reads, long cells, CancellationToken ct)
    {
        var workers = cells < ParallelCells ? 1 : Math.Min(Math.Max(1, Math.Min(Environment.ProcessorCount, 4)), reads.Count);
        if (workers <= 1)
        {
            foreach (var read in reads) read(readers[0]);
            return;
        }
        while (readers.Count < workers) readers.Add(ParquetFile.Open(path));
        var next = -1;
        try
        {
            Parallel.For(0, workers, new ParallelOptions { MaxDegreeOfParallelism = workers, CancellationToken = ct }, w =>
            {
                for (var item = Interlocked.Increment(ref next); item < reads.Count; item = Interlocked.Increment(ref next)) reads[item](readers[w]);
            });
        }
        catch (AggregateException e) when (e.InnerExceptions.Count > 0)
        {
            // The first failed read's own error (a KilnException naming the file and column), as on one thread.
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(e.InnerExceptions[0]);
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
