namespace Kiln.Monitoring.Alerts;

/// <summary>
/// Receives alert transitions (every one, in order). A sink must not block evaluation: slow work (HTTP, pipelines)
/// goes to a bounded queue of its own. Sinks pick the transitions they care about (webhooks: firing and resolved;
/// pipelines: firing).
/// </summary>
public interface IAlertSink
{
    ValueTask NotifyAsync(AlertTransition transition, CancellationToken cancellationToken);
}

/// <summary>Writes one log line per transition.</summary>
public sealed class LogAlertSink(Microsoft.Extensions.Logging.ILogger logger) : IAlertSink
{
    public ValueTask NotifyAsync(AlertTransition t, CancellationToken cancellationToken)
    {
        var series = Continuous.Measurement.SeriesKeyOf(t.Rule.Metric, t.Labels);
        var value = t.NoData ? "no data" : t.Value.ToString("G6", System.Globalization.CultureInfo.InvariantCulture);
        if (t.To is AlertState.Firing && t.From is AlertState.Pending)
            MonitorLog.AlertFiring(logger, t.Rule.Name, t.Rule.Severity, series, value, AlertRule.ConditionName(t.Rule.Condition), t.Rule.Threshold);
        else if (t.To is AlertState.Resolved)
            MonitorLog.AlertResolved(logger, t.Rule.Name, t.Rule.Severity, series, value);
        else
            MonitorLog.AlertTransition(logger, t.Rule.Name, t.From.Name(), t.To.Name(), series, value);
        return ValueTask.CompletedTask;
    }
}
