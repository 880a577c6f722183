using System.Buffers;
using System.Buffers.Binary;
using System.IO.Compression;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Win32.SafeHandles;
using Parquet.Schema;
using ColumnChunk = Parquet.Meta.ColumnChunk;
using CompressionCodec = Parquet.Meta.CompressionCodec;
using PhysicalType = Parquet.Meta.Type;

namespace Kiln.Core.Data;

/// <summary>
/// Kiln's own decoder for the two column shapes drift and scoring read most: flat (non-repeated) UTF-8 text and
/// doubles. Parquet.Net turns every text value into a .NET string or char buffer, about 0.25 µs a value; this reads
/// a column chunk's pages straight from the file and builds each distinct label once (a dictionary entry is decoded
/// once and indexed; PLAIN values go through a small intern table keyed by their bytes), and copies doubles
/// without intermediate buffers. Anything it does not handle (other encodings or codecs, repeated or encrypted
/// columns) makes the TryRead methods return null and the caller reads the chunk with Parquet.Net.
/// </summary>
internal static class ParquetColumnDecoder
{
    private const int Plain = 0;
    private const int PlainDictionary = 2;
    private const int Rle = 3;
    private const int RleDictionary = 8;
    private const int MaxPageBytes = 1 << 30;

    /// <summary>
    /// Reads a text (BYTE_ARRAY) column chunk of <paramref name="rows"/> rows (missing values are null), or returns
    /// null when it uses something this decoder does not handle. Corrupt data gives a <see cref="KilnException"/>
    /// naming the file, column and row group.
    /// </summary>
    public static string?[]? TryReadText(SafeFileHandle file, string path, int rowGroup, ColumnChunk chunk, DataField field, int rows,
        CancellationToken ct) =>
        Supports(chunk, field, PhysicalType.BYTE_ARRAY, rows)
            ? Read(new TextDecoder(chunk.MetaData!.Codec, field.MaxDefinitionLevel, rows), file, path, rowGroup, chunk, field, ct)
            : null;

    /// <summary>Reads a DOUBLE column chunk (missing values are NaN), or returns null when this decoder does not handle it.</summary>
    public static double[]? TryReadDoubles(SafeFileHandle file, string path, int rowGroup, ColumnChunk chunk, DataField field, int rows,
        CancellationToken ct) =>
        BitConverter.IsLittleEndian && Supports(chunk, field, PhysicalType.DOUBLE, rows)
            ? Read(new DoubleDecoder(chunk.MetaData!.Codec, field.MaxDefinitionLevel, rows), file, path, rowGroup, chunk, field, ct)
            : null;

    private static bool Supports(ColumnChunk chunk, DataField field, PhysicalType type, int rows)
    {
        var meta = chunk.MetaData;
        return meta is not null
            && chunk.FilePath is null && chunk.CryptoMetadata is null && chunk.EncryptedColumnMetadata is null
            && meta.Type == type
            && field.MaxRepetitionLevel == 0 && !field.IsArray
            && field.MaxDefinitionLevel is >= 0 and <= 255
            && meta.NumValues == rows // a flat column has one value (or null) per row
            && meta.TotalCompressedSize is > 0 and < int.MaxValue
            && meta.Codec is CompressionCodec.UNCOMPRESSED or CompressionCodec.SNAPPY or CompressionCodec.GZIP
                or CompressionCodec.ZSTD or CompressionCodec.BROTLI;
    }

    private static T[]? Read<T>(ChunkDecoder<T> decoder, SafeFileHandle file, string path, int rowGroup, ColumnChunk chunk, DataField field,
        CancellationToken ct)
    {
        var meta = chunk.MetaData!;
        using var owned = decoder;
        if (meta.NumValues == 0) return [];
        var start = meta.DataPageOffset;
        if (meta.DictionaryPageOffset is { } dict && dict > 0 && dict < start) start = dict;
        var length = (int)meta.TotalCompressedSize;
        var fileLength = RandomAccess.GetLength(file);
        if (start < 4 || start > fileLength - length)
            throw Corrupt(path, field, rowGroup, $"the column chunk (bytes {start}..{start + length}) lies outside the file ({fileLength} bytes)");
        var buffer = ArrayPool<byte>.Shared.Rent(length);
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
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private static KilnException Corrupt(string path, DataField field, int rowGroup, string detail, Exception? inner = null) =>
        inner is null
            ? new KilnException($"{path}: column '{field.Name}', row group {rowGroup}: {detail}")
            : new KilnException($"{path}: column '{field.Name}', row group {rowGroup}: {detail}", inner);

    /// <summary>
    /// Walks the pages of one column chunk: page headers, decompression, definition levels and dictionary indices;
    /// the subclass turns dictionary entries and PLAIN values into its element type.
    /// </summary>
    private abstract class ChunkDecoder<T>(CompressionCodec codec, int maxDefinition, int rows) : IDisposable
    {
        protected readonly T[] Result = new T[rows];
        private int _row;
        private byte[] _page = [];
        private int[] _levels = [];
        private int[] _indices = [];
        private ZstdSharp.Decompressor? _zstd;

        protected int MaxDefinition => maxDefinition;

        /// <summary>Offset in the chunk of the page being decoded (for error messages).</summary>
        public int PageStart { get; private set; }

        /// <summary>Decodes a dictionary page's PLAIN entries (keeps them for the pages that index it).</summary>
        protected abstract void ReadDictionary(ReadOnlySpan<byte> page, int count);

        /// <summary>Number of entries in the dictionary read so far (-1 when there is none).</summary>
        protected abstract int DictionarySize { get; }

        /// <summary>
        /// Fills <paramref name="output"/> from PLAIN values; <paramref name="levels"/> is empty when every value is
        /// present, else a row is present when its level is <see cref="MaxDefinition"/>.
        /// </summary>
        protected abstract void ReadPlain(ReadOnlySpan<byte> values, Span<T> output, ReadOnlySpan<int> levels, int present);

        /// <summary>Fills <paramref name="output"/> from dictionary indices (already checked to be in range).</summary>
        protected abstract void ReadIndexed(ReadOnlySpan<int> indices, Span<T> output, ReadOnlySpan<int> levels);

        public T[]? Decode(ReadOnlySpan<byte> chunk, CancellationToken ct)
        {
            var position = 0;
            while (_row < Result.Length)
            {
                ct.ThrowIfCancellationRequested();
                if (position >= chunk.Length) throw new InvalidDataException($"the column chunk ends after {_row} of {Result.Length} rows");
                PageStart = position;
                var header = ParquetPageHeader.Read(chunk, ref position);
                if (header.CompressedSize > chunk.Length - position) throw new InvalidDataException("the page runs past the end of the column chunk");
                var body = chunk.Slice(position, header.CompressedSize);
                position += header.CompressedSize;
                var handled = header.Type switch
                {
                    ParquetPageHeader.DictionaryPage => Dictionary(header, body),
                    ParquetPageHeader.DataPage => DataPage(header, body),
                    ParquetPageHeader.DataPageV2 => DataPageV2(header, body),
                    _ => true, // index pages (and page types newer than this code) carry no values
                };
                if (!handled) return null;
            }
            return Result;
        }

        private bool Dictionary(in ParquetPageHeader header, ReadOnlySpan<byte> body)
        {
            if (header.Encoding is not (Plain or PlainDictionary)) return false;
            var page = Decompress(body, header.UncompressedSize);
            if (header.NumValues > page.Length) throw new InvalidDataException($"a dictionary page of {page.Length} bytes says it holds {header.NumValues} entries");
            ReadDictionary(page, header.NumValues);
            return true;
        }

        private bool DataPage(in ParquetPageHeader header, ReadOnlySpan<byte> body)
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
            Values(header.Encoding, page, count, present);
            return true;
        }

        private bool DataPageV2(in ParquetPageHeader header, ReadOnlySpan<byte> body)
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
            Values(header.Encoding, values, count, present);
            return true;
        }

        private static bool IsValueEncoding(int encoding) => encoding is Plain or PlainDictionary or RleDictionary;

        private int CheckCount(int count)
        {
            if (count > Result.Length - _row) throw new InvalidDataException($"a page holds {count} values after {_row} of {Result.Length} rows");
            return count;
        }

        /// <summary>Decodes a page's definition levels into <see cref="_levels"/>; returns how many values are present.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private int DecodeLevels(ReadOnlySpan<byte> data, int count)
        {
            if (_levels.Length < count) _levels = Rent(_levels, count);
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

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private void Values(int encoding, ReadOnlySpan<byte> values, int count, int present)
        {
            var output = Result.AsSpan(_row, count);
            var levels = present == count ? default : _levels.AsSpan(0, count);
            if (encoding == Plain || present == 0) ReadPlain(values, output, levels, present);
            else
            {
                var size = DictionarySize;
                if (size < 0) throw new InvalidDataException("a dictionary-encoded page comes without a dictionary page");
                if (values.IsEmpty) throw new InvalidDataException("a dictionary-encoded page has no index bit width");
                var width = values[0];
                if (width > 32) throw new InvalidDataException($"dictionary index bit width {width} is above 32");
                if (_indices.Length < present) _indices = Rent(_indices, present);
                var indices = _indices.AsSpan(0, present);
                RleHybrid.Decode(values[1..], width, indices);
                foreach (var index in indices)
                {
                    if ((uint)index >= (uint)size) throw new InvalidDataException($"dictionary index {index} is outside the dictionary of {size} entries");
                }
                ReadIndexed(indices, output, levels);
            }
            _row += count;
        }

        private ReadOnlySpan<byte> Decompress(ReadOnlySpan<byte> source, int size)
        {
            if (codec == CompressionCodec.UNCOMPRESSED)
            {
                if (source.Length != size) throw new InvalidDataException($"an uncompressed page of {source.Length} bytes says it holds {size}");
                return source;
            }
            if (size > MaxPageBytes) throw new InvalidDataException($"the page header says it decompresses to {size} bytes");
            if (_page.Length < size) _page = Rent(_page, size);
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

        /// <summary>Scratch buffers come from the shared pool: a million-row chunk would otherwise put megabytes on the large object heap per column.</summary>
        private static TBuffer[] Rent<TBuffer>(TBuffer[] old, int size)
        {
            if (old.Length > 0) ArrayPool<TBuffer>.Shared.Return(old);
            return ArrayPool<TBuffer>.Shared.Rent(size);
        }

        public void Dispose()
        {
            _zstd?.Dispose();
            if (_page.Length > 0) ArrayPool<byte>.Shared.Return(_page);
            if (_levels.Length > 0) ArrayPool<int>.Shared.Return(_levels);
            if (_indices.Length > 0) ArrayPool<int>.Shared.Return(_indices);
            _page = [];
            _levels = [];
            _indices = [];
        }
    }

    /// <summary>Text: null for missing rows; each distinct label becomes one string.</summary>
    private sealed class TextDecoder(CompressionCodec codec, int maxDefinition, int rows) : ChunkDecoder<string?>(codec, maxDefinition, rows)
    {
        private readonly Utf8Interner _interner = new();
        private string[]? _dictionary;

        protected override int DictionarySize => _dictionary?.Length ?? -1;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        protected override void ReadDictionary(ReadOnlySpan<byte> page, int count)
        {
            var entries = new string[count];
            var position = 0;
            for (var i = 0; i < entries.Length; i++) entries[i] = Encoding.UTF8.GetString(NextByteArray(page, ref position));
            _dictionary = entries;
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        protected override void ReadPlain(ReadOnlySpan<byte> values, Span<string?> output, ReadOnlySpan<int> levels, int present)
        {
            var position = 0;
            for (var i = 0; i < output.Length; i++)
            {
                if (!levels.IsEmpty && levels[i] != MaxDefinition) continue;
                output[i] = _interner.Get(NextByteArray(values, ref position));
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        protected override void ReadIndexed(ReadOnlySpan<int> indices, Span<string?> output, ReadOnlySpan<int> levels)
        {
            var dictionary = _dictionary!;
            if (levels.IsEmpty)
            {
                for (var i = 0; i < output.Length; i++) output[i] = dictionary[indices[i]];
                return;
            }
            var k = 0;
            for (var i = 0; i < output.Length; i++)
            {
                if (levels[i] == MaxDefinition) output[i] = dictionary[indices[k++]];
            }
        }

        /// <summary>The next PLAIN byte array: a 4-byte little-endian length, then the bytes.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static ReadOnlySpan<byte> NextByteArray(ReadOnlySpan<byte> data, ref int position)
        {
            if (data.Length - position < 4) throw new InvalidDataException("a PLAIN value runs past the end of its page");
            var length = BinaryPrimitives.ReadInt32LittleEndian(data[position..]);
            position += 4;
            if (length < 0 || length > data.Length - position) throw new InvalidDataException($"a PLAIN value of {length} bytes runs past the end of its page");
            var value = data.Slice(position, length);
            position += length;
            return value;
        }
    }

    /// <summary>Doubles: NaN for missing rows; PLAIN values are copied as they are (little-endian IEEE 754).</summary>
    private sealed class DoubleDecoder(CompressionCodec codec, int maxDefinition, int rows) : ChunkDecoder<double>(codec, maxDefinition, rows)
    {
        private double[]? _dictionary;

        protected override int DictionarySize => _dictionary?.Length ?? -1;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        protected override void ReadDictionary(ReadOnlySpan<byte> page, int count)
        {
            if ((long)count * sizeof(double) > page.Length) throw new InvalidDataException($"a dictionary page of {page.Length} bytes cannot hold {count} doubles");
            _dictionary = MemoryMarshal.Cast<byte, double>(page[..(count * sizeof(double))]).ToArray();
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        protected override void ReadPlain(ReadOnlySpan<byte> values, Span<double> output, ReadOnlySpan<int> levels, int present)
        {
            if ((long)present * sizeof(double) > values.Length) throw new InvalidDataException($"{present} PLAIN doubles do not fit in {values.Length} bytes");
            var packed = MemoryMarshal.Cast<byte, double>(values[..(present * sizeof(double))]);
            if (levels.IsEmpty)
            {
                packed.CopyTo(output);
                return;
            }
            var k = 0;
            for (var i = 0; i < output.Length; i++) output[i] = levels[i] == MaxDefinition ? packed[k++] : double.NaN;
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        protected override void ReadIndexed(ReadOnlySpan<int> indices, Span<double> output, ReadOnlySpan<int> levels)
        {
            var dictionary = _dictionary!;
            if (levels.IsEmpty)
            {
                for (var i = 0; i < output.Length; i++) output[i] = dictionary[indices[i]];
                return;
            }
            var k = 0;
            for (var i = 0; i < output.Length; i++) output[i] = levels[i] == MaxDefinition ? dictionary[indices[k++]] : double.NaN;
        }
    }
}
