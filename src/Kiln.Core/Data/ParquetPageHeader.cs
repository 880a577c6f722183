namespace Kiln.Core.Data;

/// <summary>
/// The fields of a Parquet page header that the text decoder needs, read from the Thrift compact protocol
/// (PageHeader and its DataPageHeader, DictionaryPageHeader and DataPageHeaderV2 structs in parquet.thrift).
/// Statistics and every other field are skipped.
/// </summary>
internal struct ParquetPageHeader
{
    public const int DataPage = 0;
    public const int IndexPage = 1;
    public const int DictionaryPage = 2;
    public const int DataPageV2 = 3;

    public int Type;
    public int UncompressedSize;
    public int CompressedSize;
    /// <summary>Values (with nulls) in a data page, entries in a dictionary page.</summary>
    public int NumValues;
    public int Encoding;
    public int DefinitionLevelEncoding;
    public int NumNulls;
    public int DefinitionLevelsLength;
    public int RepetitionLevelsLength;
    public bool IsCompressed;

    /// <summary>Reads a header at <paramref name="position"/> and moves past it; throws <see cref="InvalidDataException"/> on malformed input.</summary>
    public static ParquetPageHeader Read(ReadOnlySpan<byte> data, ref int position)
    {
        var reader = new ThriftCompactReader(data, position);
        var header = new ParquetPageHeader { Type = -1, IsCompressed = true };
        short last = 0;
        while (reader.NextField(ref last, out var id, out var type))
        {
            switch (id)
            {
                case 1 when type == ThriftCompactReader.I32: header.Type = reader.ReadI32(); break;
                case 2 when type == ThriftCompactReader.I32: header.UncompressedSize = reader.ReadI32(); break;
                case 3 when type == ThriftCompactReader.I32: header.CompressedSize = reader.ReadI32(); break;
                case 5 when type == ThriftCompactReader.Struct: ReadDataPage(ref reader, ref header); break;
                case 7 when type == ThriftCompactReader.Struct: ReadDictionaryPage(ref reader, ref header); break;
                case 8 when type == ThriftCompactReader.Struct: ReadDataPageV2(ref reader, ref header); break;
                default: reader.Skip(type, 0); break;
            }
        }
        if (header.Type < 0 || header.CompressedSize < 0 || header.UncompressedSize < 0 || header.NumValues < 0)
            throw new InvalidDataException("page header lacks its type or has a negative size");
        position = reader.Position;
        return header;
    }

    private static void ReadDataPage(ref ThriftCompactReader reader, ref ParquetPageHeader header)
    {
        short last = 0;
        while (reader.NextField(ref last, out var id, out var type))
        {
            switch (id)
            {
                case 1 when type == ThriftCompactReader.I32: header.NumValues = reader.ReadI32(); break;
                case 2 when type == ThriftCompactReader.I32: header.Encoding = reader.ReadI32(); break;
                case 3 when type == ThriftCompactReader.I32: header.DefinitionLevelEncoding = reader.ReadI32(); break;
                default: reader.Skip(type, 1); break;
            }
        }
    }

    private static void ReadDictionaryPage(ref ThriftCompactReader reader, ref ParquetPageHeader header)
    {
        short last = 0;
        while (reader.NextField(ref last, out var id, out var type))
        {
            switch (id)
            {
                case 1 when type == ThriftCompactReader.I32: header.NumValues = reader.ReadI32(); break;
                case 2 when type == ThriftCompactReader.I32: header.Encoding = reader.ReadI32(); break;
                default: reader.Skip(type, 1); break;
            }
        }
    }

    private static void ReadDataPageV2(ref ThriftCompactReader reader, ref ParquetPageHeader header)
    {
        short last = 0;
        while (reader.NextField(ref last, out var id, out var type))
        {
            switch (id)
            {
                case 1 when type == ThriftCompactReader.I32: header.NumValues = reader.ReadI32(); break;
                case 2 when type == ThriftCompactReader.I32: header.NumNulls = reader.ReadI32(); break;
                case 4 when type == ThriftCompactReader.I32: header.Encoding = reader.ReadI32(); break;
                case 5 when type == ThriftCompactReader.I32: header.DefinitionLevelsLength = reader.ReadI32(); break;
                case 6 when type == ThriftCompactReader.I32: header.RepetitionLevelsLength = reader.ReadI32(); break;
                case 7 when type is ThriftCompactReader.True or ThriftCompactReader.False: header.IsCompressed = type == ThriftCompactReader.True; break;
                default: reader.Skip(type, 1); break;
            }
        }
    }
}

/// <summary>A forward-only reader of the Thrift compact protocol over a span, enough to read and skip structs.</summary>
internal ref struct ThriftCompactReader(ReadOnlySpan<byte> data, int position)
{
    public const int True = 1;
    public const int False = 2;
    public const int Byte = 3;
    public const int I16 = 4;
    public const int I32 = 5;
    public const int I64 = 6;
    public const int Double = 7;
    public const int Binary = 8;
    public const int List = 9;
    public const int Set = 10;
    public const int Map = 11;
    public const int Struct = 12;

    private const int MaxDepth = 32;
    private readonly ReadOnlySpan<byte> _data = data;

    public int Position { get; private set; } = position;

    /// <summary>Reads the next field header of the current struct; false at its stop byte.</summary>
    public bool NextField(ref short last, out short id, out int type)
    {
        var b = ReadByte();
        type = b & 0x0F;
        if (b == 0)
        {
            id = 0;
            return false;
        }
        var delta = b >> 4;
        id = delta != 0 ? (short)(last + delta) : checked((short)ZigZag(ReadVarint()));
        last = id;
        return true;
    }

    public int ReadI32() => (int)ZigZag(ReadVarint());

    /// <summary>Skips a value of the given compact type (in a struct field: booleans carry no bytes).</summary>
    public void Skip(int type, int depth)
    {
        if (depth > MaxDepth) throw new InvalidDataException("page header nests too deeply");
        switch (type)
        {
            case True or False: break;
            case Byte: ReadByte(); break;
            case I16 or I32 or I64: ReadVarint(); break;
            case Double: Advance(8); break;
            case Binary: Advance(checked((int)ReadVarint())); break;
            case List or Set:
                {
                    var b = ReadByte();
                    var size = (long)(b >> 4);
                    if (size == 15) size = (long)ReadVarint();
                    var element = b & 0x0F;
                    for (long i = 0; i < size; i++) SkipElement(element, depth + 1);
                    break;
                }
            case Map:
                {
                    var size = (long)ReadVarint();
                    if (size == 0) break;
                    var kinds = ReadByte();
                    for (long i = 0; i < size; i++)
                    {
                        SkipElement(kinds >> 4, depth + 1);
                        SkipElement(kinds & 0x0F, depth + 1);
                    }
                    break;
                }
            case Struct:
                {
                    short last = 0;
                    while (NextField(ref last, out _, out var fieldType)) Skip(fieldType, depth + 1);
                    break;
                }
            default: throw new InvalidDataException($"unknown Thrift type {type} in a page header");
        }
    }

    /// <summary>Inside lists, sets and maps a boolean takes a byte.</summary>
    private void SkipElement(int type, int depth)
    {
        if (type is True or False) ReadByte();
        else Skip(type, depth);
    }

    private byte ReadByte()
    {
        if (Position >= _data.Length) throw new InvalidDataException("page header runs past the end of the column chunk");
        return _data[Position++];
    }

    private void Advance(int count)
    {
        if (count < 0 || count > _data.Length - Position) throw new InvalidDataException("page header runs past the end of the column chunk");
        Position += count;
    }

    private ulong ReadVarint()
    {
        ulong value = 0;
        for (var shift = 0; shift < 64; shift += 7)
        {
            var b = ReadByte();
            value |= (ulong)(b & 0x7F) << shift;
            if ((b & 0x80) == 0) return value;
        }
        throw new InvalidDataException("varint longer than 64 bits in a page header");
    }

    private static long ZigZag(ulong v) => (long)(v >> 1) ^ -(long)(v & 1);
}
