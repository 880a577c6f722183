using System.CommandLine;
using Kiln.Cli.Commands;

var root = new RootCommand("Kiln: train, register, serve and monitor machine-learning models on .NET.");
root.Options.Add(Cli.Verbose);
// One line per area; each area's commands live in Commands/<Area>Commands.cs.
root.Subcommands.Add(QuickstartCommand.Create());
root.Subcommands.Add(TrainCommand.Create());
root.Subcommands.Add(PackageCommands.Create());
root.Subcommands.Add(ServerCommands.Create());
root.Subcommands.Add(TrackingCommands.CreateRuns());
root.Subcommands.Add(TrackingCommands.CreateModels());
root.Subcommands.Add(DriftCommands.Create());
root.Subcommands.Add(MonitorCommands.Create());
root.Subcommands.Add(MonitorCommands.CreateFeedback());
root.Subcommands.Add(PipelineCommands.Create());
root.Subcommands.Add(BatchCommands.Create());
root.Subcommands.Add(FeatureCommands.Create());
root.Subcommands.Add(ServeCommands.Create());
var parse = root.Parse(args);
if (Cli.OldJsonPath(parse) is { } oldJson)
{
    Console.Error.WriteLine($"error: {oldJson}");
    return 1;
}
return await parse.InvokeAsync();
