using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using Kiln.Scoring.Validation;

namespace Kiln.Serving.Protocols.OpenInference;

/// <summary>
/// One input tensor sent in gRPC's raw_input_contents: the tensor's values as little-endian bytes
/// in its datatype (BOOL one byte each; BYTES each element a 4-byte little-endian length, then
/// that many bytes), checked against the tensor's shape.
/// </summary>
public sealed class RawValues
{
    private RawValues(double[]? numbers, string[]? texts)
    {
        Numbers = numbers;
        Texts = texts;
    }

    public double[]? Numbers { get; }

    public string[]? Texts { get; }

    public int Count => Numbers?.Length ?? Texts!.Length;

    /// <summary>Bytes per value of a fixed-size datatype; 0 for BYTES, -1 for a datatype raw contents cannot carry.</summary>
    public static int SizeOf(string datatype) => datatype switch
    {
        "BOOL" or "INT8" or "UINT8" => 1,
        "FP16" or "INT16" or "UINT16" => 2,
        "FP32" or "INT32" or "UINT32" => 4,
        "FP64" or "INT64" or "UINT64" => 8,
        "BYTES" => 0,
        _ => -1,
    };

    /// <summary>Decodes one tensor's raw bytes; an error (naming the input) when they do not fit its datatype and shape.</summary>
    public static RequestError? Decode(string name, string datatype, IReadOnlyList<long> shape, ReadOnlySpan<byte> raw, out RawValues? values)
    {
        values = null;
        var size = SizeOf(datatype);
        if (size < 0) return new RequestError(400, $"{name}: datatype {datatype} is not supported", name);
        long expected = 1;
        foreach (var d in shape)
        {
            if (d < 0) return new RequestError(400, $"{name}: shape [{string.Join(", ", shape)}] has a negative dimension", name);
            expected = checked(expected * d);
        }
        if (size == 0) return DecodeBytes(name, shape, expected, raw, out values);
        if (raw.Length % size != 0 || raw.Length / size != expected)
            return new RequestError(400, string.Create(CultureInfo.InvariantCulture,
                $"{name}: raw_input_contents holds {raw.Length} bytes, but shape [{string.Join(", ", shape)}] of {datatype} needs {expected * size} ({expected} values of {size} bytes)"), name);
        var numbers = new double[expected];
        for (var i = 0; i < numbers.Length; i++)
        {
            var v = raw.Slice(i * size, size);
            numbers[i] = datatype switch
            {
                "BOOL" => v[0] != 0 ? 1 : 0,
                "INT8" => (sbyte)v[0],
                "UINT8" => v[0],
                "FP16" => (double)BinaryPrimitives.ReadHalfLittleEndian(v),
                "INT16" => BinaryPrimitives.ReadInt16LittleEndian(v),
                "UINT16" => BinaryPrimitives.ReadUInt16LittleEndian(v),
                "FP32" => BinaryPrimitives.ReadSingleLittleEndian(v),
                "INT32" => BinaryPrimitives.ReadInt32LittleEndian(v),
                "UINT32" => BinaryPrimitives.ReadUInt32LittleEndian(v),
                "FP64" => BinaryPrimitives.ReadDoubleLittleEndian(v),
                "INT64" => BinaryPrimitives.ReadInt64LittleEndian(v),
                _ => BinaryPrimitives.ReadUInt64LittleEndian(v),
            };
        }
        values = new RawValues(numbers, null);
        return null;
    }

    private static RequestError? DecodeBytes(string name, IReadOnlyList<long> shape, long expected, ReadOnlySpan<byte> raw, out RawValues? values)
    {
        values = null;
        var texts = new List<string>();
        var at = 0;
        while (at < raw.Length)
        {
            if (raw.Length - at < 4)
                return new RequestError(400, $"{name}: raw_input_contents ends inside the 4-byte length of BYTES element {texts.Count}", name);
            var length = BinaryPrimitives.ReadUInt32LittleEndian(raw[at..]);
            at += 4;
            if (length > (uint)(raw.Length - at))
                return new RequestError(400, $"{name}: BYTES element {texts.Count} declares {length} bytes but only {raw.Length - at} remain in raw_input_contents", name);
            texts.Add(Encoding.UTF8.GetString(raw.Slice(at, (int)length)));
            at += (int)length;
            if (texts.Count > expected) break;
        }
        if (texts.Count != expected)
            return new RequestError(400, $"{name}: raw_input_contents holds {(texts.Count > expected ? "more than " + expected : texts.Count)} BYTES elements, but shape [{string.Join(", ", shape)}] needs {expected}", name);
        values = new RawValues(null, [.. texts]);
        return null;
    }
}
