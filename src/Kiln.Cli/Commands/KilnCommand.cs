using System.CommandLine;

namespace Kiln.Cli.Commands;

/// <summary>The `kiln` command tree: one line per area; each area's commands live in Commands/&lt;Area&gt;Commands.cs.</summary>
internal static class KilnCommand
{
    public static RootCommand Create()
    {
        var root = new RootCommand("Kiln: train, register, serve and monitor machine-learning models on .NET.");
        root.Options.Add(Cli.Verbose);
        root.Subcommands.Add(QuickstartCommand.Create());
        root.Subcommands.Add(TrainCommand.Create());
        root.Subcommands.Add(PackageCommands.Create());
        root.Subcommands.Add(ServerCommands.Create());
        root.Subcommands.Add(AuthCommands.Create());
        root.Subcommands.Add(TrackingCommands.CreateRuns());
        root.Subcommands.Add(TrackingCommands.CreateModels());
        root.Subcommands.Add(DriftCommands.Create());
        root.Subcommands.Add(MonitorCommands.Create());
        root.Subcommands.Add(MonitorCommands.CreateFeedback());
        root.Subcommands.Add(PipelineCommands.Create());
        root.Subcommands.Add(BatchCommands.Create());
        root.Subcommands.Add(WorkerCommands.Create());
        root.Subcommands.Add(FeatureCommands.Create());
        root.Subcommands.Add(ServeCommands.Create());
        root.Subcommands.Add(VectorCommands.Create());
        return root;
    }
}
