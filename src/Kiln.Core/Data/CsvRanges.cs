namespace Kiln.Core.Data;

/// <summary>A byte range of a file: [<see cref="Start"/>, <see cref="End"/>).</summary>
public readonly record struct ByteRange(long Start, long End)
{
    public long Length => End - Start;
}

/// <summary>
/// Splits a CSV file into byte ranges that begin and end at line starts, by reading a few bytes around each cut
/// rather than the file: the planning of a distributed batch job. A quoted field with a newline inside it must
/// not straddle a cut (the reader of such a range reports the unclosed quote); files from tools that write one
/// record per line are safe.
/// </summary>
public static class CsvRanges
{
    /// <summary>At most <paramref name="parts"/> non-empty ranges covering every data line (the header excluded), in order.</summary>
    public static IReadOnlyList<ByteRange> Split(string path, int parts)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(parts, 1);
        if (!File.Exists(path)) throw new KilnException($"{path}: no such file");
        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 12);
        var length = file.Length;
        var dataStart = NextLineStart(file, 0);
        if (dataStart < 0) throw new KilnException($"{path}: the file has a header and no data line ending, or is empty");
        var cuts = new List<long> { dataStart };
        for (var k = 1; k < parts; k++)
        {
            var target = dataStart + (length - dataStart) * k / parts;
            if (target <= cuts[^1]) continue;
            var cut = NextLineStart(file, target - 1);
            if (cut < 0 || cut >= length) break;
            if (cut > cuts[^1]) cuts.Add(cut);
        }
        var ranges = new List<ByteRange>(cuts.Count);
        for (var i = 0; i < cuts.Count; i++) ranges.Add(new ByteRange(cuts[i], i + 1 < cuts.Count ? cuts[i + 1] : length));
        return ranges;
    }

    /// <summary>The offset just after the first '\n' at or after <paramref name="from"/>; the file's length when the last line has none; -1 for an empty file.</summary>
    private static long NextLineStart(FileStream file, long from)
    {
        if (file.Length == 0) return -1;
        file.Seek(from, SeekOrigin.Begin);
        Span<byte> buffer = stackalloc byte[4096];
        var at = from;
        while (true)
        {
            var n = file.Read(buffer);
            if (n == 0) return file.Length;
            var i = buffer[..n].IndexOf((byte)'\n');
            if (i >= 0) return at + i + 1;
            at += n;
        }
    }
}

/// <summary>A read-only view of the next <c>length</c> bytes of a stream (which it owns).</summary>
internal sealed class RangeStream : Stream
{
    private readonly Stream _inner;
    private readonly long _length;
    private long _left;

    public RangeStream(Stream inner, long length)
    {
        _inner = inner;
        _length = length;
        _left = length;
    }

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => _length;

    public override long Position
    {
        get => _length - _left;
        set => throw new NotSupportedException();
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        if (_left <= 0) return 0;
        var n = _inner.Read(buffer[..(int)Math.Min(buffer.Length, _left)]);
        _left -= n;
        return n;
    }

    public override void Flush() { }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing) _inner.Dispose();
        base.Dispose(disposing);
    }
}
