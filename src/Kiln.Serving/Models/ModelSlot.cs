using Kiln.Scoring.Validation;
namespace Kiln.Serving.Models;

/// <summary>What a slot is doing: loading its first version, serving, or failed without anything to serve.</summary>
public enum SlotState
{
    Loading,
    Ready,
    Failed,
}

/// <summary>
/// One configured model (one --model): the version it serves now, swapped atomically, and the
/// outcome of the last load attempt, which /ready reports.
/// </summary>
public sealed class ModelSlot
{
    private ServedModel? _current;

    public ModelSlot(ModelSpec spec, UnseenCategoryPolicy policy)
    {
        Spec = spec;
        Policy = policy;
        Name = spec.Name ?? GuessName(spec.Uri);
    }

    public ModelSpec Spec { get; }

    public UnseenCategoryPolicy Policy { get; }

    /// <summary>The name requests use: the override, else the package's name once loaded (a guess from the URI before).</summary>
    public string Name { get; internal set; }

    public ServedModel? Current => Volatile.Read(ref _current);

    public SlotState State => Current is not null ? SlotState.Ready : LastError is not null ? SlotState.Failed : SlotState.Loading;

    /// <summary>The last version that failed to load, and why (cleared when a later version loads).</summary>
    public string? FailedVersion { get; internal set; }

    public string? LastError { get; internal set; }

    public DateTimeOffset? LastErrorAt { get; internal set; }

    /// <summary>Leases the serving version; null while nothing is loaded. Release the result when done.</summary>
    public ServedModel? Acquire()
    {
        while (true)
        {
            var m = Volatile.Read(ref _current);
            if (m is null) return null;
            if (m.TryAcquire()) return m;
            // Swapped and fully released between the read and the lease: read the new one.
        }
    }

    /// <summary>Puts a new version in place; the old one is disposed when its last request ends.</summary>
    internal ServedModel? Swap(ServedModel next)
    {
        var old = Interlocked.Exchange(ref _current, next);
        old?.Retire();
        return old;
    }

    private static string GuessName(string uri)
    {
        if (uri.StartsWith("models:/", StringComparison.Ordinal))
        {
            var rest = uri["models:/".Length..];
            var end = rest.IndexOfAny(['/', '@']);
            return end > 0 ? rest[..end] : rest;
        }
        return Path.GetFileName(Path.TrimEndingDirectorySeparator(uri));
    }
}
