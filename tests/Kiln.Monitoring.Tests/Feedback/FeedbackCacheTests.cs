using Kiln.Monitoring.Continuous;
using Kiln.Monitoring.Feedback;
using Kiln.Monitoring.Tests.Windows;
using Kiln.Testing;

namespace Kiln.Monitoring.Tests.Feedback;

// The continuous monitor parses each feedback file once: a tick without new files reads none, a new file's labels count
// at the next tick, a deleted file's drop out, and every answer equals a fresh evaluator's (which reads every file).
public sealed class FeedbackCacheTests : IDisposable
{
    private static readonly DateTime Start = new(2026, 11, 26, 6, 0, 0, DateTimeKind.Utc);
    private readonly TempDir _dir = new("kiln-feedback-cache");

    public void Dispose() => _dir.Dispose();

    private string Log => _dir.File("log");

    private static List<string> Render(IEnumerable<Measurement> m) => [.. m.Select(x => x.ToString()).Order(StringComparer.Ordinal)];

    private static double Get(IEnumerable<Measurement> m, string name) => m.Single(x => x.Name == name).Value;

    [Fact]
    public async Task A_tick_without_new_files_reads_none_and_new_or_deleted_files_change_the_next_tick_as_a_fresh_evaluator_sees_it()
    {
        var package = TestPackage.Create(_dir.File("risk"));
        var rows = TestPackage.Rows(300, 0, 8, Start, TimeSpan.FromSeconds(5));
        await SyntheticLog.WriteAsync(Log, "risk", "1", rows);
        var store = new FeedbackStore(Log);
        // Labels for the first 100 rows (the prediction itself: accuracy 1), in two files.
        var first = await store.AppendAsync([.. rows.Take(50).Select(r => new FeedbackItem(r.RequestId, 0, r.Prediction!))], Start.AddHours(1));
        await store.AppendAsync([.. rows.Skip(50).Take(50).Select(r => new FeedbackItem(r.RequestId, 0, r.Prediction!))], Start.AddHours(1).AddMinutes(1));

        var target = new MonitorTarget { Name = "risk", Model = package, LogModel = "risk", LogDirectory = Log };
        var (from, to) = (new DateTimeOffset(Start), new DateTimeOffset(Start.AddHours(1)));
        var evaluator = new WindowMonitorEvaluator();
        async Task<IReadOnlyList<Measurement>> Tick() => await evaluator.EvaluateAsync(target, from, to, default);
        async Task<IReadOnlyList<Measurement>> Fresh() => await new WindowMonitorEvaluator().EvaluateAsync(target, from, to, default);

        var tick1 = await Tick();
        Assert.Equal(2, evaluator.FeedbackFilesRead);
        Assert.Equal(100, Get(tick1, "kiln_monitor_labelled_rows"));
        Assert.Equal(1, Get(tick1, "kiln_monitor_realized_accuracy"));

        var tick2 = await Tick();
        Assert.Equal(2, evaluator.FeedbackFilesRead); // nothing new: no feedback file was opened
        Assert.Equal(Render(tick1), Render(tick2));

        // A new file: 100 more labels, all wrong, and a correction of row 0 (the last received wins across files).
        string Wrong(LogRow r) => r.Prediction == "yes" ? "no" : "yes";
        await store.AppendAsync([.. rows.Skip(100).Take(100).Select(r => new FeedbackItem(r.RequestId, 0, Wrong(r))), new FeedbackItem(rows[0].RequestId, 0, Wrong(rows[0]))],
            Start.AddHours(2));
        var tick3 = await Tick();
        Assert.Equal(3, evaluator.FeedbackFilesRead); // only the new file
        Assert.Equal(200, Get(tick3, "kiln_monitor_labelled_rows"));
        Assert.Equal(99.0 / 200, Get(tick3, "kiln_monitor_realized_accuracy"), 12);
        Assert.Equal(Render(await Fresh()), Render(tick3));

        // A deleted file's labels drop out at the next tick, without reading anything.
        File.Delete(first);
        var tick4 = await Tick();
        Assert.Equal(3, evaluator.FeedbackFilesRead);
        Assert.Equal(151, Get(tick4, "kiln_monitor_labelled_rows")); // rows 50-199, and row 0 by its correction in the third file
        Assert.Equal(Render(await Fresh()), Render(tick4));
    }

    [Fact]
    public async Task The_cache_agrees_with_a_full_read_through_random_appends_rewrites_and_deletes()
    {
        var store = new FeedbackStore(Log);
        var cache = new FeedbackCache(Log);
        var read = new List<string>();
        cache.FileRead += read.Add;
        var rng = new Random(5);
        var files = new List<string>();
        var t = Start;
        for (var step = 0; step < 25; step++)
        {
            var action = rng.Next(10);
            if (action < 6 || files.Count == 0)
            {
                // Labels over a small key space so that later files overwrite earlier ones; dates change now and then.
                t = t.AddMinutes(rng.Next(1, 400));
                var items = Enumerable.Range(0, rng.Next(1, 20)).Select(_ => new FeedbackItem("q" + rng.Next(30), rng.Next(2), "L" + rng.Next(100))).ToList();
                files.Add(await store.AppendAsync(items, t));
            }
            else if (action < 8)
            {
                var victim = files[rng.Next(files.Count)];
                File.Delete(victim);
                files.Remove(victim);
            }
            var before = read.Count;
            var since = rng.Next(3) == 0 ? DateOnly.FromDateTime(t).AddDays(-1) : (DateOnly?)null;
            var cached = await cache.GetAsync(since);
            var full = await store.ReadAsync(since);
            Assert.Equal(full.OrderBy(kv => kv.Key).Select(kv => (kv.Key, kv.Value)), cached.OrderBy(kv => kv.Key).Select(kv => (kv.Key, kv.Value)));
            // At most the listed files are parsed; asking again parses nothing.
            Assert.True(read.Count - before <= files.Count);
            var afterFirst = read.Count;
            Assert.Same(cached, await cache.GetAsync(since));
            Assert.Equal(afterFirst, read.Count);
            Assert.Equal(read.Count, cache.FilesRead);
        }
    }
}
