using FsCheck.Xunit;
using Kiln.Monitoring.Feedback;
using Kiln.Monitoring.Windows;
using Kiln.Testing;

namespace Kiln.Monitoring.Tests.Windows;

/// <summary>The window reader and the feedback store against naive references on random data.</summary>
public sealed class WindowPropertyTests
{
    /// <summary>
    /// Rows at random times over three days, written as kiln serve partitions them (by date) in random row-group sizes,
    /// so row groups straddle the window's edges and whole groups fall outside (skipped by their statistics): the window
    /// holds exactly the rows a naive filter keeps.
    /// </summary>
    [Property(MaxTest = 12)]
    public bool A_window_holds_exactly_the_rows_of_a_naive_time_filter(int seed)
    {
        var random = new Random(seed);
        using var dir = new TempDir("kiln-window-prop");
        var start = new DateTime(2026, 11, 24, 0, 0, 0, DateTimeKind.Utc);
        var n = random.Next(0, 400);
        var rows = new List<LogRow>();
        for (var i = 0; i < n; i++)
        {
            // Minutes on a coarse grid, so rows fall exactly on the window's edges now and then.
            var t = start.AddMinutes(random.Next(0, 3 * 24 * 4) * 15);
            rows.Add(new LogRow($"r{i}", random.Next(3), t, random.NextDouble(), "red", "yes", 0.5));
        }
        rows.Sort((a, b) => a.Timestamp.CompareTo(b.Timestamp));
        foreach (var day in rows.GroupBy(r => r.Timestamp.Date))
            SyntheticLog.WriteAsync(dir.Path, "m", "1", day.ToList(), rowGroupSize: random.Next(1, 60)).GetAwaiter().GetResult();
        Directory.CreateDirectory(dir.Path);
        var from = start.AddMinutes(random.Next(0, 3 * 24 * 4) * 15);
        var to = from.AddMinutes(random.Next(1, 2 * 24 * 4) * 15);
        var window = PredictionLogReader.ReadAllAsync(new LogWindow(dir.Path, "m", from, to)).GetAwaiter().GetResult();
        var expected = rows.Where(r => r.Timestamp >= from && r.Timestamp < to).Select(r => (r.RequestId, r.Row, r.Timestamp)).Order().ToList();
        var actual = Enumerable.Range(0, window.Rows).Select(i => (window.RequestIds[i], window.RowIndexes[i], window.Timestamps[i])).Order().ToList();
        return expected.SequenceEqual(actual);
    }

    /// <summary>Labels appended in random batches, with repeats: the store answers the last label received for each key.</summary>
    [Property(MaxTest = 12)]
    public bool The_last_label_received_wins(int seed)
    {
        var random = new Random(seed);
        using var dir = new TempDir("kiln-feedback-prop");
        var store = new FeedbackStore(dir.Path);
        var expected = new Dictionary<(string, int), string>();
        var received = new DateTime(2026, 11, 25, 23, 0, 0, DateTimeKind.Utc);
        for (var batch = random.Next(1, 6); batch > 0; batch--)
        {
            var items = new List<FeedbackItem>();
            for (var i = random.Next(1, 30); i > 0; i--)
            {
                var item = new FeedbackItem($"q{random.Next(10)}", random.Next(3), random.Next(4).ToString(System.Globalization.CultureInfo.InvariantCulture));
                items.Add(item);
                expected[(item.RequestId, item.Row)] = item.Label; // later in the batch wins too
            }
            // Some batches share a time of receipt; file order then decides, as written.
            received = received.AddMinutes(random.Next(0, 2) * 45);
            store.AppendAsync(items, received).GetAwaiter().GetResult();
        }
        var actual = store.ReadAsync().GetAwaiter().GetResult();
        return actual.Count == expected.Count && expected.All(kv => actual.TryGetValue(kv.Key, out var l) && l.Label == kv.Value);
    }
}
