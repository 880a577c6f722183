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

    /// <summary>
    /// Fails in one line when HOST:PORT is already taken. Kestrel would find out too, but only
    /// after the host has logged the failure with its whole stack trace.
    /// </summary>
    public static void EnsurePortFree(string option, string host, int port)
    {
        if (port <= 0) return;
        var address = host switch
        {
            "localhost" => System.Net.IPAddress.Loopback,
            _ when System.Net.IPAddress.TryParse(host, out var ip) => ip,
            _ => System.Net.IPAddress.Any,
        };
        using var probe = new System.Net.Sockets.Socket(address.AddressFamily, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
        try
        {
            probe.Bind(new System.Net.IPEndPoint(address, port));
        }
        catch (System.Net.Sockets.SocketException e) when (e.SocketErrorCode == System.Net.Sockets.SocketError.AddressAlreadyInUse)
        {
            throw new KilnException($"{option} {port}: {host}:{port} is already in use (another kiln or program listens there; pick another port)");
        }
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
