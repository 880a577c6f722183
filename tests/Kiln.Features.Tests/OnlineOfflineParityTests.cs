using FsCheck.Xunit;
using Kiln.Features.Offline;
using Kiln.Features.Online;
using Kiln.Testing;
using static Kiln.Features.Tests.TestData;

namespace Kiln.Features.Tests;

/// <summary>For the same entity and time, the online read after materializing up to that time equals the offline training set row.</summary>
public sealed class OnlineOfflineParityTests
{
    private sealed class FixedTime(DateTime now) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => new(now);
    }

    [Property(MaxTest = 5)]
    public bool Online_values_equal_the_training_set(int seed)
    {
        var random = new Random(seed);
        using var d = new DriverRepo(ttl: random.Next(2) == 0 ? "0" : "15m");
        var rows = new List<object?[]>();
        for (var i = 0; i < 40; i++)
        {
            rows.Add([(long)random.Next(1, 6), T(random.Next(0, 60)), T(100 + i), random.Next(5) == 0 ? null : Math.Round(random.NextDouble(), 3), (long)random.Next(100)]);
        }
        d.Stats("a.parquet", [.. rows]);
        var repo = d.Load();
        var now = T(random.Next(0, 70));
        var entities = Enumerable.Range(1, 6).Select(k => ((long)k, now)).ToArray();
        var offline = HistoricalRetrieval.ToFrame(repo, d.Entities(entities), repo.ServiceFeatures("driver_model"));

        using var store = new TempDir();
        var online = Task.Run(async () =>
        {
            await using var s = await OnlineStores.OpenAsync(store.File("online.db"));
            await Materializer.MaterializeAsync(repo, s, null, null, DateTime.UnixEpoch, now);
            var reader = new OnlineFeatureReader(repo, s, new FixedTime(now));
            return await reader.ReadAsync(repo.ServiceFeatures("driver_model"),
                new Dictionary<string, IReadOnlyList<object?>> { ["driver_id"] = [.. entities.Select(e => (object?)e.Item1)] });
        }).GetAwaiter().GetResult();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();

        for (var i = 0; i < entities.Length; i++)
        {
            foreach (var column in online.Columns)
            {
                var expected = offline.Rows[i][offline.Ordinal(column.Name)];
                if (!Equals(expected, column.Values[i]))
                    throw new InvalidOperationException($"seed {seed} driver {entities[i].Item1} {column.Name}: offline {expected}, online {column.Values[i]} ({column.Statuses[i]})");
            }
        }
        return true;
    }
}
