using System.Buffers;
using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using Microsoft.Win32.SafeHandles;
using ColumnChunk = Parquet.Meta.ColumnChunk;
using CompressionCodec = Parquet.Meta.CompressionCodec;
using Parquet.Schema;
using PhysicalType = Parquet.Meta.Type;

namespace Kiln.Core.Data;

/// <summary>
/// Kiln's own decoder for flat (non-repeated) UTF-8 text column chunks. Parquet.Net turns every value into a
/// .NET string or char buffer, about 0.25 µs a value; this reads the chunk's pages straight from the file and
/// builds each distinct label once: a dictionary entry is decoded once and indexed, and PLAIN values go through
/// a small intern table keyed by their bytes. Anything it does not handle (other encodings, codecs, repeated or
/// encrypted columns) makes <see cref="TryRead"/> return null and the caller reads the chunk with Parquet.Net.
/// </summary>
internal static class ParquetText
{
    private const int Plain = 0;
    private const int PlainDictionary = 2;
    private const int Rle = 3;
    private const int RleDictionary = 8;
    private const int MaxPageBytes = 1 << 30;

    /// <summary>Whether this decoder can read the chunk (else the caller should use Parquet.Net).</summary>
    public static bool Supports(ColumnChunk chunk, DataField field)
    {
        var meta = chunk.MetaData;
        return meta is not null
            && chunk.FilePath is null && chunk.CryptoMetadata is null && chunk.EncryptedColumnMetadata is null
            && meta.Type == PhysicalType.BYTE_ARRAY
            && field.MaxRepetitionLevel == 0 && !field.IsArray
            && field.MaxDefinitionLevel is >= 0 and <= 255
            && meta.TotalCompressedSize is > 0 and < int.MaxValue
            && meta.Codec is CompressionCodec.UNCOMPRESSED or CompressionCodec.SNAPPY or CompressionCodec.GZIP
                or CompressionCodec.ZSTD or CompressionCodec.BROTLI;
    }

    /// <summary>
    /// Reads a text column chunk of <paramref name="rows"/> rows (missing values are null), or returns null when
    /// it uses something this decoder does not handle. Corrupt data gives a <see cref="KilnException"/> naming
    /// the file, column and row group.
    /// </summary>
    public static string?[]? TryRead(SafeFileHandle file, string path, int rowGroup, ColumnChunk chunk, DataField field, int rows,
        CancellationToken ct)
    {
        if (!Supports(chunk, field)) return null;
        var meta = chunk.MetaData!;
        if (meta.NumValues != rows) return null; // a flat column has one value (or null) per row; anything else is not ours
        if (rows == 0) return [];
        var start = meta.DataPageOffset;
        if (meta.DictionaryPageOffset is { } dict && dict > 0 && dict < start) start = dict;
        var length = (int)meta.TotalCompressedSize;
        var fileLength = RandomAccess.GetLength(file);
        if (start < 4 || start > fileLength - length)
            throw Corrupt(path, field, rowGroup, $"the column chunk (bytes {start}..{start + length}) lies outside the file ({fileLength} bytes)");
        var buffer = ArrayPool<byte>.Shared.Rent(length);
        var decoder = new ChunkDecoder(meta.Codec, field.MaxDefinitionLevel, rows);
        try
        {
            var read = 0;
            while (read < length)
            {
                var n = RandomAccess.Read(file, buffer.AsSpan(read, length - read), start + read);
                if (n == 0) throw Corrupt(path, field, rowGroup, "the file ends inside the column chunk");
                read += n;
            }
            return decoder.Decode(buffer.AsSpan(0, length), ct);
        }
        catch (Exception e) when (e is InvalidDataException or ZstdSharp.ZstdException or IndexOutOfRangeException or ArgumentException or OverflowException)
        {
            throw Corrupt(path, field, rowGroup, $"a corrupt page at byte {start + decoder.PageStart} of the file: {e.Message}", e);
        }
        finally
        {
            decoder.Dispose();
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private static KilnException Corrupt(string path, DataField field, int rowGroup, string detail, Exception? inner = null) =>
        inner is null
            ? new KilnException($"{path}: column '{field.Name}', row group {rowGroup}: {detail}")
            : new KilnException($"{path}: column '{field.Name}', row group {rowGroup}: {detail}", inner);

    /// <summary>The decoding state of one column chunk: its dictionary, the rows filled so far and scratch buffers.</summary>
    private sealed class ChunkDecoder(CompressionCodec codec, int maxDefinition, int rows) : IDisposable
    {
        private readonly string?[] _result = new string?[rows];
        private readonly Utf8Interner _interner = new();
        private string[]? _dictionary;
        private int _row;
        private byte[] _page = [];
        private int[] _levels = [];
        private int[] _indices = [];
        private ZstdSharp.Decompressor? _zstd;

        /// <summary>Offset in the chunk of the page being decoded (for error messages).</summary>
        public int PageStart { get; private set; }

        public string?[]? Decode(ReadOnlySpan<byte> chunk, CancellationToken ct)
        {
            var position = 0;
            while (_row < _result.Length)
            {
                ct.ThrowIfCancellationRequested();
                if (position >= chunk.Length) throw new InvalidDataException($"the column chunk ends after {_row} of {_result.Length} rows");
                PageStart = position;
                var header = ParquetPageHeader.Read(chunk, ref position);
                if (header.CompressedSize > chunk.Length - position) throw new InvalidDataException("the page runs past the end of the column chunk");
                var body = chunk.Slice(position, header.CompressedSize);
                position += header.CompressedSize;
                var handled = header.Type switch
                {
                    ParquetPageHeader.DictionaryPage => ReadDictionary(header, body),
                    ParquetPageHeader.DataPage => ReadDataPage(header, body),
                    ParquetPageHeader.DataPageV2 => ReadDataPageV2(header, body),
                    _ => true, // index pages (and types newer than this code) carry no values
                };
                if (!handled) return null;
            }
            return _result;
        }

        private bool ReadDictionary(in ParquetPageHeader header, ReadOnlySpan<byte> body)
        {
            if (header.Encoding is not (Plain or PlainDictionary)) return false;
            var page = Decompress(body, header.UncompressedSize);
            if (header.NumValues > page.Length / 4) throw new InvalidDataException($"a dictionary page of {page.Length} bytes says it holds {header.NumValues} entries");
            var entries = new string[header.NumValues];
            var position = 0;
            for (var i = 0; i < entries.Length; i++) entries[i] = Encoding.UTF8.GetString(NextPlain(page, ref position));
            _dictionary = entries;
            return true;
        }

        private bool ReadDataPage(in ParquetPageHeader header, ReadOnlySpan<byte> body)
        {
            if (!IsValueEncoding(header.Encoding)) return false;
            var count = CheckCount(header.NumValues);
            var page = Decompress(body, header.UncompressedSize);
            var present = count;
            if (maxDefinition > 0)
            {
                if (header.DefinitionLevelEncoding != Rle) return false; // the deprecated BIT_PACKED levels
                if (page.Length < 4) throw new InvalidDataException("the page is too short for its definition levels");
                var levelBytes = BinaryPrimitives.ReadInt32LittleEndian(page);
                if (levelBytes < 0 || levelBytes > page.Length - 4) throw new InvalidDataException($"definition levels of {levelBytes} bytes do not fit the page");
                present = DecodeLevels(page.Slice(4, levelBytes), count);
                page = page[(4 + levelBytes)..];
            }
            ReadValues(header.Encoding, page, count, present);
            return true;
        }

        private bool ReadDataPageV2(in ParquetPageHeader header, ReadOnlySpan<byte> body)
        {
            if (!IsValueEncoding(header.Encoding)) return false;
            if (header.RepetitionLevelsLength != 0) return false; // a repeated column after all
            var count = CheckCount(header.NumValues);
            var levelsLength = header.DefinitionLevelsLength;
            if (levelsLength < 0 || levelsLength > body.Length) throw new InvalidDataException($"definition levels of {levelsLength} bytes do not fit the page");
            var present = maxDefinition > 0 ? DecodeLevels(body[..levelsLength], count) : count;
            // The level sections of a V2 page are never compressed; the values after them may be.
            var values = body[levelsLength..];
            var valuesSize = header.UncompressedSize - levelsLength;
            if (valuesSize < 0) throw new InvalidDataException("the page's uncompressed size is smaller than its levels");
            if (header.IsCompressed && codec != CompressionCodec.UNCOMPRESSED) values = valuesSize == 0 ? [] : Decompress(values, valuesSize);
            ReadValues(header.Encoding, values, count, present);
            return true;
        }

        private static bool IsValueEncoding(int encoding) => encoding is Plain or PlainDictionary or RleDictionary;

        private int CheckCount(int count)
        {
            if (count > _result.Length - _row) throw new InvalidDataException($"a page holds {count} values after {_row} of {_result.Length} rows");
            return count;
        }

        /// <summary>Decodes a page's definition levels into <see cref="_levels"/>; returns how many values are present.</summary>
        private int DecodeLevels(ReadOnlySpan<byte> data, int count)
        {
            if (_levels.Length < count) _levels = new int[Math.Max(count, _levels.Length * 2)];
            var levels = _levels.AsSpan(0, count);
            RleHybrid.Decode(data, 32 - int.LeadingZeroCount(maxDefinition), levels);
            var present = 0;
            foreach (var l in levels)
            {
                if (l == maxDefinition) present++;
                else if ((uint)l > (uint)maxDefinition) throw new InvalidDataException($"definition level {l} is above the column's maximum {maxDefinition}");
            }
            return present;
        }

        private void ReadValues(int encoding, ReadOnlySpan<byte> values, int count, int present)
        {
            var output = _result.AsSpan(_row, count);
            var levels = present == count ? default : _levels.AsSpan(0, count);
            if (encoding == Plain)
            {
                var position = 0;
                for (var i = 0; i < output.Length; i++)
                {
                    if (!levels.IsEmpty && levels[i] != maxDefinition) continue;
                    output[i] = _interner.Get(NextPlain(values, ref position));
                }
            }
            else
            {
                var dictionary = _dictionary ?? throw new InvalidDataException("a dictionary-encoded page comes without a dictionary page");
                if (present > 0)
                {
                    if (values.IsEmpty) throw new InvalidDataException("a dictionary-encoded page has no index bit width");
                    var width = values[0];
                    if (width > 32) throw new InvalidDataException($"dictionary index bit width {width} is above 32");
                    if (_indices.Length < present) _indices = new int[Math.Max(present, _indices.Length * 2)];
                    var indices = _indices.AsSpan(0, present);
                    RleHybrid.Decode(values[1..], width, indices);
                    var k = 0;
                    for (var i = 0; i < output.Length; i++)
                    {
                        if (!levels.IsEmpty && levels[i] != maxDefinition) continue;
                        var index = indices[k++];
                        if ((uint)index >= (uint)dictionary.Length)
                            throw new InvalidDataException($"dictionary index {index} is outside the dictionary of {dictionary.Length} entries");
                        output[i] = dictionary[index];
                    }
                }
            }
            _row += count;
        }

        /// <summary>The next PLAIN byte array: a 4-byte little-endian length, then the bytes.</summary>
        private static ReadOnlySpan<byte> NextPlain(ReadOnlySpan<byte> data, ref int position)
        {
            if (data.Length - position < 4) throw new InvalidDataException("a PLAIN value runs past the end of its page");
            var length = BinaryPrimitives.ReadInt32LittleEndian(data[position..]);
            position += 4;
            if (length < 0 || length > data.Length - position) throw new InvalidDataException($"a PLAIN value of {length} bytes runs past the end of its page");
            var value = data.Slice(position, length);
            position += length;
            return value;
        }

        private ReadOnlySpan<byte> Decompress(ReadOnlySpan<byte> source, int size)
        {
            if (codec == CompressionCodec.UNCOMPRESSED)
            {
                if (source.Length != size) throw new InvalidDataException($"an uncompressed page of {source.Length} bytes says it holds {size}");
                return source;
            }
            if (size > MaxPageBytes) throw new InvalidDataException($"the page header says it decompresses to {size} bytes");
            if (_page.Length < size) _page = new byte[Math.Max(size, Math.Min(_page.Length * 2, Array.MaxLength))];
            var target = _page.AsSpan(0, size);
            int written;
            switch (codec)
            {
                case CompressionCodec.SNAPPY:
                    if (Snappier.Snappy.GetUncompressedLength(source) != size) throw new InvalidDataException("the Snappy block's length differs from the page header's");
                    written = Snappier.Snappy.Decompress(source, target);
                    break;
                case CompressionCodec.ZSTD:
                    _zstd ??= new ZstdSharp.Decompressor();
                    written = _zstd.Unwrap(source, target);
                    break;
                case CompressionCodec.BROTLI:
                    if (!BrotliDecoder.TryDecompress(source, target, out written)) throw new InvalidDataException("the Brotli stream is corrupt or longer than the page header says");
                    break;
                case CompressionCodec.GZIP:
                    written = Gunzip(source, target);
                    break;
                default:
                    throw new InvalidDataException($"codec {codec} is not supported here");
            }
            if (written != size) throw new InvalidDataException($"the page decompresses to {written} bytes, not the {size} its header says");
            return target;
        }

        private static int Gunzip(ReadOnlySpan<byte> source, Span<byte> target)
        {
            using var input = new MemoryStream(source.ToArray(), writable: false);
            using var gzip = new GZipStream(input, CompressionMode.Decompress);
            var written = 0;
            while (written < target.Length)
            {
                var n = gzip.Read(target[written..]);
                if (n == 0) break;
                written += n;
            }
            Span<byte> extra = stackalloc byte[1];
            if (written == target.Length && gzip.Read(extra) > 0) written++; // longer than the header says
            return written;
        }

        public void Dispose() => _zstd?.Dispose();
    }
}

/// <summary>The RLE / bit-packed hybrid encoding of Parquet levels and dictionary indices (without a length prefix).</summary>
internal static class RleHybrid
{
    /// <summary>Decodes exactly <c>output.Length</c> values of <paramref name="width"/> bits.</summary>
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

/// <summary>
/// Turns UTF-8 byte strings into .NET strings, returning the same string for the same bytes: a label repeated a
/// million times is one string. Long values and tables past a size cap are not interned (IDs and free text would
/// only fill the table).
/// </summary>
internal sealed class Utf8Interner
{
    private const int MaxInternedBytes = 64;
    private const int MaxEntries = 65_536;

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

    public string Get(ReadOnlySpan<byte> utf8)
    {
        if (utf8.IsEmpty) return string.Empty;
        if (utf8.Length > MaxInternedBytes) return Encoding.UTF8.GetString(utf8);
        var hash = Hash(utf8);
        var bucket = hash & (_buckets.Length - 1);
        for (var e = _buckets[bucket] - 1; e >= 0; e = _entries[e].Next - 1)
        {
            ref var entry = ref _entries[e];
            if (entry.Hash == hash && _bytes.AsSpan(entry.Offset, entry.Length).SequenceEqual(utf8)) return entry.Value;
        }
        var value = Encoding.UTF8.GetString(utf8);
        if (_count >= MaxEntries) return value;
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

    /// <summary>A per-process seeded hash, so crafted files cannot pile every label into one bucket.</summary>
    private static int Hash(ReadOnlySpan<byte> utf8)
    {
        var h = new HashCode();
        h.AddBytes(utf8);
        return h.ToHashCode() & int.MaxValue;
    }
}
