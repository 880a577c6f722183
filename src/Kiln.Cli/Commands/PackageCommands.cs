using System.CommandLine;
using System.Globalization;
using Kiln.Core;
using Kiln.Core.Packaging;
using Kiln.Core.Profiling;
using Kiln.Scoring;
using Kiln.Training.Onnx;
using Spectre.Console;

namespace Kiln.Cli.Commands;

/// <summary>`kiln package onnx|export|verify|show`.</summary>
internal static class PackageCommands
{
    public static Command Create()
    {
        var command = new Command("package", "Wrap, verify and inspect model packages.");
        command.Subcommands.Add(Verify());
        command.Subcommands.Add(Show());
        command.Subcommands.Add(Onnx());
        command.Subcommands.Add(Export());
        return command;
    }

    private static Command Verify()
    {
        var path = new Argument<string>("path") { Description = "The package directory." };
        var command = new Command("verify", "Check the manifest and every file's SHA-256; exit 2 on any mismatch, 1 when PATH is not a directory.") { path };
        command.SetHandler((parse, ct) =>
        {
            var dir = parse.GetValue(path)!;
            if (!Directory.Exists(dir)) throw new KilnException($"{dir}: no such package directory");
            var problems = ModelPackage.Verify(dir);
            if (problems.Count == 0)
            {
                var manifest = ModelPackage.Load(dir, verify: false).Manifest;
                // The manifest lists every other file, so its own count is one short of the directory's;
                // naming the manifest says why.
                Console.WriteLine($"ok: {manifest.Files.Count} files verified against {PackageManifest.FileName} ({manifest.Name}, format_version {manifest.FormatVersion})");
                return Task.FromResult(0);
            }
            foreach (var p in problems) Console.Error.WriteLine($"error: {dir}: {p}");
            return Task.FromResult(Cli.ProblemFound);
        });
        return command;
    }

    private static Command Show()
    {
        var path = new Argument<string>("path") { Description = "The package directory." };
        var command = new Command("show", "Print a package's signature, metrics and profile summary.") { path };
        command.SetHandler((parse, ct) =>
        {
            var package = ModelPackage.Load(parse.GetValue(path)!);
            var m = package.Manifest;
            var console = Cli.Out;
            console.MarkupLineInterpolated($"[bold]{m.Name}[/]  task={m.Task.ToString().ToLowerInvariant()}  runtime={m.Runtime.ToString().ToLowerInvariant()}  format_version={m.FormatVersion}  created={m.CreatedAt:u}");
            if (package.Metadata.Dataset is { } d) console.MarkupLineInterpolated($"data: {d.Uri} ({d.Rows:N0} rows, sha256 {d.Sha256[..12]}…)");
            if (package.Metadata.GitCommit is { } git) console.MarkupLineInterpolated($"git commit: {git}");
            if (package.Metadata.FeatureStore is { } fs)
                console.MarkupLineInterpolated($"feature service: {fs.Service} (project {fs.Project}, definitions version {fs.DefinitionsVersion}; join keys {string.Join(", ", fs.JoinKeys)}; from the store: {string.Join(", ", fs.Inputs.Keys)})");

            var inputs = new Table().Title("Signature: inputs").AddColumns("name", "type", "nullable", "domain");
            foreach (var i in package.Signature.Inputs)
            {
                var domain = i.Type == ColumnKind.Numeric
                    ? $"[{Num(i.Min)}, {Num(i.Max)}]"
                    : $"{i.Categories?.Count ?? 0} categories: {string.Join(", ", (i.Categories ?? []).Take(6))}{((i.Categories?.Count ?? 0) > 6 ? ", …" : "")}";
                inputs.AddRow(Markup.Escape(i.Name), i.Type.ToString().ToLowerInvariant(), i.Nullable ? "yes" : "no", Markup.Escape(domain));
            }
            console.Write(inputs);
            console.MarkupLineInterpolated($"outputs: {string.Join(", ", package.Signature.Outputs.Select(o => $"{o.Name} ({o.Type})"))}");
            if (package.Signature.ClassLabels is { } classes) console.MarkupLineInterpolated($"classes: {string.Join(", ", classes)}");
            using (var scorer = Scorers.Open(package)) console.MarkupLineInterpolated($"scored by: {Scorers.DescribeEvaluator(scorer)}");

            if (package.Metadata.Metrics.Count > 0)
            {
                var metrics = new Table().Title("Holdout metrics").AddColumns("metric", "value");
                foreach (var (k, v) in package.Metadata.Metrics) metrics.AddRow(k, v.ToString("0.0000", CultureInfo.InvariantCulture));
                console.Write(metrics);
            }
            if (package.Profile is { } profile)
            {
                var t = new Table().Title($"Reference profile ({profile.Inputs.Rows:N0} rows)").AddColumns("column", "missing", "mean", "std", "min", "p50", "max", "top categories");
                foreach (var c in profile.Inputs.Columns.Concat(profile.Outputs.Columns))
                {
                    var missing = c.Rows == 0 ? "-" : (c.Missing / (double)c.Rows).ToString("P1", CultureInfo.InvariantCulture);
                    if (c.Numeric is { } n)
                        t.AddRow(Markup.Escape(c.Name), missing, Num(n.Mean), Num(n.Std(c.Count)), Num(n.Min), Num(n.Quantiles?[3]), Num(n.Max), "");
                    else
                        t.AddRow(Markup.Escape(c.Name), missing, "", "", "", "", "", Markup.Escape(string.Join(", ", c.Categorical!.Counts.OrderByDescending(kv => kv.Value).Take(3).Select(kv => $"{kv.Key} {kv.Value / (double)Math.Max(1, c.Count):P0}"))));
                }
                console.Write(t);
            }
            return Task.FromResult(0);
        });
        return command;
    }

    private static Command Onnx()
    {
        var model = new Argument<string>("model") { Description = "The ONNX model file." };
        var name = new Option<string>("--name") { Description = "Package (model) name.", Required = true };
        var task = new Option<string?>("--task") { Description = "binary, multiclass or regression (default: inferred from the output's width)." };
        var reference = new Option<string?>("--reference") { Description = "Reference data (CSV/Parquet) for the profile and the input domain." };
        var features = new Option<string?>("--features") { Description = "Comma-separated names of the columns packed into a single [N, k] input, in order." };
        var classes = new Option<string?>("--classes") { Description = "Comma-separated class labels in output order." };
        var label = new Option<string?>("--label") { Description = "A label column of the reference data to leave out of the features." };
        var output = new Option<string?>("--out", "-o") { Description = "Package directory (default: packages/<name>)." };
        var command = new Command("onnx", "Wrap an existing ONNX model as a Kiln package.") { model, name, task, reference, features, classes, label, output };
        command.SetHandler(async (parse, ct) =>
        {
            var taskText = parse.GetValue(task);
            var options = new OnnxImportOptions(parse.GetValue(model)!, parse.GetValue(name)!)
            {
                Task = taskText switch
                {
                    null => null,
                    "binary" => ModelTask.Binary,
                    "multiclass" => ModelTask.Multiclass,
                    "regression" => ModelTask.Regression,
                    _ => throw new KilnException($"--task: '{taskText}' is not a task (expected binary, multiclass or regression)"),
                },
                Reference = parse.GetValue(reference),
                Features = Split(parse.GetValue(features)),
                Classes = Split(parse.GetValue(classes)),
                Label = parse.GetValue(label),
            };
            var dir = await OnnxImporter.ImportAsync(options, parse.GetValue(output) ?? Path.Combine("packages", options.Name), ct);
            Cli.Err.MarkupLineInterpolated($"Package written to [green]{dir}[/]");
            using (var scorer = Scorers.Open(dir)) Cli.Err.MarkupLineInterpolated($"Scored by: {Scorers.DescribeEvaluator(scorer)}");
            Console.WriteLine(dir);
            return 0;
        });
        return command;
    }

    private static Command Export()
    {
        var command = new Command("export", "Export a package's model to another format.");
        var package = new Argument<string>("package") { Description = "The package directory (an ML.NET package)." };
        var output = new Option<string>("--out", "-o") { Description = "The ONNX file to write.", Required = true };
        var sample = new Option<string?>("--sample") { Description = "Rows (CSV/Parquet) to compare on besides the input example (default: the package's holdout rows, when its data is still where it was)." };
        var tolerance = new Option<double>("--tolerance") { Description = "The largest difference allowed between the package's and ONNX Runtime's probabilities (relative, for regression values above 1).", DefaultValueFactory = _ => 1e-5 };
        var onnx = new Command("onnx", "Export an ML.NET package's whole pipeline to ONNX; kept only when ONNX Runtime's probabilities match the package's within --tolerance.") { package, output, sample, tolerance };
        onnx.SetHandler(async (parse, ct) =>
        {
            var result = await OnnxExporter.ExportAsync(new OnnxExportOptions(parse.GetValue(package)!, parse.GetValue(output)!) { Sample = parse.GetValue(sample), Tolerance = Tolerance(parse.GetValue(tolerance)) }, ct);
            Cli.Err.MarkupLineInterpolated($"Compared {result.ExampleRows} input example rows and {result.SampleSource}: largest difference {result.MaxDifference.ToString("G3", CultureInfo.InvariantCulture)}");
            Cli.Err.MarkupLineInterpolated($"ONNX model written to [green]{result.Path}[/]");
            Console.WriteLine(result.Path);
            return 0;
        });
        command.Subcommands.Add(onnx);

        var edgePackage = new Argument<string>("package") { Description = "The package directory (ML.NET or ONNX)." };
        var edgeOutput = new Option<string>("--out", "-o") { Description = "The directory to write (new or empty).", Required = true };
        var runtime = new Option<string?>("--runtime", "-r") { Description = $"The scorer's platform: {string.Join(", ", EdgeExporter.Runtimes)} (default: this machine's)." };
        var edgeSample = new Option<string?>("--sample") { Description = "Rows (CSV/Parquet) to compare the ONNX export on besides the input example (ML.NET packages)." };
        var edgeTolerance = new Option<double>("--tolerance") { Description = "The largest difference allowed between the package's and ONNX Runtime's probabilities.", DefaultValueFactory = _ => 1e-5 };
        var edge = new Command("edge", "Write the model as ONNX, its signature and a small scorer executable (kiln-score: JSON lines or CSV in, predictions out) to a directory.") { edgePackage, edgeOutput, runtime, edgeSample, edgeTolerance };
        edge.SetHandler(async (parse, ct) =>
        {
            var options = new EdgeExportOptions(parse.GetValue(edgePackage)!, parse.GetValue(edgeOutput)!)
            {
                Runtime = parse.GetValue(runtime),
                Sample = parse.GetValue(edgeSample),
                Tolerance = Tolerance(parse.GetValue(edgeTolerance)),
            };
            Cli.Err.MarkupLine("Publishing the scorer (the first time for a platform, or after its sources changed, takes a few minutes)...");
            var result = await EdgeExporter.ExportAsync(options, ct);
            if (result.Check is { } check)
                Cli.Err.MarkupLineInterpolated($"Compared {check.ExampleRows} input example rows and {check.SampleSource}: largest difference {check.MaxDifference.ToString("G3", CultureInfo.InvariantCulture)}");
            Cli.Err.MarkupLineInterpolated($"Edge scorer ({result.Build}, {(result.Bytes / 1048576.0).ToString("F1", CultureInfo.InvariantCulture)} MB) written to [green]{result.Directory}[/]");
            Console.WriteLine(result.Scorer);
            return 0;
        });
        command.Subcommands.Add(edge);
        return command;
    }

    private static double Tolerance(double value) =>
        double.IsFinite(value) && value >= 0 ? value : throw new KilnException($"--tolerance: {value.ToString(CultureInfo.InvariantCulture)} is not a number of 0 or more");

    private static List<string>? Split(string? s) => s is null ? null : [.. s.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)];

    private static string Num(double? v) => v is { } x && double.IsFinite(x) ? x.ToString("G5", CultureInfo.InvariantCulture) : "-";
}
