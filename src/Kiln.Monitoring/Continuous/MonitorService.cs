using System.Diagnostics;
using Kiln.Monitoring.Alerts;
using Kiln.Monitoring.Feedback;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Kiln.Monitoring.Continuous;

/// <summary>What one evaluation produced.</summary>
public sealed record MonitorTick(DateTimeOffset At, IReadOnlyList<Measurement> Measurements, IReadOnlyList<AlertTransition> Transitions);

/// <summary>
/// Continuous monitoring: every <see cref="MonitorConfig.Interval"/> (first at start), evaluates each target over its
/// sliding window [now − window, now) with every evaluator, publishes the measurements as gauges, runs the alert
/// rules over them and hands each transition to the sinks (log, webhooks, pipelines). Evaluations run one at a
/// time; a failed evaluator is logged and counted and leaves its target without data for that tick.
/// </summary>
public sealed class MonitorService : BackgroundService
{
    private readonly MonitorConfig _config;
    private readonly IReadOnlyList<IMonitorEvaluator> _evaluators;
    private readonly GaugePublisher _gauges;
    private readonly IReadOnlyList<IAlertSink> _sinks;
    private readonly IReadOnlyList<IMonitorTickSink> _tickSinks;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly SemaphoreSlim _one = new(1, 1);

    public MonitorService(MonitorConfig config, IEnumerable<IMonitorEvaluator> evaluators, GaugePublisher gauges, IEnumerable<IAlertSink> sinks,
        ILogger<MonitorService> logger, TimeProvider? time = null, IEnumerable<IMonitorTickSink>? tickSinks = null)
    {
        _tickSinks = [.. tickSinks ?? []];
        _config = config;
        _evaluators = [.. evaluators];
        _gauges = gauges;
        _sinks = [.. sinks];
        _logger = logger;
        _time = time ?? TimeProvider.System;
        Alerts = new AlertEngine(config.Rules, _time);
        if (config.AlertStateFile is { } stateFile)
        {
            _state = new AlertStateStore(stateFile);
            RestoreAlerts(_state);
        }
    }

    private readonly AlertStateStore? _state;

    /// <summary>Puts the alerts of the last run back; a file that cannot be read is a warning and a fresh start.</summary>
    private void RestoreAlerts(AlertStateStore store)
    {
        var snapshots = store.Load(out var problem);
        if (problem is not null)
        {
            MonitorLog.AlertStateUnreadable(_logger, store.Path, problem);
            return;
        }
        foreach (var reason in Alerts.Restore(snapshots)) MonitorLog.AlertStateSkipped(_logger, store.Path, reason);
        if (snapshots.Count > 0) MonitorLog.AlertStateRestored(_logger, Alerts.Active().Count, store.Path);
    }

    /// <summary>Writes the alert state after a transition; a failure is logged, the monitor goes on.</summary>
    private void SaveAlerts(DateTimeOffset now)
    {
        if (_state is null) return;
        try
        {
            _state.Save(Alerts.Export(), now);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            MonitorLog.AlertStateSaveFailed(_logger, _state.Path, e.Message, e);
        }
    }

    public MonitorConfig Config => _config;

    public AlertEngine Alerts { get; }

    /// <summary>The last evaluation (null before the first).</summary>
    public MonitorTick? Last { get; private set; }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        // Let the host finish starting: the first evaluation loads and verifies packages synchronously.
        await Task.Yield();
        MonitorLog.Started(_logger, _config.Targets.Count, _config.Rules.Count, _config.Interval);
        using var timer = new PeriodicTimer(_config.Interval, _time);
        try
        {
            do
            {
                await EvaluateOnceAsync(stoppingToken).ConfigureAwait(false);
            }
            while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false));
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    /// <summary>One evaluation of every target, now.</summary>
    public async Task<MonitorTick> EvaluateOnceAsync(CancellationToken cancellationToken)
    {
        await _one.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await CompactFeedbackAsync(cancellationToken).ConfigureAwait(false);
            var now = _time.GetUtcNow();
            var measurements = new List<Measurement>();
            foreach (var target in _config.Targets)
            {
                var start = now - target.Window;
                var watch = Stopwatch.StartNew();
                var ok = true;
                var before = measurements.Count;
                foreach (var evaluator in _evaluators)
                {
                    try
                    {
                        measurements.AddRange(await evaluator.EvaluateAsync(target, start, now, cancellationToken).ConfigureAwait(false));
                    }
                    catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
                    {
                        ok = false;
                        _gauges.EvaluationErrors.Add(1, new("model", target.Name), new("evaluator", evaluator.Name));
                        MonitorLog.EvaluationFailed(_logger, evaluator.Name, target.Name, e.Message, e);
                    }
                }
                MonitorLog.Evaluated(_logger, target.Name, measurements.Count - before, start, now, watch.ElapsedMilliseconds);
                measurements.Add(Measurement.Of("kiln_monitor_evaluation_duration_seconds", watch.Elapsed.TotalSeconds,
                    "Time the last evaluation of the target took.", ("model", target.Name)));
                if (ok)
                {
                    measurements.Add(Measurement.Of("kiln_monitor_last_success_timestamp_seconds", now.ToUnixTimeMilliseconds() / 1000.0,
                        "When the target was last evaluated without error (Unix time).", ("model", target.Name)));
                }
            }
            _gauges.Publish(measurements);
            var transitions = Alerts.Observe(measurements);
            // Persisted before anyone is told, so a crash after a notification never sends it again after the restart.
            if (transitions.Count > 0) SaveAlerts(now);
            foreach (var t in transitions)
            {
                foreach (var sink in _sinks)
                {
                    try
                    {
                        await sink.NotifyAsync(t, cancellationToken).ConfigureAwait(false);
                    }
                    catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
                    {
                        MonitorLog.SinkFailed(_logger, sink.GetType().Name, e.Message, e);
                    }
                }
            }
            _gauges.PublishAlerts(Alerts.Active());
            var tick = new MonitorTick(now, measurements, transitions);
            Last = tick;
            foreach (var sink in _tickSinks)
            {
                try
                {
                    await sink.RecordAsync(tick, cancellationToken).ConfigureAwait(false);
                }
                catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
                {
                    MonitorLog.SinkFailed(_logger, sink.GetType().Name, e.Message, e);
                }
            }
            return tick;
        }
        finally
        {
            _one.Release();
        }
    }

    /// <summary>Compacts the feedback of each target's log directory that has more small files than configured.</summary>
    private async Task CompactFeedbackAsync(CancellationToken cancellationToken)
    {
        if (_config.FeedbackCompactAfter <= 0) return;
        // Feedback in a bucket is compacted where it is written (a local log directory), not through the read-only mirror.
        foreach (var dir in _config.Targets.Select(t => t.LogDirectory).Where(d => !Windows.S3LogMirror.IsS3(d)).Distinct(StringComparer.Ordinal))
        {
            try
            {
                var store = new FeedbackStore(dir);
                if (FeedbackCompactor.CompactableFiles(store) <= _config.FeedbackCompactAfter) continue;
                var result = await FeedbackCompactor.CompactAsync(store, cancellationToken).ConfigureAwait(false);
                MonitorLog.FeedbackCompacted(_logger, store.Root, result.Describe());
            }
            catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                MonitorLog.FeedbackCompactionFailed(_logger, dir, e.Message, e);
            }
        }
    }

    public override void Dispose()
    {
        _one.Dispose();
        base.Dispose();
    }
}
