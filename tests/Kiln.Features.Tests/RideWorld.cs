using Kiln.Testing;

namespace Kiln.Features.Tests;

/// <summary>
/// A feature repository with data relative to now, for training and serving a model from a feature service: drivers
/// with stats (ttl 2d; some rows with a null conv_rate, some ties on event time broken by created), a profile view
/// (ttl 0) with a string tier, an entity table of labelled rides with a request-time field (amount), and a training
/// spec with features_from. Drivers 31-40 have only stats older than the ttl, 41-45 none at all (NOT_FOUND), 36-45 no
/// profile. No event time lies within 3 hours of the ttl bound, so a read a few seconds later sees the same rows.
/// </summary>
internal sealed class RideWorld : IDisposable
{
    public const string Service = "acceptance";
    public const int Drivers = 45;

    public RideWorld(int seed)
    {
        Now = DateTime.UtcNow.AddTicks(-(DateTime.UtcNow.Ticks % TimeSpan.TicksPerSecond));
        Project = $"rides{Guid.NewGuid():N}"[..16];
        var random = new Random(seed);
        Directory.CreateDirectory(Dir.File("repo/data"));
        File.WriteAllText(Dir.File("repo/features.yaml"), $$"""
            project: {{Project}}
            entities:
              - name: driver
                join_keys: [driver_id]
                value_type: int64
            sources:
              - name: driver_stats_source
                path: data/driver_stats.parquet
                timestamp_field: event_timestamp
                created_timestamp_column: created
              - name: driver_profile_source
                path: data/driver_profile.parquet
                timestamp_field: event_timestamp
            feature_views:
              - name: driver_stats
                entities: [driver]
                source: driver_stats_source
                ttl: 2d
                schema:
                  - {name: conv_rate, dtype: float64}
                  - {name: trips, dtype: int64}
              - name: driver_profile
                entities: [driver]
                source: driver_profile_source
                ttl: 0
                schema:
                  - {name: tier, dtype: string}
            feature_services:
              - name: {{Service}}
                features: [driver_stats, "driver_profile:tier"]
            """);

        var stats = new List<object?[]>();
        for (long d = 1; d <= 40; d++)
        {
            for (var i = 0; i < 8; i++)
            {
                // Drivers 31-40: everything older than the ttl (2d) by at least 3h.
                var hoursAgo = d > 30 ? 51 + random.NextDouble() * 90 : Away(0.5 + random.NextDouble() * 143);
                var t = Now.AddSeconds(-Math.Round(hoursAgo * 3600));
                var conv = random.Next(8) == 0 ? null : (object)Math.Round(random.NextDouble(), 3);
                stats.Add([d, t, t.AddMinutes(5), conv, (long)random.Next(0, 500)]);
                // A tie on event time with an older created time: must lose, online and offline.
                if (random.Next(4) == 0) stats.Add([d, t, t.AddMinutes(1), 9.999, 9999L]);
            }
        }
        TestData.Write(Dir.File("repo/data/driver_stats.parquet"),
            [("driver_id", "BIGINT"), ("event_timestamp", "TIMESTAMP"), ("created", "TIMESTAMP"), ("conv_rate", "DOUBLE"), ("trips", "BIGINT")], stats);

        var tiers = new[] { "gold", "silver", "bronze" };
        var profile = new List<object?[]>();
        for (long d = 1; d <= 35; d++)
        {
            for (var i = 0; i < 3; i++)
                profile.Add([d, Now.AddSeconds(-Math.Round((1 + random.NextDouble() * 300) * 3600)), tiers[random.Next(tiers.Length)]]);
        }
        TestData.Write(Dir.File("repo/data/driver_profile.parquet"), [("driver_id", "BIGINT"), ("event_timestamp", "TIMESTAMP"), ("tier", "VARCHAR")], profile);

        var rides = new List<object?[]>();
        for (var i = 0; i < 500; i++)
        {
            var amount = Math.Round(random.NextDouble() * 100, 2);
            var accepted = (amount > 50) != (random.Next(5) == 0) ? 1L : 0L;
            rides.Add([(long)random.Next(1, Drivers + 1), Now.AddSeconds(-random.Next(60, 6 * 86400)), amount, accepted]);
        }
        TestData.Write(Dir.File("entities.parquet"), [("driver_id", "BIGINT"), ("event_timestamp", "TIMESTAMP"), ("amount", "DOUBLE"), ("accepted", "BIGINT")], rides);

        // One row per driver at "now": what the online store should give the server.
        TestData.Write(Dir.File("parity.parquet"), [("driver_id", "BIGINT"), ("event_timestamp", "TIMESTAMP"), ("amount", "DOUBLE")],
            Enumerable.Range(1, Drivers).Select(d => new object?[] { (long)d, Now, Amount(d) }));

        File.WriteAllText(Dir.File("train.yaml"), """
            name: accept
            task: binary
            features_from:
              service: acceptance
              entities: entities.parquet
              registry: registry.db
              out: training_set.parquet
            label: accepted
            features:
              conv_rate: numeric
              trips: numeric
              tier: categorical
              amount: numeric
            trainer: {kind: fast_forest, trees: 20, leaves: 8, min_samples_leaf: 5}
            seed: 7
            """);
    }

    public TempDir Dir { get; } = new("kiln-rides");

    /// <summary>The time the data is relative to (whole seconds).</summary>
    public DateTime Now { get; }

    /// <summary>A fresh project per world keeps Redis keys of parallel runs apart.</summary>
    public string Project { get; }

    public string Registry => Dir.File("registry.db");

    public string Repo => Dir.File("repo");

    /// <summary>The request-time field sent for a driver in parity checks.</summary>
    public static double Amount(int driver) => driver * 2.25;

    /// <summary>Moves a time (hours ago) at least 3 hours away from the 48h ttl bound.</summary>
    private static double Away(double hoursAgo) => Math.Abs(hoursAgo - 48) < 3 ? hoursAgo + 6 : hoursAgo;

    public void Dispose() => Dir.Dispose();
}
