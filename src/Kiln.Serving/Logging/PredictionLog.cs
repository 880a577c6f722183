using System.Collections.Concurrent;
using System.Globalization;
using System.Threading.Channels;
using Kiln.Core.Data;
using Kiln.Scoring;
using Kiln.Serving.Metrics;
using Kiln.Serving.Models;
using Kiln.Serving.Validation;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Kiln.Serving.Logging;

/// <summary>
/// One request's rows on their way to the writer, copied off the pooled request buffers. Entries
/// are pooled and reused: the writer copies them into its column buffers within milliseconds and
/// gives them back, so a logged request leaves nothing behind that lives long enough to be
/// promoted to an older GC generation (per-request objects kept for the seconds a row group takes
/// to fill made the GC collect generations 1 and 2 several times a second under load).
/// </summary>
internal sealed class LogEntry
{
    public ServedModel Model { get; private set; } = null!;

    public string RequestId { get; private set; } = "";

    public DateTime Timestamp { get; private set; }

    public string Protocol { get; private set; } = "";

    public int Rows { get; private set; }

    /// <summary>Inputs by field index: numbers (NaN = missing) for numeric fields, categories for the others.</summary>
    public double[]?[] Numeric { get; private set; } = [];

    public string?[]?[] Text { get; private set; } = [];

    public Prediction[] Predictions { get; private set; } = [];

    public List<(int Row, string Message)>? Flags { get; private set; }

    public void Fill(ServedModel model, string requestId, string protocol, InputBatch batch, ReadOnlySpan<Prediction> predictions)
    {
        var rows = batch.Rows;
        var fields = batch.Schema.Fields;
        if (Numeric.Length != fields.Count)
        {
            Numeric = new double[]?[fields.Count];
            Text = new string?[]?[fields.Count];
        }
        for (var i = 0; i < fields.Count; i++)
        {
            if (fields[i].IsNumeric)
            {
                Text[i] = null;
                var n = Numeric[i] is { } have && have.Length >= rows ? have : Numeric[i] = new double[Math.Max(rows, 1)];
                batch.NumericValues(i).AsSpan(0, rows).CopyTo(n);
            }
            else
            {
                Numeric[i] = null;
                var t = Text[i] is { } have && have.Length >= rows ? have : Text[i] = new string?[Math.Max(rows, 1)];
                batch.TextValues(i).AsSpan(0, rows).CopyTo(t);
            }
        }
        if (Predictions.Length < rows) Predictions = new Prediction[rows];
        predictions[..rows].CopyTo(Predictions);
        Model = model;
        RequestId = requestId;
        Protocol = protocol;
        Timestamp = DateTime.UtcNow;
        Rows = rows;
        Flags = batch.Flags is { Count: > 0 } f ? [.. f] : null;
    }

    /// <summary>Drops the references to this request's data before the entry goes back to the pool.</summary>
    public void Clear()
    {
        Model = null!;
        RequestId = "";
        Flags = null;
        for (var i = 0; i < Text.Length; i++) if (Text[i] is { } t) Array.Clear(t);
        Array.Clear(Predictions);
        Rows = 0;
    }
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
    private readonly ConcurrentQueue<LogEntry> _pool = new();
    private const int PoolLimit = 4096;
    private long _lastDay = -1;
    private string _lastDate = "";
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
        if (!_pool.TryDequeue(out var entry)) entry = new LogEntry();
        entry.Fill(model, requestId, protocol, batch, predictions);
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
                Append(entry);
                entry.Clear();
                if (_pool.Count < PoolLimit) _pool.Enqueue(entry);
            }
            FlushDue(final: false);
            if (drained > 0) await Task.Delay(BatchPause, CancellationToken.None).ConfigureAwait(false);
        }
        FlushDue(final: true);
    }

    /// <summary>How long the writer lets rows gather after a drain (bounded by the queue's row limit all the same).</summary>
    private static readonly TimeSpan BatchPause = TimeSpan.FromMilliseconds(5);

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        _channel.Writer.TryComplete();
        await base.StopAsync(cancellationToken).ConfigureAwait(false);
    }

    private void Append(LogEntry entry)
    {
        var day = entry.Timestamp.Ticks / TimeSpan.TicksPerDay;
        if (day != _lastDay)
        {
            _lastDate = entry.Timestamp.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
            _lastDay = day;
        }
        var date = _lastDate;
        var key = (entry.Model.Name, entry.Model.Version, date);
        if (!_partitions.TryGetValue(key, out var partition))
        {
            var dir = Path.Combine(_options.LogDirectory!, "model=" + Safe(entry.Model.Name), "version=" + Safe(entry.Model.Version), "date=" + date);
            partition = new PartitionWriter(dir, entry.Model);
            _partitions[key] = partition;
        }
        partition.Add(entry);
        if (partition.BufferedRows >= _options.LogRowGroupSize) Write(partition, close: false);
    }

    private void FlushDue(bool final)
    {
        var now = DateTime.UtcNow;
        List<(string, string, string)>? finished = null;
        foreach (var (key, p) in _partitions)
        {
            var age = p.OldestBuffered is { } t ? now - t : TimeSpan.Zero;
            var fileAge = p.FileOpenedAt is { } o ? now - o : TimeSpan.Zero;
            var close = final || fileAge >= _options.LogFileRollInterval || p.FileRows >= _options.LogMaxRowsPerFile;
            if (p.BufferedRows > 0 && (final || age >= _options.LogFlushInterval || close)) Write(p, close);
            else if (close && p.FileOpenedAt is not null) Close(p);
            if (p.BufferedRows == 0 && p.FileOpenedAt is null && (final || key.Item3 != now.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)))
                (finished ??= []).Add(key);
        }
        if (finished is not null) foreach (var k in finished) _partitions.Remove(k);
    }

    private void Write(PartitionWriter p, bool close)
    {
        try
        {
            var rows = p.WriteRowGroup();
            Interlocked.Add(ref _written, rows);
            _metrics.LogWritten.Add(rows, new KeyValuePair<string, object?>("model", p.ModelName));
            if (close || p.FileRows >= _options.LogMaxRowsPerFile) Close(p);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidOperationException or ArgumentException)
        {
            ServingLog.LogWriteFailed(_logger, p.Directory, e.Message);
            p.Abandon();
        }
    }

    private void Close(PartitionWriter p)
    {
        try
        {
            var (path, rows) = p.CloseFile();
            if (path is not null) ServingLog.LogFileClosed(_logger, path, rows);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // A footer that cannot be written (disk full, directory gone) loses this file, not the writer.
            ServingLog.LogWriteFailed(_logger, p.Directory, e.Message);
            p.Abandon();
        }
    }

    private static string Safe(string s)
    {
        var chars = s.ToCharArray();
        for (var i = 0; i < chars.Length; i++) if (chars[i] is '/' or '\\' or '=' || char.IsControl(chars[i])) chars[i] = '_';
        return new string(chars);
    }

    /// <summary>
    /// One partition's buffered rows and open file. Rows are kept in column buffers that are
    /// reused from one row group to the next (no per-row objects wait here; request ids wait as
    /// characters) and written by Kiln's own Parquet writer straight from those buffers.
    /// </summary>
    private sealed class PartitionWriter
    {
        private readonly ServedModel _model;
        private readonly ParquetColumn[] _columns;
        private readonly int _classes;
        private ParquetFlatWriter? _writer;
        private FileStream? _stream;
        private string? _tempPath;

        // Column buffers: index r is the r-th buffered row. Missing numbers are NaN (written as nulls).
        private int _capacity;
        private char[] _idChars = new char[1024];
        private int _idLength;
        private int[] _idEnds = [];
        private DateTime[] _timestamps = [];
        private string[] _protocols = [];
        private int[] _rowIndex = [];
        private readonly Array[] _inputs;
        private string?[] _prediction = [];
        private double[] _value = [];
        private readonly double[][] _probabilities;
        private string?[] _flags = [];
        private string[] _constant = [];

        public PartitionWriter(string directory, ServedModel model)
        {
            Directory = directory;
            _model = model;
            var columns = new List<ParquetColumn>
            {
                new("request_id", ParquetColumnKind.Text, true),
                new("timestamp", ParquetColumnKind.Timestamp, false),
                new("model", ParquetColumnKind.Text, true),
                new("version", ParquetColumnKind.Text, true),
                new("protocol", ParquetColumnKind.Text, true),
                new("row", ParquetColumnKind.Int32, false),
            };
            foreach (var f in model.Schema.Fields)
                columns.Add(new("input_" + f.Name, f.IsNumeric ? ParquetColumnKind.Double : ParquetColumnKind.Text, true));
            columns.Add(new("prediction", ParquetColumnKind.Text, true));
            columns.Add(new("value", ParquetColumnKind.Double, false));
            _classes = model.ClassLabels.Count > 2 ? model.ClassLabels.Count : 0;
            for (var c = 0; c < _classes; c++) columns.Add(new("probability_" + model.ClassLabels[c], ParquetColumnKind.Double, true));
            columns.Add(new("flags", ParquetColumnKind.Text, true));
            _columns = [.. columns];
            _inputs = new Array[model.Schema.Fields.Count];
            for (var i = 0; i < _inputs.Length; i++) _inputs[i] = model.Schema.Fields[i].IsNumeric ? Array.Empty<double>() : Array.Empty<string?>();
            _probabilities = new double[_classes][];
            for (var c = 0; c < _classes; c++) _probabilities[c] = [];
        }

        public string Directory { get; }

        public string ModelName => _model.Name;

        public int BufferedRows { get; private set; }

        public DateTime? OldestBuffered => BufferedRows > 0 ? _timestamps[0] : null;

        public DateTime? FileOpenedAt { get; private set; }

        public long FileRows { get; private set; }

        public void Add(LogEntry e)
        {
            var start = BufferedRows;
            var end = start + e.Rows;
            if (end > _capacity) Grow(Math.Max(end, Math.Max(256, _capacity * 2)));
            var id = e.RequestId.AsSpan();
            for (var r = start; r < end; r++)
            {
                if (_idLength + id.Length > _idChars.Length) Array.Resize(ref _idChars, Math.Max(_idChars.Length * 2, _idLength + id.Length));
                id.CopyTo(_idChars.AsSpan(_idLength));
                _idLength += id.Length;
                _idEnds[r] = _idLength;
                _timestamps[r] = e.Timestamp;
                _protocols[r] = e.Protocol;
                _rowIndex[r] = r - start;
            }
            for (var i = 0; i < _inputs.Length; i++)
            {
                if (_inputs[i] is double[] d) e.Numeric[i].AsSpan(0, e.Rows).CopyTo(d.AsSpan(start));
                else e.Text[i].AsSpan(0, e.Rows).CopyTo(((string?[])_inputs[i]).AsSpan(start));
            }
            for (var k = 0; k < e.Rows; k++)
            {
                var p = e.Predictions[k];
                _prediction[start + k] = SharedLabel(p.Label);
                _value[start + k] = p.Value;
                for (var c = 0; c < _classes; c++) _probabilities[c][start + k] = p.Probabilities is { } probs && c < probs.Length ? probs[c] : double.NaN;
                _flags[start + k] = null;
            }
            if (e.Flags is not null)
            {
                foreach (var (row, message) in e.Flags)
                {
                    var at = start + row;
                    _flags[at] = _flags[at] is null ? message : _flags[at] + "; " + message;
                }
            }
            BufferedRows = end;
        }

        /// <summary>The class label instance the model keeps, so buffered rows do not hold a string of their own.</summary>
        private string? SharedLabel(string? label)
        {
            if (label is null) return null;
            foreach (var l in _model.ClassLabels) if (string.Equals(l, label, StringComparison.Ordinal)) return l;
            return label;
        }

        private void Grow(int capacity)
        {
            Array.Resize(ref _idEnds, capacity);
            Array.Resize(ref _timestamps, capacity);
            Array.Resize(ref _protocols, capacity);
            Array.Resize(ref _rowIndex, capacity);
            for (var i = 0; i < _inputs.Length; i++)
            {
                if (_inputs[i] is double[] d) { Array.Resize(ref d, capacity); _inputs[i] = d; }
                else { var t = (string?[])_inputs[i]; Array.Resize(ref t, capacity); _inputs[i] = t; }
            }
            Array.Resize(ref _prediction, capacity);
            Array.Resize(ref _value, capacity);
            for (var c = 0; c < _classes; c++) Array.Resize(ref _probabilities[c], capacity);
            Array.Resize(ref _flags, capacity);
            _capacity = capacity;
        }

        /// <summary>Writes the buffered rows as one row group (opening the file first if needed) and empties the buffers.</summary>
        public int WriteRowGroup()
        {
            var n = BufferedRows;
            if (n == 0) return 0;
            if (_writer is null)
            {
                System.IO.Directory.CreateDirectory(Directory);
                var stamp = DateTime.UtcNow.ToString("yyyyMMdd'T'HHmmss'Z'", CultureInfo.InvariantCulture);
                _tempPath = Path.Combine(Directory, $".part-{stamp}-{Guid.NewGuid():N}.parquet.inprogress");
                _stream = new FileStream(_tempPath, FileMode.CreateNew, FileAccess.Write, FileShare.Read, 1 << 16);
                _writer = new ParquetFlatWriter(_stream, _columns);
                FileOpenedAt = DateTime.UtcNow;
            }
            var w = _writer;
            w.BeginRowGroup(n);
            w.WriteText(_idChars.AsSpan(0, _idLength), _idEnds.AsSpan(0, n));
            w.WriteTimestamp(_timestamps.AsSpan(0, n));
            if (_constant.Length < n) _constant = new string[_capacity];
            _constant.AsSpan(0, n).Fill(_model.Name);
            w.WriteText(_constant.AsSpan(0, n)!);
            _constant.AsSpan(0, n).Fill(_model.Version);
            w.WriteText(_constant.AsSpan(0, n)!);
            w.WriteText(_protocols.AsSpan(0, n)!);
            w.WriteInt32(_rowIndex.AsSpan(0, n));
            foreach (var input in _inputs)
            {
                if (input is double[] d) w.WriteDouble(d.AsSpan(0, n));
                else w.WriteText(((string?[])input).AsSpan(0, n));
            }
            w.WriteText(_prediction.AsSpan(0, n));
            w.WriteDouble(_value.AsSpan(0, n));
            foreach (var c in _probabilities) w.WriteDouble(c.AsSpan(0, n));
            w.WriteText(_flags.AsSpan(0, n));
            w.EndRowGroup();
            Reset(n);
            FileRows += n;
            return n;
        }

        /// <summary>Empties the buffers (keeping their storage) and lets go of the strings they referenced.</summary>
        private void Reset(int n)
        {
            foreach (var input in _inputs) if (input is string?[] t) Array.Clear(t, 0, n);
            Array.Clear(_flags, 0, n);
            _idLength = 0;
            BufferedRows = 0;
        }

        public (string? Path, long Rows) CloseFile()
        {
            if (_writer is null) return (null, 0);
            _writer.Finish();
            _stream!.Flush(flushToDisk: true);
            _stream.Dispose();
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
            Reset(BufferedRows);
            try { _stream?.Dispose(); } catch (IOException) { }
            _writer = null;
            _stream = null;
            _tempPath = null;
            FileOpenedAt = null;
            FileRows = 0;
        }
    }
}
