using System.Diagnostics;

namespace Kiln.Monitoring.Tests.Continuous;

/// <summary>Waiting on a real kiln process over HTTP, for the CLI tests.</summary>
internal static class ProcessPolling
{
    /// <summary>
    /// Polls <paramref name="get"/> until <paramref name="check"/> holds (bounded by <paramref name="seconds"/>, and by the
    /// process staying up) and returns the last value seen; fails naming <paramref name="what"/> otherwise.
    /// </summary>
    public static async Task<string> PollAsync(Func<Task<string>> get, Func<string, bool> check, Process process, string what, int seconds = 90)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        var last = "";
        while (DateTime.UtcNow < deadline && !process.HasExited)
        {
            try
            {
                last = await get();
                if (check(last)) return last;
            }
            catch (HttpRequestException)
            {
                // Not listening yet, or restarting.
            }
            await Task.Delay(250);
        }
        throw new Xunit.Sdk.XunitException($"{what} never happened (exited: {process.HasExited}); last seen:\n{last}");
    }
}
