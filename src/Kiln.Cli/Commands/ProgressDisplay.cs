using Spectre.Console;

namespace Kiln.Cli.Commands;

/// <summary>
/// How a long command (kiln batch, local or --distributed) shows its progress on stderr: a live bar on a terminal,
/// otherwise (logs, CI) one plain line every <see cref="LineEvery"/>.
/// </summary>
internal static class ProgressDisplay
{
    /// <summary>How often a plain line is written when stderr is not a terminal.</summary>
    public static readonly TimeSpan LineEvery = TimeSpan.FromSeconds(5);

    /// <summary>Rows per second since the start.</summary>
    public static double Rate(long rows, TimeSpan elapsed) => rows / Math.Max(0.001, elapsed.TotalSeconds);

    /// <param name="run">The work; the display ends when it does, with a full bar if it succeeded.</param>
    /// <param name="name">The bar's description until <paramref name="bar"/> first sets one.</param>
    /// <param name="bar">Brings the bar up to date (every 250 ms and once at the end), given the time since the start.</param>
    /// <param name="line">The plain line to write now, or null for none yet, given the time since the start.</param>
    /// <param name="poll">Off a terminal, called every 500 ms with the time since the start, for a notice that should not wait for the next line.</param>
    public static async Task ShowAsync(Task run, string name, Action<ProgressTask, TimeSpan> bar, Func<TimeSpan, string?> line, Action<TimeSpan>? poll = null)
    {
        var started = DateTime.UtcNow;
        TimeSpan Elapsed() => DateTime.UtcNow - started;
        if (!Console.IsErrorRedirected)
        {
            await Cli.Err.Progress()
                .AutoClear(false)
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn(), new SpinnerColumn())
                .StartAsync(async ctx =>
                {
                    var task = ctx.AddTask(name, maxValue: 1);
                    while (!run.IsCompleted)
                    {
                        bar(task, Elapsed());
                        await Task.WhenAny(run, Task.Delay(250));
                    }
                    bar(task, Elapsed());
                    if (run.IsCompletedSuccessfully) task.Value = task.MaxValue;
                    task.StopTask();
                });
            return;
        }
        var lastLine = TimeSpan.Zero;
        while (!run.IsCompleted)
        {
            await Task.WhenAny(run, Task.Delay(500));
            if (run.IsCompleted) break;
            var elapsed = Elapsed();
            poll?.Invoke(elapsed);
            if (elapsed - lastLine < LineEvery || line(elapsed) is not { } text) continue;
            Console.Error.WriteLine(text);
            lastLine = elapsed;
        }
    }
}
