using Kiln.Pipelines.Definition;
using Kiln.Pipelines.Execution;
using Kiln.Pipelines.State;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Kiln.Pipelines.Scheduling;

/// <summary>
/// Starts the cron-triggered pipelines of a catalog. Each schedule keeps a cursor in the store (the
/// last time it was handled), so a restarted scheduler knows which occurrences it missed and applies
/// the schedule's policy: <c>skip</c> runs only the latest missed occurrence if it is within
/// <see cref="Grace"/>, <c>catch_up</c> runs every missed one, oldest first.
/// </summary>
public sealed partial class PipelineScheduler
{
    private readonly PipelineEngine _engine;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;

    public PipelineScheduler(PipelineEngine engine, TimeProvider? time = null, ILogger<PipelineScheduler>? logger = null)
    {
        _engine = engine;
        _time = time ?? TimeProvider.System;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
    }

    /// <summary>How late an occurrence may be handled and still run under the skip policy.</summary>
    public TimeSpan Grace { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>The most occurrences one catch-up starts for one schedule (older ones are skipped).</summary>
    public int MaxCatchUp { get; set; } = 100;

    /// <summary>The longest the loop sleeps between checks (a bound on how late a change of clock is seen).</summary>
    public TimeSpan MaxSleep { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Raised for every run the scheduler starts.</summary>
    public event Action<RunRecord>? RunStarted;

    /// <summary>Handles every schedule once at the current time; returns the runs started.</summary>
    public async Task<IReadOnlyList<RunRecord>> TickAsync(CancellationToken cancellationToken = default)
    {
        var now = _time.GetUtcNow();
        var started = new List<RunRecord>();
        foreach (var def in _engine.Catalog.All)
        {
            foreach (var schedule in def.Schedules)
            {
                var key = schedule.Key(def.Name);
                var cursor = await _engine.Store.GetScheduleCursorAsync(key, cancellationToken).ConfigureAwait(false);
                if (cursor is null)
                {
                    // First sight of this schedule: start counting from now, never backfill from the epoch.
                    await _engine.Store.SetScheduleCursorAsync(key, now, cancellationToken).ConfigureAwait(false);
                    continue;
                }
                var due = new List<DateTimeOffset>();
                var skippedOld = 0;
                for (var next = schedule.Next(cursor.Value); next is { } n && n <= now; next = schedule.Next(n))
                {
                    due.Add(n);
                    if (due.Count > MaxCatchUp)
                    {
                        due.RemoveAt(0);
                        skippedOld++;
                    }
                }
                if (due.Count == 0) continue;
                List<DateTimeOffset> fire;
                if (schedule.Missed == MissedRunPolicy.CatchUp)
                {
                    fire = due;
                    if (skippedOld > 0) Log.TooManyMissed(_logger, def.Name, skippedOld);
                }
                else
                {
                    var latest = due[^1];
                    fire = now - latest <= Grace ? [latest] : [];
                    var missed = due.Count - fire.Count + skippedOld;
                    if (missed > 0) Log.Skipped(_logger, def.Name, missed);
                }
                // The cursor moves first: a crash between here and the start loses a run rather than doubling it.
                await _engine.Store.SetScheduleCursorAsync(key, due[^1], cancellationToken).ConfigureAwait(false);
                foreach (var at in fire)
                {
                    var run = await _engine.StartAsync(def, null, "schedule", at, cancellationToken).ConfigureAwait(false);
                    Log.Fired(_logger, def.Name, run.RunId, at);
                    started.Add(run);
                    RunStarted?.Invoke(run);
                }
            }
        }
        return started;
    }

    /// <summary>The next time any schedule is due, or null when there are none.</summary>
    public DateTimeOffset? NextDue()
    {
        DateTimeOffset? best = null;
        var now = _time.GetUtcNow();
        foreach (var def in _engine.Catalog.All)
        {
            foreach (var s in def.Schedules)
            {
                var n = s.Next(now);
                if (n is not null && (best is null || n < best)) best = n;
            }
        }
        return best;
    }

    /// <summary>Recovers orphaned runs, then ticks at every due time until cancelled.</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        await _engine.RecoverAsync(cancellationToken).ConfigureAwait(false);
        while (!cancellationToken.IsCancellationRequested)
        {
            await TickAsync(cancellationToken).ConfigureAwait(false);
            var now = _time.GetUtcNow();
            var wait = NextDue() is { } next ? next - now : MaxSleep;
            if (wait > MaxSleep) wait = MaxSleep;
            if (wait < TimeSpan.FromMilliseconds(10)) wait = TimeSpan.FromMilliseconds(10);
            try
            {
                await Task.Delay(wait, _time, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 8101, Level = LogLevel.Information, Message = "Schedule of {Pipeline} fired for {At}: run {RunId}")]
        public static partial void Fired(ILogger logger, string pipeline, string runId, DateTimeOffset at);

        [LoggerMessage(EventId = 8102, Level = LogLevel.Warning, Message = "Schedule of {Pipeline}: skipped {Count} missed occurrences (missed: skip)")]
        public static partial void Skipped(ILogger logger, string pipeline, int count);

        [LoggerMessage(EventId = 8103, Level = LogLevel.Warning, Message = "Schedule of {Pipeline}: {Count} missed occurrences beyond the catch-up limit were skipped")]
        public static partial void TooManyMissed(ILogger logger, string pipeline, int count);
    }
}
