using System.Diagnostics;
using System.Globalization;

namespace Kiln.Core;

/// <summary>
/// Where a command's time goes, for measuring a fresh process (docs/benchmarks.md): with <c>KILN_TIMINGS=1</c> each
/// <see cref="Mark"/> prints one line on stderr with the wall time since the process started, the process's CPU time,
/// and the JIT's compile time and compiled methods so far. Off (the default), a mark costs one branch.
/// </summary>
public static class StepTimings
{
    /// <summary>True when <c>KILN_TIMINGS=1</c> is set.</summary>
    public static bool Enabled { get; } = Environment.GetEnvironmentVariable("KILN_TIMINGS") == "1";

    private static readonly object Gate = new();
    private static DateTime? _started;

    /// <summary>Prints the line for a step that has just ended (nothing unless <see cref="Enabled"/>).</summary>
    public static void Mark(string step)
    {
        if (!Enabled) return;
        lock (Gate)
        {
            _started ??= Process.GetCurrentProcess().StartTime.ToUniversalTime();
            var cpu = Environment.CpuUsage.TotalTime;
            Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"timing: {step}: {(DateTime.UtcNow - _started.Value).TotalMilliseconds:F0} ms since start, cpu {cpu.TotalMilliseconds:F0} ms, " +
                $"jit {System.Runtime.JitInfo.GetCompilationTime().TotalMilliseconds:F0} ms / {System.Runtime.JitInfo.GetCompiledMethodCount()} methods, " +
                $"gc {GC.CollectionCount(0)}/{GC.CollectionCount(1)}/{GC.CollectionCount(2)}"));
        }
    }

    /// <summary>Prints a step's own total (e.g. time summed over the workers that ran it), when <see cref="Enabled"/>.</summary>
    public static void Total(string what, TimeSpan elapsed)
    {
        if (!Enabled) return;
        lock (Gate) Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"timing: {what}: {elapsed.TotalMilliseconds:F0} ms"));
    }
}
