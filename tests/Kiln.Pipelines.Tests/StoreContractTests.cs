using Kiln.Pipelines.State;
using Kiln.Testing;

namespace Kiln.Pipelines.Tests;

/// <summary>The behaviour every pipeline store must have; run against SQLite and PostgreSQL.</summary>
public abstract class StoreContractTests : IAsyncLifetime
{
    protected IPipelineStore Store { get; private set; } = null!;

    protected abstract Task<IPipelineStore> CreateStoreAsync();

    protected virtual Task DropAsync() => Task.CompletedTask;

    public async Task InitializeAsync()
    {
        Store = await CreateStoreAsync();
        await Store.InitializeAsync();
        await Store.InitializeAsync(); // creating the schema twice is harmless
    }

    public async Task DisposeAsync()
    {
        await Store.DisposeAsync();
        await DropAsync();
    }

    private static readonly DateTimeOffset T0 = new(2026, 3, 29, 0, 59, 58, 123, TimeSpan.Zero);

    private async Task<RunRecord> NewRunAsync(string id, string pipeline = "p", DateTimeOffset? at = null, params string[] tasks)
    {
        var run = new RunRecord
        {
            RunId = id,
            Pipeline = pipeline,
            State = RunState.Pending,
            Trigger = "manual",
            Parameters = new Dictionary<string, string> { ["day"] = "2026-03-29", ["quote"] = "it's \"x\"" },
            DefinitionText = "name: p\n",
            SourcePath = "p.yaml",
            CreatedAt = at ?? T0,
        };
        await Store.CreateRunAsync(run, [.. tasks.Select((t, i) => new TaskRecord
        {
            RunId = id, Task = t, Kind = "noop", State = TaskState.Pending, DependsOn = i == 0 ? [] : [tasks[i - 1]],
        })]);
        return run;
    }

    [Fact]
    public async Task An_alert_key_is_claimed_once_until_released()
    {
        Assert.True(await Store.TryClaimAlertAsync("fp1@2026-03-29T00:00:00.0000000Z", "drift_alert", T0));
        Assert.False(await Store.TryClaimAlertAsync("fp1@2026-03-29T00:00:00.0000000Z", "drift_alert", T0.AddMinutes(1)));
        Assert.True(await Store.TryClaimAlertAsync("fp1@2026-03-29T02:00:00.0000000Z", "drift_alert", T0));
        await Store.ReleaseAlertAsync("fp1@2026-03-29T00:00:00.0000000Z");
        Assert.True(await Store.TryClaimAlertAsync("fp1@2026-03-29T00:00:00.0000000Z", "drift_alert", T0));
    }

    [Fact]
    public async Task A_created_run_reads_back_with_its_parameters_and_pending_tasks()
    {
        var run = await NewRunAsync("r1", tasks: ["a", "b"]);
        var back = await Store.GetRunAsync("r1");
        Assert.Equivalent(run, back, strict: true);
        var tasks = await Store.GetTasksAsync("r1");
        Assert.Equal(["a", "b"], tasks.Select(t => t.Task));
        Assert.All(tasks, t => Assert.Equal(TaskState.Pending, t.State));
        Assert.Equal(["a"], tasks[1].DependsOn);
        Assert.Null(await Store.GetRunAsync("nope"));
    }

    [Fact]
    public async Task Attempts_states_outputs_and_errors_are_recorded()
    {
        await NewRunAsync("r1", tasks: ["a"]);
        await Store.SetRunStateAsync("r1", RunState.Running, T0);
        await Store.StartAttemptAsync("r1", "a", 1, T0, "me");
        var running = Assert.Single(await Store.GetTasksAsync("r1"));
        Assert.Equal(TaskState.Running, running.State);
        Assert.Equal(1, running.Attempts);
        await Store.EndAttemptAsync(new AttemptEnd { RunId = "r1", Task = "a", Attempt = 1, AttemptState = "failed", TaskState = TaskState.Retrying, At = T0.AddSeconds(1), Error = "boom" });
        await Store.StartAttemptAsync("r1", "a", 2, T0.AddSeconds(2), "me");
        await Store.EndAttemptAsync(new AttemptEnd
        {
            RunId = "r1", Task = "a", Attempt = 2, AttemptState = "succeeded", TaskState = TaskState.Succeeded, At = T0.AddSeconds(3),
            Outputs = new Dictionary<string, string> { ["model_uri"] = "models:/churn/3", ["ünï"] = "😀" }, CacheKey = "abc",
        });
        await Store.SetRunStateAsync("r1", RunState.Succeeded, T0.AddSeconds(4));

        var t = Assert.Single(await Store.GetTasksAsync("r1"));
        Assert.Equal(TaskState.Succeeded, t.State);
        Assert.Equal(2, t.Attempts);
        Assert.Equal(T0, t.StartedAt);
        Assert.Equal(T0.AddSeconds(3), t.FinishedAt);
        Assert.Equal("models:/churn/3", t.Outputs!["model_uri"]);
        Assert.Equal("😀", t.Outputs!["ünï"]);
        Assert.Null(t.Error);
        Assert.Equal("abc", t.CacheKey);
        var attempts = await Store.GetAttemptsAsync("r1", "a");
        Assert.Equal([("failed", "boom"), ("succeeded", (string?)null)], attempts.Select(a => (a.State, a.Error)));
        Assert.Equal("me", attempts[0].Owner);
        var run = await Store.GetRunAsync("r1");
        Assert.Equal(RunState.Succeeded, run!.State);
        Assert.Equal(T0, run.StartedAt);
        Assert.Equal(T0.AddSeconds(4), run.FinishedAt);
    }

    [Fact]
    public async Task Runs_list_newest_first_and_filter_by_pipeline_and_state()
    {
        await NewRunAsync("r1", "train", T0, "a");
        await NewRunAsync("r2", "train", T0.AddMinutes(1), "a");
        await NewRunAsync("r3", "score", T0.AddMinutes(2), "a");
        await Store.SetRunStateAsync("r2", RunState.Failed, T0.AddMinutes(3), "x");
        Assert.Equal(["r3", "r2", "r1"], (await Store.ListRunsAsync()).Select(r => r.RunId));
        Assert.Equal(["r2", "r1"], (await Store.ListRunsAsync("train")).Select(r => r.RunId));
        Assert.Equal(["r2"], (await Store.ListRunsAsync(state: RunState.Failed)).Select(r => r.RunId));
        Assert.Equal(["r3"], (await Store.ListRunsAsync(limit: 1)).Select(r => r.RunId));
        Assert.Equal("x", (await Store.GetRunAsync("r2"))!.Error);
    }

    [Fact]
    public async Task Logs_come_back_in_order_per_task_and_page_by_id()
    {
        await NewRunAsync("r1", tasks: ["a", "b"]);
        var lines = Enumerable.Range(0, 250).Select(i => new LogLine("r1", i % 2 == 0 ? "a" : "b", 1, T0.AddMilliseconds(i), i % 5 == 0 ? "stderr" : "stdout", $"line {i} with 'quotes' and \ttabs")).ToList();
        await Store.AppendLogsAsync(lines);
        var all = await Store.GetLogsAsync("r1");
        Assert.Equal(lines.Select(l => l.Line), all.Select(l => l.Line));
        var a = await Store.GetLogsAsync("r1", "a");
        Assert.Equal(125, a.Count);
        Assert.All(a, l => Assert.Equal("a", l.Task));
        var page1 = await Store.GetLogsAsync("r1", null, 0, 100);
        var page2 = await Store.GetLogsAsync("r1", null, page1[^1].Id, 100);
        Assert.Equal(lines.Skip(100).Take(100).Select(l => l.Line), page2.Select(l => l.Line));
        Assert.Equal("stderr", all[0].Stream);
        Assert.Equal(T0.AddMilliseconds(3), all[3].At);
    }

    [Fact]
    public async Task A_lease_is_exclusive_until_it_expires_or_its_owner_is_known_dead()
    {
        await NewRunAsync("r1", tasks: ["a"]);
        Assert.True(await Store.TryAcquireLeaseAsync("r1", "one", T0, T0.AddSeconds(30)));
        Assert.False(await Store.TryAcquireLeaseAsync("r1", "two", T0.AddSeconds(10), T0.AddSeconds(40)));
        Assert.True(await Store.TryAcquireLeaseAsync("r1", "one", T0.AddSeconds(10), T0.AddSeconds(40)), "the owner may take its own lease again");
        Assert.True(await Store.TryAcquireLeaseAsync("r1", "two", T0.AddSeconds(20), T0.AddSeconds(50), deadOwner: "one"));
        Assert.Equal("two", (await Store.GetRunAsync("r1"))!.Owner);
        var renewed = await Store.RenewLeaseAsync("r1", "one", T0.AddSeconds(60));
        Assert.False(renewed.StillOwner);
        Assert.True((await Store.RenewLeaseAsync("r1", "two", T0.AddSeconds(60))).StillOwner);
        Assert.False(await Store.TryAcquireLeaseAsync("r1", "three", T0.AddSeconds(59), T0.AddSeconds(90)));
        Assert.True(await Store.TryAcquireLeaseAsync("r1", "three", T0.AddSeconds(61), T0.AddSeconds(90)), "an expired lease is free");
        await Store.ReleaseLeaseAsync("r1", "three");
        var run = await Store.GetRunAsync("r1");
        Assert.Null(run!.Owner);
        Assert.Null(run.LeaseExpires);
    }

    [Fact]
    public async Task A_cancel_request_is_seen_by_the_owner_at_renewal_and_can_be_cleared()
    {
        await NewRunAsync("r1", tasks: ["a"]);
        await Store.TryAcquireLeaseAsync("r1", "one", T0, T0.AddSeconds(30));
        Assert.False((await Store.RenewLeaseAsync("r1", "one", T0.AddSeconds(30))).CancelRequested);
        Assert.True(await Store.RequestCancelAsync("r1"));
        Assert.True((await Store.RenewLeaseAsync("r1", "one", T0.AddSeconds(30))).CancelRequested);
        await Store.RequestCancelAsync("r1", cancel: false);
        Assert.False((await Store.GetRunAsync("r1"))!.CancelRequested);
        Assert.False(await Store.RequestCancelAsync("missing"));
    }

    [Fact]
    public async Task Cache_entries_and_schedule_cursors_round_trip_and_upsert()
    {
        Assert.Null(await Store.GetCacheAsync("k"));
        await Store.PutCacheAsync(new CacheEntry("k", new Dictionary<string, string> { ["x"] = "1" }, "r1", "a", T0));
        await Store.PutCacheAsync(new CacheEntry("k", new Dictionary<string, string> { ["x"] = "2" }, "r2", "a", T0.AddSeconds(1)));
        var hit = await Store.GetCacheAsync("k");
        Assert.Equal("2", hit!.Outputs["x"]);
        Assert.Equal("r2", hit.RunId);

        Assert.Null(await Store.GetScheduleCursorAsync("s"));
        await Store.SetScheduleCursorAsync("s", T0);
        await Store.SetScheduleCursorAsync("s", T0.AddHours(1));
        Assert.Equal(T0.AddHours(1), await Store.GetScheduleCursorAsync("s"));
    }

    [Fact]
    public async Task A_ten_thousand_task_run_is_created_in_one_go()
    {
        var names = Enumerable.Range(0, 10_000).Select(i => $"t{i}").ToArray();
        await NewRunAsync("big", tasks: names);
        var tasks = await Store.GetTasksAsync("big");
        Assert.Equal(10_000, tasks.Count);
    }
}

public sealed class SqliteStoreContractTests : StoreContractTests
{
    private readonly TempDir _dir = new("kiln-store");

    protected override Task<IPipelineStore> CreateStoreAsync() =>
        Task.FromResult<IPipelineStore>(PipelineStores.Create(_dir.File("kiln.db")));

    protected override Task DropAsync()
    {
        _dir.Dispose();
        return Task.CompletedTask;
    }

    [Fact]
    public async Task The_database_is_in_wal_mode_and_shared_with_a_second_connection()
    {
        await Store.SetScheduleCursorAsync("x", DateTimeOffset.UnixEpoch);
        await using var other = PipelineStores.Create(_dir.File("kiln.db"));
        Assert.Equal(DateTimeOffset.UnixEpoch, await other.GetScheduleCursorAsync("x"));
        using var c = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={_dir.File("kiln.db")}");
        c.Open();
        using var cmd = c.CreateCommand();
        cmd.CommandText = "PRAGMA journal_mode";
        Assert.Equal("wal", cmd.ExecuteScalar());
        cmd.CommandText = "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'pipeline_%' AND name NOT LIKE 'sqlite_%' AND name <> 'kiln_schema'";
        Assert.Equal(0L, cmd.ExecuteScalar());
    }
}

public sealed class PostgresStoreContractTests : StoreContractTests
{
    private TestDatabase? _database;

    protected override async Task<IPipelineStore> CreateStoreAsync()
    {
        _database = await TestDatabase.CreateAsync();
        return PipelineStores.Create(_database.ConnectionString);
    }

    protected override async Task DropAsync()
    {
        if (_database is not null) await _database.DisposeAsync();
    }
}
