using System.CommandLine;

namespace Kiln.Cli.Commands;

/// <summary>The `kiln` command tree: one line per area; each area's commands live in Commands/&lt;Area&gt;Commands.cs.</summary>
internal static class KilnCommand
{
    /// <summary>The top-level commands in help order, each with its name so one can be built without the others.</summary>
    internal static readonly (string Name, Func<Command> Create)[] Areas =
    [
        ("quickstart", QuickstartCommand.Create),
        ("train", TrainCommand.Create),
        ("package", PackageCommands.Create),
        ("server", ServerCommands.Create),
        ("auth", AuthCommands.Create),
        ("runs", TrackingCommands.CreateRuns),
        ("models", TrackingCommands.CreateModels),
        ("drift", DriftCommands.Create),
        ("monitor", MonitorCommands.Create),
        ("feedback", MonitorCommands.CreateFeedback),
        ("pipeline", PipelineCommands.Create),
        ("batch", BatchCommands.Create),
        ("worker", WorkerCommands.Create),
        ("features", FeatureCommands.Create),
        ("serve", ServeCommands.Create),
        ("vectors", VectorCommands.Create),
    ];

    /// <summary>The whole tree (help, the docs test).</summary>
    public static RootCommand Create() => Create(null);

    /// <summary>
    /// The tree for a command line: when its first argument names a top-level command, only that command's subtree is
    /// built (a fresh `kiln drift` then builds ~1/16 of the options; its parse and help are the same, since neither looks
    /// at sibling commands); otherwise (no argument, an option, a typo to suggest a fix for) the whole tree.
    /// </summary>
    public static RootCommand Create(string? firstArgument)
    {
        var root = new RootCommand("Kiln: train, register, serve and monitor machine-learning models on .NET.");
        root.Options.Add(Cli.Verbose);
        foreach (var (name, create) in Areas)
        {
            if (name == firstArgument)
            {
                root.Subcommands.Add(create());
                return root;
            }
        }
        foreach (var (_, create) in Areas) root.Subcommands.Add(create());
        return root;
    }
}
