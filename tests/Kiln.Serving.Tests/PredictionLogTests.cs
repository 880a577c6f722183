using Kiln.Testing;
using Kiln.Core.Data;

namespace Kiln.Serving.Tests;

public sealed class PredictionLogTests
{
    private static Task<List<Dictionary<string, object?>>> ReadLogAsync(string root)
    {
        var rows = new List<Dictionary<string, object?>>();
        foreach (var file in Directory.EnumerateFiles(root, "*.parquet", SearchOption.AllDirectories))
        {
            using var reader = ParquetFile.Open(file);
            for (var g = 0; g < reader.RowGroupCount; g++)
            {
                var columns = new Dictionary<string, Array>();
                var n = (int)reader.RowGroupRows[g];
                foreach (var f in reader.Fields) columns[f.Name] = ReadColumn(reader, g, f);
                for (var i = 0; i < n; i++)
                {
                    var row = new Dictionary<string, object?> { ["_file"] = file };
                    foreach (var (name, data) in columns) row[name] = data.GetValue(i);
                    rows.Add(row);
                }
            }
        }
        return Task.FromResult(rows);
    }

    /// <summary>A column as the test compares it: text, int, UTC time, double (nullable doubles as double?).</summary>
    private static Array ReadColumn(ParquetFile reader, int group, ParquetField f) => f.Type switch
    {
        ParquetValueType.Text => reader.ReadText(group, f),
        ParquetValueType.Int32 => reader.ReadNumbers(group, f).Select(v => (int)v).ToArray(),
        ParquetValueType.Timestamp => reader.ReadTimestamps(group, f),
        _ when f.Nullable => reader.ReadNumbers(group, f).Select(v => double.IsNaN(v) ? (double?)null : v).ToArray(),
        _ => reader.ReadNumbers(group, f),
    };

    [Fact]
    public async Task Every_request_is_in_the_log_after_a_graceful_shutdown_partitioned_by_model_version_and_date()
    {
        using var dir = new TempDir("kiln-log");
        var package = TestPackages.CreateFraud(dir.File("fraud"));
        var log = dir.File("log");
        var version = Kiln.Core.Packaging.DirectoryModelLocator.ContentVersion(package);
        await using var server = await OwnServer.StartAsync(new ServeOptions
        {
            Models = [new ModelSpec(package)], Port = 0, GrpcPort = null, LogDirectory = log, PollInterval = TimeSpan.Zero,
            // Large thresholds: nothing is written before shutdown, so the test sees what the shutdown flush wrote.
            LogRowGroupSize = 100_000, LogFlushInterval = TimeSpan.FromMinutes(10), LogFileRollInterval = TimeSpan.FromMinutes(10),
        });
        var ids = new List<string>();
        for (var i = 0; i < 40; i++)
        {
            var (status, body) = await server.PostAsync("/predict", $$"""{"amount": {{10 + i}}.5, "hour": {{i % 24}}, "merchant": "online"}""");
            Assert.Equal(200, status);
            ids.Add(body.GetProperty("request_id").GetString()!);
        }
        var (batchStatus, _) = await server.PostAsync("/predict", "[" + string.Join(",", Enumerable.Range(0, 25).Select(i => $$"""{"amount": {{i}}, "merchant": "fuel"}""")) + "]");
        Assert.Equal(200, batchStatus);
        var (mlflowStatus, _) = await server.PostAsync("/invocations", """{"dataframe_split": {"columns": ["amount", "hour", "merchant"], "data": [[1, 2, "travel"], [3, 4, "grocery"]]}}""");
        Assert.Equal(200, mlflowStatus);
        // A rejected request is not logged.
        Assert.Equal(422, (await server.PostAsync("/predict", """{"amount": "x", "merchant": "fuel"}""")).Status);

        await server.StopAsync();

        Assert.Empty(Directory.EnumerateFiles(log, "*.inprogress", SearchOption.AllDirectories));
        var rows = await ReadLogAsync(log);
        Assert.Equal(40 + 25 + 2, rows.Count);
        var today = DateTime.UtcNow.ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture);
        Assert.All(rows, r => Assert.Contains(Path.Combine("model=fraud", $"version={version}", $"date={today}"), (string)r["_file"]!));
        Assert.All(rows, r => Assert.Equal(version, r["version"]));
        Assert.Equal(ids.Order(), rows.Where(r => (string)r["protocol"]! == "native" && r["input_merchant"] as string == "online").Select(r => (string)r["request_id"]!).Order());
        Assert.Equal(2, rows.Count(r => (string)r["protocol"]! == "mlflow"));

        // The logged row carries what was sent and what was answered.
        var first = rows.Single(r => r["request_id"] as string == ids[0]);
        Assert.Equal(10.5, (double)first["input_amount"]!);
        Assert.Equal(0.0, (double)first["input_hour"]!);
        var expected = TestPackages.PredictWithMlnet(package, 10.5f, 0, "online");
        Assert.Equal(expected.Probability, (double)first["value"]!, 5);
        Assert.Equal(expected.PredictedLabel ? "fraud" : "legit", first["prediction"]);
        var batchRows = rows.Where(r => r["input_merchant"] as string == "fuel").ToList();
        Assert.Equal(25, batchRows.Count);
        Assert.All(batchRows, r => Assert.Null(r["input_hour"])); // missing (nullable) stays missing
        Assert.Equal(Enumerable.Range(0, 25), batchRows.Select(r => (int)r["row"]!).Order());
        var ts = (DateTime)first["timestamp"]!;
        Assert.InRange(ts, DateTime.UtcNow.AddMinutes(-5), DateTime.UtcNow.AddMinutes(1));
    }

    [Fact]
    public async Task Rows_are_flushed_by_time_while_the_server_runs()
    {
        using var dir = new TempDir("kiln-log");
        var package = TestPackages.CreateFraud(dir.File("fraud"));
        var log = dir.File("log");
        await using var server = await OwnServer.StartAsync(new ServeOptions
        {
            Models = [new ModelSpec(package)], Port = 0, GrpcPort = null, LogDirectory = log, PollInterval = TimeSpan.Zero,
            LogFlushInterval = TimeSpan.FromMilliseconds(200), LogFileRollInterval = TimeSpan.FromMilliseconds(400),
        });
        for (var i = 0; i < 5; i++) Assert.Equal(200, (await server.PostAsync("/predict", """{"amount": 5, "hour": 1, "merchant": "travel"}""")).Status);
        var deadline = DateTime.UtcNow.AddSeconds(20);
        List<Dictionary<string, object?>> rows = [];
        while (DateTime.UtcNow < deadline)
        {
            rows = Directory.Exists(log) ? await ReadLogAsync(log) : [];
            if (rows.Count == 5) break;
            await Task.Delay(100);
        }
        Assert.Equal(5, rows.Count);
    }

    [Fact]
    public async Task When_the_log_queue_is_full_rows_are_dropped_and_counted_and_the_request_still_succeeds()
    {
        using var dir = new TempDir("kiln-log");
        var package = TestPackages.CreateFraud(dir.File("fraud"));
        await using var server = await OwnServer.StartAsync(new ServeOptions
        {
            Models = [new ModelSpec(package)], Port = 0, GrpcPort = null, LogDirectory = dir.File("log"), PollInterval = TimeSpan.Zero,
            LogQueueCapacity = 5,
        });
        var (status, _) = await server.PostAsync("/predict", "[" + string.Join(",", Enumerable.Repeat("""{"amount": 5, "hour": 1, "merchant": "travel"}""", 10)) + "]");
        Assert.Equal(200, status);
        Assert.Equal(10, server.Host.PredictionLog.DroppedRows);
        Assert.Contains("kiln_serve_prediction_log_dropped_total{model=\"fraud\"} 10", await server.MetricsAsync());
    }

    /// <summary>A clock the test moves by hand.</summary>
    private sealed class ManualClock(DateTimeOffset start) : TimeProvider
    {
        public DateTimeOffset Now { get; set; } = start;

        public override DateTimeOffset GetUtcNow() => Now;
    }

    [Fact]
    public async Task Rows_either_side_of_midnight_go_to_their_own_date_partition_with_their_own_ids()
    {
        using var dir = new TempDir("kiln-log");
        var package = TestPackages.CreateFraud(dir.File("fraud"));
        var log = dir.File("log");
        var clock = new ManualClock(new DateTimeOffset(2026, 11, 26, 23, 59, 59, 500, TimeSpan.Zero));
        await using var server = await OwnServer.StartAsync(new ServeOptions
        {
            Models = [new ModelSpec(package)], Port = 0, GrpcPort = null, LogDirectory = log, PollInterval = TimeSpan.Zero, LogClock = clock,
            // Nothing is written before shutdown: both days' rows share one buffer, which the writer splits.
            LogRowGroupSize = 100_000, LogFlushInterval = TimeSpan.FromMinutes(10), LogFileRollInterval = TimeSpan.FromMinutes(10),
        });
        async Task<List<(string Id, int Rows)>> PostSome(int singles, int batchRows)
        {
            var sent = new List<(string, int)>();
            for (var i = 0; i < singles; i++)
            {
                var (status, body) = await server.PostAsync("/predict", $$"""{"amount": {{i}}, "hour": 1, "merchant": "online"}""");
                Assert.Equal(200, status);
                sent.Add((body.GetProperty("request_id").GetString()!, 1));
            }
            var (batchStatus, batch) = await server.PostAsync("/predict", "[" + string.Join(",", Enumerable.Repeat("""{"amount": 7, "merchant": "fuel"}""", batchRows)) + "]");
            Assert.Equal(200, batchStatus);
            sent.Add((batch.GetProperty("request_id").GetString()!, batchRows));
            return sent;
        }

        var before = await PostSome(3, 4);
        clock.Now = new DateTimeOffset(2026, 11, 27, 0, 0, 0, 250, TimeSpan.Zero);
        var after = await PostSome(2, 3);
        await server.StopAsync();

        var rows = await ReadLogAsync(log);
        static List<string> Expected(List<(string Id, int Rows)> sent) => [.. sent.SelectMany(s => Enumerable.Repeat(s.Id, s.Rows)).Order()];
        var day1 = rows.Where(r => ((string)r["_file"]!).Contains("date=2026-11-26", StringComparison.Ordinal)).ToList();
        var day2 = rows.Where(r => ((string)r["_file"]!).Contains("date=2026-11-27", StringComparison.Ordinal)).ToList();
        Assert.Equal(rows.Count, day1.Count + day2.Count);
        Assert.Equal(Expected(before), day1.Select(r => (string)r["request_id"]!).Order().ToList());
        Assert.Equal(Expected(after), day2.Select(r => (string)r["request_id"]!).Order().ToList());
        Assert.All(day1, r => Assert.Equal(new DateTime(2026, 11, 26, 23, 59, 59, 500), (DateTime)r["timestamp"]!));
        Assert.All(day2, r => Assert.Equal(new DateTime(2026, 11, 27, 0, 0, 0, 250), (DateTime)r["timestamp"]!));
        Assert.Equal([0, 1, 2], day2.Where(r => (string)r["request_id"]! == after[^1].Id).Select(r => (int)r["row"]!).Order());
    }

    [Fact]
    public async Task Under_concurrent_clients_every_row_is_logged_exactly_once_across_many_row_groups_and_files()
    {
        using var dir = new TempDir("kiln-log");
        var package = TestPackages.CreateFraud(dir.File("fraud"));
        var log = dir.File("log");
        await using var server = await OwnServer.StartAsync(new ServeOptions
        {
            Models = [new ModelSpec(package)], Port = 0, GrpcPort = null, LogDirectory = log, PollInterval = TimeSpan.Zero,
            // Small row groups and short-lived files: the writer swaps buffers many times while clients append.
            LogRowGroupSize = 16, LogFlushInterval = TimeSpan.FromMilliseconds(40), LogFileRollInterval = TimeSpan.FromMilliseconds(250),
        });
        var sent = new System.Collections.Concurrent.ConcurrentBag<(string Id, double Amount, int Rows)>();
        await Task.WhenAll(Enumerable.Range(0, 8).Select(client => Task.Run(async () =>
        {
            for (var k = 0; k < 60; k++)
            {
                var amount = client * 1000 + k;
                var rows = k % 5 == 0 ? 3 : 1;
                var json = rows == 1
                    ? $$"""{"amount": {{amount}}, "hour": 2, "merchant": "grocery"}"""
                    : "[" + string.Join(",", Enumerable.Repeat($$"""{"amount": {{amount}}, "hour": 2, "merchant": "grocery"}""", rows)) + "]";
                var (status, body) = await server.PostAsync("/predict", json);
                Assert.Equal(200, status);
                sent.Add((body.GetProperty("request_id").GetString()!, amount, rows));
            }
        })));
        await server.StopAsync();

        var logged = await ReadLogAsync(log);
        Assert.Equal(sent.Sum(s => s.Rows), logged.Count);
        Assert.Equal(0, server.Host.PredictionLog.DroppedRows);
        Assert.True(Directory.EnumerateFiles(log, "*.parquet", SearchOption.AllDirectories).Any());
        var byId = logged.GroupBy(r => (string)r["request_id"]!).ToDictionary(g => g.Key, g => g.ToList());
        foreach (var (id, amount, rows) in sent)
        {
            Assert.True(byId.TryGetValue(id, out var mine), $"request {id} is not in the log");
            Assert.Equal(Enumerable.Range(0, rows), mine.Select(r => (int)r["row"]!).Order());
            Assert.All(mine, r => Assert.Equal(amount, (double)r["input_amount"]!));
        }
    }

    [Fact]
    public async Task A_swapped_out_version_has_its_rows_written_and_its_buffers_dropped()
    {
        using var dir = new TempDir("kiln-log");
        var path = TestPackages.CreateFraud(dir.File("fraud"), seed: 1, trees: 10);
        var v1 = Kiln.Core.Packaging.DirectoryModelLocator.ContentVersion(path);
        var next = TestPackages.CreateFraud(dir.File("v2"), seed: 5, trees: 30);
        var v2 = Kiln.Core.Packaging.DirectoryModelLocator.ContentVersion(next);
        var log = dir.File("log");
        await using var server = await OwnServer.StartAsync(new ServeOptions
        {
            Models = [new ModelSpec(path)], Port = 0, GrpcPort = null, LogDirectory = log, PollInterval = TimeSpan.FromMilliseconds(100),
            LogFlushInterval = TimeSpan.FromMilliseconds(200),
        });
        var answered = new Dictionary<string, int> { [v1] = 0, [v2] = 0 };
        async Task<string> Post()
        {
            var (status, body) = await server.PostAsync("/predict", """{"amount": 12, "hour": 4, "merchant": "travel"}""");
            Assert.Equal(200, status);
            var version = body.GetProperty("version").GetString()!;
            answered[version]++;
            return version;
        }

        for (var i = 0; i < 5; i++) Assert.Equal(v1, await Post());
        Assert.Equal(1, server.Host.PredictionLog.BufferedVersions);
        TestPackages.ReplaceDirectory(next, path);
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (await Post() != v2) Assert.True(DateTime.UtcNow < deadline, "the new version was never served");
        for (var i = 0; i < 5; i++) Assert.Equal(v2, await Post());
        // v1's rows are written by time, then its buffers go: only v2's remain.
        while (server.Host.PredictionLog.BufferedVersions != 1) { Assert.True(DateTime.UtcNow < deadline, "v1's buffers were never dropped"); await Task.Delay(20); }
        Assert.InRange(server.Host.PredictionLog.WrittenRows, answered[v1], answered[v1] + answered[v2]);
        await server.StopAsync();

        var rows = await ReadLogAsync(log);
        Assert.Equal(answered[v1], rows.Count(r => ((string)r["_file"]!).Contains($"version={v1}", StringComparison.Ordinal) && (string)r["version"]! == v1));
        Assert.Equal(answered[v2], rows.Count(r => ((string)r["_file"]!).Contains($"version={v2}", StringComparison.Ordinal) && (string)r["version"]! == v2));
        Assert.Equal(rows.Count, answered[v1] + answered[v2]);
    }
}
