using System.Globalization;
using System.Text;

namespace Kiln.Core;

/// <summary>The one duration grammar of every option and file (docs/cli.md#durations): 250ms, 30s, 1.5h, 1d12h, 2w, 90 (seconds).</summary>
public static class Duration
{
    /// <summary>What a duration looks like, for error messages that carry their own context (a YAML line, a field path).</summary>
    public const string Expected = "a number and a unit among ms, s, m, h, d, w (e.g. 250ms, 30s, 1.5h, 1d12h, 2w); a bare number is seconds";

    /// <summary>Parses <paramref name="text"/> or throws a one-line <see cref="KilnException"/> naming <paramref name="what"/> (the option or field).</summary>
    public static TimeSpan Parse(string? text, string what) =>
        TryParse(text, out var value) ? value : throw new KilnException($"{what}: '{text}' is not a duration; write {Expected}");

    /// <summary>
    /// Parses a non-negative duration: a bare number of seconds, or one or more number-unit pairs
    /// (units ms, s, m, h, d, w, any case; numbers may have a decimal point), or a .NET clock
    /// form such as 01:30:00. Every form an earlier per-module parser accepted is still accepted.
    /// </summary>
    public static bool TryParse(string? text, out TimeSpan value)
    {
        value = TimeSpan.Zero;
        if (text is null) return false;
        var s = text.Trim();
        if (s.Length == 0) return false;
        // The clock form came from `--window`, which fell back to TimeSpan.TryParse; it stays so old scripts keep working.
        if (s.Contains(':', StringComparison.Ordinal))
            return TimeSpan.TryParse(s, CultureInfo.InvariantCulture, out value) && value >= TimeSpan.Zero;

        double seconds = 0;
        var i = 0;
        var pairs = 0;
        while (i < s.Length)
        {
            var start = i;
            var dot = false;
            while (i < s.Length && (char.IsAsciiDigit(s[i]) || (s[i] == '.' && !dot)))
            {
                dot |= s[i] == '.';
                i++;
            }
            if (!double.TryParse(s.AsSpan(start, i - start), NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var n)) return false;
            if (i == s.Length)
            {
                // A bare number is seconds, but only on its own: "1h30" is more likely a typo than 1h30s.
                if (pairs > 0) return false;
                seconds = n;
                break;
            }
            double unit;
            if (i + 1 < s.Length && char.ToLowerInvariant(s[i]) == 'm' && char.ToLowerInvariant(s[i + 1]) == 's')
            {
                unit = 0.001;
                i += 2;
            }
            else
            {
                unit = char.ToLowerInvariant(s[i]) switch
                {
                    's' => 1,
                    'm' => 60,
                    'h' => 3600,
                    'd' => 86400,
                    'w' => 7 * 86400,
                    _ => 0,
                };
                if (unit == 0) return false;
                i++;
            }
            seconds += n * unit;
            pairs++;
        }
        // Checked before conversion so an absurd value is a parse failure, not an OverflowException.
        if (!double.IsFinite(seconds) || seconds >= TimeSpan.MaxValue.TotalSeconds) return false;
        value = TimeSpan.FromTicks((long)Math.Round(seconds * TimeSpan.TicksPerSecond));
        return true;
    }

    /// <summary>The shortest whole-second text that parses back to the same duration: 0, 90 → 1m30s, 1d12h.</summary>
    public static string Format(TimeSpan value)
    {
        var s = (long)value.TotalSeconds;
        if (s == 0) return "0";
        var sb = new StringBuilder();
        foreach (var (unit, suffix) in new[] { (86400L, 'd'), (3600L, 'h'), (60L, 'm'), (1L, 's') })
        {
            if (s >= unit)
            {
                sb.Append((s / unit).ToString(CultureInfo.InvariantCulture)).Append(suffix);
                s %= unit;
            }
        }
        return sb.ToString();
    }
}
