using System.CommandLine;
using System.Globalization;
using Kiln.Core;
using Kiln.Core.Packaging;
using Kiln.Monitoring.Feedback;
using Kiln.Monitoring.Windows;
using Spectre.Console;

namespace Kiln.Cli.Commands;

/// <summary>
/// `kiln monitor evaluate`: drift, proxy and realized metrics of a window of the prediction log;
/// `kiln feedback import`: delayed labels from a file into the log's feedback store.
/// </summary>
internal static class MonitorCommands
{
    public static Command Create()
    {
        var command = new Command("monitor", "Monitor served models from their prediction log.");
        command.Subcommands.Add(Evaluate());
        return command;
    }

    public static Command CreateFeedback()
    {
        var command = new Command("feedback", "Delayed labels (ground truth) for logged predictions.");
        command.Subcommands.Add(Import());
        command.Subcommands.Add(Compact());
        return command;
    }

    /// <summary>The options that pick a window of a prediction log; shared with kiln drift.</summary>
    internal sealed class WindowOptionSet
    {
        public Option<string?> LogDir { get; } = new("--log-dir") { Description = "The prediction log directory (kiln serve --log-dir)." };

        public Option<string?> Window { get; } = new("--window") { Description = "The window: the last DURATION before --to (or now), e.g. 15m, 1h, 7d. Default 1h." };

        public Option<string?> From { get; } = new("--from") { Description = "Start of the window (ISO 8601, UTC when no offset), inclusive." };

        public Option<string?> To { get; } = new("--to") { Description = "End of the window (ISO 8601 or now), exclusive. Default now." };

        public Option<string?> Name { get; } = new("--name") { Description = "The model's name in the log (default: the package's name, or NAME of models:/NAME…)." };

        public Option<string?> Version { get; } = new("--model-version") { Description = "Only the rows of this model version, as logged (default: every version)." };

        public void AddTo(Command command)
        {
            command.Options.Add(LogDir);
            command.Options.Add(Window);
            command.Options.Add(From);
            command.Options.Add(To);
            command.Options.Add(Name);
            command.Options.Add(Version);
        }

        public LogWindow Resolve(ParseResult parse, string logDir, string modelUri, ModelPackage package)
        {
            var now = DateTimeOffset.UtcNow;
            var to = parse.GetValue(To) is { } t ? LogWindow.ParseTime(t, "--to", now) : now;
            var window = parse.GetValue(Window);
            var fromText = parse.GetValue(From);
            if (window is not null && fromText is not null) throw new KilnException("give either --window or --from, not both");
            var from = fromText is not null ? LogWindow.ParseTime(fromText, "--from", now) : to - LogWindow.ParseLength(window ?? "1h");
            return new LogWindow(logDir, parse.GetValue(Name) ?? DefaultName(modelUri, package), from, to, parse.GetValue(Version));
        }

        private static string DefaultName(string uri, ModelPackage package)
        {
            if (uri.StartsWith("models:/", StringComparison.Ordinal))
            {
                var rest = uri["models:/".Length..];
                var end = rest.IndexOfAny(['/', '@']);
                return end > 0 ? rest[..end] : rest;
            }
            return package.Name;
        }
    }

    /// <summary>A package directory, or a registry URI resolved through $KILN_TRACKING_URI (default ./.kiln).</summary>
    internal static async Task<ModelPackage> LoadPackageAsync(string uri, CancellationToken ct)
    {
        return ModelPackage.Load((await ModelLocators.ResolveAsync(uri, ct)).PackageDirectory);
    }

    private static Command Evaluate()
    {
        var model = new Option<string>("--model") { Description = "The model: a package directory or models:/NAME/VERSION, models:/NAME@ALIAS.", Required = true };
        var window = new WindowOptionSet();
        var json = Cli.JsonOption("the report");
        var jsonOut = Cli.JsonOutOption("the report");
        var gauges = new Option<bool>("--gauges") { Description = "Print the report as Prometheus gauges on stdout." };
        var failOnDrift = DriftCommands.FailOnDriftOption(defaultValue: false);
        var noFeedback = new Option<bool>("--no-feedback") { Description = "Do not join the feedback store (no realized metrics)." };
        var exact = new Option<int>("--max-exact-rows")
        {
            Description = "Windows up to this many rows are tested on every row; larger ones are folded into bounded profiles.",
            DefaultValueFactory = _ => 100_000,
        };
        var share = new Option<double?>("--drift-share") { Description = "Share of drifted features at which the dataset drifts (default 0.5)." };
        var test = new Option<string?>("--test") { Description = "Test for every input feature: ks, chisquare, z, wasserstein, jensenshannon, psi, hellinger (default: per column, as Evidently)." };
        var threshold = new Option<double?>("--threshold") { Description = "Threshold for every input feature (default 0.05 for p-values, 0.1 for distances)." };
        var columns = new Option<string[]>("--column") { Description = "Per-column override NAME=TEST[:THRESHOLD] (repeatable)." };
        var command = new Command("evaluate", "Evaluate a window of the prediction log: input drift, proxy metrics of the predictions, realized metrics from feedback.")
        {
            model, json, jsonOut, gauges, failOnDrift, noFeedback, exact, share, test, threshold, columns,
        };
        window.AddTo(command);
        window.LogDir.Required = true;
        command.SetHandler(async (parse, ct) =>
        {
            var logDir = parse.GetValue(window.LogDir)!;
            if (parse.GetValue(json) && parse.GetValue(gauges)) throw new KilnException("give either --json or --gauges, not both (each is the whole of stdout)");
            var uri = parse.GetValue(model)!;
            var drift = DriftCommands.Options(parse.GetValue(share), parse.GetValue(test), parse.GetValue(threshold), parse.GetValue(columns) ?? []);
            var package = await LoadPackageAsync(uri, ct);
            var w = window.Resolve(parse, logDir, uri, package);
            var started = DateTime.UtcNow;
            var report = await WindowEvaluator.EvaluateAsync(package, w, new WindowOptions
            {
                Drift = drift,
                Feedback = !parse.GetValue(noFeedback),
                MaxExactRows = parse.GetValue(exact),
                Version = w.Version,
            }, ct);
            Print(report, DateTime.UtcNow - started);
            if (parse.GetValue(gauges))
            {
                foreach (var g in report.ToGauges()) Console.Out.WriteLine(g.ToString());
            }
            await Cli.WriteJsonAsync(parse, json, jsonOut, () => WindowJson.Serialize(report), ct);
            return report.Drift.DatasetDrift && parse.GetValue(failOnDrift) ? Cli.ProblemFound : 0;
        });
        return command;
    }

    private static string F(double? v) => v is { } x ? x.ToString("G4", CultureInfo.InvariantCulture) : "-";

    private static void Print(WindowReport r, TimeSpan elapsed)
    {
        Cli.Err.MarkupLine($"[bold]{Markup.Escape(r.Model)}[/] {Markup.Escape(LogWindow.Format(r.From))} → {Markup.Escape(LogWindow.Format(r.To))}: " +
            $"{r.Rows:N0} rows{(r.Versions.Count > 0 ? $" (version {Markup.Escape(string.Join(", ", r.Versions))})" : "")}, {elapsed.TotalSeconds:F2} s");
        var drift = new Table().AddColumns("feature", "test", "score", "threshold", "verdict");
        foreach (var f in r.Drift.Features)
        {
            var verdict = f.Drifted switch { true => "[red]drift[/]", false => "[green]ok[/]", null => "[grey]not tested[/]" };
            drift.AddRow(Markup.Escape(f.Name), f.Test ?? "-", F(f.Score), F(f.Threshold), verdict);
        }
        Cli.Err.Write(drift);
        Cli.Err.MarkupLine(r.Drift.DatasetDrift
            ? $"[red]dataset drift[/]: {r.Drift.FeaturesDrifted}/{r.Drift.FeaturesTested} features"
            : $"[green]no dataset drift[/]: {r.Drift.FeaturesDrifted}/{r.Drift.FeaturesTested} features");

        var proxy = new Table().AddColumns("proxy", "window", "reference");
        proxy.AddRow($"mean {Markup.Escape(r.Proxy.ValueColumn)}", F(r.Proxy.PredictionMean), F(r.Proxy.ReferencePredictionMean));
        if (r.Proxy.ClassShares is { } shares)
            foreach (var (c, s) in shares) proxy.AddRow($"share of {Markup.Escape(c)}", F(s), F(r.Proxy.ReferenceClassShares?.GetValueOrDefault(c)));
        if (r.Proxy.PredictionDrift is { } pd)
            proxy.AddRow($"prediction drift ({pd.Test ?? "-"})", F(pd.Score), pd.Drifted switch { true => "[red]drift[/]", false => "[green]ok[/]", null => "-" });
        Cli.Err.Write(proxy);

        if (r.Realized is { } m)
        {
            var realized = new Table().AddColumns("realized", "value");
            realized.AddRow("labelled rows", $"{m.LabelledRows:N0} ({F(m.LabelCoverage)} of the window)");
            if (m.Accuracy is not null) realized.AddRow("accuracy", F(m.Accuracy));
            if (m.Auc is not null) realized.AddRow("auc", F(m.Auc));
            if (m.F1 is not null) realized.AddRow($"f1 ({m.F1Average})", F(m.F1));
            if (m.LogLoss is not null) realized.AddRow("log loss", F(m.LogLoss));
            if (m.Rmse is not null) realized.AddRow("rmse", F(m.Rmse));
            if (m.Mae is not null) realized.AddRow("mae", F(m.Mae));
            Cli.Err.Write(realized);
        }
        foreach (var w in r.Warnings) Cli.Err.MarkupLine($"[yellow]warning[/]: {Markup.Escape(w)}");
    }

    private static Command Compact()
    {
        var logDir = new Option<string>("--log-dir") { Description = "The prediction log directory whose _feedback/ folder is compacted.", Required = true };
        var json = Cli.JsonOption("the counts (dates, files merged and written, labels read and kept)");
        var command = new Command("compact", "Merge the small feedback files of each day into one file with the last label per request id and row (safe beside writers and readers).")
        {
            logDir, json,
        };
        command.SetHandler(async (parse, ct) =>
        {
            var dir = parse.GetValue(logDir)!;
            if (!Directory.Exists(dir)) throw new KilnException($"--log-dir: directory '{dir}' does not exist");
            var store = new FeedbackStore(dir);
            var result = await FeedbackCompactor.CompactAsync(store, ct);
            Cli.Err.MarkupLine($"compacted {Markup.Escape(store.Root)}: {Markup.Escape(result.Describe())}");
            if (parse.GetValue(json)) Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{{\"dates\":{result.Dates},\"files_merged\":{result.FilesMerged},\"files_written\":{result.FilesWritten},\"labels_read\":{result.LabelsRead},\"labels_kept\":{result.LabelsKept},\"dates_skipped\":{result.DatesSkipped}}}"));
            return 0;
        });
        return command;
    }

    private static Command Import()
    {
        var file = new Argument<string>("FILE") { Description = "A CSV or Parquet file of labels." };
        var logDir = new Option<string>("--log-dir") { Description = "The prediction log directory; labels go to its _feedback/ folder.", Required = true };
        var id = new Option<string>("--id-column") { Description = "Column of request ids.", DefaultValueFactory = _ => FeedbackImport.DefaultIdColumn };
        var label = new Option<string>("--label-column") { Description = "Column of labels.", DefaultValueFactory = _ => FeedbackImport.DefaultLabelColumn };
        var row = new Option<string?>("--row-column") { Description = "Column of row indexes within the request (default: 'row' when present, else every label is for row 0)." };
        var json = Cli.JsonOption("the number of labels stored ({\"stored\": N})");
        var command = new Command("import", "Import labels for logged predictions from a CSV or Parquet file; a bad row aborts the import and nothing is written.")
        {
            file, logDir, id, label, row, json,
        };
        command.SetHandler(async (parse, ct) =>
        {
            var dir = parse.GetValue(logDir)!;
            if (!Directory.Exists(dir)) throw new KilnException($"--log-dir: directory '{dir}' does not exist");
            var store = new FeedbackStore(dir);
            var count = await FeedbackImport.ImportAsync(store, parse.GetValue(file)!, parse.GetValue(id)!, parse.GetValue(label)!, parse.GetValue(row), ct);
            Cli.Err.MarkupLine($"imported [bold]{count:N0}[/] labels into {Markup.Escape(store.Root)}");
            if (parse.GetValue(json)) Console.Out.WriteLine($"{{\"stored\":{count}}}");
            return 0;
        });
        return command;
    }
}
