using System.CommandLine;
using Kiln.Core;
using Spectre.Console;

namespace Kiln.Cli.Commands;

/// <summary>Shared plumbing for commands: one-line errors, exit codes, console helpers.</summary>
internal static class Cli
{
    public static readonly Option<bool> Verbose = new("--verbose", "-v")
    {
        Description = "Print the full detail of an error (stack trace, inner errors).",
        Recursive = true,
    };

    /// <summary>The console for human-facing output (tables, progress) on stderr, so stdout stays parseable.</summary>
    public static IAnsiConsole Err { get; } = AnsiConsole.Create(new AnsiConsoleSettings
    {
        Out = new AnsiConsoleOutput(Console.Error),
    });

    /// <summary>Runs a command body: a KilnException becomes one line on stderr and exit code 1.</summary>
    public static void SetHandler(this Command command, Func<ParseResult, CancellationToken, Task<int>> body)
    {
        command.SetAction(async (parse, ct) =>
        {
            try
            {
                return await body(parse, ct);
            }
            catch (KilnException e)
            {
                return Fail(parse, e);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                Console.Error.WriteLine("kiln: cancelled");
                return 130;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidDataException)
            {
                return Fail(parse, e);
            }
        });
    }

    private static int Fail(ParseResult parse, Exception e)
    {
        Console.Error.WriteLine($"error: {OneLine(e.Message)}");
        if (parse.GetValue(Verbose)) Console.Error.WriteLine(e.ToString());
        else if (e.InnerException is not null) Console.Error.WriteLine("(run with --verbose for detail)");
        return 1;
    }

    private static string OneLine(string s) => s.ReplaceLineEndings(" ");
}
