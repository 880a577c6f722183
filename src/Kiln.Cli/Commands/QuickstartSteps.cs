using Kiln.Core.Packaging;
using Kiln.Scoring;
using Kiln.Training;
using Spectre.Console;

namespace Kiln.Cli.Commands;

/// <summary>The quickstart's steps after training; they grow as the registry and serving land.</summary>
internal static class QuickstartSteps
{
    public static Task AfterTrainingAsync(TrainingSpec spec, TrainingResult result, CancellationToken ct)
    {
        _ = spec;
        ct.ThrowIfCancellationRequested();
        Cli.Err.MarkupLine("[bold]2. Verify and score[/] the package in-process");
        var package = ModelPackage.Load(result.PackageDirectory);
        using var scorer = Scorers.Open(package);
        var example = package.ReadInputExample();
        var table = InputTables.FromJsonRows(example, package.Signature);
        var predictions = scorer.ScoreAll(table);
        var t = new Table().AddColumns("input", "prediction", "probability");
        for (var i = 0; i < predictions.Length; i++)
            t.AddRow(Markup.Escape(string.Join(", ", example[i].Select(kv => $"{kv.Key}={kv.Value}"))), Markup.Escape(predictions[i].Label ?? ""), predictions[i].Value.ToString("0.000", System.Globalization.CultureInfo.InvariantCulture));
        Cli.Err.Write(t);
        return Task.CompletedTask;
    }
}
