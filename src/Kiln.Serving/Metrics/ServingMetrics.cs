using System.Diagnostics.Metrics;

namespace Kiln.Serving.Metrics;

/// <summary>
/// The serving meter ("Kiln.Serving"): every instrument the server records. Exported in Prometheus
/// text format by <see cref="PrometheusExporter"/>; names map as dots to underscores, seconds get
/// "_seconds" and counters "_total" (kiln.serve.requests → kiln_serve_requests_total).
/// </summary>
public sealed class ServingMetrics : IDisposable
{
    public const string MeterName = "Kiln.Serving";

    /// <summary>Latency buckets (seconds).</summary>
    public static readonly double[] LatencyBuckets = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

    /// <summary>Predicted value buckets: probabilities in twentieths (regression values above 1 land in +Inf).</summary>
    public static readonly double[] ValueBuckets = [0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 1];

    private static readonly string[] StatusText = BuildStatusText();
    private readonly Meter _meter;

    public ServingMetrics()
    {
        _meter = new Meter(MeterName, typeof(ServingMetrics).Assembly.GetName().Version?.ToString());
        Requests = _meter.CreateCounter<long>("kiln.serve.requests", null, "Requests answered, by model, version, protocol and HTTP status.");
        Duration = _meter.CreateHistogram<double>("kiln.serve.request.duration", "s", "Time from reading a request to writing its answer.");
        _meter.CreateObservableUpDownCounter("kiln.serve.requests.in_flight", ObserveInFlight, null, "Requests being served now, by protocol.");
        Rows = _meter.CreateCounter<long>("kiln.serve.rows", null, "Rows scored, by model and version.");
        PredictedValue = _meter.CreateHistogram<double>("kiln.serve.prediction.value", null, "Predicted value per row: the positive class's probability (binary), the winner's probability (multiclass), the prediction (regression).");
        ModelLoads = _meter.CreateCounter<long>("kiln.serve.model.loads", null, "Model version loads, by outcome (success or failure).");
        LogWritten = _meter.CreateCounter<long>("kiln.serve.prediction_log.rows", null, "Rows written to the prediction log.");
        LogDropped = _meter.CreateCounter<long>("kiln.serve.prediction_log.dropped", null, "Prediction log rows dropped because the log's queue was full.");
        Rejected = _meter.CreateCounter<long>("kiln.serve.requests.rejected", null, "Requests refused before scoring: overload (queue full) or timeout.");
        Flagged = _meter.CreateCounter<long>("kiln.serve.rows.flagged", null, "Rows accepted with a flag (unseen category under the flag policy).");
    }

    public Meter Meter => _meter;

    public Counter<long> Requests { get; }

    public Histogram<double> Duration { get; }

    /// <summary>
    /// The in-flight count of a protocol: a plain counter the request changes with one interlocked add at
    /// its start and end, read by the observable instrument at scrape time (two measurements per request
    /// through the meter's listeners cost more than the request's own validation).
    /// </summary>
    public InFlightCounter InFlight(string protocol)
    {
        var all = Volatile.Read(ref _inFlight);
        foreach (var c in all) if (string.Equals(c.Protocol, protocol, StringComparison.Ordinal)) return c;
        lock (_inFlightLock)
        {
            foreach (var c in _inFlight) if (string.Equals(c.Protocol, protocol, StringComparison.Ordinal)) return c;
            var added = new InFlightCounter(protocol);
            _inFlight = [.. _inFlight, added];
            return added;
        }
    }

    private InFlightCounter[] _inFlight = [];
    private readonly Lock _inFlightLock = new();

    private IEnumerable<Measurement<long>> ObserveInFlight()
    {
        foreach (var c in Volatile.Read(ref _inFlight)) yield return new Measurement<long>(c.Count, new KeyValuePair<string, object?>("protocol", c.Protocol));
    }

    /// <summary>Requests of one protocol being served now.</summary>
    public sealed class InFlightCounter(string protocol)
    {
        private long _count;

        public string Protocol { get; } = protocol;

        public long Count => Interlocked.Read(ref _count);

        public void Increment() => Interlocked.Increment(ref _count);

        public void Decrement() => Interlocked.Decrement(ref _count);
    }

    public Counter<long> Rows { get; }

    public Histogram<double> PredictedValue { get; }

    public Counter<long> ModelLoads { get; }

    public Counter<long> LogWritten { get; }

    public Counter<long> LogDropped { get; }

    public Counter<long> Rejected { get; }

    public Counter<long> Flagged { get; }

    /// <summary>Bucket boundaries by instrument name (histograms not listed use latency buckets).</summary>
    public static double[] BucketsFor(string instrument) =>
        instrument == "kiln.serve.prediction.value" ? ValueBuckets : instrument.StartsWith("kiln.pipeline.", StringComparison.Ordinal) || instrument.StartsWith("kiln.worker.", StringComparison.Ordinal) ? TaskBuckets : LatencyBuckets;

    /// <summary>Pipeline task and worker job durations (seconds): a shell step takes milliseconds, a training step an hour.</summary>
    public static readonly double[] TaskBuckets = [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 1800, 3600, 7200];

    public static string Status(int code) => code is >= 100 and < 600 ? StatusText[code - 100] : code.ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>Records one answered request.</summary>
    public void RecordRequest(string model, string version, string protocol, int status, double seconds)
    {
        Requests.Add(1, new("model", model), new("version", version), new("protocol", protocol), new("status", Status(status)));
        Duration.Record(seconds, new("model", model), new("version", version), new("protocol", protocol));
    }

    private static string[] BuildStatusText()
    {
        var s = new string[500];
        for (var i = 0; i < s.Length; i++) s[i] = (i + 100).ToString(System.Globalization.CultureInfo.InvariantCulture);
        return s;
    }

    public void Dispose() => _meter.Dispose();
}
