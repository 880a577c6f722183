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
/// </summary>
internal sealed class ParquetColumns : IDisposable
{
    private readonly IReadOnlyList<string> _files;
    private readonly ConcurrentBag<ParquetFile>[] _idle;
    private readonly ConcurrentBag<ParquetFile> _all = [];
    private readonly Dictionary<string, (string Source, ParquetField[] Fields)> _columns = new(StringComparer.Ordinal);
    private long _readTicks;
    private long _testTicks;

    private ParquetColumns(IReadOnlyList<string> files, List<ParquetFile> opened)
    {
        _files = files;
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

    /// <summary>Time spent reading columns and testing them, summed over the workers (for <see cref="StepTimings"/>).</summary>
    public (TimeSpan Read, TimeSpan Test) Spent => (Stopwatch.GetElapsedTime(0, _readTicks), Stopwatch.GetElapsedTime(0, _testTicks));

    /// <summary>
    /// Opens the files and checks every source column in each: a missing, nested or unreadable column is refused in one
    /// line naming the file and the column before anything is read. <paramref name="sources"/> maps a reference column's
    /// name to the files' column.
    /// </summary>
    public static ParquetColumns Open(IReadOnlyList<string> files, IReadOnlyDictionary<string, string> sources)
    {
        var opened = new List<ParquetFile>();
        try
        {
            foreach (var file in files) opened.Add(ParquetFile.Open(file));
            var result = new ParquetColumns(files, opened);
            foreach (var (name, source) in sources) result._columns[name] = (source, [.. opened.Select(f => f.Readable(source))]);
            return result;
        }
        catch
        {
            foreach (var f in opened) f.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The current side of one reference column, or null when the files lack it; numbers are sorted in
    /// <paramref name="sortBuffer"/> (see <see cref="ColumnSide.FromNumbers"/>).
    /// </summary>
    public ColumnSide? SideOf(ColumnProfile reference, double[]? sortBuffer)
    {
        if (!_columns.TryGetValue(reference.Name, out var column)) return null;
        var started = Stopwatch.GetTimestamp();
        var rows = checked((int)Rows);
        if (reference.Kind == ColumnKind.Numeric && sortBuffer is not null && Array.TrueForAll(column.Fields, f => f.IsNumber))
        {
            var values = ArrayPool<double>.Shared.Rent(rows);
            try
            {
                var offset = 0;
                ForEachGroup(column.Fields, (file, group, field, firstRow) =>
                {
                    var n = checked((int)file.RowGroupRows[group]);
                    file.ReadNumbers(group, field, new ArraySegment<double>(values, offset, n), firstRow);
                    offset += n;
                });
                return Tested(started, () => ColumnSide.FromNumbers(values.AsSpan(0, rows), reference, buffer: sortBuffer));
            }
            finally
            {
                ArrayPool<double>.Shared.Return(values);
            }
        }
        if (reference.Kind == ColumnKind.Categorical && Array.TrueForAll(column.Fields, f => f.Type == ParquetValueType.Text))
        {
            var counts = new TextCounts();
            ForEachGroup(column.Fields, (file, group, field, _) => file.CountText(group, field, counts));
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
        foreach (var f in _all) f.Dispose();
    }
}
