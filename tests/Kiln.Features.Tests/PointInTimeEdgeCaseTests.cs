using Kiln.Core;
using Kiln.Features.Offline;
using static Kiln.Features.Tests.TestData;

namespace Kiln.Features.Tests;

public sealed class PointInTimeEdgeCaseTests
{
    private static async Task<FeatureFrame> Get(DriverRepo d, string entities, bool fullNames = false)
    {
        var repo = d.Load();
        return await HistoricalRetrieval.ToFrameAsync(repo, entities, repo.ServiceFeatures("driver_model"), new RetrievalOptions { FullNames = fullNames });
    }

    private static object? Cell(FeatureFrame f, int row, string column) => f.Rows[row][f.Ordinal(column)];

    [Fact]
    public async Task A_feature_row_at_exactly_the_entity_time_is_used_and_the_latest_created_wins_a_tie()
    {
        using var d = new DriverRepo();
        d.Stats("a.parquet",
            [1L, T(10), T(11), 0.1, 1L],
            [1L, T(10), T(15), 0.2, 2L],   // same event time, created later: wins
            [1L, T(10), null, 0.9, 9L],    // no created time: loses
            [1L, T(11), T(11), 0.5, 5L]);  // after the entity time: never seen
        var f = await Get(d, d.Entities((1, T(10))));
        Assert.Equal(0.2, Cell(f, 0, "conv_rate"));
        Assert.Equal(2L, Cell(f, 0, "trips"));
    }

    [Fact]
    public async Task A_row_exactly_ttl_old_is_used_and_one_a_second_older_is_not()
    {
        using var d = new DriverRepo(ttl: "10m");
        d.Stats("a.parquet",
            [1L, T(0), T(0), 0.1, 1L],
            [2L, T(0).AddSeconds(-1), T(0), 0.2, 2L]);
        var f = await Get(d, d.Entities((1, T(10)), (2, T(10)), (2, T(9).AddSeconds(59))));
        Assert.Equal(0.1, Cell(f, 0, "conv_rate"));   // exactly at t - ttl
        Assert.Null(Cell(f, 1, "conv_rate"));         // one second older than t - ttl
        Assert.Equal(0.2, Cell(f, 2, "conv_rate"));   // 10 minutes before, to the second
    }

    [Fact]
    public async Task Duplicate_entity_rows_come_back_once_each_in_input_order()
    {
        using var d = new DriverRepo();
        d.Stats("a.parquet", [1L, T(0), null, 0.1, 1L], [2L, T(0), null, 0.2, 2L]);
        var f = await Get(d, d.Entities((2, T(5)), (1, T(5)), (2, T(5)), (3, T(5)), (2, T(5))));
        Assert.Equal(5, f.Rows.Count);
        Assert.Equal(new object?[] { 2L, 1L, 2L, 3L, 2L }, f.Rows.Select(r => r[0]));
        Assert.Equal(new object?[] { 0.2, 0.1, 0.2, null, 0.2 }, f.Rows.Select(r => r[f.Ordinal("conv_rate")]));
    }

    [Fact]
    public async Task Timestamps_without_a_time_zone_are_taken_as_utc()
    {
        using var d = new DriverRepo();
        d.Stats("a.parquet", [1L, T(10), null, 0.1, 1L], [1L, T(20), null, 0.2, 2L]);
        var entities = d.Dir.File("entities.csv");
        // 00:15 naive is 00:15 UTC; 01:19:59+01:00 is 00:19:59 UTC; 00:20:00Z is 00:20 UTC.
        File.WriteAllText(entities, "driver_id,event_timestamp\n1,2024-01-01 00:15:00\n1,2024-01-01T01:19:59+01:00\n1,2024-01-01T00:20:00Z\n");
        var f = await Get(d, entities);
        Assert.Equal(new object?[] { 0.1, 0.1, 0.2 }, f.Rows.Select(r => r[f.Ordinal("conv_rate")]));
    }

    [Fact]
    public async Task A_late_arriving_backfill_changes_the_training_set_for_past_times_only()
    {
        using var d = new DriverRepo();
        d.Stats("day1.parquet", [1L, T(0), T(0), 0.1, 1L], [1L, T(30), T(30), 0.3, 3L]);
        var entities = d.Entities((1, T(15)), (1, T(35)));
        var before = await Get(d, entities);
        Assert.Equal(new object?[] { 0.1, 0.3 }, before.Rows.Select(r => r[before.Ordinal("conv_rate")]));

        // Arrives later: a row for 00:10 and a correction of 00:30 (same event time, later created).
        d.Stats("backfill.parquet", [1L, T(10), T(60), 0.15, 15L], [1L, T(30), T(61), 0.35, 35L]);
        var after = await Get(d, entities);
        Assert.Equal(new object?[] { 0.15, 0.35 }, after.Rows.Select(r => r[after.Ordinal("conv_rate")]));
    }

    [Fact]
    public async Task Full_names_prefix_the_view_and_keep_the_entity_columns_first()
    {
        using var d = new DriverRepo();
        d.Stats("a.parquet", [1L, T(0), null, 0.1, 1L]);
        var f = await Get(d, d.Entities((1, T(5))), fullNames: true);
        Assert.Equal(["driver_id", "event_timestamp", "driver_stats__conv_rate", "driver_stats__trips"], f.Columns);
        Assert.Equal(T(5), f.Rows[0][1]);
    }

    [Fact]
    public async Task Training_set_to_parquet_and_csv_has_every_entity_row()
    {
        using var d = new DriverRepo();
        d.Stats("a.parquet", [1L, T(0), null, 0.1, 1L]);
        var entities = d.Entities((1, T(5)), (9, T(5)));
        var repo = d.Load();
        var rows = await HistoricalRetrieval.ToFileAsync(repo, entities, repo.ServiceFeatures("driver_model"), d.Dir.File("out/train.csv"));
        Assert.Equal(2, rows);
        var lines = File.ReadAllLines(d.Dir.File("out/train.csv"));
        Assert.Equal("driver_id,event_timestamp,conv_rate,trips", lines[0]);
        Assert.Equal("1,2024-01-01T00:05:00.000000Z,0.1,1", lines[1]);
        Assert.Equal("9,2024-01-01T00:05:00.000000Z,,", lines[2]);
    }
}

public sealed class BadInputTests
{
    [Fact]
    public void Unknown_view_and_unknown_feature_name_the_view_and_its_file()
    {
        using var d = new DriverRepo();
        var repo = d.Load();
        var e1 = Assert.Throws<KilnException>(() => repo.ResolveFeatures(["nope:conv_rate"], "--features"));
        Assert.Contains("unknown feature view 'nope'", e1.Message);
        Assert.Contains("driver_stats", e1.Message);
        var e2 = Assert.Throws<KilnException>(() => repo.ResolveFeatures(["driver_stats:speed"], "--features"));
        Assert.Contains("feature view 'driver_stats' (features.yaml:", e2.Message);
        Assert.Contains("no feature 'speed'", e2.Message);
    }

    [Fact]
    public async Task Entity_table_without_the_join_key_names_the_file_the_column_and_the_view()
    {
        using var d = new DriverRepo();
        d.Stats("a.parquet", [1L, T(0), null, 0.1, 1L]);
        var entities = d.Dir.File("entities.csv");
        File.WriteAllText(entities, "rider_id,event_timestamp\n1,2024-01-01 00:00:00\n");
        var repo = d.Load();
        var e = await Assert.ThrowsAsync<KilnException>(() => HistoricalRetrieval.ToFrameAsync(repo, entities, repo.ServiceFeatures("driver_model")));
        Assert.Contains("entities.csv", e.Message);
        Assert.Contains("no column 'driver_id'", e.Message);
        Assert.Contains("feature view 'driver_stats'", e.Message);
    }

    [Fact]
    public async Task Entity_table_without_timestamps_names_the_file_and_column()
    {
        using var d = new DriverRepo();
        d.Stats("a.parquet", [1L, T(0), null, 0.1, 1L]);
        var entities = d.Dir.File("entities.csv");
        File.WriteAllText(entities, "driver_id,when\n1,2024-01-01 00:00:00\n");
        var repo = d.Load();
        var e = await Assert.ThrowsAsync<KilnException>(() => HistoricalRetrieval.ToFrameAsync(repo, entities, repo.ServiceFeatures("driver_model")));
        Assert.Contains("entities.csv", e.Message);
        Assert.Contains("no timestamp column 'event_timestamp'", e.Message);

        File.WriteAllText(entities, "driver_id,event_timestamp\n1,2024-01-01 00:00:00\n2,\n");
        e = await Assert.ThrowsAsync<KilnException>(() => HistoricalRetrieval.ToFrameAsync(repo, entities, repo.ServiceFeatures("driver_model")));
        Assert.Contains("row 2 has no timestamp in column 'event_timestamp'", e.Message);
    }

    [Fact]
    public async Task Join_key_type_mismatch_names_both_files_and_the_key()
    {
        using var d = new DriverRepo();
        d.Stats("a.parquet", [1L, T(0), null, 0.1, 1L]);
        var entities = d.Dir.File("entities.csv");
        File.WriteAllText(entities, "driver_id,event_timestamp\nabc,2024-01-01 00:00:00\n");
        var repo = d.Load();
        var e = await Assert.ThrowsAsync<KilnException>(() => HistoricalRetrieval.ToFrameAsync(repo, entities, repo.ServiceFeatures("driver_model")));
        Assert.Contains("type mismatch for join key 'driver_id'", e.Message);
        Assert.Contains("entities.csv has VARCHAR", e.Message);
        Assert.Contains("feature view 'driver_stats'", e.Message);
    }

    [Fact]
    public async Task Feature_type_mismatch_names_the_view_the_file_and_the_column()
    {
        using var d = new DriverRepo();
        TestData.Write(d.Dir.File("data/a.parquet"),
            [("driver_id", "BIGINT"), ("event_timestamp", "TIMESTAMP"), ("created", "TIMESTAMP"), ("conv_rate", "DOUBLE"), ("trips", "VARCHAR")],
            [[1L, T(0), null, 0.1, "many"]]);
        var e = await Assert.ThrowsAsync<KilnException>(() => RepositoryValidator.ValidateAsync(d.Load()));
        Assert.Contains("feature view 'driver_stats' (features.yaml:", e.Message);
        Assert.Contains("data/*.parquet", e.Message);
        Assert.Contains("type mismatch for feature 'trips': column is VARCHAR, the schema says int64", e.Message);
    }

    [Fact]
    public async Task Source_without_its_timestamp_column_names_the_source_file_and_column()
    {
        using var d = new DriverRepo();
        TestData.Write(d.Dir.File("data/a.parquet"),
            [("driver_id", "BIGINT"), ("ts", "TIMESTAMP"), ("created", "TIMESTAMP"), ("conv_rate", "DOUBLE"), ("trips", "BIGINT")],
            [[1L, T(0), null, 0.1, 1L]]);
        var e = await Assert.ThrowsAsync<KilnException>(() => RepositoryValidator.ValidateAsync(d.Load()));
        Assert.Contains("source 'driver_stats_source' (features.yaml:", e.Message);
        Assert.Contains("no timestamp_field column 'event_timestamp'", e.Message);
        Assert.Contains("data/*.parquet", e.Message);
    }

    [Fact]
    public void Yaml_mistakes_name_the_file_line_and_definition()
    {
        using var d = new DriverRepo(extraYaml: "");
        File.AppendAllText(d.Dir.File("more.yaml"), "feature_views:\n  - name: broken\n    entities: [driver]\n    source: driver_stats_source\n    ttl: soon\n    schema: [{name: a, dtype: int64}]\n");
        var e = Assert.Throws<KilnException>(() => d.Load());
        Assert.Equal($"more.yaml:5:10: feature view 'broken': ttl: 'soon' is not a duration; write {Duration.Expected}", e.Message);

        File.WriteAllText(d.Dir.File("more.yaml"), "feature_views:\n  - name: broken\n    entities: [rider]\n    source: driver_stats_source\n    schema: [{name: a, dtype: int64}]\n");
        e = Assert.Throws<KilnException>(() => d.Load());
        Assert.Contains("more.yaml:2:5: feature view 'broken': unknown entity 'rider'", e.Message);
    }
}
