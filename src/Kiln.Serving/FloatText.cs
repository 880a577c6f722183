namespace Kiln.Serving;

/// <summary>
/// The shortest round-trip text of a double that holds a float's value (a probability widened from float), in
/// [0.0001, 1): the same bytes as <see cref="System.Text.Json.Utf8JsonWriter.WriteNumberValue(double)"/>, made with
/// 64×64-bit products instead of the general double formatter. Any other value is left to the caller (false).
/// </summary>
/// <remarks>
/// The double d = m·2^e (m the float's 24-bit significand) reads back as d from every number in
/// [d − ulp/2, d + ulp/2] (ulp the double's; ends included, the significand m·2^29 being even; the lower half-gap
/// is ulp/4 when m = 2^23). With n decimals the candidates are the two multiples of 10^−n around d, found exactly
/// from d·10^n = m·2^31·5^n / 2^(k−n) (k = 31 − e); whether some n-decimal number is in the interval is monotone
/// in n (a shorter one padded with a zero is a longer one), so n is found by bisection. Of two candidates in the
/// interval the nearer to d is written, the even one on a tie, as .NET's formatter does.
/// </remarks>
public static class FloatText
{
    /// <summary>5^n for n = 0..27.</summary>
    private static readonly ulong[] Pow5 = BuildPow5();

    private const int MaxDecimals = 21; // 17 significant digits from 0.0001 on

    /// <summary>Writes d's shortest round-trip text into <paramref name="destination"/> (at least 24 bytes); false when d is not a float's value in [0.0001, 1).</summary>
    public static bool TryFormat(double d, Span<byte> destination, out int written)
    {
        written = 0;
        if (!(d >= 0.0001 && d < 1) || destination.Length < 24) return false;
        var f = (float)d;
        if (f != d) return false;
        var bits = BitConverter.SingleToUInt32Bits(f);
        var exponent = (int)((bits >> 23) & 0xFF); // d >= 0.0001 is a normal float
        var m = (ulong)((bits & 0x7FFFFF) | 0x800000);
        var e = exponent - 150; // d = m·2^e, e in [−37, −24]
        var k = 31 - e;          // units of 2^−k: d = M units, the half-ulp is 2 units
        var big = m << 31;
        var lowGap = m == 0x800000 ? 1UL : 2UL;

        // Bisection for the fewest decimals that hold a number in the interval.
        int lo = 1, hi = MaxDecimals;
        while (lo < hi)
        {
            var mid = (lo + hi) >>> 1;
            if (Candidate(big, k, mid, lowGap, out _)) hi = mid;
            else lo = mid + 1;
        }
        if (!Candidate(big, k, lo, lowGap, out var digits)) return false;

        // "0." then zeros up to the first digit, then the digits (no trailing zero: one decimal fewer would have done).
        Span<byte> text = stackalloc byte[24];
        var count = 0;
        for (var v = digits; v != 0; v /= 10) text[23 - count++] = (byte)('0' + (int)(v % 10));
        destination[0] = (byte)'0';
        destination[1] = (byte)'.';
        var at = 2;
        for (var z = lo - count; z > 0; z--) destination[at++] = (byte)'0';
        text.Slice(24 - count, count).CopyTo(destination[at..]);
        written = at + count;
        return true;
    }

    /// <summary>
    /// Whether a multiple of 10^−n lies in d's round-trip interval; <paramref name="digits"/> is then the one nearest
    /// to d (the even one on a tie), as an integer count of 10^−n.
    /// </summary>
    private static bool Candidate(ulong big, int k, int n, ulong lowGap, out ulong digits)
    {
        var p = Pow5[n];
        var hiBits = Math.BigMul(big, p, out var loBits); // X = d·10^n·2^(k−n), exactly: M·5^n < 2^104
        var x = new UInt128(hiBits, loBits);
        var s = k - n; // >= 34
        var below = (ulong)(x >> s);
        var one = UInt128.One << s;
        var rem = x & (one - 1);
        var up = one - rem;
        // In units of 2^(k−n)·... the interval's half-widths scale by 5^n: below d by lowGap·5^n, above by 2·5^n.
        var downOk = rem <= (UInt128)lowGap * p;
        var upOk = up <= (UInt128)2 * p;
        if (downOk && upOk)
        {
            digits = rem < up ? below : rem > up ? below + 1 : (below & 1) == 0 ? below : below + 1;
            return true;
        }
        digits = downOk ? below : below + 1;
        return downOk || upOk;
    }

    private static ulong[] BuildPow5()
    {
        var p = new ulong[MaxDecimals + 1];
        p[0] = 1;
        for (var i = 1; i < p.Length; i++) p[i] = p[i - 1] * 5;
        return p;
    }
}
