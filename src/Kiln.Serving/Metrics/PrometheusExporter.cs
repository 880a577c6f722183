using System.Buffers.Text;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Text;
using Microsoft.AspNetCore.Http;

namespace Kiln.Serving.Metrics;

/// <summary>
/// Listens to the serving meter and renders what it recorded in the Prometheus text exposition
/// format (version 0.0.4): counters as "_total", up-down counters and observable gauges as
/// gauges, histograms as cumulative "_bucket{le=…}" series with "_sum" and "_count".
/// </summary>
/// <remarks>
/// A scrape runs next to requests being served, so it allocates next to nothing once warm: every line's name and
/// labels are rendered once per series and kept, numbers are formatted into one text buffer reused from scrape to
/// scrape, <see cref="WriteAsync"/> encodes that buffer straight into the response, and the process metrics come
/// from /proc/self/statm and getrusage rather than <see cref="Process"/> (which reads a file per thread).
/// </remarks>
public sealed class PrometheusExporter : IDisposable
{
    public const string ContentType = "text/plain; version=0.0.4; charset=utf-8";

    private readonly MeterListener _listener = new();
    private readonly ConcurrentDictionary<Instrument, Series> _series = new();
    private readonly Lock _scrape = new();

    /// <summary>The text of the last scrape; reused (its capacity kept) under <see cref="_scrape"/>.</summary>
    private readonly StringBuilder _text = new(8192);

    /// <summary>Counts instruments published or completed; <see cref="_ordered"/> is valid for the count it was made at.</summary>
    private int _seriesVersion;

    private int _orderedVersion = -1;
    private Series[] _ordered = [];

    /// <summary>Exports one meter instance (not every meter of that name: two servers in one process stay apart).</summary>
    public PrometheusExporter(Meter meter)
    {
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (!ReferenceEquals(instrument.Meter, meter)) return;
            var series = new Series(instrument);
            _series[instrument] = series;
            Interlocked.Increment(ref _seriesVersion);
            listener.EnableMeasurementEvents(instrument, series);
        };
        _listener.SetMeasurementEventCallback<long>((i, v, tags, state) => ((Series)state!).Add(v, tags));
        _listener.SetMeasurementEventCallback<int>((i, v, tags, state) => ((Series)state!).Add(v, tags));
        _listener.SetMeasurementEventCallback<double>((i, v, tags, state) => ((Series)state!).Add(v, tags));
        _listener.MeasurementsCompleted = (i, _) =>
        {
            if (_series.TryRemove(i, out Series? _)) Interlocked.Increment(ref _seriesVersion);
        };
        _listener.Start();
    }

    /// <summary>Renders every series now.</summary>
    public string Render()
    {
        lock (_scrape)
        {
            RenderLocked();
            return _text.ToString();
        }
    }

    /// <summary>
    /// Answers a scrape: renders every series and writes them as UTF-8 into <paramref name="response"/> with the
    /// content type and length (no intermediate string or byte array).
    /// </summary>
    public async Task WriteAsync(HttpResponse response, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(response);
        response.ContentType = ContentType;
        lock (_scrape)
        {
            RenderLocked();
            // After its first scrapes the buffer is one chunk (Clear keeps the capacity in one array); a scrape that
            // grew it is made contiguous once, so the length and the bytes are counted on the same characters.
            ReadOnlyMemory<char> text = default;
            var chunks = 0;
            foreach (var chunk in _text.GetChunks())
            {
                text = chunk;
                chunks++;
            }
            if (chunks > 1) text = _text.ToString().AsMemory();
            response.ContentLength = Encoding.UTF8.GetByteCount(text.Span);
            // Into the response pipe's pooled buffers; nothing is sent before the flush below, outside the lock.
            Encoding.UTF8.GetBytes(text.Span, response.BodyWriter);
        }
        await response.BodyWriter.FlushAsync(ct).ConfigureAwait(false);
    }

    private void RenderLocked()
    {
        _text.Clear();
        foreach (var s in _series.Values) if (s.IsGauge && s.Instrument.IsObservable) s.BeginObservation();
        _listener.RecordObservableInstruments();
        var version = Volatile.Read(ref _seriesVersion);
        if (_orderedVersion != version)
        {
            _ordered = [.. _series.Values.OrderBy(s => s.Instrument.Name, StringComparer.Ordinal)];
            _orderedVersion = version;
        }
        foreach (var s in _ordered) s.Write(_text);
        WriteProcess(_text);
    }

    private static void WriteProcess(StringBuilder sb)
    {
        sb.Append("# HELP process_resident_memory_bytes Resident memory size in bytes.\n# TYPE process_resident_memory_bytes gauge\n");
        sb.Append("process_resident_memory_bytes ");
        AppendLong(sb, ResidentBytes());
        sb.Append("\n# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n# TYPE process_cpu_seconds_total counter\n");
        sb.Append("process_cpu_seconds_total ");
        AppendDouble(sb, Environment.CpuUsage.TotalTime.TotalSeconds);
        sb.Append("\n# HELP dotnet_gc_heap_size_bytes Managed heap size in bytes.\n# TYPE dotnet_gc_heap_size_bytes gauge\n");
        sb.Append("dotnet_gc_heap_size_bytes ");
        AppendLong(sb, GC.GetGCMemoryInfo().HeapSizeBytes);
        sb.Append('\n');
    }

    /// <summary>
    /// Resident set size: on Linux the second field of /proc/self/statm (pages), the same counter
    /// <see cref="Process.WorkingSet64"/> reads from /proc/self/stat, without reading every thread's stat file.
    /// </summary>
    private static long ResidentBytes()
    {
        if (OperatingSystem.IsLinux())
        {
            try
            {
                Span<byte> buffer = stackalloc byte[256];
                int read;
                using (var handle = File.OpenHandle("/proc/self/statm")) read = RandomAccess.Read(handle, buffer, 0);
                var text = buffer[..read];
                var space = text.IndexOf((byte)' ');
                if (space > 0 && Utf8Parser.TryParse(text[(space + 1)..], out long pages, out _)) return pages * Environment.SystemPageSize;
            }
            catch (IOException)
            {
            }
            catch (UnauthorizedAccessException)
            {
            }
        }
        using var p = Process.GetCurrentProcess();
        return p.WorkingSet64;
    }

    internal static string Format(double v) =>
        double.IsPositiveInfinity(v) ? "+Inf" : double.IsNegativeInfinity(v) ? "-Inf" : double.IsNaN(v) ? "NaN" : v.ToString("R", CultureInfo.InvariantCulture);

    /// <summary>Appends <see cref="Format"/>'s text without making a string.</summary>
    private static void AppendDouble(StringBuilder sb, double v)
    {
        if (double.IsFinite(v)) sb.Append(CultureInfo.InvariantCulture, $"{v:R}");
        else sb.Append(Format(v));
    }

    private static void AppendLong(StringBuilder sb, long v) => sb.Append(CultureInfo.InvariantCulture, $"{v}");

    public void Dispose() => _listener.Dispose();

    /// <summary>The values of one instrument by tag set.</summary>
    private sealed class Series
    {
        private readonly ConcurrentDictionary<TagKey, Cell> _cells = new();
        private readonly double[] _bounds;

        /// <summary>The HELP and TYPE lines.</summary>
        private readonly string _header;

        /// <summary>The scrape an observed cell was last measured in; cells of earlier scrapes are gone.</summary>
        private long _generation;

        /// <summary>The cells in label order, kept while no cell is added or removed (sorting 10,000 series on every scrape cost more than writing them).</summary>
        private Cell[]? _sorted;

        /// <summary>Counts cells added or removed; <see cref="_sorted"/> is valid for the count it was made at.</summary>
        private int _cellsVersion;

        private int _sortedVersion = -1;

        /// <summary>Where the last measurement went (<see cref="LastCell"/>); replaced whole, never changed.</summary>
        private LastCell? _last;

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
            var help = (instrument.Description ?? instrument.Name).Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);
            _header = $"# HELP {name} {help}\n# TYPE {name} {(IsHistogram ? "histogram" : IsCounter ? "counter" : "gauge")}\n";
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
            Cell? cell;
            if (_last is { } last && last.Matches(tags))
            {
                cell = last.Cell;
            }
            else
            {
                var key = Instrument.IsObservable || tags.Length > 4 ? TagKey.Full(tags) : TagKey.From(tags);
                if (!_cells.TryGetValue(key, out cell))
                {
                    var created = new Cell(tags, _bounds.Length);
                    cell = _cells.GetOrAdd(key, created);
                    Interlocked.Increment(ref _cellsVersion);
                }
                // Observed gauges' cells are dropped between scrapes, so only the others' are remembered; and only text
                // values (a boxed number is a new instance each time, so it would never match).
                if (!Instrument.IsObservable && tags.Length <= 4 && AllText(tags)) _last = new LastCell(TagKey.From(tags), tags.Length, cell);
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

        private static bool AllText(ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            foreach (var t in tags)
            {
                if (t.Value is not (string or null)) return false;
            }
            return true;
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

        /// <summary>Writes the series; runs under the exporter's scrape lock (one thread at a time reads and writes the caches).</summary>
        public void Write(StringBuilder sb)
        {
            sb.Append(_header);
            var observed = Instrument.IsObservable && !IsHistogram;
            var generation = Volatile.Read(ref _generation);
            if (observed)
            {
                foreach (var (key, c) in _cells)
                {
                    if (c.Generation != generation && _cells.TryRemove(key, out _)) Interlocked.Increment(ref _cellsVersion);
                }
            }
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
                var lines = cell.Lines ??= LinesOf(cell.Labels);
                if (!IsHistogram)
                {
                    sb.Append(lines[0]);
                    AppendDouble(sb, Volatile.Read(ref cell.Sum));
                    sb.Append('\n');
                    continue;
                }
                long cumulative = 0;
                for (var i = 0; i <= _bounds.Length; i++)
                {
                    cumulative += Volatile.Read(ref cell.Buckets![i]);
                    sb.Append(lines[i]);
                    AppendLong(sb, cumulative);
                    sb.Append('\n');
                }
                sb.Append(lines[_bounds.Length + 1]);
                AppendDouble(sb, Volatile.Read(ref cell.Sum));
                sb.Append('\n').Append(lines[_bounds.Length + 2]);
                AppendLong(sb, Volatile.Read(ref cell.Count));
                sb.Append('\n');
            }
        }

        /// <summary>
        /// The text before each value of a cell, up to and with the space: one line for a counter or gauge; for a
        /// histogram one per bucket (le="…", +Inf last), then _sum and _count.
        /// </summary>
        private string[] LinesOf(string labels)
        {
            var braced = labels.Length > 0 ? "{" + labels + "}" : "";
            if (!IsHistogram) return [Name + braced + " "];
            var lines = new string[_bounds.Length + 3];
            var bucketPrefix = Name + "_bucket{" + labels + (labels.Length > 0 ? "," : "") + "le=\"";
            for (var i = 0; i <= _bounds.Length; i++) lines[i] = bucketPrefix + (i < _bounds.Length ? Format(_bounds[i]) : "+Inf") + "\"} ";
            lines[_bounds.Length + 1] = Name + "_sum" + braced + " ";
            lines[_bounds.Length + 2] = Name + "_count" + braced + " ";
            return lines;
        }
    }

    private sealed class Cell
    {
        public readonly long[]? Buckets;
        public long Generation;
        public long Count;
        public double Sum;

        /// <summary>What <see cref="Series"/> writes before each value (made at the first scrape that writes the cell).</summary>
        public string[]? Lines;

        public Cell(ReadOnlySpan<KeyValuePair<string, object?>> tags, int bounds)
        {
            Buckets = new long[bounds + 1];
            var sb = new StringBuilder();
            foreach (var (k, v) in tags)
            {
                if (sb.Length > 0) sb.Append(',');
                sb.Append(k).Append("=\"").Append(Escape(Convert.ToString(v, CultureInfo.InvariantCulture) ?? "")).Append('"');
            }
            Labels = sb.ToString();
        }

        public string Labels { get; }

        private static string Escape(string s) => s.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);
    }

    /// <summary>
    /// The cell a series' last measurement went to, and its tag values. An instrument is recorded with the same few tag
    /// value instances over and over (a served model's name and version strings, for each row of a batch), so comparing
    /// references finds the cell without hashing and comparing the values; a miss takes the dictionary.
    /// </summary>
    private sealed class LastCell(TagKey values, int count, Cell cell)
    {
        public Cell Cell { get; } = cell;

        public bool Matches(ReadOnlySpan<KeyValuePair<string, object?>> tags) => tags.Length == count && tags.Length switch
        {
            0 => true,
            1 => ReferenceEquals(tags[0].Value, values.A),
            2 => ReferenceEquals(tags[0].Value, values.A) && ReferenceEquals(tags[1].Value, values.B),
            3 => ReferenceEquals(tags[0].Value, values.A) && ReferenceEquals(tags[1].Value, values.B) && ReferenceEquals(tags[2].Value, values.C),
            _ => ReferenceEquals(tags[0].Value, values.A) && ReferenceEquals(tags[1].Value, values.B) && ReferenceEquals(tags[2].Value, values.C) && ReferenceEquals(tags[3].Value, values.D),
        };
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
