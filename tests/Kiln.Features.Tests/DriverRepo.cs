using Kiln.Features.Definitions;
using Kiln.Testing;

namespace Kiln.Features.Tests;

/// <summary>A small driver feature repository in a temp folder: one entity, a stats view over data/*.parquet (with a created column).</summary>
internal sealed class DriverRepo : IDisposable
{
    public DriverRepo(string ttl = "0", string extraYaml = "")
    {
        Directory.CreateDirectory(Dir.File("data"));
        File.WriteAllText(Dir.File("features.yaml"), $"""
            project: drivers
            entities:
              - name: driver
                join_keys: [driver_id]
                value_type: int64
            sources:
              - name: driver_stats_source
                path: data/*.parquet
                format: parquet
                timestamp_field: event_timestamp
                created_timestamp_column: created
            feature_views:
              - name: driver_stats
                entities: [driver]
                source: driver_stats_source
                ttl: {ttl}
                online: true
                schema:
                  - {"{"}name: conv_rate, dtype: float64{"}"}
                  - {"{"}name: trips, dtype: int64{"}"}
            feature_services:
              - name: driver_model
                features: [driver_stats]
            """);
        if (extraYaml.Length > 0) File.WriteAllText(Dir.File("extra.yaml"), extraYaml);
    }

    public TempDir Dir { get; } = new();

    public static readonly (string, string)[] StatsColumns =
        [("driver_id", "BIGINT"), ("event_timestamp", "TIMESTAMP"), ("created", "TIMESTAMP"), ("conv_rate", "DOUBLE"), ("trips", "BIGINT")];

    /// <summary>Writes one data file of rows (driver_id, event, created, conv_rate, trips).</summary>
    public void Stats(string file, params object?[][] rows) => TestData.Write(Dir.File(Path.Combine("data", file)), StatsColumns, rows);

    public string Entities(params (long Key, DateTime T)[] rows)
    {
        var path = Dir.File($"entities-{Guid.NewGuid():N}.parquet");
        TestData.Write(path, [("driver_id", "BIGINT"), ("event_timestamp", "TIMESTAMP")], rows.Select(r => new object?[] { r.Key, r.T }));
        return path;
    }

    public FeatureRepository Load() => RepositoryLoader.Load(Dir.Path);

    public void Dispose() => Dir.Dispose();
}
