namespace Kiln.Web.Charts;

/// <summary>One line of a chart: a name for the legend and its points in x order.</summary>
public sealed record ChartSeries(string Name, IReadOnlyList<ChartPoint> Points);

/// <summary>A horizontal line across a chart (an alert rule's threshold), with its label.</summary>
public sealed record ChartThreshold(string Label, double Value);

/// <summary>A point of a line chart.</summary>
public readonly record struct ChartPoint(double X, double Y);

/// <summary>Reduces a long series to what a chart of a given width can show.</summary>
internal static class Downsample
{
    /// <summary>
    /// At most about 2 × buckets points: for each bucket of consecutive points, its lowest and highest (in x order), so
    /// spikes survive and a chart of a million points costs as much to draw as one of a thousand.
    /// </summary>
    public static IReadOnlyList<ChartPoint> MinMax(IReadOnlyList<ChartPoint> points, int buckets)
    {
        if (points.Count <= buckets * 2) return points;
        var result = new List<ChartPoint>(buckets * 2 + 2);
        var per = (double)points.Count / buckets;
        for (var b = 0; b < buckets; b++)
        {
            var from = (int)(b * per);
            var to = Math.Min(points.Count, (int)((b + 1) * per));
            if (from >= to) continue;
            int lo = from, hi = from;
            for (var i = from + 1; i < to; i++)
            {
                if (points[i].Y < points[lo].Y) lo = i;
                if (points[i].Y > points[hi].Y) hi = i;
            }
            if (lo == hi) result.Add(points[lo]);
            else if (lo < hi)
            {
                result.Add(points[lo]);
                result.Add(points[hi]);
            }
            else
            {
                result.Add(points[hi]);
                result.Add(points[lo]);
            }
        }
        return result;
    }
}
