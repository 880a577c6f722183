namespace Kiln.Features.Tests;

/// <summary>A feature row of the naive reference: one key, event time, optional created time, one value.</summary>
internal sealed record RefRow(long Key, DateTime Event, DateTime? Created, long? Value);

/// <summary>
/// The naive point-in-time join, written straight from the rule in the issue, row by row: for an entity (key, t), the
/// row with the same key, event ≤ t and (ttl = 0 or event ≥ t − ttl), latest event first, then latest created
/// (a missing created time loses); null when none qualifies.
/// </summary>
internal static class PointInTimeReference
{
    public static long? Lookup(IEnumerable<RefRow> rows, long key, DateTime t, TimeSpan ttl)
    {
        RefRow? best = null;
        foreach (var r in rows)
        {
            if (r.Key != key || r.Event > t) continue;
            if (ttl > TimeSpan.Zero && r.Event < t - ttl) continue;
            if (best is null || r.Event > best.Event || (r.Event == best.Event && Later(r.Created, best.Created))) best = r;
        }
        return best?.Value;
    }

    private static bool Later(DateTime? a, DateTime? b) => a is not null && (b is null || a > b);
}
