using System.Globalization;
using Kiln.Core.Data;
using Kiln.Core.PredictionLog;
using Kiln.Scoring;
using Kiln.Serving.Metrics;
using Kiln.Serving.Models;
using Kiln.Scoring.Validation;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Kiln.Serving.Logging;

/// <summary>
/// One model version's rows waiting for the writer. Requests append to <see cref="Active"/> under
/// this object's lock; the writer swaps it for <see cref="Spare"/> (also under the lock, an
/// exchange of two references) and writes the rows it took while requests fill the other buffer.
/// </summary>
internal sealed class ModelLog(PredictionLog owner, ServedModel model, int rowGroupSize)
{
    public PredictionLog Owner { get; } = owner;

    public ServedModel Model { get; } = model;

    public ParquetColumn[] Columns { get; } = LogColumns.For(model);

    /// <summary>Where requests append (guarded by the lock on this object).</summary>
    public LogRows Active = new(model, rowGroupSize);

    /// <summary>The writer's: empty, or the rows it is writing.</summary>
    public LogRows Spare = new(model, rowGroupSize);

    /// <summary>Set (under the lock) by the final drain: nothing more is appended.</summary>
    public bool Closed;
}

/// <summary>
/// The prediction log: every scored row with its inputs, outputs, model, version, request id and
/// time, written as Parquet under LOG_DIR/model=M/version=V/date=YYYY-MM-DD/. A request appends its
/// rows to its model version's column buffers under a short lock and goes on; no per-request
/// object is handed to another thread. One background writer takes a version's buffer (swapping in
/// an empty one) when it holds <see cref="ServeOptions.LogRowGroupSize"/> rows or its oldest row is
/// <see cref="ServeOptions.LogFlushInterval"/> old, and writes it as a row group. Files are written
/// as ".inprogress" and renamed to ".parquet" when closed (by age, size, or shutdown), so readers
/// see only complete files. Overload policy: at most <see cref="ServeOptions.LogQueueCapacity"/>
/// rows of a model version wait; beyond that new rows are dropped and counted
/// (kiln_serve_prediction_log_dropped_total), never blocking a request.
/// </summary>
public sealed class PredictionLog : BackgroundService
{
    private readonly ServeOptions _options;
    private readonly ServingMetrics _metrics;
    private readonly ILogger _logger;
    private readonly TimeProvider _clock;
    private readonly List<ModelLog> _models = []; // guarded by itself
    private readonly List<ModelLog> _snapshot = [];
    private readonly Dictionary<(string Model, string Version, DateOnly Date), PartitionFile> _partitions = [];
    private readonly SemaphoreSlim _wake = new(0);
    private bool _closed; // guarded by _models
    private volatile bool _stopping;
    private long _dropped;
    private long _written;

    public PredictionLog(ServeOptions options, ServingMetrics metrics, ILogger<PredictionLog> logger)
    {
        _options = options;
        _metrics = metrics;
        _logger = logger;
        _clock = options.LogClock;
    }

    public bool Enabled => _options.LogDirectory is not null;

    public long DroppedRows => Interlocked.Read(ref _dropped);

    public long WrittenRows => Interlocked.Read(ref _written);

    /// <summary>How many model versions have log buffers (a version swapped out drops its own once written).</summary>
    internal int BufferedVersions
    {
        get { lock (_models) return _models.Count; }
    }

    /// <summary>Logs a request's rows; false when they were dropped (the model's buffer is full; counted) or the log has shut down.</summary>
    public bool TryWrite(ServedModel model, string requestId, string protocol, InputBatch batch, ReadOnlySpan<Prediction> predictions)
    {
        if (!Enabled) return true;
        var log = model.Log is { } known && known.Owner == this ? known : Register(model);
        if (log is null) return false;
        var rows = batch.Rows;
        var size = _options.LogRowGroupSize;
        var now = _clock.GetUtcNow().UtcDateTime;
        bool full, wake = false;
        lock (log)
        {
            if (log.Closed) return false;
            var active = log.Active;
            full = active.Count + rows > _options.LogQueueCapacity;
            if (!full)
            {
                active.Append(now, requestId, protocol, batch, predictions);
                wake = active.Count >= size && active.Count - rows < size;
            }
        }
        if (full)
        {
            var total = Interlocked.Add(ref _dropped, rows);
            _metrics.LogDropped.Add(rows, new KeyValuePair<string, object?>("model", model.Name));
            if (total == rows || total % 10_000 < rows) ServingLog.LogDropping(_logger, total);
            return false;
        }
        if (wake) _wake.Release();
        return true;
    }

    /// <summary>The model version's buffers, made on its first logged request; null once the log has shut down.</summary>
    private ModelLog? Register(ServedModel model)
    {
        lock (_models)
        {
            if (_closed) return null;
            if (model.Log is { } known && known.Owner == this) return known;
            var log = new ModelLog(this, model, _options.LogRowGroupSize);
            _models.Add(log);
            model.Log = log;
            return log;
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!Enabled) return;
        // Wakes when a buffer reaches a row group's size, and at least every quarter flush interval
        // to write what is old enough. Shutdown (StopAsync) wakes it for the final drain; no token
        // here, so that rows already accepted are written even while the host stops.
        var tick = TimeSpan.FromMilliseconds(Math.Clamp(_options.LogFlushInterval.TotalMilliseconds / 4, 10, 1000));
        while (!_stopping)
        {
            await _wake.WaitAsync(tick, CancellationToken.None).ConfigureAwait(false);
            Drain(final: false);
        }
        Drain(final: true);
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        _stopping = true;
        _wake.Release();
        await base.StopAsync(cancellationToken).ConfigureAwait(false);
    }

    public override void Dispose()
    {
        _wake.Dispose();
        base.Dispose();
    }

    /// <summary>Writes every buffer that is due (all of them when final), then closes the files that are due.</summary>
    private void Drain(bool final)
    {
        var now = _clock.GetUtcNow().UtcDateTime;
        lock (_models)
        {
            if (final) _closed = true;
            _snapshot.Clear();
            _snapshot.AddRange(_models);
        }
        foreach (var log in _snapshot)
        {
            LogRows? taken = null;
            var retired = false;
            lock (log)
            {
                if (final) log.Closed = true;
                var active = log.Active;
                if (active.Count > 0 && (final || active.Count >= _options.LogRowGroupSize || now - active.Timestamp(0) >= _options.LogFlushInterval))
                {
                    (log.Active, log.Spare) = (log.Spare, active);
                    taken = active;
                }
                // A version released by everyone takes no more requests: once empty, its buffers go.
                retired = taken is null && active.Count == 0 && log.Model.IsReleased;
            }
            if (taken is not null)
            {
                Write(log, taken);
                taken.Clear();
            }
            if (retired) lock (_models) _models.Remove(log);
        }
        _snapshot.Clear();
        CloseDue(now, final);
    }

    /// <summary>Writes the rows as a row group of each UTC day's partition they fall in.</summary>
    private void Write(ModelLog log, LogRows rows)
    {
        var model = log.Model;
        for (var from = 0; from < rows.Count;)
        {
            var to = rows.DayRunEnd(from);
            var date = DateOf(rows.Timestamp(from));
            var key = (model.Name, model.Version, date);
            _partitions.TryGetValue(key, out var partition);
            try
            {
                if (partition is null) _partitions[key] = partition = new PartitionFile(PartitionDirectory(model, date), log.Columns, _clock.GetUtcNow().UtcDateTime);
                partition.Write(rows, from, to, model.Name, model.Version);
                Interlocked.Add(ref _written, to - from);
                _metrics.LogWritten.Add(to - from, new KeyValuePair<string, object?>("model", model.Name));
                if (partition.FileRows >= _options.LogMaxRowsPerFile) Close(key, partition);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidOperationException or ArgumentException or ParquetSharp.ParquetException)
            {
                // These rows are lost (and said so); the next ones start a new file.
                ServingLog.LogWriteFailed(_logger, partition?.Directory ?? PartitionDirectory(model, date), e.Message);
                partition?.Abandon();
                _partitions.Remove(key);
            }
            from = to;
        }
    }

    private static DateOnly DateOf(DateTime timestamp) => DateOnly.FromDateTime(timestamp);

    private void CloseDue(DateTime now, bool final)
    {
        List<((string, string, DateOnly) Key, PartitionFile File)>? due = null;
        foreach (var (key, p) in _partitions)
            if (final || now - p.OpenedAt >= _options.LogFileRollInterval) (due ??= []).Add((key, p));
        if (due is not null) foreach (var (key, p) in due) Close(key, p);
    }

    private void Close((string, string, DateOnly) key, PartitionFile p)
    {
        _partitions.Remove(key);
        try
        {
            var (path, rows) = p.CloseFile();
            ServingLog.LogFileClosed(_logger, path, rows);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ParquetSharp.ParquetException)
        {
            // A footer that cannot be written (disk full, directory gone) loses this file, not the writer.
            ServingLog.LogWriteFailed(_logger, p.Directory, e.Message);
            p.Abandon();
        }
    }

    private string PartitionDirectory(ServedModel model, DateOnly date) =>
        PredictionLogLayout.PartitionDirectory(_options.LogDirectory!, model.Name, model.Version, date);

    /// <summary>One partition's open file, written by Kiln's Parquet writer a row group at a time.</summary>
    private sealed class PartitionFile
    {
        private readonly ParquetTableWriter _writer;
        private readonly FileStream _stream;
        private readonly string _tempPath;

        public PartitionFile(string directory, ParquetColumn[] columns, DateTime openedAt)
        {
            Directory = directory;
            System.IO.Directory.CreateDirectory(directory);
            var stamp = openedAt.ToString("yyyyMMdd'T'HHmmss'Z'", CultureInfo.InvariantCulture);
            _tempPath = Path.Combine(directory, $".part-{stamp}-{Guid.NewGuid():N}.parquet.inprogress");
            _stream = new FileStream(_tempPath, FileMode.CreateNew, FileAccess.Write, FileShare.Read, 1 << 16);
            _writer = new ParquetTableWriter(_stream, columns);
            OpenedAt = openedAt;
        }

        public string Directory { get; }

        public DateTime OpenedAt { get; }

        public long FileRows { get; private set; }

        public void Write(LogRows rows, int from, int to, string model, string version)
        {
            rows.WriteRowGroup(_writer, from, to, model, version);
            FileRows += to - from;
        }

        /// <summary>Writes the footer and makes the file visible under its final name.</summary>
        public (string Path, long Rows) CloseFile()
        {
            _writer.Finish();
            _writer.Dispose();
            _stream.Flush(flushToDisk: true);
            _stream.Dispose();
            var final = Path.Combine(Directory, Path.GetFileName(_tempPath)[1..].Replace(".inprogress", "", StringComparison.Ordinal));
            File.Move(_tempPath, final);
            return (final, FileRows);
        }

        /// <summary>After a write error: let go of the broken file (left as .inprogress) so the next rows start a new one.</summary>
        public void Abandon()
        {
            try { _writer.Dispose(); } catch (Exception e) when (e is IOException or ParquetSharp.ParquetException) { }
            try { _stream.Dispose(); } catch (IOException) { }
        }
    }
}
