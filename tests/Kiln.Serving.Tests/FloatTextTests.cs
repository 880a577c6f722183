using System.Buffers;
using System.Text;
using System.Text.Json;

namespace Kiln.Serving.Tests;

public sealed class FloatTextTests
{
    /// <summary>The oracle: .NET's own JSON writer (its general double formatter), which the answers used before.</summary>
    private static string WriterText(double d)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer)) writer.WriteNumberValue(d);
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    private static string? Text(double d)
    {
        Span<byte> text = stackalloc byte[24];
        return FloatText.TryFormat(d, text, out var n) ? Encoding.UTF8.GetString(text[..n]) : null;
    }

    [Theory]
    // Expected texts from python3: repr(struct.unpack('f', struct.pack('f', v))[0]), the shortest round-trip
    // text of the float widened to double (Python's own formatter).
    [InlineData(0.1f, "0.10000000149011612")]
    [InlineData(0.13759364f, "0.13759364187717438")]
    [InlineData(0.375f, "0.375")]
    [InlineData(0.5f, "0.5")]
    [InlineData(0.999999f, "0.9999989867210388")]
    [InlineData(0.7f, "0.699999988079071")]
    public void A_widened_float_is_written_as_its_shortest_round_trip_double(float f, string expected)
    {
        Assert.Equal(expected, Text(f));
        Assert.Equal(expected, WriterText(f));
    }

    [Fact]
    public void Every_sampled_float_in_range_gives_the_json_writers_bytes()
    {
        // Float bit patterns from 0.0001f up to the last one below 1 in a stride of 97 (about 1.2 million floats,
        // every exponent, odd and even significands), plus each power of two and its neighbours (the lower
        // half-gap is narrower there).
        var from = BitConverter.SingleToUInt32Bits(0.0001f) + 1;
        var to = BitConverter.SingleToUInt32Bits(1f);
        var checkedCount = 0;
        for (var bits = from; bits < to; bits += 97) { Same(BitConverter.UInt32BitsToSingle(bits)); checkedCount++; }
        for (var e = -13; e <= -1; e++)
        {
            var p = MathF.Pow(2, e);
            Same(p);
            Same(MathF.BitIncrement(p));
            Same(MathF.BitDecrement(p));
        }
        Assert.True(checkedCount > 1_000_000);

        static void Same(float f)
        {
            double d = f;
            var text = Text(d);
            Assert.True(text is not null, $"{d:R} not formatted");
            Assert.True(WriterText(d) == text, $"float bits {BitConverter.SingleToUInt32Bits(f):X8}: {text} != {WriterText(d)}");
            Assert.Equal(d, double.Parse(text!, System.Globalization.CultureInfo.InvariantCulture));
        }
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(1.0)]
    [InlineData(0.00009999999747378752)] // 0.0001f: below 0.0001 as a double
    [InlineData(0.1)] // a double that is not a float's value
    [InlineData(-0.25)]
    [InlineData(double.NaN)]
    [InlineData(3.5)]
    public void Values_outside_the_fast_path_are_left_to_the_writer(double d) => Assert.Null(Text(d));
}
