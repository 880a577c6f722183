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

    /// <summary>Exit code of a command that ran and found a problem: drift, a failed verification (docs/cli.md, Exit codes).</summary>
    public const int ProblemFound = 2;

    /// <summary>Line width of tables written to a file or a pipe: wide enough that no id or path is broken over lines.</summary>
    internal const int RedirectedWidth = 4096;

    /// <summary>The console for human-facing output (tables, progress) on stderr, so stdout stays parseable.</summary>
    public static IAnsiConsole Err { get; } = CreateConsole(Console.Error, Console.IsErrorRedirected);

    /// <summary>The console for commands whose table is their result (kiln package show), on stdout.</summary>
    /// <remarks>Made on first use: most commands never write a table to stdout, and a console costs start-up time.</remarks>
    public static IAnsiConsole Out => LazyInitializer.EnsureInitialized(ref _out, () => CreateConsole(Console.Out, Console.IsOutputRedirected));

    private static IAnsiConsole? _out;

    // Spectre wraps at 80 columns when it cannot ask a terminal for its width; in a file, a pipe or a CI
    // log that breaks run ids over several lines, so redirected tables get their full width instead.
    private static IAnsiConsole CreateConsole(TextWriter writer, bool redirected)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(writer) });
        if (redirected) console.Profile.Width = RedirectedWidth;
        return console;
    }

    /// <summary>The <c>--json</c> switch of every command with a machine-readable result.</summary>
    public static Option<bool> JsonOption(string what) =>
        new("--json") { Description = $"Print {what} as JSON on stdout (nothing else goes to stdout)." };

    /// <summary>The <c>--json-out FILE</c> option: the same JSON written to a file.</summary>
    public static Option<string?> JsonOutOption(string what) =>
        new("--json-out") { Description = $"Write {what} as JSON to this file (atomically); works with or without --json." };

    /// <summary>
    /// <c>--json FILE</c> wrote a file in kiln drift and kiln monitor evaluate before --json became a switch
    /// everywhere; now FILE is a stray token. Instead of System.CommandLine's generic error and the whole help,
    /// one line that names --json-out (null when the parse has no such token).
    /// </summary>
    public static string? OldJsonPath(ParseResult parse)
    {
        var tokens = parse.Tokens;
        foreach (var stray in parse.UnmatchedTokens)
        {
            for (var i = 1; i < tokens.Count; i++)
            {
                if (tokens[i].Value == stray && tokens[i - 1].Value == "--json")
                    return $"--json {stray}: --json no longer takes a file, it prints the JSON on stdout; write the file with --json-out {stray}";
            }
        }
        return null;
    }

    /// <summary>Prints <paramref name="json"/> on stdout when --json is given, and writes it to --json-out when given.</summary>
    public static async Task WriteJsonAsync(ParseResult parse, Option<bool> json, Option<string?> jsonOut, Func<string> content, CancellationToken ct)
    {
        var print = parse.GetValue(json);
        var path = parse.GetValue(jsonOut);
        if (!print && path is null) return;
        var text = content();
        if (path is not null) await WriteAtomicAsync(path, text, "--json-out", ct);
        if (print) Console.Out.WriteLine(text);
    }

    /// <summary>Writes a file through a temporary file beside it, so a reader never sees half of it.</summary>
    public static async Task WriteAtomicAsync(string path, string content, string? option, CancellationToken ct)
    {
        var full = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(full)!;
        if (!Directory.Exists(dir)) throw new KilnException($"{(option is null ? "" : option + " ")}{path}: directory '{dir}' does not exist");
        await AtomicFile.WriteAllTextAsync(full, content, ct);
    }

    /// <summary>Prints the one-line warning for a renamed option's old spelling, which still works.</summary>
    public static void WarnRenamed(string old, string now) => Console.Error.WriteLine($"warning: {old} is now {now}");

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
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidDataException or System.Text.Json.JsonException)
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
