namespace Kiln.Tracking;

/// <summary>Single-item calls, each a batch of one.</summary>
public static class StoreExtensions
{
    public static Task LogMetricAsync(this ITrackingStore store, string runId, string key, double value, long step = 0, long? timestamp = null,
        CancellationToken ct = default) =>
        store.LogBatchAsync(runId, [new Metric(key, value, timestamp ?? DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), step)], null, null, ct);

    public static Task LogParamAsync(this ITrackingStore store, string runId, string key, string value, CancellationToken ct = default) =>
        store.LogBatchAsync(runId, null, [new KeyValue(key, value)], null, ct);

    public static Task SetTagAsync(this ITrackingStore store, string runId, string key, string value, CancellationToken ct = default) =>
        store.LogBatchAsync(runId, null, null, [new KeyValue(key, value)], ct);
}
