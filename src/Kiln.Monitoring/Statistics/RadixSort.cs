using System.Buffers;

namespace Kiln.Monitoring.Statistics;

/// <summary>
/// LSD radix sort of finite doubles (six 11-bit passes over order-preserving integer keys, skipping passes where every
/// key has the same digit). Several times faster than <see cref="Array.Sort(Array)"/> on a million values, and the
/// drift of a large window spends most of its time sorting. The caller guarantees there is no NaN.
/// </summary>
public static class RadixSort
{
    private const int Bits = 11;
    private const int Buckets = 1 << Bits;
    private const int Passes = 6; // 6 × 11 ≥ 64
    private const int Threshold = 4096; // below this the comparison sort wins

    /// <summary>Sorts <paramref name="values"/> ascending (-0.0 before +0.0; they compare equal).</summary>
    public static void Sort(Span<double> values)
    {
        var n = values.Length;
        if (n < Threshold)
        {
            values.Sort();
            return;
        }
        var keys = ArrayPool<ulong>.Shared.Rent(n);
        var temp = ArrayPool<ulong>.Shared.Rent(n);
        var counts = ArrayPool<int>.Shared.Rent(Buckets * Passes);
        try
        {
            var histogram = counts.AsSpan(0, Buckets * Passes);
            histogram.Clear();
            for (var i = 0; i < n; i++)
            {
                var bits = BitConverter.DoubleToUInt64Bits(values[i]);
                // Negative numbers: flip all bits; positive: flip the sign bit. Integer order is then numeric order.
                var key = (bits & 0x8000_0000_0000_0000UL) != 0 ? ~bits : bits | 0x8000_0000_0000_0000UL;
                keys[i] = key;
                for (var p = 0; p < Passes; p++) histogram[p * Buckets + (int)((key >> (p * Bits)) & (Buckets - 1))]++;
            }
            var source = keys;
            var target = temp;
            for (var p = 0; p < Passes; p++)
            {
                var h = histogram.Slice(p * Buckets, Buckets);
                var shift = p * Bits;
                if (h[(int)((source[0] >> shift) & (Buckets - 1))] == n) continue; // every key has this digit
                var offset = 0;
                for (var b = 0; b < Buckets; b++)
                {
                    var c = h[b];
                    h[b] = offset;
                    offset += c;
                }
                for (var i = 0; i < n; i++)
                {
                    var key = source[i];
                    target[h[(int)((key >> shift) & (Buckets - 1))]++] = key;
                }
                (source, target) = (target, source);
            }
            for (var i = 0; i < n; i++)
            {
                var key = source[i];
                var bits = (key & 0x8000_0000_0000_0000UL) != 0 ? key & 0x7FFF_FFFF_FFFF_FFFFUL : ~key;
                values[i] = BitConverter.UInt64BitsToDouble(bits);
            }
        }
        finally
        {
            ArrayPool<ulong>.Shared.Return(keys);
            ArrayPool<ulong>.Shared.Return(temp);
            ArrayPool<int>.Shared.Return(counts);
        }
    }
}
