using System.Buffers.Binary;
using System.Globalization;
using System.IO.Hashing;

namespace Kiln.Vectors.Storage;

/// <summary>
/// A collection's write-ahead log: numbered segment files of framed records (length, CRC-32, bytes).
/// A record is acknowledged only after it is written (and fsynced when asked); on replay a torn or corrupt
/// tail, which only a crash in the middle of an append leaves, is cut off.
/// </summary>
internal sealed class WriteAheadLog : IDisposable
{
    private readonly string _directory;
    private FileStream? _current;

    public WriteAheadLog(string directory)
    {
        _directory = directory;
        Directory.CreateDirectory(directory);
        var last = Segments().LastOrDefault();
        CurrentSegment = last == 0 ? 1 : last;
        // The append stream is opened at the first write, after recovery has cut off any torn tail.
    }

    public long CurrentSegment { get; private set; }

    public void Append(ReadOnlySpan<byte> record, bool fsync)
    {
        Span<byte> header = stackalloc byte[8];
        BinaryPrimitives.WriteInt32LittleEndian(header, record.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(header[4..], Crc32.HashToUInt32(record));
        _current ??= OpenForAppend(CurrentSegment);
        _current.Write(header);
        _current.Write(record);
        _current.Flush(fsync);
    }

    /// <summary>Starts a new segment; records appended from now on are in it or later ones.</summary>
    public long Rotate()
    {
        _current?.Flush(true);
        _current?.Dispose();
        CurrentSegment++;
        // Created at once: a reopened log numbers its next writes after the newest segment file.
        _current = OpenForAppend(CurrentSegment);
        return CurrentSegment;
    }

    /// <summary>Removes the segments that a snapshot now covers.</summary>
    public void DropBefore(long segment)
    {
        foreach (var s in Segments())
        {
            if (s < segment) File.Delete(PathOf(s));
        }
    }

    /// <summary>Every intact record of the segments numbered <paramref name="fromSegment"/> and later, in order.</summary>
    public static IEnumerable<byte[]> Read(string directory, long fromSegment)
    {
        if (!Directory.Exists(directory)) yield break;
        foreach (var s in SegmentsIn(directory))
        {
            if (s < fromSegment) continue;
            var path = Path.Combine(directory, Name(s));
            var bytes = File.ReadAllBytes(path);
            var offset = 0;
            while (offset + 8 <= bytes.Length)
            {
                var length = BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(offset));
                var crc = BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(offset + 4));
                if (length <= 0 || offset + 8 + length > bytes.Length) break;
                var record = bytes.AsSpan(offset + 8, length);
                if (Crc32.HashToUInt32(record) != crc) break;
                yield return record.ToArray();
                offset += 8 + length;
            }
            if (offset < bytes.Length)
            {
                // A torn append: nothing after it was acknowledged, so the tail is cut off for good.
                using var f = new FileStream(path, FileMode.Open, FileAccess.Write);
                f.SetLength(offset);
                f.Flush(true);
            }
        }
    }

    private FileStream OpenForAppend(long segment) =>
        new(PathOf(segment), FileMode.Append, FileAccess.Write, FileShare.Read, 1 << 16);

    private string PathOf(long segment) => Path.Combine(_directory, Name(segment));

    private static string Name(long segment) => segment.ToString("D10", CultureInfo.InvariantCulture) + ".log";

    private IEnumerable<long> Segments() => SegmentsIn(_directory);

    private static IEnumerable<long> SegmentsIn(string directory) =>
        Directory.EnumerateFiles(directory, "*.log")
            .Select(p => long.TryParse(Path.GetFileNameWithoutExtension(p), NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : -1)
            .Where(n => n > 0)
            .Order()
            .ToList();

    public void Dispose() => _current?.Dispose();
}
