namespace Kiln.Features.Online;

/// <summary>One entity's latest values of one view, as written to the online store.</summary>
/// <param name="EntityKey">The canonical entity key (<see cref="EntityKeys"/>).</param>
/// <param name="EventMicros">Event time, microseconds since the Unix epoch.</param>
/// <param name="CreatedMicros">Created time in microseconds, or <see cref="long.MinValue"/> when the source has none.</param>
/// <param name="Payload">The feature values (<see cref="OnlinePayload"/>).</param>
public readonly record struct OnlineRow(string EntityKey, long EventMicros, long CreatedMicros, string Payload);

/// <summary>What the online store holds for one entity of one view.</summary>
public readonly record struct OnlineRecord(long EventMicros, string Payload);

/// <summary>
/// The online store: the latest feature values per view and entity. A write never replaces a newer value with an older
/// one (event time first, then created time), and the comparison is made atomically inside the store.
/// </summary>
public interface IOnlineStore : IAsyncDisposable
{
    /// <summary>Writes rows (a batch); returns how many replaced or created a value (older rows are ignored).</summary>
    Task<int> WriteAsync(string project, string view, IReadOnlyList<OnlineRow> rows, CancellationToken cancellationToken = default);

    /// <summary>Reads the records of entities of a view, in the order of the keys; null where there is none.</summary>
    Task<OnlineRecord?[]> ReadAsync(string project, string view, IReadOnlyList<string> entityKeys, CancellationToken cancellationToken = default);

    /// <summary>Removes every record of a view (when a view is deleted or its schema changes).</summary>
    Task DeleteViewAsync(string project, string view, CancellationToken cancellationToken = default);
}
