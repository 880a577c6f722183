namespace Kiln.Monitoring.Continuous;

/// <summary>
/// Receives every evaluation of the continuous monitor after its measurements are published (kiln server keeps each
/// one's proxy and realized metrics as metric history in its tracking store, for the monitoring page's charts). A
/// sink that throws is logged; the monitor goes on.
/// </summary>
public interface IMonitorTickSink
{
    /// <summary>Records one evaluation.</summary>
    Task RecordAsync(MonitorTick tick, CancellationToken cancellationToken);
}
