using System.Buffers;
using System.Buffers.Binary;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Text;

namespace Kiln.Core.Data;

/// <summary>
/// Kiln's Parquet writer for flat tables (the prediction log's files): row groups written column by
/// column straight from the caller's buffers, one Snappy-compressed V1 data page per column chunk,
/// text dictionary-encoded while its distinct values are few, definition levels for nullable
/// columns, and min/max statistics for numbers and timestamps (readers skip row groups by time with
/// them). It allocates nothing per value and runs its loops optimized from the first call (a log
/// writes a row group every few seconds, too rarely for tiered compilation to get to it), where
/// Parquet.Net's general writer cost a serving process several percent of its CPU.
/// Format facts from parquet-format's parquet.thrift and Encodings.md; the file is PAR1, the column
/// chunks, the FileMetaData footer in the Thrift compact protocol, its length and PAR1.
/// </summary>
public sealed class ParquetFlatWriter
{
    // parquet.thrift enums
    private const int TypeInt32 = 1, TypeInt64 = 2, TypeDouble = 5, TypeByteArray = 6;
    private const int Required = 0, Optional = 1;
    private const int ConvertedUtf8 = 0;
    private const int EncodingPlain = 0, EncodingRle = 3, EncodingRleDictionary = 8;
    private const int PageData = 0, PageDictionary = 2;
    private const int CodecSnappy = 1;

    /// <summary>The start of the footer's created_by: readers know the file's statistics by it.</summary>
    public const string CreatedBy = "Kiln ParquetFlatWriter";

    /// <summary>Text goes to a dictionary while it has at most this many distinct values in a chunk.</summary>
    public const int MaxDictionaryEntries = 4096;

    private static readonly byte[] Magic = "PAR1"u8.ToArray();

    private readonly Stream _stream;
    private readonly ParquetColumn[] _columns;
    private readonly List<RowGroupMeta> _rowGroups = [];
    private readonly ArrayBufferWriter<byte> _body = new(1 << 16);
    private readonly ArrayBufferWriter<byte> _dictionary = new(1 << 12);
    private readonly ArrayBufferWriter<byte> _levels = new(1 << 12);
    private readonly ThriftCompactWriter _thrift = new();
    private readonly Dictionary<string, int> _entries = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> _byReference = new(ReferenceEqualityComparer.Instance);
    private byte[] _compressed = new byte[1 << 16];
    private int[] _ints = new int[1024];
    private long _position;
    private long _totalRows;
    private int _rows = -1;
    private int _next;
    private ChunkMeta[] _chunks = [];
    private bool _finished;

    /// <summary>Starts a file on <paramref name="stream"/> (written from its current position; not closed here).</summary>
    public ParquetFlatWriter(Stream stream, IReadOnlyList<ParquetColumn> columns)
    {
        if (columns.Count == 0) throw new ArgumentException("a Parquet file needs at least one column", nameof(columns));
        _stream = stream;
        _columns = [.. columns];
        Write(Magic);
    }

    /// <summary>Rows written in finished row groups.</summary>
    public long Rows => _totalRows;

    /// <summary>Opens a row group of <paramref name="rows"/> rows; then write every column in order and end it.</summary>
    public void BeginRowGroup(int rows)
    {
        if (_finished || _rows >= 0) throw new InvalidOperationException(_finished ? "the file is finished" : "a row group is already open");
        ArgumentOutOfRangeException.ThrowIfNegative(rows);
        _rows = rows;
        _next = 0;
        _chunks = new ChunkMeta[_columns.Length];
    }

    /// <summary>Ends the open row group once every column has been written.</summary>
    public void EndRowGroup()
    {
        if (_rows < 0) throw new InvalidOperationException("no row group is open");
        if (_next != _columns.Length) throw new InvalidOperationException($"row group ended after {_next} of {_columns.Length} columns");
        _rowGroups.Add(new RowGroupMeta(_chunks, _rows));
        _totalRows += _rows;
        _rows = -1;
    }

    /// <summary>Writes the footer. The stream stays open; flush and close it after.</summary>
    public void Finish()
    {
        if (_rows >= 0) throw new InvalidOperationException("a row group is still open");
        if (_finished) return;
        _finished = true;
        var t = _thrift;
        t.Reset();
        t.I32(1, 1);
        t.ListBegin(2, ThriftCompactWriter.Struct, _columns.Length + 1);
        t.ElementBegin();
        t.Utf8(4, "schema");
        t.I32(5, _columns.Length);
        t.ElementEnd();
        foreach (var c in _columns)
        {
            t.ElementBegin();
            t.I32(1, PhysicalType(c.Kind));
            t.I32(3, c.Nullable ? Optional : Required);
            t.Utf8(4, c.Name);
            if (c.Kind == ParquetColumnKind.Text)
            {
                t.I32(6, ConvertedUtf8);
                t.StructBegin(10); // LogicalType
                t.StructBegin(1);  // STRING
                t.StructEnd();
                t.StructEnd();
            }
            else if (c.Kind == ParquetColumnKind.Timestamp)
            {
                t.StructBegin(10); // LogicalType
                t.StructBegin(8);  // TIMESTAMP
                t.Bool(1, true);   // isAdjustedToUTC
                t.StructBegin(2);  // unit
                t.StructBegin(2);  // MICROS
                t.StructEnd();
                t.StructEnd();
                t.StructEnd();
                t.StructEnd();
            }
            t.ElementEnd();
        }
        t.I64(3, _totalRows);
        t.ListBegin(4, ThriftCompactWriter.Struct, _rowGroups.Count);
        Span<byte> max = stackalloc byte[8], min = stackalloc byte[8];
        for (var g = 0; g < _rowGroups.Count; g++)
        {
            var rg = _rowGroups[g];
            t.ElementBegin();
            t.ListBegin(1, ThriftCompactWriter.Struct, rg.Chunks.Length);
            long uncompressed = 0, compressed = 0;
            for (var i = 0; i < rg.Chunks.Length; i++)
            {
                var ch = rg.Chunks[i];
                uncompressed += ch.UncompressedSize;
                compressed += ch.CompressedSize;
                t.ElementBegin();
                t.I64(2, ch.Start);
                t.StructBegin(3); // ColumnMetaData
                t.I32(1, PhysicalType(_columns[i].Kind));
                t.ListBegin(2, ThriftCompactWriter.I32Type, ch.DictionaryOffset >= 0 ? 3 : 2);
                t.I32Value(EncodingPlain);
                t.I32Value(EncodingRle);
                if (ch.DictionaryOffset >= 0) t.I32Value(EncodingRleDictionary);
                t.ListBegin(3, ThriftCompactWriter.BinaryType, 1);
                t.StringValue(_columns[i].Name);
                t.I32(4, CodecSnappy);
                t.I64(5, rg.Rows);
                t.I64(6, ch.UncompressedSize);
                t.I64(7, ch.CompressedSize);
                t.I64(9, ch.DataOffset);
                if (ch.DictionaryOffset >= 0) t.I64(11, ch.DictionaryOffset);
                t.StructBegin(12); // Statistics
                if (ch.HasMinMax)
                {
                    var size = StatisticBytes(_columns[i].Kind, ch.Max, max);
                    StatisticBytes(_columns[i].Kind, ch.Min, min);
                    t.Binary(1, max[..size]); // legacy max and min (signed order is right for these types)
                    t.Binary(2, min[..size]);
                    t.I64(3, ch.Nulls);
                    t.Binary(5, max[..size]);
                    t.Binary(6, min[..size]);
                }
                else
                {
                    t.I64(3, ch.Nulls);
                }
                t.StructEnd();
                t.StructEnd();
                t.ElementEnd();
            }
            t.I64(2, uncompressed);
            t.I64(3, rg.Rows);
            t.I64(5, rg.Chunks.Length > 0 ? rg.Chunks[0].Start : _position);
            t.I64(6, compressed);
            t.I16(7, (short)g);
            t.ElementEnd();
        }
        t.Utf8(6, CreatedBy);
        t.Stop();
        Write(t.Written);
        Span<byte> tail = stackalloc byte[8];
        BinaryPrimitives.WriteInt32LittleEndian(tail, t.Written.Length);
        Magic.CopyTo(tail[4..]);
        Write(tail);
    }

    /// <summary>A text column, one string per row (null for a missing value in a nullable column).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void WriteText(ReadOnlySpan<string?> values)
    {
        var column = Begin(ParquetColumnKind.Text, values.Length);
        _body.ResetWrittenCount();
        var nulls = 0;
        if (column.Nullable)
        {
            var levels = Ints(values.Length);
            for (var i = 0; i < values.Length; i++)
            {
                var isPresent = values[i] is not null;
                levels[i] = isPresent ? 1 : 0;
                if (!isPresent) nulls++;
            }
            WriteLevels(levels.AsSpan(0, values.Length));
        }
        else
        {
            foreach (var v in values) if (v is null) throw new ArgumentException($"column '{column.Name}' is not nullable but a value is null", nameof(values));
        }

        // Dictionary-encode while the distinct values stay few: the log's model, version, protocol,
        // prediction and category columns repeat a handful of strings.
        _entries.Clear();
        _byReference.Clear();
        var present = values.Length - nulls;
        var indices = Ints(present);
        var n = 0;
        string? last = null;
        var lastIndex = -1;
        var dictionary = true;
        foreach (var v in values)
        {
            if (v is null) continue;
            if (!ReferenceEquals(v, last))
            {
                // The same few string instances usually come back (a model's labels, its name): found by
                // reference without hashing their characters.
                if (!_byReference.TryGetValue(v, out lastIndex))
                {
                    if (!_entries.TryGetValue(v, out lastIndex))
                    {
                        if (_entries.Count == MaxDictionaryEntries) { dictionary = false; break; }
                        lastIndex = _entries.Count;
                        _entries.Add(v, lastIndex);
                    }
                    if (_byReference.Count < 2 * MaxDictionaryEntries) _byReference[v] = lastIndex;
                }
                last = v;
            }
            indices[n++] = lastIndex;
        }
        var start = _position;
        long dictionaryOffset = -1;
        if (dictionary && present > 0)
        {
            _dictionary.ResetWrittenCount();
            var ordered = new string[_entries.Count];
            foreach (var (text, index) in _entries) ordered[index] = text;
            foreach (var text in ordered) PlainText(_dictionary, text);
            dictionaryOffset = _position;
            WritePage(PageDictionary, ordered.Length, EncodingPlain, _dictionary.WrittenSpan);
            var width = Math.Max(1, 32 - BitOperations.LeadingZeroCount((uint)(ordered.Length - 1)));
            _body.GetSpan(1)[0] = (byte)width;
            _body.Advance(1);
            RleHybridEncoder.Encode(_body, indices.AsSpan(0, present), width);
        }
        else
        {
            foreach (var v in values) if (v is not null) PlainText(_body, v);
        }
        var dataOffset = _position;
        WritePage(PageData, values.Length, dictionaryOffset >= 0 ? EncodingRleDictionary : EncodingPlain, _body.WrittenSpan);
        End(new ChunkMeta(start, dataOffset, dictionaryOffset, nulls, false, 0, 0));
    }

    /// <summary>A non-null text column whose rows are packed end to end in <paramref name="chars"/>; row r ends at <c>ends[r]</c>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void WriteText(ReadOnlySpan<char> chars, ReadOnlySpan<int> ends)
    {
        var column = Begin(ParquetColumnKind.Text, ends.Length);
        _body.ResetWrittenCount();
        if (column.Nullable)
        {
            var levels = Ints(ends.Length);
            levels.AsSpan(0, ends.Length).Fill(1);
            WriteLevels(levels.AsSpan(0, ends.Length));
        }
        var begin = 0;
        foreach (var end in ends)
        {
            var text = chars[begin..end];
            var size = Encoding.UTF8.GetByteCount(text);
            var span = _body.GetSpan(4 + size);
            BinaryPrimitives.WriteInt32LittleEndian(span, size);
            Encoding.UTF8.GetBytes(text, span[4..]);
            _body.Advance(4 + size);
            begin = end;
        }
        EndPlainChunk(ends.Length, 0, false, 0, 0);
    }

    /// <summary>A double column; in a nullable column NaN is written as null (missing).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void WriteDouble(ReadOnlySpan<double> values)
    {
        var column = Begin(ParquetColumnKind.Double, values.Length);
        _body.ResetWrittenCount();
        var nulls = 0;
        if (column.Nullable)
        {
            var levels = Ints(values.Length);
            for (var i = 0; i < values.Length; i++)
            {
                var present = !double.IsNaN(values[i]);
                levels[i] = present ? 1 : 0;
                if (!present) nulls++;
            }
            WriteLevels(levels.AsSpan(0, values.Length));
        }
        var span = _body.GetSpan(8 * (values.Length - nulls));
        var k = 0;
        double min = double.PositiveInfinity, max = double.NegativeInfinity;
        var any = false;
        foreach (var v in values)
        {
            if (double.IsNaN(v))
            {
                if (column.Nullable) continue;
            }
            else
            {
                if (v < min) min = v;
                if (v > max) max = v;
                any = true;
            }
            BinaryPrimitives.WriteDoubleLittleEndian(span[(8 * k++)..], v);
        }
        _body.Advance(8 * k);
        EndPlainChunk(values.Length, nulls, any, BitConverter.DoubleToInt64Bits(min), BitConverter.DoubleToInt64Bits(max));
    }

    /// <summary>A non-null 32-bit integer column.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void WriteInt32(ReadOnlySpan<int> values)
    {
        var column = Begin(ParquetColumnKind.Int32, values.Length);
        _body.ResetWrittenCount();
        if (column.Nullable) AllPresent(values.Length);
        var span = _body.GetSpan(4 * values.Length);
        int min = int.MaxValue, max = int.MinValue;
        for (var i = 0; i < values.Length; i++)
        {
            var v = values[i];
            if (v < min) min = v;
            if (v > max) max = v;
            BinaryPrimitives.WriteInt32LittleEndian(span[(4 * i)..], v);
        }
        _body.Advance(4 * values.Length);
        EndPlainChunk(values.Length, 0, values.Length > 0, min, max);
    }

    /// <summary>A non-null timestamp column (UTC; written in microseconds since the Unix epoch).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void WriteTimestamp(ReadOnlySpan<DateTime> values)
    {
        var column = Begin(ParquetColumnKind.Timestamp, values.Length);
        _body.ResetWrittenCount();
        if (column.Nullable) AllPresent(values.Length);
        var span = _body.GetSpan(8 * values.Length);
        long min = long.MaxValue, max = long.MinValue;
        for (var i = 0; i < values.Length; i++)
        {
            var micros = (values[i].Ticks - DateTime.UnixEpoch.Ticks) / 10;
            if (micros < min) min = micros;
            if (micros > max) max = micros;
            BinaryPrimitives.WriteInt64LittleEndian(span[(8 * i)..], micros);
        }
        _body.Advance(8 * values.Length);
        EndPlainChunk(values.Length, 0, values.Length > 0, min, max);
    }

    /// <summary>Writes the body (levels and PLAIN values) as the chunk's one data page and records the chunk.</summary>
    private void EndPlainChunk(int values, long nulls, bool hasMinMax, long min, long max)
    {
        var start = _position;
        WritePage(PageData, values, EncodingPlain, _body.WrittenSpan);
        End(new ChunkMeta(start, start, -1, nulls, hasMinMax, min, max));
    }

    private ParquetColumn Begin(ParquetColumnKind kind, int count)
    {
        if (_rows < 0) throw new InvalidOperationException("no row group is open");
        if (_next >= _columns.Length) throw new InvalidOperationException("every column of the row group is written");
        var column = _columns[_next];
        if (column.Kind != kind) throw new InvalidOperationException($"column '{column.Name}' holds {column.Kind}, not {kind}");
        if (count != _rows) throw new ArgumentException($"column '{column.Name}' got {count} values for a row group of {_rows} rows");
        return column;
    }

    private void End(ChunkMeta chunk)
    {
        chunk.CompressedSize = _position - chunk.Start;
        chunk.UncompressedSize = _pageUncompressed;
        _pageUncompressed = 0;
        _chunks[_next++] = chunk;
    }

    private long _pageUncompressed;

    private void AllPresent(int count)
    {
        var levels = Ints(count);
        levels.AsSpan(0, count).Fill(1);
        WriteLevels(levels.AsSpan(0, count));
    }

    /// <summary>Definition levels (bit width 1) with their 4-byte length, as V1 data pages carry them.</summary>
    private void WriteLevels(ReadOnlySpan<int> levels)
    {
        _levels.ResetWrittenCount();
        RleHybridEncoder.Encode(_levels, levels, 1);
        var span = _body.GetSpan(4 + _levels.WrittenCount);
        BinaryPrimitives.WriteInt32LittleEndian(span, _levels.WrittenCount);
        _levels.WrittenSpan.CopyTo(span[4..]);
        _body.Advance(4 + _levels.WrittenCount);
    }

    private static void PlainText(ArrayBufferWriter<byte> target, string text)
    {
        var size = Encoding.UTF8.GetByteCount(text);
        var span = target.GetSpan(4 + size);
        BinaryPrimitives.WriteInt32LittleEndian(span, size);
        Encoding.UTF8.GetBytes(text, span[4..]);
        target.Advance(4 + size);
    }

    private void WritePage(int type, int values, int encoding, ReadOnlySpan<byte> body)
    {
        var max = Snappier.Snappy.GetMaxCompressedLength(body.Length);
        if (_compressed.Length < max) _compressed = new byte[Math.Max(max, _compressed.Length * 2)];
        var size = Snappier.Snappy.Compress(body, _compressed);
        var t = _thrift;
        t.Reset();
        t.I32(1, type);
        t.I32(2, body.Length);
        t.I32(3, size);
        if (type == PageDictionary)
        {
            t.StructBegin(7);
            t.I32(1, values);
            t.I32(2, encoding);
            t.StructEnd();
        }
        else
        {
            t.StructBegin(5);
            t.I32(1, values);
            t.I32(2, encoding);
            t.I32(3, EncodingRle);
            t.I32(4, EncodingRle);
            t.StructEnd();
        }
        t.Stop();
        _pageUncompressed += t.Written.Length + body.Length;
        Write(t.Written);
        Write(_compressed.AsSpan(0, size));
    }

    private int[] Ints(int count)
    {
        if (_ints.Length < count) _ints = new int[Math.Max(count, _ints.Length * 2)];
        return _ints;
    }

    private void Write(ReadOnlySpan<byte> bytes)
    {
        _stream.Write(bytes);
        _position += bytes.Length;
    }

    private static int PhysicalType(ParquetColumnKind kind) => kind switch
    {
        ParquetColumnKind.Text => TypeByteArray,
        ParquetColumnKind.Double => TypeDouble,
        ParquetColumnKind.Int32 => TypeInt32,
        _ => TypeInt64,
    };

    private static int StatisticBytes(ParquetColumnKind kind, long value, Span<byte> target)
    {
        if (kind == ParquetColumnKind.Int32)
        {
            BinaryPrimitives.WriteInt32LittleEndian(target, (int)value);
            return 4;
        }
        BinaryPrimitives.WriteInt64LittleEndian(target, value); // a double's bits or an INT64
        return 8;
    }

    /// <summary>Where a column chunk lies and what its statistics say (Min/Max: an integer, or a double's bits).</summary>
    private sealed class ChunkMeta(long start, long dataOffset, long dictionaryOffset, long nulls, bool hasMinMax, long min, long max)
    {
        public long Start { get; } = start;
        public long DataOffset { get; } = dataOffset;
        public long DictionaryOffset { get; } = dictionaryOffset;
        public long Nulls { get; } = nulls;
        public bool HasMinMax { get; } = hasMinMax;
        public long Min { get; } = min;
        public long Max { get; } = max;
        public long CompressedSize { get; set; }
        public long UncompressedSize { get; set; }
    }

    private sealed record RowGroupMeta(ChunkMeta[] Chunks, int Rows);
}

/// <summary>The RLE / bit-packed hybrid encoding (parquet-format Encodings.md), without a length prefix.</summary>
internal static class RleHybridEncoder
{
    /// <summary>Runs of 8 or more equal values become RLE runs; the rest is bit-packed in groups of 8 (at most 63 groups a run).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Encode(IBufferWriter<byte> target, ReadOnlySpan<int> values, int width)
    {
        var valueBytes = (width + 7) / 8;
        var i = 0;
        while (i < values.Length)
        {
            var run = RunLength(values, i);
            if (run >= 8)
            {
                var span = target.GetSpan(5 + valueBytes);
                var n = WriteUleb((uint)run << 1, span);
                for (var b = 0; b < valueBytes; b++) span[n++] = (byte)(values[i] >> (8 * b));
                target.Advance(n);
                i += run;
                continue;
            }
            // Bit-pack groups of 8 until a group starts a long run (or the values end).
            var end = i;
            var groups = 0;
            do
            {
                end += 8;
                groups++;
            }
            while (end < values.Length && groups < 63 && RunLength(values, end) < 8);
            var header = target.GetSpan(5 + groups * width);
            var written = WriteUleb(((uint)groups << 1) | 1, header);
            var packed = header.Slice(written, groups * width);
            packed.Clear();
            var bit = 0;
            for (var k = i; k < i + groups * 8; k++, bit += width)
            {
                var v = k < values.Length ? (uint)values[k] : 0u;
                for (var b = 0; b < width; b++)
                    if ((v & (1u << b)) != 0) packed[(bit + b) >> 3] |= (byte)(1 << ((bit + b) & 7));
            }
            target.Advance(written + groups * width);
            i = Math.Min(end, values.Length);
        }
    }

    private static int RunLength(ReadOnlySpan<int> values, int from)
    {
        var v = values[from];
        var end = from + 1;
        while (end < values.Length && values[end] == v) end++;
        return end - from;
    }

    private static int WriteUleb(uint value, Span<byte> target)
    {
        var n = 0;
        while (value >= 0x80)
        {
            target[n++] = (byte)(value | 0x80);
            value >>= 7;
        }
        target[n++] = (byte)value;
        return n;
    }
}

/// <summary>The Thrift compact protocol, as much as Parquet's footer and page headers need.</summary>
internal sealed class ThriftCompactWriter
{
    public const byte BoolTrue = 1, BoolFalse = 2, I16Type = 4, I32Type = 5, I64Type = 6, BinaryType = 8, ListType = 9, Struct = 12;

    private readonly ArrayBufferWriter<byte> _out = new(1024);
    private readonly Stack<short> _lastIds = new();
    private short _last;

    public ReadOnlySpan<byte> Written => _out.WrittenSpan;

    public void Reset()
    {
        _out.ResetWrittenCount();
        _lastIds.Clear();
        _last = 0;
    }

    public void I16(short id, short value)
    {
        Field(id, I16Type);
        Varint(ZigZag(value));
    }

    public void I32(short id, int value)
    {
        Field(id, I32Type);
        Varint(ZigZag(value));
    }

    public void I64(short id, long value)
    {
        Field(id, I64Type);
        Varint(ZigZag(value));
    }

    public void Bool(short id, bool value) => Field(id, value ? BoolTrue : BoolFalse);

    public void Utf8(short id, string value)
    {
        Field(id, BinaryType);
        StringValue(value);
    }

    public void Binary(short id, ReadOnlySpan<byte> value)
    {
        Field(id, BinaryType);
        Varint((ulong)value.Length);
        Bytes(value);
    }

    public void StructBegin(short id)
    {
        Field(id, Struct);
        _lastIds.Push(_last);
        _last = 0;
    }

    public void StructEnd()
    {
        Byte(0);
        _last = _lastIds.Pop();
    }

    public void ListBegin(short id, byte elementType, int count)
    {
        Field(id, ListType);
        if (count < 15) Byte((byte)((count << 4) | elementType));
        else
        {
            Byte((byte)(0xF0 | elementType));
            Varint((ulong)count);
        }
    }

    /// <summary>A struct element of a list.</summary>
    public void ElementBegin()
    {
        _lastIds.Push(_last);
        _last = 0;
    }

    public void ElementEnd() => StructEnd();

    public void I32Value(int value) => Varint(ZigZag(value));

    public void StringValue(string value)
    {
        var size = Encoding.UTF8.GetByteCount(value);
        Varint((ulong)size);
        var span = _out.GetSpan(size);
        Encoding.UTF8.GetBytes(value, span);
        _out.Advance(size);
    }

    /// <summary>Ends the top-level struct.</summary>
    public void Stop() => Byte(0);

    private void Field(short id, byte type)
    {
        var delta = id - _last;
        if (delta is > 0 and <= 15) Byte((byte)((delta << 4) | type));
        else
        {
            Byte(type);
            Varint(ZigZag(id));
        }
        _last = id;
    }

    private static ulong ZigZag(long v) => (ulong)((v << 1) ^ (v >> 63));

    private void Varint(ulong value)
    {
        var span = _out.GetSpan(10);
        var n = 0;
        while (value >= 0x80)
        {
            span[n++] = (byte)(value | 0x80);
            value >>= 7;
        }
        span[n++] = (byte)value;
        _out.Advance(n);
    }

    private void Byte(byte b)
    {
        _out.GetSpan(1)[0] = b;
        _out.Advance(1);
    }

    private void Bytes(ReadOnlySpan<byte> bytes)
    {
        bytes.CopyTo(_out.GetSpan(bytes.Length));
        _out.Advance(bytes.Length);
    }
}
