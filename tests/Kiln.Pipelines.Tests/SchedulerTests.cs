using Kiln.Pipelines.Definition;
using Kiln.Pipelines.Execution;
using Kiln.Pipelines.Scheduling;
using Kiln.Pipelines.State;
using Kiln.Pipelines.Tasks;

namespace Kiln.Pipelines.Tests;

public class SchedulerTests
{
    private static readonly TaskKindRegistry s_kinds = TaskKindRegistry.CreateDefault();

    [Fact]
    public void Cron_occurrences_follow_the_time_zone_across_daylight_saving_changes()
    {
        var def = PipelineLoader.Load("""
            name: nightly
            triggers:
              - cron: "0 3 * * *"
                timezone: Europe/Paris
              - cron: "30 9 * * *"
                timezone: America/New_York
                missed: catch_up
            tasks:
              t:
                kind: noop
            """, s_kinds, "p.yaml");
        var paris = def.Schedules[0];
        var ny = def.Schedules[1];
        Assert.Equal(MissedRunPolicy.Skip, paris.Missed);
        Assert.Equal(MissedRunPolicy.CatchUp, ny.Missed);
        // Expected values from Python's zoneinfo:
        //   datetime(2026,3,d,3,0,tzinfo=ZoneInfo('Europe/Paris')).astimezone(timezone.utc) for d in 28, 29, 30
        //   -> 2026-03-28T02:00Z, 2026-03-29T01:00Z (summer time starts that night), 2026-03-30T01:00Z
        var t1 = paris.Next(new DateTimeOffset(2026, 3, 27, 12, 0, 0, TimeSpan.Zero));
        Assert.Equal(new DateTimeOffset(2026, 3, 28, 2, 0, 0, TimeSpan.Zero), t1);
        var t2 = paris.Next(t1!.Value);
        Assert.Equal(new DateTimeOffset(2026, 3, 29, 1, 0, 0, TimeSpan.Zero), t2);
        Assert.Equal(new DateTimeOffset(2026, 3, 30, 1, 0, 0, TimeSpan.Zero), paris.Next(t2!.Value));
        //   datetime(2026,m,d,9,30,tzinfo=ZoneInfo('America/New_York')).astimezone(timezone.utc) for (10,31), (11,1)
        //   -> 2026-10-31T13:30Z, 2026-11-01T14:30Z (standard time from that morning)
        var n1 = ny.Next(new DateTimeOffset(2026, 10, 31, 0, 0, 0, TimeSpan.Zero));
        Assert.Equal(new DateTimeOffset(2026, 10, 31, 13, 30, 0, TimeSpan.Zero), n1);
        Assert.Equal(new DateTimeOffset(2026, 11, 1, 14, 30, 0, TimeSpan.Zero), ny.Next(n1!.Value));
    }

    private static PipelineDefinition Hourly(string missed) => PipelineLoader.Load($"""
        name: hourly-{missed.Replace('_', '-')}
        triggers:
          - cron: "0 * * * *"
            missed: {missed}
        tasks:
          t:
            kind: noop
        """, s_kinds, "p.yaml");

    [Fact]
    public async Task Catch_up_runs_every_missed_occurrence_oldest_first_once()
    {
        var clock = new ManualClock(new DateTimeOffset(2026, 5, 1, 10, 30, 0, TimeSpan.Zero));
        await using var f = await EngineFixture.CreateAsync(time: clock);
        f.Engine.Catalog.Add(Hourly("catch_up"));
        var scheduler = new PipelineScheduler(f.Engine, clock);

        Assert.Empty(await scheduler.TickAsync()); // first sight: no backfill from the past
        clock.Now = new DateTimeOffset(2026, 5, 1, 13, 10, 0, TimeSpan.Zero); // the scheduler was down for 2h40m
        var runs = await scheduler.TickAsync();
        Assert.Equal(
            [new DateTimeOffset(2026, 5, 1, 11, 0, 0, TimeSpan.Zero), new DateTimeOffset(2026, 5, 1, 12, 0, 0, TimeSpan.Zero), new DateTimeOffset(2026, 5, 1, 13, 0, 0, TimeSpan.Zero)],
            runs.Select(r => r.ScheduledFor!.Value));
        Assert.All(runs, r => Assert.Equal("schedule", r.Trigger));
        Assert.Empty(await scheduler.TickAsync()); // nothing is started twice
        foreach (var r in runs) Assert.Equal(RunState.Succeeded, await f.Engine.WaitAsync(r.RunId));
    }

    [Fact]
    public async Task Skip_runs_only_a_recent_occurrence_and_drops_older_missed_ones()
    {
        var clock = new ManualClock(new DateTimeOffset(2026, 5, 1, 10, 30, 0, TimeSpan.Zero));
        await using var f = await EngineFixture.CreateAsync(time: clock);
        f.Engine.Catalog.Add(Hourly("skip"));
        var scheduler = new PipelineScheduler(f.Engine, clock);
        await scheduler.TickAsync();

        clock.Now = new DateTimeOffset(2026, 5, 1, 13, 0, 20, TimeSpan.Zero); // 11:00 and 12:00 missed, 13:00 is due now
        var run = Assert.Single(await scheduler.TickAsync());
        Assert.Equal(new DateTimeOffset(2026, 5, 1, 13, 0, 0, TimeSpan.Zero), run.ScheduledFor);

        clock.Now = new DateTimeOffset(2026, 5, 1, 15, 10, 0, TimeSpan.Zero); // 14:00 and 15:00 missed, 15:00 is 10 minutes late
        Assert.Empty(await scheduler.TickAsync());
        Assert.Equal(RunState.Succeeded, await f.Engine.WaitAsync(run.RunId));
    }

    [Fact]
    public async Task A_restarted_scheduler_continues_from_the_cursor_in_the_store()
    {
        var clock = new ManualClock(new DateTimeOffset(2026, 5, 1, 10, 30, 0, TimeSpan.Zero));
        await using var f = await EngineFixture.CreateAsync(time: clock);
        var def = Hourly("catch_up");
        f.Engine.Catalog.Add(def);
        await new PipelineScheduler(f.Engine, clock).TickAsync();

        // A new engine and scheduler over the same store (the process restarted).
        await using var engine2 = new PipelineEngine(f.Store, f.Kinds, new PipelineEngineOptions { WorkingDirectory = f.Dir }, time: clock);
        engine2.Catalog.Add(def);
        clock.Now = new DateTimeOffset(2026, 5, 1, 12, 5, 0, TimeSpan.Zero);
        var runs = await new PipelineScheduler(engine2, clock).TickAsync();
        Assert.Equal(2, runs.Count);
        foreach (var r in runs) await engine2.WaitAsync(r.RunId);
        Assert.Equal(2, (await f.Store.ListRunsAsync(def.Name)).Count);
    }

    [Fact]
    public async Task The_next_due_time_is_the_earliest_occurrence_of_any_schedule()
    {
        var clock = new ManualClock(new DateTimeOffset(2026, 5, 1, 10, 30, 0, TimeSpan.Zero));
        await using var f = await EngineFixture.CreateAsync(time: clock);
        var scheduler = new PipelineScheduler(f.Engine, clock);
        Assert.Null(scheduler.NextDue());
        f.Engine.Catalog.Add(Hourly("skip"));
        f.Engine.Catalog.Add(new PipelineBuilder("quarter").Task("t", "noop").Schedule("*/15 * * * *").Build(s_kinds));
        Assert.Equal(new DateTimeOffset(2026, 5, 1, 10, 45, 0, TimeSpan.Zero), scheduler.NextDue());
    }
}
