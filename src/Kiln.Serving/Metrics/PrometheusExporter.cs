using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Text;

namespace Kiln.Serving.Metrics;

/// <summary>
/// Listens to the serving meter and renders what it recorded in the Prometheus text exposition
/// format (version 0.0.4): counters as "_total", up-down counters and observable gauges as
/// gauges, histograms as cumulative "_bucket{le=…}" series with "_sum" and "_count".
/// </summary>
public sealed class PrometheusExporter : IDisposable
{
    public const string ContentType = "text/plain; version=0.0.4; charset=utf-8";

    private readonly MeterListener _listener = new();
    private readonly ConcurrentDictionary<Instrument, Series> _series = new();
    private readonly Lock _scrape = new();

    /// <summary>Exports one meter instance (not every meter of that name: two servers in one process stay apart).</summary>
    public PrometheusExporter(Meter meter)
    {
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (!ReferenceEquals(instrument.Meter, meter)) return;
            var series = new Series(instrument);
            _series[instrument] = series;
            listener.EnableMeasurementEvents(instrument, series);
        };
        _listener.SetMeasurementEventCallback<long>((i, v, tags, state) => ((Series)state!).Add(v, tags));
        _listener.SetMeasurementEventCallback<int>((i, v, tags, state) => ((Series)state!).Add(v, tags));
        _listener.SetMeasurementEventCallback<double>((i, v, tags, state) => ((Series)state!).Add(v, tags));
        _listener.MeasurementsCompleted = (i, _) => _series.TryRemove(i, out Series? _);
        _listener.Start();
    }

    /// <summary>Renders every series now.</summary>
    public string Render()
    {
        var sb = new StringBuilder(8192);
        lock (_scrape)
        {
            foreach (var s in _series.Values) if (s.IsGauge && s.Instrument.IsObservable) s.BeginObservation();
            _listener.RecordObservableInstruments();
            foreach (var s in _series.Values.OrderBy(s => s.Instrument.Name, StringComparer.Ordinal)) s.Write(sb);
        }
        WriteProcess(sb);
        return sb.ToString();
    }

    private static void WriteProcess(StringBuilder sb)
    {
        using var p = Process.GetCurrentProcess();
        sb.Append("# HELP process_resident_memory_bytes Resident memory size in bytes.\n# TYPE process_resident_memory_bytes gauge\n");
        sb.Append("process_resident_memory_bytes ").Append(p.WorkingSet64.ToString(CultureInfo.InvariantCulture)).Append('\n');
        sb.Append("# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n# TYPE process_cpu_seconds_total counter\n");
        sb.Append("process_cpu_seconds_total ").Append(Format(p.TotalProcessorTime.TotalSeconds)).Append('\n');
        sb.Append("# HELP dotnet_gc_heap_size_bytes Managed heap size in bytes.\n# TYPE dotnet_gc_heap_size_bytes gauge\n");
        sb.Append("dotnet_gc_heap_size_bytes ").Append(GC.GetGCMemoryInfo().HeapSizeBytes.ToString(CultureInfo.InvariantCulture)).Append('\n');
    }

    internal static string Format(double v) =>
        double.IsPositiveInfinity(v) ? "+Inf" : double.IsNegativeInfinity(v) ? "-Inf" : double.IsNaN(v) ? "NaN" : v.ToString("R", CultureInfo.InvariantCulture);

    public void Dispose() => _listener.Dispose();

    /// <summary>The values of one instrument by tag set.</summary>
    private sealed class Series
    {
        private readonly ConcurrentDictionary<TagKey, Cell> _cells = new();
        private readonly double[] _bounds;

        /// <summary>The scrape an observed cell was last measured in; cells of earlier scrapes are gone.</summary>
        private long _generation;

        /// <summary>The cells in label order, kept while no cell is added or removed (sorting 10,000 series on every scrape cost more than writing them).</summary>
        private Cell[]? _sorted;

        /// <summary>Counts cells added or removed; <see cref="_sorted"/> is valid for the count it was made at.</summary>
        private int _cellsVersion;

        private int _sortedVersion = -1;

        public Series(Instrument instrument)
        {
            Instrument = instrument;
            IsHistogram = instrument.GetType().IsGenericType && instrument.GetType().GetGenericTypeDefinition() == typeof(Histogram<>);
            IsCounter = instrument.GetType().IsGenericType && instrument.GetType().GetGenericTypeDefinition() == typeof(Counter<>);
            IsGauge = !IsHistogram && !IsCounter;
            _bounds = IsHistogram ? ServingMetrics.BucketsFor(instrument.Name) : [];
            var name = instrument.Name.Replace('.', '_');
            if (instrument.Unit == "s") name += "_seconds";
            if (IsCounter) name += "_total";
            Name = name;
        }

        public Instrument Instrument { get; }

        public string Name { get; }

        public bool IsHistogram { get; }

        public bool IsCounter { get; }

        public bool IsGauge { get; }

        /// <summary>
        /// Starts a scrape of an observed gauge: cells measured now are written, the others dropped. Cells are kept
        /// between scrapes (not cleared), so a series seen again reuses its rendered labels.
        /// </summary>
        public void BeginObservation() => Interlocked.Increment(ref _generation);

        public void Add(double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            // Observed gauges (read at scrape time, e.g. monitoring's) may carry any labels: key them by names and values.
            var key = Instrument.IsObservable || tags.Length > 4 ? TagKey.Full(tags) : TagKey.From(tags);
            if (!_cells.TryGetValue(key, out var cell))
            {
                var created = new Cell(key, tags, _bounds.Length);
                cell = _cells.GetOrAdd(key, created);
                Interlocked.Increment(ref _cellsVersion);
            }
            if (IsHistogram)
            {
                var i = 0;
                while (i < _bounds.Length && value > _bounds[i]) i++;
                Interlocked.Increment(ref cell.Buckets![i]);
                Interlocked.Increment(ref cell.Count);
                AddDouble(ref cell.Sum, value);
            }
            else if (Instrument.IsObservable)
            {
                Volatile.Write(ref cell.Sum, value);
                cell.Generation = Volatile.Read(ref _generation);
            }
            else
            {
                AddDouble(ref cell.Sum, value);
            }
        }

        private static void AddDouble(ref double target, double value)
        {
            var current = Volatile.Read(ref target);
            while (true)
            {
                var seen = Interlocked.CompareExchange(ref target, current + value, current);
                if (seen.Equals(current)) return;
                current = seen;
            }
        }

        public void Write(StringBuilder sb)
        {
            var help = (Instrument.Description ?? Instrument.Name).Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);
            sb.Append("# HELP ").Append(Name).Append(' ').Append(help).Append('\n');
            sb.Append("# TYPE ").Append(Name).Append(' ').Append(IsHistogram ? "histogram" : IsCounter ? "counter" : "gauge").Append('\n');
            var observed = Instrument.IsObservable && !IsHistogram;
            var generation = Volatile.Read(ref _generation);
            if (observed)
            {
                foreach (var (key, c) in _cells)
                {
                    if (c.Generation != generation && _cells.TryRemove(key, out _)) Interlocked.Increment(ref _cellsVersion);
                }
            }
            // Rendering runs under the exporter's scrape lock: one thread at a time reads and writes the cache.
            var version = Volatile.Read(ref _cellsVersion);
            var sorted = _sorted;
            if (sorted is null || _sortedVersion != version)
            {
                sorted = [.. _cells.Values.OrderBy(c => c.Labels, StringComparer.Ordinal)];
                _sorted = sorted;
                _sortedVersion = version;
            }
            foreach (var cell in sorted)
            {
                if (observed && cell.Generation != generation) continue;
                if (!IsHistogram)
                {
                    sb.Append(Name).Append(cell.Labels.Length > 0 ? "{" + cell.Labels + "}" : "").Append(' ').Append(Format(Volatile.Read(ref cell.Sum))).Append('\n');
                    continue;
                }
                var bucketName = Name + "_bucket";
                long cumulative = 0;
                for (var i = 0; i <= _bounds.Length; i++)
                {
                    cumulative += Volatile.Read(ref cell.Buckets![i]);
                    var le = i < _bounds.Length ? Format(_bounds[i]) : "+Inf";
                    sb.Append(bucketName).Append('{').Append(cell.Labels).Append(cell.Labels.Length > 0 ? "," : "").Append("le=\"").Append(le).Append("\"} ")
                      .Append(cumulative.ToString(CultureInfo.InvariantCulture)).Append('\n');
                }
                var labels = cell.Labels.Length > 0 ? "{" + cell.Labels + "}" : "";
                sb.Append(Name).Append("_sum").Append(labels).Append(' ').Append(Format(Volatile.Read(ref cell.Sum))).Append('\n');
                sb.Append(Name).Append("_count").Append(labels).Append(' ').Append(Volatile.Read(ref cell.Count).ToString(CultureInfo.InvariantCulture)).Append('\n');
            }
        }
    }

    private sealed class Cell
    {
        public readonly long[]? Buckets;
        public long Generation;
        public long Count;
        public double Sum;

        public Cell(TagKey key, ReadOnlySpan<KeyValuePair<string, object?>> tags, int bounds)
        {
            Buckets = new long[bounds + 1];
            var sb = new StringBuilder();
            foreach (var (k, v) in tags)
            {
                if (sb.Length > 0) sb.Append(',');
                sb.Append(k).Append("=\"").Append(Escape(Convert.ToString(v, CultureInfo.InvariantCulture) ?? "")).Append('"');
            }
            Labels = sb.ToString();
            _ = key;
        }

        public string Labels { get; }

        private static string Escape(string s) => s.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);
    }

    /// <summary>Up to four tag values (the serving instruments never use more), compared by value; or <see cref="Full"/>.</summary>
    private readonly record struct TagKey(object? A, object? B, object? C, object? D)
    {
        public static TagKey From(ReadOnlySpan<KeyValuePair<string, object?>> tags) => tags.Length switch
        {
            0 => default,
            1 => new(tags[0].Value, null, null, null),
            2 => new(tags[0].Value, tags[1].Value, null, null),
            3 => new(tags[0].Value, tags[1].Value, tags[2].Value, null),
            _ => new(tags[0].Value, tags[1].Value, tags[2].Value, tags[3].Value),
        };

        /// <summary>
        /// A cheap hash (length and end characters of text values): the same few tag values come with every
        /// measurement, and hashing their characters in full was a measurable share of recording one.
        /// Equality stays exact (the record's member-wise comparison).
        /// </summary>
        public override int GetHashCode() =>
            ReferenceEquals(B, FullKey) ? A!.GetHashCode() : HashCode.Combine(Cheap(A), Cheap(B), Cheap(C), Cheap(D));

        /// <summary>Marks a <see cref="Full"/> key, whose one string (any number of tags) is hashed in full.</summary>
        private static readonly object FullKey = new();

        private static int Cheap(object? v) => v switch
        {
            null => 0,
            string { Length: 0 } => 1,
            string s => (s.Length * 31 + s[0]) * 31 + s[^1],
            _ => v.GetHashCode(),
        };

        /// <summary>Every name and value in one string (any number of tags; allocates).</summary>
        public static TagKey Full(ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            var sb = new StringBuilder();
            foreach (var (k, v) in tags) sb.Append(k).Append('\u0001').Append(Convert.ToString(v, CultureInfo.InvariantCulture)).Append('\u0002');
            return new(sb.ToString(), FullKey, null, null);
        }
    }
}
