using Kiln.Features.Online;
using Kiln.Testing;

namespace Kiln.Features.Tests;

/// <summary>The behaviour every online store must have; run on SQLite and on the real Redis.</summary>
public abstract class OnlineStoreContractTests : IAsyncLifetime
{
    protected IOnlineStore Store { get; private set; } = null!;

    // A fresh project per test class instance keeps tests apart on a shared Redis.
    protected string Project { get; } = "p" + Guid.NewGuid().ToString("N")[..12];

    protected abstract Task<IOnlineStore> OpenAsync();

    public async Task InitializeAsync() => Store = await OpenAsync();

    public virtual async Task DisposeAsync() => await Store.DisposeAsync();

    private static OnlineRow Row(string key, long ev, long created, string payload) => new(key, ev, created, payload);

    [Fact]
    public async Task Reads_return_what_was_written_in_key_order_and_null_for_unknown_keys()
    {
        await Store.WriteAsync(Project, "v", [Row("1", 100, 1, """{"a":1}"""), Row("2", 200, 1, """{"a":2}""")]);
        var got = await Store.ReadAsync(Project, "v", ["2", "3", "1", "2"]);
        Assert.Equal(new OnlineRecord(200, """{"a":2}"""), got[0]);
        Assert.Null(got[1]);
        Assert.Equal(new OnlineRecord(100, """{"a":1}"""), got[2]);
        Assert.Equal(got[0], got[3]);
        Assert.Null((await Store.ReadAsync(Project, "other_view", ["1"]))[0]);
    }

    [Fact]
    public async Task An_older_value_never_overwrites_a_newer_one()
    {
        await Store.WriteAsync(Project, "v", [Row("1", 200, 5, "new")]);
        var written = await Store.WriteAsync(Project, "v", [Row("1", 100, 9, "older event"), Row("1", 200, 4, "same event, older created")]);
        Assert.Equal(0, written);
        Assert.Equal("new", (await Store.ReadAsync(Project, "v", ["1"]))[0]!.Value.Payload);

        written = await Store.WriteAsync(Project, "v", [Row("1", 200, 6, "same event, newer created")]);
        Assert.Equal(1, written);
        Assert.Equal("same event, newer created", (await Store.ReadAsync(Project, "v", ["1"]))[0]!.Value.Payload);

        await Store.WriteAsync(Project, "v", [Row("1", 300, long.MinValue, "newer event, no created")]);
        Assert.Equal(new OnlineRecord(300, "newer event, no created"), (await Store.ReadAsync(Project, "v", ["1"]))[0]);
    }

    [Fact]
    public async Task Concurrent_writers_leave_the_newest_value()
    {
        // 8 writers race over the same key with interleaved event times; the store must end at the maximum.
        var tasks = Enumerable.Range(0, 8).Select(w => Task.Run(async () =>
        {
            for (var i = 0; i < 25; i++)
            {
                var ev = i * 8 + w;
                await Store.WriteAsync(Project, "v", [Row("k", ev, 0, ev.ToString(System.Globalization.CultureInfo.InvariantCulture))]);
            }
        })).ToArray();
        await Task.WhenAll(tasks);
        Assert.Equal(new OnlineRecord(199, "199"), (await Store.ReadAsync(Project, "v", ["k"]))[0]);
    }

    [Fact]
    public async Task Deleting_a_view_removes_only_that_view()
    {
        await Store.WriteAsync(Project, "a", [Row("1", 1, 1, "a")]);
        await Store.WriteAsync(Project, "b", [Row("1", 1, 1, "b")]);
        await Store.DeleteViewAsync(Project, "a");
        Assert.Null((await Store.ReadAsync(Project, "a", ["1"]))[0]);
        Assert.Equal("b", (await Store.ReadAsync(Project, "b", ["1"]))[0]!.Value.Payload);
    }

    [Fact]
    public async Task Large_batches_round_trip()
    {
        var rows = Enumerable.Range(0, 5000).Select(i => Row($"e{i}", i, 0, $"{{\"x\":{i}}}")).ToList();
        Assert.Equal(5000, await Store.WriteAsync(Project, "v", rows));
        var got = await Store.ReadAsync(Project, "v", ["e0", "e4999", "e2500"]);
        Assert.Equal(new long[] { 0, 4999, 2500 }, got.Select(r => r!.Value.EventMicros));
    }
}

public sealed class SqliteOnlineStoreTests : OnlineStoreContractTests
{
    private readonly TempDir _dir = new();

    protected override async Task<IOnlineStore> OpenAsync() => await OnlineStores.OpenAsync(_dir.File("online.db"));

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        _dir.Dispose();
    }
}

public sealed class RedisOnlineStoreTests : OnlineStoreContractTests
{
    protected override async Task<IOnlineStore> OpenAsync()
    {
        var redis = TestEnvironment.Redis;
        return await OnlineStores.OpenAsync($"redis://{redis}");
    }
}
