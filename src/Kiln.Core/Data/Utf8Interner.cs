using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Text;

namespace Kiln.Core.Data;

/// <summary>
/// Turns UTF-8 byte strings into .NET strings, returning the same string for the same bytes: a label repeated a
/// million times is one string. Long values and tables past a size cap are not interned (IDs and free text would
/// only fill the table). The hash is seeded per process and a lookup gives up after a few probes, so even crafted
/// colliding labels only cost their own string, never a quadratic walk.
/// </summary>
internal sealed class Utf8Interner
{
    private const int MaxInternedBytes = 64;
    private const int MaxEntries = 65_536;
    private const int MaxProbes = 16;
    private static readonly ulong Seed = (ulong)Random.Shared.NextInt64() | 1;

    private int[] _buckets = new int[256];
    private Entry[] _entries = new Entry[256];
    private byte[] _bytes = new byte[4096];
    private int _count;
    private int _used;

    private struct Entry
    {
        public int Hash;
        public int Offset;
        public int Length;
        public int Next;
        public string Value;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public string Get(ReadOnlySpan<byte> utf8)
    {
        if (utf8.IsEmpty) return string.Empty;
        if (utf8.Length > MaxInternedBytes) return Encoding.UTF8.GetString(utf8);
        var hash = Hash(utf8);
        var bucket = hash & (_buckets.Length - 1);
        var probes = 0;
        for (var e = _buckets[bucket] - 1; e >= 0; e = _entries[e].Next - 1)
        {
            ref var entry = ref _entries[e];
            if (entry.Hash == hash && _bytes.AsSpan(entry.Offset, entry.Length).SequenceEqual(utf8)) return entry.Value;
            probes++;
        }
        var value = Encoding.UTF8.GetString(utf8);
        if (_count >= MaxEntries || probes >= MaxProbes) return value;
        Add(utf8, hash, value);
        return value;
    }

    private void Add(ReadOnlySpan<byte> utf8, int hash, string value)
    {
        if (_count == _entries.Length)
        {
            Array.Resize(ref _entries, _entries.Length * 2);
            _buckets = new int[_buckets.Length * 2];
            for (var i = 0; i < _count; i++)
            {
                ref var moved = ref _entries[i];
                var b = moved.Hash & (_buckets.Length - 1);
                moved.Next = _buckets[b];
                _buckets[b] = i + 1;
            }
        }
        if (_bytes.Length - _used < utf8.Length) Array.Resize(ref _bytes, Math.Max(_bytes.Length * 2, _used + utf8.Length));
        utf8.CopyTo(_bytes.AsSpan(_used));
        var bucket = hash & (_buckets.Length - 1);
        _entries[_count] = new Entry { Hash = hash, Offset = _used, Length = utf8.Length, Next = _buckets[bucket], Value = value };
        _buckets[bucket] = ++_count;
        _used += utf8.Length;
    }

    /// <summary>A per-process seeded multiply-xorshift hash over 8-byte words (labels are short).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Hash(ReadOnlySpan<byte> utf8)
    {
        var h = Seed ^ ((ulong)utf8.Length * 0x9E37_79B9_7F4A_7C15UL);
        var i = 0;
        for (; i + 8 <= utf8.Length; i += 8)
        {
            h = (h ^ BinaryPrimitives.ReadUInt64LittleEndian(utf8[i..])) * 0xFF51_AFD7_ED55_8CCDUL;
            h ^= h >> 32;
        }
        if (i < utf8.Length)
        {
            ulong tail = 0;
            for (var j = 0; i + j < utf8.Length; j++) tail |= (ulong)utf8[i + j] << (8 * j);
            h = (h ^ tail) * 0xC4CE_B9FE_1A85_EC53UL;
        }
        h ^= h >> 29;
        h *= 0x94D0_49BB_1331_11EBUL;
        h ^= h >> 32;
        return (int)h & int.MaxValue;
    }
}
