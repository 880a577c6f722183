using System.Text;

namespace Kiln.Core;

/// <summary>
/// Writes a whole file through a temporary file beside it, flushed to disk and renamed over the target,
/// so a reader (or a process killed mid-write) never sees half of it. The temporary file is removed on failure.
/// </summary>
public static class AtomicFile
{
    public static Task WriteAllTextAsync(string path, string content, CancellationToken ct = default) =>
        WriteAllBytesAsync(path, Encoding.UTF8.GetBytes(content), ct);

    public static void WriteAllBytes(string path, ReadOnlySpan<byte> content)
    {
        var (full, temp) = Names(path);
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                stream.Write(content);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, full, overwrite: true);
        }
        catch
        {
            Delete(temp);
            throw;
        }
    }

    public static async Task WriteAllBytesAsync(string path, ReadOnlyMemory<byte> content, CancellationToken ct = default)
    {
        var (full, temp) = Names(path);
        try
        {
            var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None);
            await using (stream.ConfigureAwait(false))
            {
                await stream.WriteAsync(content, ct).ConfigureAwait(false);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, full, overwrite: true);
        }
        catch
        {
            Delete(temp);
            throw;
        }
    }

    private static (string Full, string Temp) Names(string path)
    {
        var full = Path.GetFullPath(path);
        return (full, Path.Combine(Path.GetDirectoryName(full)!, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp"));
    }

    private static void Delete(string temp)
    {
        try { File.Delete(temp); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
