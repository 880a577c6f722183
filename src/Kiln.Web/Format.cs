using System.Globalization;

namespace Kiln.Web;

/// <summary>How the pages write times, numbers and durations (invariant culture, UTC).</summary>
internal static class Format
{
    public static string Time(long unixMs) =>
        unixMs <= 0 ? "–" : DateTimeOffset.FromUnixTimeMilliseconds(unixMs).UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    public static string Time(long? unixMs) => unixMs is { } t ? Time(t) : "–";

    public static string Time(DateTimeOffset? t) => t is { } v ? v.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture) : "–";

    public static string Number(double v) =>
        double.IsNaN(v) ? "NaN" : Math.Abs(v) is >= 1e6 or (< 1e-4 and > 0) ? v.ToString("G5", CultureInfo.InvariantCulture) : v.ToString("0.####", CultureInfo.InvariantCulture);

    public static string Duration(TimeSpan d) =>
        d.TotalSeconds < 1 ? $"{d.TotalMilliseconds:0} ms" : d.TotalMinutes < 1 ? $"{d.TotalSeconds:0.#} s" : d.TotalHours < 1 ? $"{(int)d.TotalMinutes} min {d.Seconds} s" : $"{(int)d.TotalHours} h {d.Minutes} min";

    public static string Bytes(long? n) => n switch
    {
        null => "",
        < 1024 => $"{n} B",
        < 1024 * 1024 => $"{n / 1024.0:0.#} KB",
        _ => $"{n / 1024.0 / 1024.0:0.#} MB",
    };
}
