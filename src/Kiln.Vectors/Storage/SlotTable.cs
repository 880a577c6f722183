using System.Numerics;
using System.Text.Json.Nodes;

namespace Kiln.Vectors.Storage;

/// <summary>
/// The collection's managed record of its points, indexed by slot (the key of the point's vector in the graph):
/// the id of each slot, whether it is live, its payload, and a map from id to slot. Kept in flat arrays, with no
/// object per point: a numeric id costs 8 bytes, the live flag one bit, the id map one int per bucket (the key is
/// read back from the id array, not stored again), a payload reference 8 bytes only once the collection holds a
/// payload, and a UUID 16 bytes only once it holds a UUID id. Not thread-safe: the collection's lock guards it.
/// </summary>
internal sealed class SlotTable
{
    private ulong[] _numbers = [];
    private Guid[]? _uuids;
    private JsonObject?[]? _payloads;
    private ulong[] _live = [];

    // Open addressing with linear probing: each bucket holds slot + 1 (0 is empty); at most 3/4 full.
    private int[] _buckets = [];
    private int _mask = -1;

    /// <summary>Slots numbered so far, live or not (the next slot's number).</summary>
    public int Slots { get; private set; }

    /// <summary>Live points.</summary>
    public int Count { get; private set; }

    /// <summary>Makes room for <paramref name="slots"/> slots in all, exactly (no growth slack).</summary>
    public void Reserve(int slots)
    {
        if (slots > _numbers.Length) Resize(slots);
        EnsureBuckets(slots);
    }

    /// <summary>Drops the growth slack of the per-slot arrays (after a recovery, when the count is known).</summary>
    public void TrimExcess()
    {
        if (_numbers.Length > Slots) Resize(Slots);
    }

    /// <summary>Numbers a new live slot for <paramref name="id"/>; the id must not be live in another slot.</summary>
    public int Add(PointId id, JsonObject? payload)
    {
        // The map grows (re-inserting the live slots) before this slot is live, so it is inserted once.
        EnsureBuckets(Count + 1);
        var slot = Append();
        SetId(slot, id);
        if (payload is not null)
        {
            _payloads ??= new JsonObject?[_numbers.Length];
            _payloads[slot] = payload;
        }
        _live[slot >> 6] |= 1UL << slot;
        Count++;
        Insert(slot);
        return slot;
    }

    /// <summary>Numbers a slot that holds no point (a deleted slot read back from a snapshot).</summary>
    public void AddDead() => Append();

    public bool IsLive(int slot) => (uint)slot < (uint)Slots && (_live[slot >> 6] & (1UL << slot)) != 0;

    public PointId IdAt(int slot) =>
        _uuids is not null && _uuids[slot] != Guid.Empty ? PointId.Of(_uuids[slot]) : PointId.Of(_numbers[slot]);

    public JsonObject? PayloadAt(int slot) => _payloads?[slot];

    public bool TryGetSlot(PointId id, out int slot)
    {
        if (Count > 0)
        {
            for (var b = Home(id); ; b = (b + 1) & _mask)
            {
                var entry = _buckets[b];
                if (entry == 0) break;
                if (IdAt(entry - 1) == id)
                {
                    slot = entry - 1;
                    return true;
                }
            }
        }
        slot = -1;
        return false;
    }

    /// <summary>Marks a live slot dead: its id leaves the map and its payload is let go; the slot keeps its number.</summary>
    public void Kill(int slot)
    {
        if (!IsLive(slot)) return;
        RemoveFromMap(slot);
        _live[slot >> 6] &= ~(1UL << slot);
        if (_payloads is not null) _payloads[slot] = null;
        Count--;
    }

    /// <summary>The live slots in slot order.</summary>
    public IEnumerable<int> LiveSlots()
    {
        for (var slot = 0; slot < Slots; slot++)
        {
            if (IsLive(slot)) yield return slot;
        }
    }

    /// <summary>Bytes held by the table's arrays (for the benchmark's breakdown).</summary>
    public long Bytes =>
        _numbers.Length * 8L + (_uuids?.Length ?? 0) * 16L + (_payloads?.Length ?? 0) * 8L + _live.Length * 8L + _buckets.Length * 4L;

    private int Append()
    {
        if (Slots == _numbers.Length) Resize(Math.Max(1024, _numbers.Length + _numbers.Length / 4));
        return Slots++;
    }

    private void SetId(int slot, PointId id)
    {
        if (id.IsUuid)
        {
            _uuids ??= new Guid[_numbers.Length];
            _uuids[slot] = id.Uuid;
            _numbers[slot] = 0;
        }
        else
        {
            _numbers[slot] = id.Number;
            if (_uuids is not null) _uuids[slot] = Guid.Empty;
        }
    }

    private void Resize(int capacity)
    {
        Array.Resize(ref _numbers, capacity);
        if (_uuids is not null) Array.Resize(ref _uuids, capacity);
        if (_payloads is not null) Array.Resize(ref _payloads, capacity);
        Array.Resize(ref _live, (capacity + 63) / 64);
    }

    /// <summary>Grows the map so that <paramref name="count"/> ids fill at most three quarters of it.</summary>
    private void EnsureBuckets(int count)
    {
        if ((long)count * 4 <= (long)_buckets.Length * 3) return;
        var size = (int)BitOperations.RoundUpToPowerOf2((uint)Math.Max(16, (count * 4L + 2) / 3));
        _buckets = new int[size];
        _mask = size - 1;
        for (var slot = 0; slot < Slots; slot++)
        {
            if (IsLive(slot)) Insert(slot);
        }
    }

    private void Insert(int slot)
    {
        var b = Home(IdAt(slot));
        while (_buckets[b] != 0) b = (b + 1) & _mask;
        _buckets[b] = slot + 1;
    }

    /// <summary>Removes the slot's bucket and shifts the entries after it back, so no probe sequence is broken.</summary>
    private void RemoveFromMap(int slot)
    {
        var hole = Home(IdAt(slot));
        while (_buckets[hole] != slot + 1) hole = (hole + 1) & _mask;
        for (var next = (hole + 1) & _mask; _buckets[next] != 0; next = (next + 1) & _mask)
        {
            var home = Home(IdAt(_buckets[next] - 1));
            // The entry at next may move into the hole when its home is not in the cyclic range (hole, next].
            var stays = hole <= next ? home > hole && home <= next : home > hole || home <= next;
            if (stays) continue;
            _buckets[hole] = _buckets[next];
            hole = next;
        }
        _buckets[hole] = 0;
    }

    private int Home(PointId id)
    {
        var h = id.IsUuid ? (ulong)id.Uuid.GetHashCode() ^ ((ulong)id.Uuid.GetHashCode() << 32) : id.Number;
        // Fibonacci hashing spreads consecutive ids over the whole table.
        return (int)((h * 0x9E3779B97F4A7C15UL) >> 32) & _mask;
    }
}
