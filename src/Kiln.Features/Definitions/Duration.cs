using System.Globalization;
using System.Text;

namespace Kiln.Features.Definitions;

/// <summary>Durations as written in feature definitions: <c>0</c>, <c>3600</c> (seconds), <c>90m</c>, <c>1d12h</c>, <c>2w</c>.</summary>
public static class Duration
{
    public static bool TryParse(string text, out TimeSpan value)
    {
        value = TimeSpan.Zero;
        text = text.Trim();
        if (text.Length == 0) return false;
        if (long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var seconds))
        {
            value = TimeSpan.FromSeconds(seconds);
            return true;
        }
        long total = 0;
        var i = 0;
        while (i < text.Length)
        {
            var start = i;
            while (i < text.Length && char.IsAsciiDigit(text[i])) i++;
            if (i == start || i == text.Length) return false;
            var n = long.Parse(text.AsSpan(start, i - start), CultureInfo.InvariantCulture);
            long unit = text[i] switch
            {
                's' => 1,
                'm' => 60,
                'h' => 3600,
                'd' => 86400,
                'w' => 7 * 86400,
                _ => 0,
            };
            if (unit == 0) return false;
            total += n * unit;
            i++;
        }
        value = TimeSpan.FromSeconds(total);
        return true;
    }

    /// <summary>The shortest text that parses back to the same duration.</summary>
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
