using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Kiln.Core;
using Kiln.Core.Data;
using Kiln.Core.Packaging;
using Kiln.Core.PredictionLog;
using Kiln.Core.Profiling;
using Kiln.Monitoring.Drift;
using Kiln.Monitoring.Reports;
using Kiln.Monitoring.Windows;
using Spectre.Console;

namespace Kiln.Cli.Commands;

/// <summary>`kiln drift`: drift of a data file against a package's reference profile. Exit 0 no drift, 1 drift, 2 error.</summary>
internal static class DriftCommands
{
    public static Command Create()
    {
        // Required in effect, but checked in the handler so that a missing one exits 2 like every other drift error.
        var model = new Option<string?>("--model") { Description = "The model package directory (its reference profile is the baseline). Required." };
        var current = new Option<string?>("--current") { Description = "The current data: a CSV or Parquet file, a directory or a glob. Required." };
        var html = new Option<string?>("--out") { Description = "Write a self-contained HTML report here." };
        var json = new Option<string?>("--json") { Description = "Write the full report as JSON here." };
        var share = new Option<double?>("--drift-share") { Description = "Share of drifted features at which the dataset drifts (default 0.5)." };
        var test = new Option<string?>("--test") { Description = "Test for every feature: ks, chisquare, z, wasserstein, jensenshannon, psi, hellinger (default: chosen per column as Evidently does)." };
        var threshold = new Option<double?>("--threshold") { Description = "Threshold for every feature (default 0.05 for p-values, 0.1 for distances)." };
        var columns = new Option<string[]>("--column")
        {
            Description = "Per-column override NAME=TEST[:THRESHOLD] (repeatable), e.g. --column age=psi:0.2.",
            AllowMultipleArgumentsPerToken = false,
        };
        var exact = new Option<long?>("--max-exact-rows")
        {
            Description = "Current data up to this many rows is tested on every row; more is folded row group by row group into a bounded profile " +
                "(default: 5,000,000 for Parquet files, counted from their metadata; 100,000 for --log-dir windows).",
        };
        var command = new Command("drift", "Compare current data with a model's reference profile; exit 0 when the dataset does not drift, 1 when it drifts, 2 on error.")
        {
            model, current, html, json, share, test, threshold, columns, exact,
        };
        var window = new MonitorCommands.WindowOptionSet();
        window.AddTo(command);
        command.SetAction(async (parse, ct) =>
        {
            try
            {
                var modelDir = parse.GetValue(model) ?? throw new KilnException("--model is required (a model package directory)");
                var logDir = parse.GetValue(window.LogDir);
                var data = parse.GetValue(current);
                if (logDir is not null && data is not null) throw new KilnException("give either --current or --log-dir, not both");
                if (logDir is null && data is null) throw new KilnException("--current is required (a CSV or Parquet file, directory or glob), or --log-dir with --window");
                var driftOptions = Options(parse.GetValue(share), parse.GetValue(test), parse.GetValue(threshold), parse.GetValue(columns) ?? []);
                var maxExact = parse.GetValue(exact);
                if (maxExact is < 0) throw new KilnException($"--max-exact-rows: {maxExact} is negative");
                if (logDir is not null)
                {
                    var package = await MonitorCommands.LoadPackageAsync(modelDir, ct);
                    var reference = package.Profile?.Inputs ?? throw new KilnException($"{modelDir}: the package has no reference profile");
                    var w = window.Resolve(parse, logDir, modelDir, package);
                    var started = DateTime.UtcNow;
                    var (report, _, _) = await Kiln.Monitoring.Windows.WindowEvaluator.InputDriftAsync(reference, w, driftOptions,
                        (int)Math.Min(int.MaxValue, maxExact ?? 100_000), ct);
                    return await OutputAsync(report, package, parse.GetValue(html), parse.GetValue(json), DateTime.UtcNow - started, ct);
                }
                return await RunAsync(modelDir, data!, parse.GetValue(html), parse.GetValue(json), driftOptions, maxExact ?? DefaultMaxExactRows, ct);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                Console.Error.WriteLine("kiln: cancelled");
                return 130;
            }
            catch (Exception e) when (e is KilnException or IOException or UnauthorizedAccessException or InvalidDataException or JsonException)
            {
                Console.Error.WriteLine($"error: {e.Message.ReplaceLineEndings(" ")}");
                if (parse.GetValue(Cli.Verbose)) Console.Error.WriteLine(e.ToString());
                return 2;
            }
        });
        return command;
    }

    internal static DriftOptions Options(double? share, string? test, double? threshold, string[] columns)
    {
        if (share is < 0 or > 1) throw new KilnException($"--drift-share: {share} is not between 0 and 1");
        StatTest? all = null;
        if (test is not null)
        {
            if (!StatTests.TryParse(test, out var t)) throw new KilnException($"--test: unknown test '{test}' (ks, chisquare, z, wasserstein, jensenshannon, psi, hellinger)");
            all = t;
        }
        var perColumn = new Dictionary<string, ColumnDriftOptions>(StringComparer.Ordinal);
        foreach (var spec in columns)
        {
            var eq = spec.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0) throw new KilnException($"--column: '{spec}' is not NAME=TEST[:THRESHOLD]");
            var name = spec[..eq];
            var rest = spec[(eq + 1)..];
            var colon = rest.IndexOf(':', StringComparison.Ordinal);
            var testName = colon < 0 ? rest : rest[..colon];
            if (!StatTests.TryParse(testName, out var ct)) throw new KilnException($"--column {name}: unknown test '{testName}'");
            double? t = null;
            if (colon >= 0)
            {
                if (!double.TryParse(rest[(colon + 1)..], NumberStyles.Float, CultureInfo.InvariantCulture, out var v))
                    throw new KilnException($"--column {name}: threshold '{rest[(colon + 1)..]}' is not a number");
                t = v;
            }
            perColumn[name] = new ColumnDriftOptions { Test = ct, Threshold = t };
        }
        return new DriftOptions { DriftShare = share ?? 0.5, Test = all, Threshold = threshold, Columns = perColumn };
    }

    private const string LogInputPrefix = PredictionLogLayout.InputPrefix;

    /// <summary>Parquet current data with more rows than this (by its metadata) is folded row group by row group into a profile.</summary>
    internal const long DefaultMaxExactRows = 5_000_000;

    private static async Task<int> RunAsync(string modelDir, string currentLocation, string? htmlPath, string? jsonPath, DriftOptions options, long maxExactRows,
        CancellationToken ct)
    {
        var package = ModelPackage.Load((await ModelLocators.ResolveAsync(modelDir, ct)).PackageDirectory);
        var started = DateTime.UtcNow;
        var report = await CompareAsync(package, currentLocation, options, maxExactRows, ct);
        return await OutputAsync(report, package, htmlPath, jsonPath, DateTime.UtcNow - started, ct);
    }

    /// <summary>
    /// Drift of the data at <paramref name="currentLocation"/> (files, a directory, a glob, or kiln serve's prediction log)
    /// against the package's reference profile. Shared by <c>kiln drift</c> and the pipeline kind <c>drift_check</c>.
    /// </summary>
    internal static Task<DriftReport> CompareAsync(ModelPackage package, string currentLocation, DriftOptions options, CancellationToken ct) =>
        CompareAsync(package, currentLocation, options, DefaultMaxExactRows, ct);

    /// <remarks>
    /// Parquet files with at most <paramref name="maxExactRows"/> rows in all (counted from their row-group metadata),
    /// and CSV files, are read whole and every row is tested. Parquet files with more are folded row group by row group
    /// into a profile shaped like the reference (<see cref="CurrentData"/>, as prediction-log windows are), so memory
    /// holds one row group and one profile however large the files; the report then carries the warning <c>summarized</c>.
    /// </remarks>
    internal static async Task<DriftReport> CompareAsync(ModelPackage package, string currentLocation, DriftOptions options, long maxExactRows,
        CancellationToken ct)
    {
        var reference = package.Profile?.Inputs ?? throw new KilnException($"{package.Directory}: the package has no reference profile");
        var files = DataSources.Resolve(currentLocation);
        var names = await TableReader.ReadColumnNamesAsync(files[0], ct);
        var present = new HashSet<string>(names, StringComparer.Ordinal);
        // kiln serve's prediction log stores each input as input_<name> (docs/serving.md): read those
        // under the input's own name, and leave the log's bookkeeping columns out of the report.
        var isPredictionLog = present.Contains(PredictionLogLayout.RequestId) && present.Contains(PredictionLogLayout.Version) && names.Any(n => n.StartsWith(LogInputPrefix, StringComparison.Ordinal));
        var requests = new List<ColumnRequest>();
        foreach (var c in reference.Columns)
        {
            var source = !present.Contains(c.Name) && isPredictionLog && present.Contains(LogInputPrefix + c.Name) ? LogInputPrefix + c.Name : c.Name;
            if (present.Contains(source)) requests.Add(new ColumnRequest(source, c.Kind == ColumnKind.Numeric ? ColumnType.Numeric : ColumnType.Text));
        }
        DriftReport report;
        if (await ParquetRowsAsync(files, ct) > maxExactRows)
        {
            // Bounded memory: every row group is folded into the profile as it is read.
            var folded = new CurrentData(reference, maxExactRows: 0);
            foreach (var file in files)
                await foreach (var batch in TableReader.ReadBatchesAsync(file, requests, ct: ct)) folded.Add(Inputs(batch, isPredictionLog));
            report = folded.Compare(options);
            report.Warnings.Add(WindowWarnings.Summarized);
        }
        else report = DriftCalculator.Compare(reference, Inputs(await TableReader.ReadAllAsync(files, requests, null, ct), isPredictionLog), options);
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

    /// <summary>The rows of the files when they are all Parquet (from row-group metadata, nothing decoded); else -1.</summary>
    private static async Task<long> ParquetRowsAsync(IReadOnlyList<string> files, CancellationToken ct)
    {
        long rows = 0;
        foreach (var file in files)
        {
            if (!DataSources.IsParquet(file)) return -1;
            foreach (var n in await ParquetTable.ReadRowGroupSizesAsync(file, ct)) rows += n;
        }
        return rows;
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
                _ => column,
            });
        }
        return table;
    }

    private static async Task<int> OutputAsync(DriftReport report, ModelPackage package, string? htmlPath, string? jsonPath, TimeSpan elapsed, CancellationToken ct)
    {
        if (jsonPath is not null) await WriteAtomicAsync(jsonPath, DriftJson.Serialize(report), ct);
        if (htmlPath is not null) await WriteAtomicAsync(htmlPath, DriftHtmlReport.Render(report, $"Drift: {package.Name}"), ct);
        PrintTable(report, elapsed);
        Console.WriteLine(Summary(report));
        return report.DatasetDrift ? 1 : 0;
    }

    internal static async Task WriteAtomicAsync(string path, string content, CancellationToken ct)
    {
        var full = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(full)!;
        if (!Directory.Exists(dir)) throw new KilnException($"{path}: directory '{dir}' does not exist");
        var temp = Path.Combine(dir, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        await File.WriteAllTextAsync(temp, content, ct);
        File.Move(temp, full, overwrite: true);
    }

    private static string Summary(DriftReport report)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream))
        {
            w.WriteStartObject();
            w.WriteBoolean("dataset_drift", report.DatasetDrift);
            w.WriteNumber("drifted_share", report.DriftedShare);
            w.WriteNumber("features_drifted", report.FeaturesDrifted);
            w.WriteNumber("features_tested", report.FeaturesTested);
            w.WriteNumber("current_rows", report.CurrentRows);
            w.WriteStartArray("warnings");
            foreach (var warning in report.Warnings) w.WriteStringValue(warning);
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(stream.ToArray());
    }

    private static void PrintTable(DriftReport report, TimeSpan elapsed)
    {
        var table = new Table().AddColumns("feature", "test", "score", "threshold", "verdict", "warnings");
        var features = new List<FeatureDrift>(report.Features);
        features.Sort((a, b) => DriftReport.Severity(b).CompareTo(DriftReport.Severity(a)));
        foreach (var f in features)
        {
            var verdict = f.Drifted switch { true => "[red]drift[/]", false => "[green]ok[/]", null => "[grey]not tested[/]" };
            table.AddRow(Markup.Escape(f.Name), f.Test ?? "-", f.Score is { } s ? s.ToString("G4", CultureInfo.InvariantCulture) : "-",
                f.Threshold is { } t ? t.ToString("G4", CultureInfo.InvariantCulture) : "-", verdict, Markup.Escape(string.Join(", ", f.Warnings)));
        }
        Cli.Err.Write(table);
        var verdictLine = report.DatasetDrift ? "[red]dataset drift[/]" : "[green]no dataset drift[/]";
        Cli.Err.MarkupLine($"{verdictLine}: {report.FeaturesDrifted}/{report.FeaturesTested} features drifted " +
            $"(threshold {report.DriftShareThreshold.ToString(CultureInfo.InvariantCulture)}), {report.CurrentRows:N0} rows in {elapsed.TotalSeconds:F2} s");
        foreach (var w in report.Warnings) Cli.Err.MarkupLine($"[yellow]warning[/]: {Markup.Escape(w)}");
    }
}
