using System.Buffers;
using System.Text;

namespace Kiln.Core.Tests.Data;

/// <summary>The Thrift compact protocol, as much as Parquet's footer and page headers need (for the hand-built test files).</summary>
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
