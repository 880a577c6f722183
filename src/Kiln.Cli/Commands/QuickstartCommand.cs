using System.CommandLine;
using Kiln.Core;
using Kiln.Training;
using Spectre.Console;

namespace Kiln.Cli.Commands;

/// <summary>`kiln quickstart`: the whole loop on the embedded defaults, on the example data.</summary>
internal static class QuickstartCommand
{
    public static Command Create()
    {
        var dir = new Option<string>("--dir") { Description = "Where the example lives.", DefaultValueFactory = _ => Path.Combine("examples", "quickstart") };
        var command = new Command("quickstart", "Train the example fraud model on the embedded defaults and show what Kiln wrote.") { dir };
        command.SetHandler(async (parse, ct) =>
        {
            var root = parse.GetValue(dir)!;
            var specPath = Path.Combine(root, "spec.yaml");
            if (!File.Exists(specPath)) throw new KilnException($"{specPath}: not found; run quickstart from the repository root or pass --dir");
            var spec = TrainingSpec.Load(specPath);
            Cli.Err.MarkupLine("[bold]1. Train[/] the example model (ML.NET pipeline: missing values, one-hot, fast forest)");
            var result = await TrainCommand.TrainWithProgressAsync(spec, Path.Combine(".kiln", "packages", spec.Name), ct);
            TrainCommand.PrintResult(result, json: false);
            await QuickstartSteps.AfterTrainingAsync(spec, result, ct);
            return 0;
        });
        return command;
    }
}
