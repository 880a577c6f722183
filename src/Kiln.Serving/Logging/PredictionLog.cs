using System.Globalization;
using System.Threading.Channels;
using Kiln.Scoring;
using Kiln.Serving.Metrics;
using Kiln.Serving.Models;
using Kiln.Serving.Validation;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Parquet;
using Parquet.Schema;

namespace Kiln.Serving.Logging;

/// <summary>One request's rows as the log keeps them (copied off the pooled request buffers).</summary>
internal sealed class LogEntry
{
    public required ServedModel Model { get; init; }

    public required string RequestId { get; init; }

    public required DateTime Timestamp { get; init; }

    public required string Protocol { get; init; }

    public required int Rows { get; init; }

    /// <summary>Inputs by field index: double[] for numbers, string?[] for categories.</summary>
    public required Array[] Inputs { get; init; }

    public required Prediction[] Predictions { get; init; }

    public List<(int Row, string Message)>? Flags { get; init; }
}

/// <summary>
/// The prediction log: every scored row with its inputs, outputs, model, version, request id and
/// time, written as Parquet under LOG_DIR/model=M/version=V/date=YYYY-MM-DD/. Requests hand rows
/// to a channel and go on; one background writer buffers them per partition and writes a row
/// group when a partition holds <see cref="ServeOptions.LogRowGroupSize"/> rows or its oldest row
/// is <see cref="ServeOptions.LogFlushInterval"/> old. Files are written as ".inprogress" and renamed
/// to ".parquet" when closed (by age, size, or shutdown), so readers see only complete files.
/// Overload policy: at most <see cref="ServeOptions.LogQueueCapacity"/> rows wait; beyond that new
/// rows are dropped and counted (kiln_serve_prediction_log_dropped_total), never blocking a request.
/// </summary>
public sealed class PredictionLog : BackgroundService
{
    private readonly ServeOptions _options;
    private readonly ServingMetrics _metrics;
    private readonly ILogger _logger;
    private readonly Channel<LogEntry> _channel = Channel.CreateUnbounded<LogEntry>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Dictionary<(string Model, string Version, string Date), PartitionWriter> _partitions = [];
    private long _queuedRows;
    private long _dropped;
    private long _written;

    public PredictionLog(ServeOptions options, ServingMetrics metrics, ILogger<PredictionLog> logger)
    {
        _options = options;
        _metrics = metrics;
        _logger = logger;
    }

    public bool Enabled => _options.LogDirectory is not null;

    public long DroppedRows => Interlocked.Read(ref _dropped);

    public long WrittenRows => Interlocked.Read(ref _written);

    /// <summary>Queues a request's rows; false (and counted) when the queue is full.</summary>
    public bool TryWrite(ServedModel model, string requestId, string protocol, InputBatch batch, ReadOnlySpan<Prediction> predictions)
    {
        if (!Enabled) return true;
        var rows = batch.Rows;
        if (Interlocked.Add(ref _queuedRows, rows) > _options.LogQueueCapacity)
        {
            Interlocked.Add(ref _queuedRows, -rows);
            var total = Interlocked.Add(ref _dropped, rows);
            _metrics.LogDropped.Add(rows, new KeyValuePair<string, object?>("model", model.Name));
            if (total == rows || total % 10_000 < rows) ServingLog.LogDropping(_logger, total);
            return false;
        }
        var inputs = new Array[batch.Schema.Fields.Count];
        for (var i = 0; i < inputs.Length; i++)
        {
            if (batch.Schema.Fields[i].IsNumeric) inputs[i] = batch.NumericValues(i).AsSpan(0, rows).ToArray();
            else inputs[i] = batch.TextValues(i).AsSpan(0, rows).ToArray();
        }
        var entry = new LogEntry
        {
            Model = model,
            RequestId = requestId,
            Timestamp = DateTime.UtcNow,
            Protocol = protocol,
            Rows = rows,
            Inputs = inputs,
            Predictions = predictions[..rows].ToArray(),
            Flags = batch.Flags is { Count: > 0 } f ? [.. f] : null,
        };
        if (!_channel.Writer.TryWrite(entry))
        {
            Interlocked.Add(ref _queuedRows, -rows);
            return false;
        }
        return true;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!Enabled) return;
        var reader = _channel.Reader;
        var tick = TimeSpan.FromMilliseconds(Math.Clamp(_options.LogFlushInterval.TotalMilliseconds / 4, 10, 1000));
        // Shutdown completes the channel (StopAsync) and this loop drains it: no token here, so
        // that rows already accepted are written even while the host stops. One pending wait and
        // one timer at a time (not a new timer per wake-up), and a short pause after each drain so
        // that under load the writer wakes a few hundred times a second, not once per request.
        Task<bool>? waiting = null;
        Task? timer = null;
        while (true)
        {
            waiting ??= reader.WaitToReadAsync(CancellationToken.None).AsTask();
            timer ??= Task.Delay(tick, CancellationToken.None);
            if (await Task.WhenAny(waiting, timer).ConfigureAwait(false) == timer) timer = null;
            if (waiting.IsCompleted)
            {
                if (!await waiting.ConfigureAwait(false)) break; // completed and drained
                waiting = null;
            }
            var drained = 0;
            while (reader.TryRead(out var entry))
            {
                Interlocked.Add(ref _queuedRows, -entry.Rows);
                drained += entry.Rows;
                await AppendAsync(entry).ConfigureAwait(false);
            }
            await FlushDueAsync(final: false).ConfigureAwait(false);
            if (drained > 0) await Task.Delay(BatchPause, CancellationToken.None).ConfigureAwait(false);
        }
        await FlushDueAsync(final: true).ConfigureAwait(false);
    }

    /// <summary>How long the writer lets rows gather after a drain (bounded by the queue's row limit all the same).</summary>
    private static readonly TimeSpan BatchPause = TimeSpan.FromMilliseconds(5);

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        _channel.Writer.TryComplete();
        await base.StopAsync(cancellationToken).ConfigureAwait(false);
    }

    private async Task AppendAsync(LogEntry entry)
    {
        var date = entry.Timestamp.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
        var key = (entry.Model.Name, entry.Model.Version, date);
        if (!_partitions.TryGetValue(key, out var partition))
        {
            var dir = Path.Combine(_options.LogDirectory!, "model=" + Safe(entry.Model.Name), "version=" + Safe(entry.Model.Version), "date=" + date);
            partition = new PartitionWriter(dir, entry.Model);
            _partitions[key] = partition;
        }
        partition.Add(entry);
        if (partition.BufferedRows >= _options.LogRowGroupSize) await WriteAsync(partition, close: false).ConfigureAwait(false);
    }

    private async Task FlushDueAsync(bool final)
    {
        var now = DateTime.UtcNow;
        List<(string, string, string)>? finished = null;
        foreach (var (key, p) in _partitions)
        {
            var age = p.OldestBuffered is { } t ? now - t : TimeSpan.Zero;
            var fileAge = p.FileOpenedAt is { } o ? now - o : TimeSpan.Zero;
            var close = final || fileAge >= _options.LogFileRollInterval || p.FileRows >= _options.LogMaxRowsPerFile;
            if (p.BufferedRows > 0 && (final || age >= _options.LogFlushInterval || close)) await WriteAsync(p, close).ConfigureAwait(false);
            else if (close && p.FileOpenedAt is not null) await CloseAsync(p).ConfigureAwait(false);
            if (p.BufferedRows == 0 && p.FileOpenedAt is null && (final || key.Item3 != now.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)))
                (finished ??= []).Add(key);
        }
        if (finished is not null) foreach (var k in finished) _partitions.Remove(k);
    }

    private async Task WriteAsync(PartitionWriter p, bool close)
    {
        try
        {
            var rows = await p.WriteRowGroupAsync().ConfigureAwait(false);
            Interlocked.Add(ref _written, rows);
            _metrics.LogWritten.Add(rows, new KeyValuePair<string, object?>("model", p.ModelName));
            if (close || p.FileRows >= _options.LogMaxRowsPerFile) await CloseAsync(p).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidOperationException or ArgumentException)
        {
            ServingLog.LogWriteFailed(_logger, p.Directory, e.Message);
            p.Abandon();
        }
    }

    private async Task CloseAsync(PartitionWriter p)
    {
        var (path, rows) = await p.CloseFileAsync().ConfigureAwait(false);
        if (path is not null) ServingLog.LogFileClosed(_logger, path, rows);
    }

    private static string Safe(string s)
    {
        var chars = s.ToCharArray();
        for (var i = 0; i < chars.Length; i++) if (chars[i] is '/' or '\\' or '=' || char.IsControl(chars[i])) chars[i] = '_';
        return new string(chars);
    }

    /// <summary>One partition's buffer and open file.</summary>
    private sealed class PartitionWriter
    {
        private readonly ServedModel _model;
        private readonly ParquetSchema _schema;
        private readonly DataField[] _fields;
        private readonly List<LogEntry> _buffer = [];
        private ParquetWriter? _writer;
        private FileStream? _stream;
        private string? _tempPath;

        public PartitionWriter(string directory, ServedModel model)
        {
            Directory = directory;
            _model = model;
            var fields = new List<DataField>
            {
                new DataField<string>("request_id"),
                new DateTimeDataField("timestamp", DateTimeFormat.Timestamp, isAdjustedToUTC: true, unit: DateTimeTimeUnit.Micros),
                new DataField<string>("model"),
                new DataField<string>("version"),
                new DataField<string>("protocol"),
                new DataField<int>("row"),
            };
            foreach (var f in model.Schema.Fields)
                fields.Add(f.IsNumeric ? new DataField<double?>("input_" + f.Name) : new DataField<string>("input_" + f.Name));
            fields.Add(new DataField<string>("prediction"));
            fields.Add(new DataField<double>("value"));
            foreach (var label in model.ClassLabels.Count > 2 ? model.ClassLabels : [])
                fields.Add(new DataField<double?>("probability_" + label));
            fields.Add(new DataField<string>("flags"));
            _fields = [.. fields];
            _schema = new ParquetSchema(fields);
        }

        public string Directory { get; }

        public string ModelName => _model.Name;

        public int BufferedRows { get; private set; }

        public DateTime? OldestBuffered => _buffer.Count > 0 ? _buffer[0].Timestamp : null;

        public DateTime? FileOpenedAt { get; private set; }

        public long FileRows { get; private set; }

        public void Add(LogEntry e)
        {
            _buffer.Add(e);
            BufferedRows += e.Rows;
        }

        public async Task<int> WriteRowGroupAsync()
        {
            var n = BufferedRows;
            if (n == 0) return 0;
            if (_writer is null)
            {
                System.IO.Directory.CreateDirectory(Directory);
                var stamp = DateTime.UtcNow.ToString("yyyyMMdd'T'HHmmss'Z'", CultureInfo.InvariantCulture);
                _tempPath = Path.Combine(Directory, $".part-{stamp}-{Guid.NewGuid():N}.parquet.inprogress");
                _stream = new FileStream(_tempPath, FileMode.CreateNew, FileAccess.Write, FileShare.Read, 1 << 16);
                _writer = await ParquetWriter.CreateAsync(_schema, _stream).ConfigureAwait(false);
                FileOpenedAt = DateTime.UtcNow;
            }
            var requestIds = new string[n];
            var timestamps = new DateTime[n];
            var models = new string[n];
            var versions = new string[n];
            var protocols = new string[n];
            var rowIndex = new int[n];
            var inputs = new Array[_model.Schema.Fields.Count];
            for (var i = 0; i < inputs.Length; i++) inputs[i] = _model.Schema.Fields[i].IsNumeric ? new double?[n] : new string?[n];
            var prediction = new string?[n];
            var value = new double[n];
            var classes = _model.ClassLabels.Count > 2 ? _model.ClassLabels.Count : 0;
            var probabilities = new double?[classes][];
            for (var c = 0; c < classes; c++) probabilities[c] = new double?[n];
            var flags = new string?[n];
            var r = 0;
            foreach (var e in _buffer)
            {
                for (var k = 0; k < e.Rows; k++, r++)
                {
                    requestIds[r] = e.RequestId;
                    timestamps[r] = e.Timestamp;
                    models[r] = e.Model.Name;
                    versions[r] = e.Model.Version;
                    protocols[r] = e.Protocol;
                    rowIndex[r] = k;
                    for (var i = 0; i < inputs.Length; i++)
                    {
                        if (inputs[i] is double?[] d)
                        {
                            var v = ((double[])e.Inputs[i])[k];
                            d[r] = double.IsNaN(v) ? null : v;
                        }
                        else ((string?[])inputs[i])[r] = ((string?[])e.Inputs[i])[k];
                    }
                    var p = e.Predictions[k];
                    prediction[r] = p.Label;
                    value[r] = p.Value;
                    if (p.Probabilities is { } probs)
                        for (var c = 0; c < classes && c < probs.Length; c++) probabilities[c][r] = probs[c];
                }
                if (e.Flags is not null)
                {
                    foreach (var (row, message) in e.Flags)
                    {
                        var at = r - e.Rows + row;
                        flags[at] = flags[at] is null ? message : flags[at] + "; " + message;
                    }
                }
            }
            using (var rg = _writer.CreateRowGroup())
            {
                var f = 0;
                await rg.WriteAsync(_fields[f++], requestIds, null).ConfigureAwait(false);
                await rg.WriteAsync<DateTime>(_fields[f++], timestamps.AsMemory(), null, null, default).ConfigureAwait(false);
                await rg.WriteAsync(_fields[f++], models, null).ConfigureAwait(false);
                await rg.WriteAsync(_fields[f++], versions, null).ConfigureAwait(false);
                await rg.WriteAsync(_fields[f++], protocols, null).ConfigureAwait(false);
                await rg.WriteAsync<int>(_fields[f++], rowIndex.AsMemory(), null, null, default).ConfigureAwait(false);
                foreach (var input in inputs)
                {
                    if (input is double?[] d) await rg.WriteAsync<double>(_fields[f++], d.AsMemory(), null, null, default).ConfigureAwait(false);
                    else await rg.WriteAsync(_fields[f++], (string?[])input, null).ConfigureAwait(false);
                }
                await rg.WriteAsync(_fields[f++], prediction!, null).ConfigureAwait(false);
                await rg.WriteAsync<double>(_fields[f++], value.AsMemory(), null, null, default).ConfigureAwait(false);
                foreach (var c in probabilities) await rg.WriteAsync<double>(_fields[f++], c.AsMemory(), null, null, default).ConfigureAwait(false);
                await rg.WriteAsync(_fields[f++], flags!, null).ConfigureAwait(false);
            }
            _buffer.Clear();
            BufferedRows = 0;
            FileRows += n;
            return n;
        }

        public async Task<(string? Path, long Rows)> CloseFileAsync()
        {
            if (_writer is null) return (null, 0);
            await _writer.DisposeAsync().ConfigureAwait(false);
            await _stream!.FlushAsync().ConfigureAwait(false);
            _stream.Flush(flushToDisk: true);
            await _stream.DisposeAsync().ConfigureAwait(false);
            var final = Path.Combine(Directory, Path.GetFileName(_tempPath!)[1..].Replace(".inprogress", "", StringComparison.Ordinal));
            File.Move(_tempPath!, final);
            var rows = FileRows;
            _writer = null;
            _stream = null;
            _tempPath = null;
            FileOpenedAt = null;
            FileRows = 0;
            return (final, rows);
        }

        /// <summary>After a write error: drop the buffer and the broken file so the next rows start afresh.</summary>
        public void Abandon()
        {
            _buffer.Clear();
            BufferedRows = 0;
            try { _stream?.Dispose(); } catch (IOException) { }
            _writer = null;
            _stream = null;
            _tempPath = null;
            FileOpenedAt = null;
            FileRows = 0;
        }
    }
}
