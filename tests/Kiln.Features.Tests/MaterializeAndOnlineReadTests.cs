using Kiln.Features.Online;
using Kiln.Features.Registry;
using Kiln.Testing;
using static Kiln.Features.Tests.TestData;

namespace Kiln.Features.Tests;

/// <summary>Materialization into SQLite and Redis, then reads with statuses; the registry on SQLite.</summary>
public sealed class MaterializeAndOnlineReadTests
{
    private sealed class FixedTime(DateTime now) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => new(now);
    }

    public static TheoryData<string> Stores => new() { "sqlite", "redis" };

    private static async Task<IOnlineStore> Open(string kind, TempDir dir) => kind == "sqlite"
        ? await OnlineStores.OpenAsync(dir.File("online.db"))
        : await OnlineStores.OpenAsync("redis://" + TestEnvironment.Redis);

    [Theory]
    [MemberData(nameof(Stores))]
    public async Task Materialize_writes_the_latest_row_per_entity_and_reads_report_statuses(string kind)
    {
        // A fresh project name per run keeps Redis keys apart.
        using var d = new DriverRepo(ttl: "1h");
        var yaml = File.ReadAllText(d.Dir.File("features.yaml")).Replace("project: drivers", $"project: m{Guid.NewGuid():N}", StringComparison.Ordinal);
        File.WriteAllText(d.Dir.File("features.yaml"), yaml);
        d.Stats("a.parquet",
            [1L, T(0), T(0), 0.1, 1L],
            [1L, T(50), T(50), 0.5, 5L],      // latest for driver 1 in the window
            [1L, T(50), T(40), 0.4, 4L],      // same event, older created: loses
            [1L, T(500), T(500), 9.9, 99L],   // after the window
            [2L, T(10), null, null, 2L],      // conv_rate null
            [3L, T(-300), null, 0.3, 3L]);    // old: outside the ttl at read time
        var repo = d.Load();
        await using var store = await Open(kind, d.Dir);
        await using var registry = await FeatureRegistry.OpenAsync(d.Dir.File(".kiln/kiln.db"));
        var results = await Materializer.MaterializeAsync(repo, store, registry, null, T(-1000), T(100));
        Assert.Equal(3, results.Single().Rows);

        var reader = new OnlineFeatureReader(repo, store, new FixedTime(T(60)));
        var result = await reader.ReadAsync(repo.ServiceFeatures("driver_model"),
            new Dictionary<string, IReadOnlyList<object?>> { ["driver_id"] = [1L, 2L, 3L, 4L] }, includeJoinKeys: true);
        Assert.Equal(["driver_id", "conv_rate", "trips"], result.Columns.Select(c => c.Name));
        var conv = result.Columns[1];
        Assert.Equal(new object?[] { 0.5, null, null, null }, conv.Values);
        Assert.Equal([FeatureStatus.Present, FeatureStatus.NullValue, FeatureStatus.OutsideMaxAge, FeatureStatus.NotFound], conv.Statuses);
        Assert.Equal(new DateTime?[] { T(50), T(10), T(-300), null }, conv.EventTimestamps);
        Assert.Equal(new object?[] { 5L, 2L, null, null }, result.Columns[2].Values);

        // Materializing an older window afterwards does not bring old values back.
        await Materializer.MaterializeAsync(repo, store, registry, null, T(-1000), T(5));
        var row = await reader.ReadRowAsync("driver_model", new Dictionary<string, object?> { ["driver_id"] = 1L });
        Assert.Equal(0.5, row["conv_rate"]);

        // Incremental: from the last end (T(100)) to T(600) picks up the later row.
        var incremental = await Materializer.MaterializeIncrementalAsync(repo, store, registry, null, T(600));
        Assert.Equal(T(100), incremental.Single().Start); // the furthest end materialized so far
        row = await new OnlineFeatureReader(repo, store, new FixedTime(T(520))).ReadRowAsync("driver_model", new Dictionary<string, object?> { ["driver_id"] = 1L });
        Assert.Equal(9.9, row["conv_rate"]);
        Assert.Equal(99L, row["trips"]);
    }
}
