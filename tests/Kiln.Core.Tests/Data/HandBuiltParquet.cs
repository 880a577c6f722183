using System.Buffers.Binary;
using System.Text;

namespace Kiln.Core.Tests.Data;

/// <summary>
/// Writes a Parquet file page by page, for layouts the writers on this machine never produce: a dictionary-encoded
/// column that falls back to PLAIN mid-chunk (as parquet-mr and Arrow do when the dictionary grows too large), V1
/// and V2 pages in one chunk, bit-packed and RLE runs, and deliberately corrupt pages. One optional UTF-8 column,
/// one row group, uncompressed. Written from the format spec (parquet.thrift), independently of the decoder; the
/// page headers and footer go through the tests' ThriftCompactWriter (DuckDB reads its output in
/// ParquetReaderTests).
/// </summary>
internal sealed class HandBuiltParquet
{
    private readonly MemoryStream _pages = new();
    private long? _dictionaryOffset;
    private long? _dataOffset;
    private int _rows;

    public const int PlainDictionary = 2;
    public const int Plain = 0;
    public const int Rle = 3;
    public const int RleDictionary = 8;

    /// <summary>A dictionary page of PLAIN entries.</summary>
    public HandBuiltParquet Dictionary(params string[] entries)
    {
        var body = new MemoryStream();
        foreach (var e in entries) WritePlain(body, e);
        var header = new ThriftCompactWriter();
        header.I32(1, 2); // DICTIONARY_PAGE
        header.I32(2, (int)body.Length);
        header.I32(3, (int)body.Length);
        header.StructBegin(7);
        header.I32(1, entries.Length);
        header.I32(2, PlainDictionary);
        header.StructEnd();
        header.Stop();
        _dictionaryOffset ??= 4 + _pages.Length;
        Append(header, body.ToArray());
        return this;
    }

    /// <summary>A V1 data page: definition levels (bit-packed runs), then dictionary indices as RLE runs.</summary>
    public HandBuiltParquet DictionaryPageV1(int?[] indices, int bitWidth = 2, int? bitWidthByte = null)
    {
        var body = new MemoryStream();
        WriteLevelsV1(body, indices.Select(i => i is not null).ToArray());
        body.WriteByte((byte)(bitWidthByte ?? bitWidth));
        foreach (var i in indices.Where(i => i is not null)) WriteRleRun(body, 1, i!.Value, bitWidth);
        AppendDataPageV1(body.ToArray(), indices.Length, RleDictionary);
        return this;
    }

    /// <summary>A V1 data page of PLAIN values.</summary>
    public HandBuiltParquet PlainPageV1(string?[] values)
    {
        var body = new MemoryStream();
        WriteLevelsV1(body, values.Select(v => v is not null).ToArray());
        foreach (var v in values.Where(v => v is not null)) WritePlain(body, v!);
        AppendDataPageV1(body.ToArray(), values.Length, Plain);
        return this;
    }

    /// <summary>A V2 data page: uncompressed definition levels (an RLE run per value), then bit-packed dictionary indices.</summary>
    public HandBuiltParquet DictionaryPageV2(int?[] indices, int bitWidth = 3)
    {
        var levels = new MemoryStream();
        foreach (var i in indices) WriteRleRun(levels, 1, i is null ? 0 : 1, 1);
        var values = new MemoryStream();
        values.WriteByte((byte)bitWidth);
        WriteBitPacked(values, [.. indices.Where(i => i is not null).Select(i => i!.Value)], bitWidth);
        var header = new ThriftCompactWriter();
        header.I32(1, 3); // DATA_PAGE_V2
        var size = (int)(levels.Length + values.Length);
        header.I32(2, size);
        header.I32(3, size);
        header.StructBegin(8);
        header.I32(1, indices.Length);
        header.I32(2, indices.Count(i => i is null));
        header.I32(3, indices.Length);
        header.I32(4, RleDictionary);
        header.I32(5, (int)levels.Length);
        header.I32(6, 0);
        header.Bool(7, false);
        header.StructEnd();
        header.Stop();
        _dataOffset ??= 4 + _pages.Length;
        Append(header, [.. levels.ToArray(), .. values.ToArray()]);
        _rows += indices.Length;
        return this;
    }

    /// <summary>Bytes that are not a page at all, where the footer expects pages of <paramref name="rows"/> rows.</summary>
    public HandBuiltParquet Garbage(byte[] bytes, int rows)
    {
        _dataOffset ??= 4 + _pages.Length;
        _pages.Write(bytes);
        _rows += rows;
        return this;
    }

    /// <summary>Cuts the last bytes off the pages written so far, so the last page is shorter than its header says.</summary>
    public HandBuiltParquet Truncate(int bytes)
    {
        _pages.SetLength(_pages.Length - bytes);
        return this;
    }

    /// <summary>Writes the file: magic, pages, footer (FileMetaData), footer length, magic.</summary>
    public void Save(string path)
    {
        var pages = _pages.ToArray();
        var footer = new ThriftCompactWriter();
        footer.I32(1, 1); // version
        footer.ListBegin(2, ThriftCompactWriter.Struct, 2); // schema
        footer.ElementBegin();
        footer.Utf8(4, "schema");
        footer.I32(5, 1); // num_children
        footer.ElementEnd();
        footer.ElementBegin();
        footer.I32(1, 6); // BYTE_ARRAY
        footer.I32(3, 1); // OPTIONAL
        footer.Utf8(4, "s");
        footer.I32(6, 0); // converted type UTF8
        footer.ElementEnd();
        footer.I64(3, _rows);
        footer.ListBegin(4, ThriftCompactWriter.Struct, 1); // row groups
        footer.ElementBegin();
        footer.ListBegin(1, ThriftCompactWriter.Struct, 1); // columns
        footer.ElementBegin();
        footer.I64(2, 4 + pages.Length); // file_offset
        footer.StructBegin(3); // ColumnMetaData
        footer.I32(1, 6);
        footer.ListBegin(2, ThriftCompactWriter.I32Type, 4);
        foreach (var e in new[] { PlainDictionary, Plain, Rle, RleDictionary }) footer.I32Value(e);
        footer.ListBegin(3, ThriftCompactWriter.BinaryType, 1);
        footer.StringValue("s");
        footer.I32(4, 0); // UNCOMPRESSED
        footer.I64(5, _rows);
        footer.I64(6, pages.Length);
        footer.I64(7, pages.Length);
        footer.I64(9, _dataOffset ?? 4);
        if (_dictionaryOffset is { } d) footer.I64(11, d);
        footer.StructEnd();
        footer.ElementEnd(); // ColumnChunk
        footer.I64(2, pages.Length); // total_byte_size
        footer.I64(3, _rows);
        footer.ElementEnd(); // RowGroup
        footer.Stop(); // FileMetaData
        var meta = footer.Written.ToArray();
        using var file = File.Create(path);
        file.Write("PAR1"u8);
        file.Write(pages);
        file.Write(meta);
        Span<byte> length = stackalloc byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(length, meta.Length);
        file.Write(length);
        file.Write("PAR1"u8);
    }

    private void AppendDataPageV1(byte[] body, int count, int encoding)
    {
        var header = new ThriftCompactWriter();
        header.I32(1, 0); // DATA_PAGE
        header.I32(2, body.Length);
        header.I32(3, body.Length);
        header.StructBegin(5);
        header.I32(1, count);
        header.I32(2, encoding);
        header.I32(3, Rle);
        header.I32(4, Rle);
        header.StructEnd();
        header.Stop();
        _dataOffset ??= 4 + _pages.Length;
        Append(header, body);
        _rows += count;
    }

    private void Append(ThriftCompactWriter header, byte[] body)
    {
        _pages.Write(header.Written.ToArray());
        _pages.Write(body);
    }

    private static void WritePlain(Stream s, string value)
    {
        var bytes = Encoding.UTF8.GetBytes(value);
        Span<byte> length = stackalloc byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(length, bytes.Length);
        s.Write(length);
        s.Write(bytes);
    }

    /// <summary>V1 levels: a 4-byte length, then the levels bit-packed (width 1), padded to groups of 8.</summary>
    private static void WriteLevelsV1(Stream s, bool[] present)
    {
        var levels = new MemoryStream();
        WriteBitPacked(levels, [.. present.Select(p => p ? 1 : 0)], 1);
        Span<byte> length = stackalloc byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(length, (int)levels.Length);
        s.Write(length);
        s.Write(levels.ToArray());
    }

    private static void WriteBitPacked(Stream s, int[] values, int width)
    {
        var groups = (values.Length + 7) / 8;
        WriteUleb(s, (uint)((groups << 1) | 1));
        var bits = new byte[groups * width];
        for (var i = 0; i < values.Length; i++)
        {
            for (var b = 0; b < width; b++)
            {
                if (((values[i] >> b) & 1) != 0)
                {
                    var bit = (long)i * width + b;
                    bits[bit / 8] |= (byte)(1 << (int)(bit % 8));
                }
            }
        }
        s.Write(bits);
    }

    private static void WriteRleRun(Stream s, int count, int value, int width)
    {
        WriteUleb(s, (uint)(count << 1));
        for (var b = 0; b < (width + 7) / 8; b++) s.WriteByte((byte)(value >> (8 * b)));
    }

    private static void WriteUleb(Stream s, uint v)
    {
        while (v >= 0x80)
        {
            s.WriteByte((byte)(v | 0x80));
            v >>= 7;
        }
        s.WriteByte((byte)v);
    }
}
