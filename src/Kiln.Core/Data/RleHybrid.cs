using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace Kiln.Core.Data;

/// <summary>The RLE / bit-packed hybrid encoding of Parquet levels and dictionary indices (without a length prefix).</summary>
internal static class RleHybrid
{
    /// <summary>Decodes exactly <c>output.Length</c> values of <paramref name="width"/> bits.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Decode(ReadOnlySpan<byte> data, int width, Span<int> output)
    {
        var position = 0;
        var filled = 0;
        var valueBytes = (width + 7) / 8;
        while (filled < output.Length)
        {
            if (position >= data.Length) throw new InvalidDataException($"RLE/bit-packed data ends after {filled} of {output.Length} values");
            var header = ReadUleb32(data, ref position);
            if ((header & 1) != 0)
            {
                // Bit-packed: header/2 groups of 8 values, least significant bit first.
                var groups = (long)(header >> 1);
                var available = (int)Math.Min(groups * width, data.Length - position);
                var take = (int)Math.Min(groups * 8, output.Length - filled);
                if ((long)take * width > (long)available * 8) throw new InvalidDataException("a bit-packed run ends early");
                Unpack(data.Slice(position, available), width, output.Slice(filled, take));
                position += available;
                filled += take;
            }
            else
            {
                var run = (long)(header >> 1);
                if (valueBytes > data.Length - position) throw new InvalidDataException("an RLE run ends early");
                var value = 0;
                for (var b = 0; b < valueBytes; b++) value |= data[position + b] << (8 * b);
                position += valueBytes;
                var take = (int)Math.Min(run, output.Length - filled);
                output.Slice(filled, take).Fill(value);
                filled += take;
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Unpack(ReadOnlySpan<byte> data, int width, Span<int> output)
    {
        if (width == 0)
        {
            output.Clear();
            return;
        }
        var mask = (1UL << width) - 1;
        long bit = 0;
        for (var i = 0; i < output.Length; i++)
        {
            var index = (int)(bit >> 3);
            ulong word;
            if (index <= data.Length - 8) word = BinaryPrimitives.ReadUInt64LittleEndian(data[index..]);
            else
            {
                word = 0;
                for (var j = 0; index + j < data.Length && j < 8; j++) word |= (ulong)data[index + j] << (8 * j);
            }
            output[i] = (int)((word >> (int)(bit & 7)) & mask);
            bit += width;
        }
    }

    private static uint ReadUleb32(ReadOnlySpan<byte> data, ref int position)
    {
        uint value = 0;
        for (var shift = 0; shift < 35; shift += 7)
        {
            if (position >= data.Length) throw new InvalidDataException("an RLE/bit-packed run header ends early");
            var b = data[position++];
            value |= (uint)(b & 0x7F) << shift;
            if ((b & 0x80) == 0) return value;
        }
        throw new InvalidDataException("an RLE/bit-packed run header is longer than 5 bytes");
    }
}
