using Kiln.Core;
using Kiln.Core.Data;
using Kiln.Core.Packaging;
using Kiln.Core.PredictionLog;
using Kiln.Core.Profiling;
using Kiln.Monitoring.Windows;

namespace Kiln.Monitoring.Drift;

/// <summary>Drift of data files (or kiln serve's prediction log) against a package's reference profile: what <c>kiln drift</c> computes.</summary>
public static class DataDrift
{
    private const string LogInputPrefix = PredictionLogLayout.InputPrefix;

    /// <summary>Parquet current data with more rows than this (by its metadata) is folded row group by row group into a profile.</summary>
    public const long DefaultMaxExactRows = 5_000_000;

    /// <summary>
    /// Drift of the data at <paramref name="currentLocation"/> (files, a directory, a glob, or kiln serve's prediction log)
    /// against the package's reference profile. Shared by <c>kiln drift</c> and the pipeline kind <c>drift_check</c>.
    /// </summary>
    public static Task<DriftReport> CompareAsync(ModelPackage package, string currentLocation, DriftOptions options, CancellationToken ct) =>
        CompareAsync(package, currentLocation, options, DefaultMaxExactRows, ct);

    /// <remarks>
    /// Parquet files with at most <paramref name="maxExactRows"/> rows in all (counted from their row-group metadata),
    /// and CSV files, are read whole and every row is tested. Parquet files with more are folded row group by row group
    /// into a profile shaped like the reference (<see cref="CurrentData"/>, as prediction-log windows are), so memory
    /// holds one row group and one profile however large the files; the report then carries the warning <c>summarized</c>.
    /// </remarks>
    public static async Task<DriftReport> CompareAsync(ModelPackage package, string currentLocation, DriftOptions options, long maxExactRows,
        CancellationToken ct)
    {
        using var current = await OpenAsync(currentLocation, maxExactRows, readAheadBytes: 0, ct).ConfigureAwait(false);
        return await CompareAsync(package, current, options, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// Resolves and opens the current data before the package is known, so that <c>kiln drift</c> does it while the
    /// package loads: the files, their column names and (for Parquet) their rows from the metadata. With
    /// <paramref name="readAhead"/>, Parquet read whole also starts reading its first columns on a thread of its own
    /// (up to <see cref="ReadAheadBytes"/> of numbers), taken up by the comparison when the reference tests them.
    /// </summary>
    public static Task<DriftInput> OpenAsync(string currentLocation, long maxExactRows, bool readAhead, CancellationToken ct) =>
        OpenAsync(currentLocation, maxExactRows, readAhead ? ReadAheadBytes : 0, ct);

    /// <summary><see cref="OpenAsync(string, long, bool, CancellationToken)"/> with a read-ahead of at most
    /// <paramref name="readAheadBytes"/> of numbers (0: none).</summary>
    internal static async Task<DriftInput> OpenAsync(string currentLocation, long maxExactRows, long readAheadBytes, CancellationToken ct)
    {
        var files = DataSources.Resolve(currentLocation);
        if (!files.All(DataSources.IsParquet))
            return new DriftInput(files, await TableReader.ReadColumnNamesAsync(files[0], ct).ConfigureAwait(false), -1, maxExactRows, null);
        // Parquet: each file is opened once; its metadata gives the names and the rows.
        var columns = ParquetColumns.Open(files);
        var (names, rows) = (columns.Names, columns.Rows);
        if (rows > maxExactRows)
        {
            columns.Dispose();
            return new DriftInput(files, names, rows, maxExactRows, null);
        }
        if (readAheadBytes > 0) columns.StartReadAhead(readAheadBytes);
        return new DriftInput(files, names, rows, maxExactRows, columns);
    }

    /// <summary>Numbers that <see cref="OpenAsync(string, long, bool, CancellationToken)"/> reads ahead at most (128 MiB: 16 columns of a million rows).</summary>
    public const long ReadAheadBytes = 128L << 20;

    /// <summary>Drift of current data opened by <see cref="OpenAsync(string, long, bool, CancellationToken)"/> against the package's reference profile.</summary>
    public static async Task<DriftReport> CompareAsync(ModelPackage package, DriftInput current, DriftOptions options, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(current);
        var reference = package.Profile?.Inputs ?? throw new KilnException($"{package.Directory}: the package has no reference profile");
        var (files, names) = (current.Files, current.Names);
        var present = new HashSet<string>(names, StringComparer.Ordinal);
        // kiln serve's prediction log stores each input as input_<name> (docs/serving.md): read those
        // under the input's own name, and leave the log's bookkeeping columns out of the report.
        var isPredictionLog = present.Contains(PredictionLogLayout.RequestId) && present.Contains(PredictionLogLayout.Version) && names.Any(n => n.StartsWith(LogInputPrefix, StringComparison.Ordinal));
        var requests = new List<ColumnRequest>();
        var sources = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var c in reference.Columns)
        {
            var source = !present.Contains(c.Name) && isPredictionLog && present.Contains(LogInputPrefix + c.Name) ? LogInputPrefix + c.Name : c.Name;
            if (!present.Contains(source)) continue;
            requests.Add(new ColumnRequest(source, c.Kind == ColumnKind.Numeric ? ColumnType.Numeric : ColumnType.Text));
            sources[c.Name] = source;
        }
        DriftReport report;
        StepTimings.Mark("current data resolved");
        if (current.ParquetRows > current.MaxExactRows)
        {
            // Bounded memory: every row group is folded into the profile as it is read.
            var folded = new CurrentData(reference, maxExactRows: 0);
            foreach (var file in files)
                await foreach (var batch in TableReader.ReadBatchesAsync(file, requests, ct: ct).ConfigureAwait(false)) folded.Add(Inputs(batch, isPredictionLog));
            report = folded.Compare(options);
            report.Warnings.Add(WindowWarnings.Summarized);
        }
        else if (current.Columns is { } columns)
        {
            // Parquet read whole: each column is read by the worker that tests it, as it gets to it (or was read ahead).
            columns.Select(sources);
            report = DriftCalculator.CompareColumns(reference, columns.Rows, columns.SideOf, options, ct);
            if (StepTimings.Enabled)
            {
                StepTimings.Total("columns read ahead", columns.Spent.Ahead);
                StepTimings.Total("columns read (summed over workers)", columns.Spent.Read);
                StepTimings.Total("columns sorted or counted (summed over workers)", columns.Spent.Test);
            }
        }
        else report = DriftCalculator.Compare(reference, Inputs(await TableReader.ReadAllAsync(files, requests, null, ct).ConfigureAwait(false), isPredictionLog), options);
        StepTimings.Mark("drift computed");
        foreach (var name in names)
        {
            if (isPredictionLog && (PredictionLogLayout.FixedColumns.Contains(name) || name.StartsWith(LogInputPrefix, StringComparison.Ordinal) || name.StartsWith(PredictionLogLayout.ProbabilityPrefix, StringComparison.Ordinal))) continue;
            if (reference.Find(name) is not null) continue;
            // The model's own outputs (a log's probability) take their kind from the package; other columns were
            // not read, and text is the safe guess for an unknown column.
            report.AddColumnNotInReference(name, OutputColumns.KindOf(package, name) ?? ColumnKind.Categorical);
        }
        return report;
    }

    /// <summary>The table with the prediction log's input_&lt;name&gt; columns under the input's own name.</summary>
    private static DataTable Inputs(DataTable read, bool isPredictionLog)
    {
        if (!isPredictionLog) return read;
        var table = new DataTable(read.RowCount);
        foreach (var column in read.Columns)
        {
            var name = column.Name.StartsWith(LogInputPrefix, StringComparison.Ordinal) ? column.Name[LogInputPrefix.Length..] : column.Name;
            table.Add(column switch
            {
                NumericColumn n => new NumericColumn(name, n.Values),
                TextColumn t => new TextColumn(name, t.Values),
                TimestampColumn s => new TimestampColumn(name, s.Ticks, s.Utc),
                _ => column,
            });
        }
        return table;
    }
}

/// <summary>Current data of a drift comparison, resolved and opened (<see cref="DataDrift.OpenAsync(string, long, bool, CancellationToken)"/>); disposing it closes the files.</summary>
public sealed class DriftInput : IDisposable
{
    internal DriftInput(IReadOnlyList<string> files, IReadOnlyList<string> names, long parquetRows, long maxExactRows, ParquetColumns? columns)
    {
        Files = files;
        Names = names;
        ParquetRows = parquetRows;
        MaxExactRows = maxExactRows;
        Columns = columns;
    }

    internal IReadOnlyList<string> Files { get; }

    /// <summary>The first file's column names.</summary>
    internal IReadOnlyList<string> Names { get; }

    /// <summary>Rows in all the files when they are all Parquet (from their metadata); else -1.</summary>
    internal long ParquetRows { get; }

    internal long MaxExactRows { get; }

    /// <summary>The Parquet files opened for reading whole, column by column; null for CSV or folded Parquet.</summary>
    internal ParquetColumns? Columns { get; }

    public void Dispose() => Columns?.Dispose();
}
