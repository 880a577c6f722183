using System.CommandLine;
using System.Globalization;
using Kiln.Core;
using Kiln.Core.Packaging;
using Kiln.Monitoring.Drift;
using Kiln.Monitoring.Reports;
using Spectre.Console;

namespace Kiln.Cli.Commands;

/// <summary>`kiln drift`: drift of a data file against a package's reference profile. Exit 0 no drift, 2 drift, 1 error.</summary>
internal static class DriftCommands
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "The model package directory or models:/ URI (its reference profile is the baseline).", Required = true };
        var current = new Option<string?>("--current") { Description = "The current data: a CSV or Parquet file, a directory or a glob (or give --log-dir)." };
        var html = new Option<string?>("--out") { Description = "Write a self-contained HTML report here." };
        var json = Cli.JsonOption("the full report");
        var jsonOut = Cli.JsonOutOption("the full report");
        var failOnDrift = FailOnDriftOption(defaultValue: true);
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
        var command = new Command("drift", "Compare current data with a model's reference profile; exit 0 when the dataset does not drift, 2 when it drifts, 1 on error.")
        {
            model, current, html, json, jsonOut, failOnDrift, share, test, threshold, columns, exact,
        };
        var window = new MonitorCommands.WindowOptionSet();
        window.AddTo(command);
        command.SetHandler(async (parse, ct) =>
        {
            var modelDir = parse.GetValue(model)!;
            var logDir = parse.GetValue(window.LogDir);
            var data = parse.GetValue(current);
            if (logDir is not null && data is not null) throw new KilnException("give either --current or --log-dir, not both");
            if (logDir is null && data is null) throw new KilnException("--current is required (a CSV or Parquet file, directory or glob), or --log-dir with --window");
            var driftOptions = Options(parse.GetValue(share), parse.GetValue(test), parse.GetValue(threshold), parse.GetValue(columns) ?? []);
            var maxExact = parse.GetValue(exact);
            if (maxExact is < 0) throw new KilnException($"--max-exact-rows: {maxExact} is negative");
            var started = DateTime.UtcNow;
            DriftReport report;
            // The current data is opened (and its first columns read) on another thread while the package loads.
            var opening = data is null ? null
                : Task.Run(() => DataDrift.OpenAsync(data, maxExact ?? DataDrift.DefaultMaxExactRows, readAhead: true, ct), ct);
            ModelPackage package;
            try
            {
                package = await MonitorCommands.LoadPackageAsync(modelDir, ct);
            }
            catch when (opening is not null)
            {
                // The package's error is the one reported; the data opened meanwhile is closed.
                await opening.ContinueWith(t => { if (t.IsCompletedSuccessfully) t.Result.Dispose(); }, TaskScheduler.Default);
                throw;
            }
            StepTimings.Mark("package loaded");
            if (opening is null)
            {
                var reference = package.Profile?.Inputs ?? throw new KilnException($"{modelDir}: the package has no reference profile");
                var w = window.Resolve(parse, logDir!, modelDir, package);
                (report, _, _) = await Kiln.Monitoring.Windows.WindowEvaluator.InputDriftAsync(reference, w, driftOptions,
                    (int)Math.Min(int.MaxValue, maxExact ?? 100_000), ct);
            }
            else
            {
                using var current = await opening;
                report = await DataDrift.CompareAsync(package, current, driftOptions, ct);
            }
            if (parse.GetValue(html) is { } htmlPath) await Cli.WriteAtomicAsync(htmlPath, DriftHtmlReport.Render(report, $"Drift: {package.Name}"), "--out", ct);
            PrintTable(report, DateTime.UtcNow - started);
            await Cli.WriteJsonAsync(parse, json, jsonOut, () => DriftJson.Serialize(report), ct);
            StepTimings.Mark("report written");
            return report.DatasetDrift && parse.GetValue(failOnDrift) ? Cli.ProblemFound : 0;
        });
        return command;
    }

    /// <summary>--fail-on-drift: shared by kiln drift (on by default: the command is a check) and kiln monitor evaluate (off: a report).</summary>
    internal static Option<bool> FailOnDriftOption(bool defaultValue) => new("--fail-on-drift")
    {
        Description = defaultValue
            ? "Exit 2 when the dataset drifts (default true; --fail-on-drift false exits 0 and leaves the verdict to the report)."
            : "Exit 2 when the dataset drifts (default false: the report is the result and the exit code is 0).",
        DefaultValueFactory = _ => defaultValue,
    };

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
