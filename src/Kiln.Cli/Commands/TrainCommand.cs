using System.CommandLine;
using Kiln.Core;
using Kiln.Training;
using Spectre.Console;

namespace Kiln.Cli.Commands;

/// <summary>`kiln train SPEC.yaml`: trains a model and writes its package.</summary>
internal static class TrainCommand
{
    public static Command Create()
    {
        var spec = new Argument<string>("spec") { Description = "The training spec (YAML)." };
        var output = new Option<string?>("--out", "-o") { Description = "Package directory to write (default: packages/<name>). An existing package there is replaced atomically." };
        var tracking = new Option<string?>("--tracking-uri") { Description = "Log the run to this tracking store: a local path (embedded) or http(s)://host:port of a kiln server." };
        var experiment = new Option<string?>("--experiment") { Description = "Experiment name for the run (default: the spec's name)." };
        var register = new Option<string?>("--register") { Description = "Register the package as a new version of this model (needs --tracking-uri)." };
        var json = new Option<bool>("--json") { Description = "Print the result as JSON on stdout." };
        var featureRegistry = new Option<string?>("--feature-registry") { Description = "For a spec with features_from: the feature registry (SQLite path or PostgreSQL URI), overriding the spec's registry and $KILN_FEATURE_REGISTRY." };
        var command = new Command("train", "Train a model from a YAML spec and write a self-describing model package.")
        {
            spec, output, tracking, experiment, register, json, featureRegistry,
        };
        command.SetHandler(async (parse, ct) =>
        {
            if (parse.GetValue(register) is not null && parse.GetValue(tracking) is null)
                throw new KilnException("--register needs --tracking-uri (a local path such as ./.kiln, or http://host:5000)");
            var s = TrainingSpec.Load(parse.GetValue(spec)!);
            if (parse.GetValue(featureRegistry) is { } registry)
            {
                if (s.FeaturesFrom is null) throw new KilnException($"--feature-registry: the spec {s.Source} reads 'data', not features_from");
                var location = registry.Contains("://", StringComparison.Ordinal) || registry.Contains('=', StringComparison.Ordinal) ? registry : Path.GetFullPath(registry);
                s = s with { FeaturesFrom = s.FeaturesFrom with { Registry = location } };
            }
            var outDir = parse.GetValue(output) ?? Path.Combine("packages", s.Name);
            var result = await TrainWithProgressAsync(s, outDir, ct);
            PrintResult(result, parse.GetValue(json));
            await TrainingRuns.LogAsync(parse.GetValue(tracking), parse.GetValue(experiment), parse.GetValue(register), s, result, Cli.Err.WriteLine, ct);
            return 0;
        });
        return command;
    }

    /// <summary>Trains with a live status line on stderr (rows loaded, then each stage).</summary>
    public static async Task<TrainingResult> TrainWithProgressAsync(TrainingSpec spec, string outDir, CancellationToken ct)
    {
        if (Console.IsErrorRedirected)
        {
            return await Trainer.TrainAsync(spec, outDir, new LineProgress(), ct);
        }
        TrainingResult? result = null;
        await Cli.Err.Status().StartAsync("Starting", async ctx =>
        {
            result = await Trainer.TrainAsync(spec, outDir, new StatusProgress(ctx), ct);
        });
        return result!;
    }

    public static void PrintResult(TrainingResult result, bool json)
    {
        if (json)
        {
            var payload = new Dictionary<string, object>
            {
                ["package"] = result.PackageDirectory,
                ["task"] = result.Task.ToString().ToLowerInvariant(),
                ["train_rows"] = result.TrainRows,
                ["holdout_rows"] = result.HoldoutRows,
                ["seconds"] = Math.Round(result.Elapsed.TotalSeconds, 3),
                ["metrics"] = result.Metrics,
            };
            Console.WriteLine(System.Text.Json.JsonSerializer.Serialize(payload, CliJson.Default.DictionaryStringObject));
            return;
        }
        var table = new Table().Caption($"holdout: {result.HoldoutRows:N0} rows").AddColumn("metric").AddColumn(new TableColumn("value").RightAligned());
        foreach (var (name, value) in result.Metrics.OrderBy(m => m.Key, StringComparer.Ordinal))
            table.AddRow(name, value.ToString("0.0000", System.Globalization.CultureInfo.InvariantCulture));
        Cli.Err.Write(table);
        Cli.Err.MarkupLineInterpolated($"Package written to [green]{result.PackageDirectory}[/] in {result.Elapsed.TotalSeconds:0.0}s");
        Console.WriteLine(result.PackageDirectory);
    }

    private sealed class StatusProgress(StatusContext ctx) : ITrainingProgress
    {
        private string _stage = "";

        public void Stage(string description)
        {
            _stage = description;
            ctx.Status(Markup.Escape(description));
        }

        public void RowsRead(long rows) => ctx.Status(Markup.Escape($"{_stage}: {rows:N0} rows"));
    }

    private sealed class LineProgress : ITrainingProgress
    {
        public void Stage(string description) => Console.Error.WriteLine($"kiln: {description}");

        public void RowsRead(long rows) { }
    }
}
