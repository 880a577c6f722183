namespace Kiln.Core.Data;

/// <summary>
/// Arrays handed back once nothing reads them, for the next user that needs one of the same length (a batch job's chunks
/// and slices are all one size but the last): a fresh array of a chunk's size is taken from the large object heap,
/// whose new pages the kernel and the runtime zero. Holds at most 64 arrays; an array handed back twice is kept once, so
/// it is never handed out twice. Thread-safe.
/// </summary>
public sealed class SpareArrays<T>
{
    private const int Limit = 64;
    private readonly List<T[]> _spare = [];

    /// <summary>
    /// An array of exactly <paramref name="length"/>: a spare one, or a new one not cleared (a value type's elements are
    /// whatever the memory held): the caller writes every element it reads.
    /// </summary>
    public T[] Rent(int length)
    {
        lock (_spare)
        {
            for (var i = _spare.Count - 1; i >= 0; i--)
            {
                if (_spare[i].Length == length) return RemoveAt(i);
            }
        }
        return GC.AllocateUninitializedArray<T>(length);
    }

    /// <summary>The largest spare array whatever its length, or a new one (not cleared) of <paramref name="length"/>.</summary>
    public T[] RentLargest(int length)
    {
        lock (_spare)
        {
            var best = -1;
            for (var i = 0; i < _spare.Count; i++)
            {
                if (best < 0 || _spare[i].Length > _spare[best].Length) best = i;
            }
            if (best >= 0) return RemoveAt(best);
        }
        return GC.AllocateUninitializedArray<T>(length);
    }

    /// <summary>Takes <paramref name="array"/> back; nothing may read or write it after.</summary>
    public void Return(T[] array)
    {
        ArgumentNullException.ThrowIfNull(array);
        if (array.Length == 0) return;
        lock (_spare)
        {
            if (_spare.Count < Limit && !_spare.Contains(array)) _spare.Add(array);
        }
    }

    private T[] RemoveAt(int i)
    {
        var a = _spare[i];
        _spare[i] = _spare[^1];
        _spare.RemoveAt(_spare.Count - 1);
        return a;
    }
}
