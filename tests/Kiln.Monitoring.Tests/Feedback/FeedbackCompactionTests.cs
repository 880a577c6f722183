using System.Diagnostics.Metrics;
using System.Text.Json;
using Kiln.Monitoring.Continuous;
using Kiln.Monitoring.Feedback;
using Kiln.Testing;
using Microsoft.Extensions.Logging.Abstractions;

namespace Kiln.Monitoring.Tests.Feedback;

// Compaction merges each day's small feedback files into one with the last label per (request id, row). Oracle: the
// labels a full read of the uncompacted files gives (FeedbackStore.ReadAsync, last received wins), which every read
// after, and during, a compaction must still give.
public sealed class FeedbackCompactionTests : IDisposable
{
    private static readonly DateTime Day1 = new(2026, 11, 25, 20, 0, 0, DateTimeKind.Utc);
    private readonly TempDir _dir = new("kiln-feedback-compact");

    public void Dispose() => _dir.Dispose();

    private string Log => _dir.File("log");

    private static List<string> Flat(IEnumerable<KeyValuePair<(string RequestId, int Row), StoredLabel>> labels) =>
        [.. labels.Select(kv => $"{kv.Key.RequestId}/{kv.Key.Row}={kv.Value.Label}@{kv.Value.ReceivedAt:O}").Order(StringComparer.Ordinal)];

    /// <summary>Appends <paramref name="files"/> files of labels over a small key space (so later ones overwrite), every 10 minutes from <paramref name="from"/>.</summary>
    private static async Task<DateTime> AppendManyAsync(FeedbackStore store, int files, DateTime from, int seed)
    {
        var rng = new Random(seed);
        var t = from;
        for (var f = 0; f < files; f++)
        {
            var items = Enumerable.Range(0, rng.Next(1, 8)).Select(_ => new FeedbackItem("q" + rng.Next(40), rng.Next(2), "L" + rng.Next(1000),
                rng.Next(2) == 0 ? null : new DateTimeOffset(t.AddMinutes(-5)))).ToList();
            await store.AppendAsync(items, t);
            t = t.AddMinutes(10);
        }
        return t;
    }

    [Fact]
    public async Task Each_day_becomes_one_file_with_the_same_labels_and_a_crash_after_the_rename_still_reads_the_same()
    {
        var store = new FeedbackStore(Log);
        await AppendManyAsync(store, 40, Day1, 1); // 20:00 on the 25th to 02:30 on the 26th: two date folders
        var expected = Flat(await store.ReadAsync());
        var expectedDay2 = Flat(await store.ReadAsync(DateOnly.FromDateTime(Day1).AddDays(1)));
        var cache = new FeedbackCache(Log);
        Assert.Equal(expected, Flat(await cache.GetAsync()));
        Assert.Equal(40, FeedbackCompactor.CompactableFiles(store));

        var crashPoints = 0;
        var result = await FeedbackCompactor.CompactAsync(store, async (merged, inputs) =>
        {
            // A crash here leaves the merged file beside every input: readers get the same labels.
            crashPoints++;
            Assert.True(File.Exists(merged));
            Assert.All(inputs, f => Assert.True(File.Exists(f)));
            Assert.Equal(expected, Flat(await store.ReadAsync()));
            Assert.Equal(expected, Flat(await new FeedbackCache(Log).GetAsync()));
        }, default);
        Assert.Equal(2, crashPoints);
        Assert.Equal((2, 40, 2), (result.Dates, result.FilesMerged, result.FilesWritten));

        var files = store.Files();
        Assert.Equal(2, files.Count);                                  // one per date folder
        Assert.Equal(expected, Flat(await store.ReadAsync()));
        Assert.Equal(expectedDay2, Flat(await store.ReadAsync(DateOnly.FromDateTime(Day1).AddDays(1)))); // a window still reads only its days
        long kept = 0;
        foreach (var file in files)
        {
            var contents = await FeedbackStore.ReadFileAsync(file, default);   // one row per (request id, row) in each day's file
            Assert.Equal(contents.Count, contents.RequestIds.Zip(contents.Rows).Distinct().Count());
            kept += contents.Count;
        }
        Assert.Equal(kept, result.LabelsKept);
        var readBefore = cache.FilesRead;
        Assert.Equal(expected, Flat(await cache.GetAsync()));           // the cache reads the two merged files only
        Assert.Equal(readBefore + 2, cache.FilesRead);

        // Nothing left to merge: a second run changes nothing.
        Assert.Equal(0, FeedbackCompactor.CompactableFiles(store));
        var again = await FeedbackCompactor.CompactAsync(store);
        Assert.Equal(0, again.FilesMerged);
        Assert.Equal(files, store.Files());
    }

    [Fact]
    public async Task Readers_running_during_a_compaction_always_get_the_same_labels()
    {
        var store = new FeedbackStore(Log);
        await AppendManyAsync(store, 150, Day1, 6);
        var expected = Flat(await store.ReadAsync());
        var cache = new FeedbackCache(Log);
        Assert.Equal(expected, Flat(await cache.GetAsync()));
        // Readers list the files, then open them: a file merged away in between is found in the compacted file.
        var compaction = Task.Run(() => FeedbackCompactor.CompactAsync(store));
        var reads = 0;
        while (!compaction.IsCompleted && reads < 40)
        {
            Assert.Equal(expected, Flat(await store.ReadAsync()));
            Assert.Equal(expected, Flat(await cache.GetAsync()));
            reads++;
        }
        var result = await compaction;
        Assert.Equal(150, result.FilesMerged);
        Assert.Equal(expected, Flat(await store.ReadAsync()));
        Assert.Equal(expected, Flat(await cache.GetAsync()));
    }

    [Fact]
    public async Task Two_compactions_at_once_lose_nothing_and_the_next_one_leaves_one_file_per_day()
    {
        var store = new FeedbackStore(Log);
        await AppendManyAsync(store, 100, Day1, 7);
        var expected = Flat(await store.ReadAsync());
        var results = await Task.WhenAll(Task.Run(() => FeedbackCompactor.CompactAsync(store)), Task.Run(() => FeedbackCompactor.CompactAsync(store)));
        Assert.Equal(expected, Flat(await store.ReadAsync()));
        // Each date folder was merged by at least one of them (the other skipped it or wrote an identical file).
        Assert.True(results.Sum(r => r.Dates) >= 2, string.Join("; ", results.Select(r => r.Describe())));
        await FeedbackCompactor.CompactAsync(store);
        Assert.Equal(2, store.Files().Count);
        Assert.Equal(expected, Flat(await store.ReadAsync()));
    }

    [Fact]
    public async Task A_crash_before_the_rename_leaves_a_hidden_file_that_is_never_read_and_is_removed_once_stale()
    {
        var store = new FeedbackStore(Log);
        await AppendManyAsync(store, 3, Day1, 2);
        var expected = Flat(await store.ReadAsync());
        var dir = Path.GetDirectoryName(store.Files()[0])!;
        var stale = Path.Combine(dir, ".feedback-crashed.parquet.inprogress");
        var fresh = Path.Combine(dir, ".feedback-writing.parquet.inprogress");
        await File.WriteAllTextAsync(stale, "half a file");
        await File.WriteAllTextAsync(fresh, "being written");
        File.SetLastWriteTimeUtc(stale, DateTime.UtcNow.AddHours(-2));
        Assert.Equal(expected, Flat(await store.ReadAsync()));

        await FeedbackCompactor.CompactAsync(store);
        Assert.False(File.Exists(stale));
        Assert.True(File.Exists(fresh)); // a write in progress is never touched
        Assert.Equal(expected, Flat(await store.ReadAsync()));
    }

    [Fact]
    public async Task Kiln_feedback_compact_loses_no_label_posted_while_it_runs()
    {
        var store = new FeedbackStore(Log);
        // Written by this process, in order: the last write of a key is the label that must win.
        var truth = new Dictionary<(string, int), string>();
        var rng = new Random(3);
        async Task WriteAsync(int i)
        {
            var items = Enumerable.Range(0, rng.Next(1, 5)).Select(_ => new FeedbackItem("q" + rng.Next(60), 0, $"L{i}-{rng.Next(1000)}")).ToList();
            await store.AppendAsync(items);
            foreach (var item in items) truth[(item.RequestId, item.Row)] = item.Label;
        }
        for (var i = 0; i < 150; i++) await WriteAsync(i);

        // Labels keep arriving while the real CLI compacts (bounded: until it exits, at most 2000 writes).
        var compact = KilnCli.RunAsync(["feedback", "compact", "--log-dir", Log, "--json"]);
        var during = 0;
        while (!compact.IsCompleted && during < 2000) await WriteAsync(150 + during++);
        var r = await compact;
        Assert.True(r.ExitCode == 0, r.ToString());
        var json = JsonDocument.Parse(r.StdOut).RootElement;
        Assert.True(json.GetProperty("files_merged").GetInt32() >= 150, r.StdOut);
        Assert.Equal(1, json.GetProperty("files_written").GetInt32());

        var labels = await store.ReadAsync();
        Assert.Equal(truth.Count, labels.Count);
        foreach (var (key, label) in truth) Assert.Equal(label, labels[key].Label);
        // Files posted during the run were left alone: the merged file plus those.
        Assert.InRange(store.Files().Count, 1, 1 + during);

        // A second run merges what was posted meanwhile into one file; the labels stay the same.
        r = await KilnCli.RunAsync(["feedback", "compact", "--log-dir", Log]);
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal("", r.StdOut); // without --json: the human line on stderr only
        Assert.Contains("compacted", r.StdErr);
        Assert.Single(store.Files());
        labels = await store.ReadAsync();
        Assert.Equal(truth.Count, labels.Count);
        foreach (var (key, label) in truth) Assert.Equal(label, labels[key].Label);

        r = await KilnCli.RunAsync(["feedback", "compact", "--log-dir", _dir.File("nowhere")]);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("--log-dir: directory", r.StdErr);
    }

    [Fact]
    public async Task The_monitor_compacts_before_an_evaluation_once_more_small_files_than_configured_wait()
    {
        var store = new FeedbackStore(Log);
        await AppendManyAsync(store, 4, Day1, 4);
        var expected = Flat(await store.ReadAsync());
        var target = new MonitorTarget { Name = "shop", Model = "unused", LogModel = "shop", LogDirectory = Log };
        using var meter = new Meter("test-compaction");
        using var service = new MonitorService(new MonitorConfig { Targets = [target], FeedbackCompactAfter = 4 }, [], new GaugePublisher(meter), [],
            NullLogger<MonitorService>.Instance);
        await service.EvaluateOnceAsync(default);
        Assert.Equal(4, store.Files().Count); // 4 files: not more than 4, left alone
        await store.AppendAsync([new FeedbackItem("q1", 0, "late")], Day1.AddMinutes(45));
        await service.EvaluateOnceAsync(default);
        Assert.Single(store.Files());
        var labels = await store.ReadAsync();
        Assert.Equal("late", labels[("q1", 0)].Label);
        Assert.Equal(expected.Count + (expected.Any(e => e.StartsWith("q1/0=", StringComparison.Ordinal)) ? 0 : 1), labels.Count);
    }
}
