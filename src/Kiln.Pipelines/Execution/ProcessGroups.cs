using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;

namespace Kiln.Pipelines.Execution;

/// <summary>
/// The process groups task commands run in (Linux and other Unix systems with util-linux's <c>setsid</c>): a
/// command is started as the leader of a new session, so its whole tree is one group that can be killed at
/// once, and a watcher inside the group kills the group when the runner's end of its stdin pipe closes, which
/// the kernel does when the runner dies, even by <c>kill -9</c>. The group is recorded with the attempt as
/// <c>PGID@HOST</c> so that a resumed run kills a survivor before it runs the task again.
/// </summary>
public static partial class ProcessGroups
{
    private const int SigKill = 9;
    private const int Esrch = 3;

    /// <summary>
    /// The wrapper run by <c>setsid /bin/sh -c WRAPPER kiln-task COMMAND</c>. The command gets /dev/null as its
    /// stdin (fd 3, the runner's pipe, is closed for it); the watcher blocks reading the pipe and kills its own
    /// group (<c>kill 0</c>) at end of file. The wrapper exits with the command's status.
    /// </summary>
    internal const string Wrapper = """
        exec 3<&0
        /bin/sh -c "$1" </dev/null 3<&- &
        child=$!
        (while read -r _; do :; done; kill -KILL 0) <&3 >/dev/null 2>&1 &
        exec 3<&-
        wait "$child"
        """;

    /// <summary>The path of <c>setsid</c>, or null where there is none (then commands run without a group of their own).</summary>
    public static string? Setsid { get; } = OperatingSystem.IsWindows() ? null
        : new[] { "/usr/bin/setsid", "/bin/setsid" }.FirstOrDefault(File.Exists);

    /// <summary>How a group is recorded with an attempt: <c>PGID@HOST</c>.</summary>
    public static string Describe(int pgid) => string.Create(CultureInfo.InvariantCulture, $"{pgid}@{Environment.MachineName}");

    /// <summary>Parses a recorded group; null when it was recorded on another host (it cannot be reached from here).</summary>
    public static int? LocalGroup(string? recorded)
    {
        if (recorded is null) return null;
        var at = recorded.IndexOf('@', StringComparison.Ordinal);
        if (at <= 0 || !string.Equals(recorded[(at + 1)..], Environment.MachineName, StringComparison.OrdinalIgnoreCase)) return null;
        return int.TryParse(recorded.AsSpan(0, at), NumberStyles.None, CultureInfo.InvariantCulture, out var pgid) && pgid > 1 ? pgid : null;
    }

    /// <summary>Sends SIGKILL to every process of the group; false when the group has no process left.</summary>
    public static bool Kill(int pgid)
    {
        if (OperatingSystem.IsWindows() || pgid <= 1) return false;
        return NativeKill(-pgid, SigKill) == 0 || Marshal.GetLastPInvokeError() != Esrch;
    }

    /// <summary>True while a process of the group is alive.</summary>
    public static bool Alive(int pgid)
    {
        if (OperatingSystem.IsWindows() || pgid <= 1) return false;
        return NativeKill(-pgid, 0) == 0 || Marshal.GetLastPInvokeError() != Esrch;
    }

    /// <summary>
    /// Kills what is left of a task attempt's group: only when a process of group <paramref name="pgid"/> still
    /// carries the attempt's run id in its environment (so a group number reused by an unrelated program is left
    /// alone). Waits up to <paramref name="wait"/> for the group to be gone. Returns what it did, for the attempt's record.
    /// </summary>
    public static async Task<string> KillSurvivorsAsync(int pgid, string runId, string task, TimeSpan wait)
    {
        if (!OperatingSystem.IsLinux()) return $"its process group {pgid} was not checked (not Linux)";
        if (!BelongsTo(pgid, runId, task)) return $"its process group {pgid} had already exited";
        Kill(pgid);
        var sw = Stopwatch.StartNew();
        while (Alive(pgid) && sw.Elapsed < wait) await Task.Delay(20).ConfigureAwait(false);
        return Alive(pgid) ? $"its process group {pgid} was sent SIGKILL but has not exited yet" : $"its process group {pgid} was still running and has been killed";
    }

    /// <summary>True when a live process of the group has KILN_RUN_ID and KILN_TASK of this task in its environment.</summary>
    private static bool BelongsTo(int pgid, string runId, string task)
    {
        var run = Encoding.UTF8.GetBytes($"KILN_RUN_ID={runId}\0");
        var name = Encoding.UTF8.GetBytes($"KILN_TASK={task}\0");
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            var pidText = Path.GetFileName(dir);
            if (pidText.Length == 0 || !char.IsAsciiDigit(pidText[0])) continue;
            try
            {
                if (GroupOf(File.ReadAllText(Path.Combine(dir, "stat"))) != pgid) continue;
                var environ = File.ReadAllBytes(Path.Combine(dir, "environ"));
                if (Contains(environ, run) && Contains(environ, name)) return true;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // The process exited while we looked, or belongs to another user: not ours.
            }
        }
        return false;
    }

    /// <summary>The process group field of /proc/PID/stat (the 5th, counted after the command name in parentheses).</summary>
    private static int GroupOf(string stat)
    {
        var close = stat.LastIndexOf(')');
        if (close < 0) return -1;
        var fields = stat[(close + 2)..].Split(' ');
        return fields.Length > 2 && int.TryParse(fields[2], NumberStyles.Integer, CultureInfo.InvariantCulture, out var g) ? g : -1;
    }

    private static bool Contains(byte[] environ, byte[] entry)
    {
        // Entries are NUL-separated; match at the start of the block or right after a NUL.
        var span = environ.AsSpan();
        var at = 0;
        while (true)
        {
            var i = span[at..].IndexOf(entry);
            if (i < 0) return false;
            var pos = at + i;
            if (pos == 0 || environ[pos - 1] == 0) return true;
            at = pos + 1;
        }
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int NativeKill(int pid, int signal);
}
