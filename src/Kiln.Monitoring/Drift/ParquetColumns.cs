using System.Buffers;
using System.Collections.Concurrent;
using System.Diagnostics;
using Kiln.Core;
using Kiln.Core.Data;
using Kiln.Core.Profiling;

namespace Kiln.Monitoring.Drift;

/// <summary>
/// The current side of <c>kiln drift</c> on Parquet files, read one column at a time by the worker that tests it
/// (<see cref="DriftCalculator.CompareColumns"/>): while one worker reads a column, the other sorts or counts the one it
/// read, and only the columns under test are in memory (a pooled array per numeric column), never the whole table. A text
/// column tested as categories is counted straight from the file's bytes (<see cref="ParquetFile.CountText"/>), with no
/// string per row; every other column is read as the whole-table read gives it, so the results are the same.
/// <c>kiln drift</c> opens the files while the package loads and reads the first columns ahead meanwhile
/// (<see cref="StartReadAhead"/>), so the core that would wait for the package reads instead.
/// </summary>
internal sealed class ParquetColumns : IDisposable
{
    private readonly IReadOnlyList<string> _files;
    private readonly ConcurrentBag<ParquetFile>[] _idle;
    private readonly ConcurrentBag<ParquetFile> _all = [];
    private readonly ParquetFile[] _opened; // one reader per file, for its metadata
    private readonly Dictionary<string, (string Source, ParquetField[] Fields)> _columns = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, Task<Ahead>> _ahead = new(StringComparer.Ordinal);
    private volatile bool _stopAhead;
    private Task _aheadLoop = Task.CompletedTask;
    private int _aheadColumns;
    private long _readTicks;
    private long _testTicks;
    private long _aheadTicks;

    /// <summary>The read-ahead's thread: done when it has stopped (<see cref="StartReadAhead"/>).</summary>
    internal Task ReadingAhead => _aheadLoop;

    /// <summary>Columns read ahead so far.</summary>
    internal int ReadAheadColumns => Volatile.Read(ref _aheadColumns);

    /// <summary>A column read ahead: its numbers (a pooled array of <see cref="Rows"/> values) or its text counts.</summary>
    private sealed record Ahead(double[]? Numbers, TextCounts? Text);

    private ParquetColumns(IReadOnlyList<string> files, List<ParquetFile> opened)
    {
        _files = files;
        _opened = [.. opened];
        _idle = new ConcurrentBag<ParquetFile>[files.Count];
        for (var f = 0; f < files.Count; f++)
        {
            _idle[f] = [opened[f]];
            _all.Add(opened[f]);
            foreach (var n in opened[f].RowGroupRows) Rows += n;
        }
    }

    /// <summary>Rows in all the files (from their metadata).</summary>
    public long Rows { get; }

    /// <summary>The first file's top-level column names, in its order.</summary>
    public IReadOnlyList<string> Names => [.. _opened.Length == 0 ? [] : _opened[0].Fields.Select(f => f.Name)];

    /// <summary>Time spent reading columns and testing them, summed over the workers (for <see cref="StepTimings"/>).</summary>
    public (TimeSpan Read, TimeSpan Test, TimeSpan Ahead) Spent =>
        (Stopwatch.GetElapsedTime(0, _readTicks), Stopwatch.GetElapsedTime(0, _testTicks), Stopwatch.GetElapsedTime(0, _aheadTicks));

    /// <summary>
    /// Opens the files and checks every source column in each: a missing, nested or unreadable column is refused in one
    /// line naming the file and the column before anything is read. <paramref name="sources"/> maps a reference column's
    /// name to the files' column.
    /// </summary>
    public static ParquetColumns Open(IReadOnlyList<string> files, IReadOnlyDictionary<string, string> sources)
    {
        var result = Open(files);
        try
        {
            result.Select(sources);
            return result;
        }
        catch
        {
            result.Dispose();
            throw;
        }
    }

    /// <summary>Opens the files (a missing, truncated or non-Parquet file is refused in one line naming it); the columns
    /// to compare are given later (<see cref="Select"/>).</summary>
    public static ParquetColumns Open(IReadOnlyList<string> files)
    {
        var opened = new List<ParquetFile>();
        try
        {
            foreach (var file in files) opened.Add(ParquetFile.Open(file));
            return new ParquetColumns(files, opened);
        }
        catch
        {
            foreach (var f in opened) f.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The columns to compare: <paramref name="sources"/> maps a reference column's name to the files' column, each
    /// checked in every file (a missing, nested or unreadable column is refused in one line naming the file and the
    /// column). Ends the read-ahead: the workers read from here on.
    /// </summary>
    public void Select(IReadOnlyDictionary<string, string> sources)
    {
        _stopAhead = true;
        foreach (var (name, source) in sources) _columns[name] = (source, [.. _opened.Select(f => f.Readable(source))]);
    }

    /// <summary>
    /// Reads the files' columns in their order on a thread of its own, before the reference is known, while
    /// <see cref="Select"/> has not been called and the numbers read stay within <paramref name="budgetBytes"/>: numbers
    /// (double, float, integer and decimal columns) into pooled arrays, text as counts. <see cref="SideOf"/> takes a
    /// column read ahead instead of reading it again when the reference tests it the same way; the rest are dropped.
    /// </summary>
    public void StartReadAhead(long budgetBytes)
    {
        if (_opened.Length == 0) return;
        var rows = checked((int)Rows);
        var names = _opened[0].Fields.Select(f => f.Name).ToArray();
        _aheadLoop = Task.Run(() =>
        {
            long used = 0;
            foreach (var name in names)
            {
                if (_stopAhead) return;
                var fields = new ParquetField[_files.Count];
                var kind = 0; // 1: all numbers, 2: all text
                for (var f = 0; f < _files.Count; f++)
                {
                    var field = _opened[f].Find(name);
                    var k = field is null || field.Type == ParquetValueType.Unsupported ? 0 : field.IsNumber ? 1 : field.Type == ParquetValueType.Text ? 2 : 0;
                    if (f > 0 && k != kind) k = 0;
                    kind = k;
                    if (kind == 0) break;
                    fields[f] = field!;
                }
                if (kind == 0) continue;
                if (kind == 1)
                {
                    if (used + rows * 8L > budgetBytes) continue;
                    used += rows * 8L;
                }
                var pending = new TaskCompletionSource<Ahead>(TaskCreationOptions.RunContinuationsAsynchronously);
                if (!_ahead.TryAdd(name, pending.Task)) continue;
                var started = Stopwatch.GetTimestamp();
                try
                {
                    pending.SetResult(kind == 1 ? new Ahead(ReadNumbers(fields, rows), null) : new Ahead(null, CountText(fields)));
                    Interlocked.Increment(ref _aheadColumns);
                }
                catch (Exception e)
                {
                    // The worker that takes this column meets the same failure (a bad file names itself there).
                    pending.SetException(e);
                }
                Interlocked.Add(ref _aheadTicks, Stopwatch.GetTimestamp() - started);
            }
        });
    }

    /// <summary>
    /// The current side of one reference column, or null when the files lack it; numbers are sorted in
    /// <paramref name="sortBuffer"/> (see <see cref="ColumnSide.FromNumbers"/>).
    /// </summary>
    public ColumnSide? SideOf(ColumnProfile reference, double[]? sortBuffer)
    {
        if (!_columns.TryGetValue(reference.Name, out var column)) return null;
        var ahead = _ahead.TryRemove(column.Source, out var pending) ? pending.GetAwaiter().GetResult() : null;
        var started = Stopwatch.GetTimestamp();
        var rows = checked((int)Rows);
        if (reference.Kind == ColumnKind.Numeric && sortBuffer is not null && Array.TrueForAll(column.Fields, f => f.IsNumber))
        {
            var values = ahead?.Numbers ?? ReadNumbers(column.Fields, rows);
            try
            {
                return Tested(started, () => ColumnSide.FromNumbers(values.AsSpan(0, rows), reference, buffer: sortBuffer));
            }
            finally
            {
                ArrayPool<double>.Shared.Return(values);
            }
        }
        if (ahead?.Numbers is { } unused) ArrayPool<double>.Shared.Return(unused);
        if (reference.Kind == ColumnKind.Categorical && Array.TrueForAll(column.Fields, f => f.Type == ParquetValueType.Text))
        {
            var counts = ahead?.Text ?? CountText(column.Fields);
            return Tested(started, () => ColumnSide.FromCounts(counts));
        }
        // Anything else (numbers as labels, text as numbers, timestamps) as the whole-table read gives it.
        var type = reference.Kind == ColumnKind.Numeric ? ColumnType.Numeric : ColumnType.Text;
        var parts = new List<DataTable>();
        ForEachGroup(column.Fields, (file, group, field, firstRow) =>
        {
            var part = new DataTable(checked((int)file.RowGroupRows[group]));
            part.Add(file.ReadColumn(group, field, type, firstRow));
            parts.Add(part);
        });
        if (parts.Count == 0) return Tested(started, () => DriftCalculator.SideOf(new NumericColumn(column.Source, []), 0, reference, sortBuffer));
        var whole = DataTable.Concat(parts)[column.Source];
        return Tested(started, () => DriftCalculator.SideOf(whole, rows, reference, sortBuffer));
    }

    /// <summary>A number column of every file into one pooled array of <paramref name="rows"/> values (the caller returns it).</summary>
    private double[] ReadNumbers(ParquetField[] fields, int rows)
    {
        var values = ArrayPool<double>.Shared.Rent(Math.Max(rows, 1));
        try
        {
            var offset = 0;
            ForEachGroup(fields, (file, group, field, firstRow) =>
            {
                var n = checked((int)file.RowGroupRows[group]);
                file.ReadNumbers(group, field, new ArraySegment<double>(values, offset, n), firstRow);
                offset += n;
            });
            return values;
        }
        catch
        {
            ArrayPool<double>.Shared.Return(values);
            throw;
        }
    }

    /// <summary>A text column of every file counted by value.</summary>
    private TextCounts CountText(ParquetField[] fields)
    {
        var counts = new TextCounts();
        ForEachGroup(fields, (file, group, field, _) => file.CountText(group, field, counts));
        return counts;
    }

    /// <summary>Counts the time since <paramref name="started"/> as reading, then runs and times the test's side.</summary>
    private ColumnSide Tested(long started, Func<ColumnSide> side)
    {
        var read = Stopwatch.GetTimestamp();
        Interlocked.Add(ref _readTicks, read - started);
        var result = side();
        Interlocked.Add(ref _testTicks, Stopwatch.GetTimestamp() - read);
        return result;
    }

    /// <summary>
    /// Runs <paramref name="read"/> on every row group of every file in order (with the group's first row in its file),
    /// on a reader that this thread alone holds meanwhile.
    /// </summary>
    private void ForEachGroup(ParquetField[] fields, Action<ParquetFile, int, ParquetField, long> read)
    {
        for (var f = 0; f < _files.Count; f++)
        {
            if (!_idle[f].TryTake(out var reader))
            {
                reader = ParquetFile.Open(_files[f]);
                _all.Add(reader);
            }
            try
            {
                long firstRow = 0;
                for (var g = 0; g < reader.RowGroupCount; g++)
                {
                    read(reader, g, fields[f], firstRow);
                    firstRow += reader.RowGroupRows[g];
                }
            }
            finally
            {
                _idle[f].Add(reader);
            }
        }
    }

    public void Dispose()
    {
        _stopAhead = true;
        try
        {
            _aheadLoop.Wait();
        }
        catch (AggregateException)
        {
            // A failed read ahead is seen by the worker that takes its column; nothing to report when none did.
        }
        foreach (var pending in _ahead.Values)
        {
            if (pending.IsCompletedSuccessfully && pending.Result.Numbers is { } values) ArrayPool<double>.Shared.Return(values);
        }
        _ahead.Clear();
        foreach (var f in _all) f.Dispose();
    }
}
