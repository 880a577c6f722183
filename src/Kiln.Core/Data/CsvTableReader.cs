using nietras.SeparatedValues;

namespace Kiln.Core.Data;

/// <summary>
/// Reads CSV (RFC 4180: a header row, commas, double-quoted fields with "" escapes and embedded
/// newlines) into typed columns, parsed by Sep (the fastest .NET parser measured: docs/benchmarks.md#batch).
/// Only requested columns are kept. A cell that is not a number in a numeric column is an error naming the
/// file, line and column; an empty cell is missing.
/// </summary>
public sealed class CsvTableReader : IDisposable
{
    private readonly Stream _stream;
    private readonly SepReader _reader;
    private readonly string _path;
    private readonly int _fieldCount;
    private readonly int[] _fieldOfSlot;     // requested slot -> header field index
    private readonly ColumnRequest[] _requests;
    private readonly Dictionary<string, string>[] _interned;
    private readonly bool[] _unique;
    private readonly int[] _fullHits;
    private readonly int[] _fullMisses;
    private readonly SpareArrays<double> _spareNumbers = new();
    private readonly SpareArrays<string?> _spareText = new();
    private readonly SpareArrays<int> _spareEnds = new();
    private readonly SpareArrays<char> _spareChars = new();

    /// <summary>Distinct values a text column shares (interns) at most.</summary>
    private const int InternLimit = 100_000;

    /// <summary>Misses counted once the table is full before deciding; fewer hits than this many make the column unique.</summary>
    private const int InternProbe = 16_384;

    private CsvTableReader(string path, IReadOnlyList<ColumnRequest> requests, long rangeStart = 0, long rangeEnd = -1)
    {
        _path = path;
        _stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        _reader = Open(new StreamReader(_stream, System.Text.Encoding.UTF8, detectEncodingFromByteOrderMarks: true, bufferSize: 1 << 16));
        string[] headerFields;
        try
        {
            if (!Next(out var header)) throw new KilnException($"{path}: the file is empty (no header row)");
            headerFields = new string[header.ColCount];
            for (var i = 0; i < headerFields.Length; i++) headerFields[i] = header[i].Span.Trim().ToString();
        }
        catch
        {
            Dispose();
            throw;
        }
        if (rangeEnd >= 0)
        {
            // A byte range of the file: the header was read above; the records are those of [start, end), their
            // lines numbered from the range's start.
            Dispose();
            var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
            file.Seek(rangeStart, SeekOrigin.Begin);
            _stream = new RangeStream(file, rangeEnd - rangeStart);
            _reader = Open(new StreamReader(_stream, System.Text.Encoding.UTF8, detectEncodingFromByteOrderMarks: false, bufferSize: 1 << 16));
            _path = $"{path} (bytes {rangeStart}-{rangeEnd})";
        }
        Header = headerFields;
        _fieldCount = headerFields.Length;
        _requests = [.. requests];
        _fieldOfSlot = new int[_requests.Length];
        for (var r = 0; r < _requests.Length; r++)
        {
            var idx = Array.IndexOf(headerFields, _requests[r].Name);
            if (idx < 0)
            {
                Dispose();
                throw new KilnException($"{path}: column '{_requests[r].Name}' is missing (the header has: {string.Join(", ", headerFields)})");
            }
            _fieldOfSlot[r] = idx;
        }
        _interned = new Dictionary<string, string>[_requests.Length];
        for (var r = 0; r < _interned.Length; r++) _interned[r] = new(StringComparer.Ordinal);
        _unique = new bool[_requests.Length];
        _fullHits = new int[_requests.Length];
        _fullMisses = new int[_requests.Length];
    }

    // The header is read as a row (not Sep's header), so that duplicate or empty names are not refused here.
    private static SepReader Open(TextReader text) =>
        Sep.New(',').Reader(o => o with { HasHeader = false, Unescape = true, DisableColCountCheck = true }).From(text);

    /// <summary>The header's column names.</summary>
    public IReadOnlyList<string> Header { get; }

    public static CsvTableReader Open(string path, IReadOnlyList<ColumnRequest> requests)
    {
        if (!File.Exists(path)) throw new KilnException($"{path}: no such file");
        return new CsvTableReader(path, requests);
    }

    /// <summary>
    /// Reads the records in bytes [<paramref name="start"/>, <paramref name="end"/>) of a file whose header is its first
    /// line: a partition of a large file planned by <see cref="CsvRanges.Split"/>, so that no reader parses the whole file.
    /// Line numbers in errors count from the range's start.
    /// </summary>
    public static CsvTableReader OpenRange(string path, IReadOnlyList<ColumnRequest> requests, long start, long end)
    {
        if (!File.Exists(path)) throw new KilnException($"{path}: no such file");
        if (start < 0 || end < start) throw new ArgumentOutOfRangeException(nameof(start), $"bad byte range {start}-{end}");
        return new CsvTableReader(path, requests, start, end);
    }

    /// <summary>The header of a CSV file.</summary>
    public static IReadOnlyList<string> ReadHeader(string path)
    {
        using var r = Open(path, []);
        return r.Header;
    }

    /// <summary>
    /// Hands back the column arrays of a table this reader returned, once nothing reads them any more (a batch job's
    /// writer has written the chunk's last slice): a later <see cref="ReadBatch"/> fills them again instead of taking
    /// fresh ones, whose pages the kernel and the runtime would zero (2 MB a 65,536-row chunk of four columns). Rows past
    /// a table's <see cref="DataTable.RowCount"/> are zeros (nulls) as before. Safe to call from another thread, also
    /// after <see cref="Dispose"/>; nothing may read the table after.
    /// </summary>
    public void Recycle(DataTable table)
    {
        ArgumentNullException.ThrowIfNull(table);
        foreach (var c in table.Columns)
        {
            switch (c)
            {
                // (a packed column's strings are never made here)
                case TextColumn { Packed: { } p }:
                    _spareEnds.Return(p.Ends);
                    _spareChars.Return(p.Chars);
                    break;
                case NumericColumn n: _spareNumbers.Return(n.Values); break;
                case TextColumn t: _spareText.Return(t.Values); break;
            }
        }
    }

    /// <summary>Reads up to <paramref name="maxRows"/> rows; an empty table at the end of the file.</summary>
    public DataTable ReadBatch(int maxRows, CancellationToken ct = default)
    {
        var capacity = Math.Min(maxRows, 1 << 16);
        var numeric = new double[_requests.Length][];
        var text = new string?[_requests.Length][];
        // A column found to be unique (an id: see Intern) is kept as characters, without a string a cell.
        var ends = new int[_requests.Length][];
        var chars = new char[_requests.Length][];
        var charsUsed = new int[_requests.Length];
        for (var r = 0; r < _requests.Length; r++)
        {
            if (_requests[r].Type == ColumnType.Numeric) numeric[r] = _spareNumbers.Rent(capacity);
            else if (_unique[r])
            {
                ends[r] = _spareEnds.Rent(capacity);
                chars[r] = _spareChars.RentLargest(capacity * 8);
            }
            else text[r] = _spareText.Rent(capacity);
        }
        var rows = 0;
        while (rows < maxRows && Next(out var record))
        {
            if (record.ColCount == 1 && record.Span.IsEmpty) continue; // blank line
            if (record.ColCount != _fieldCount)
                throw new KilnException($"{_path}: line {record.LineNumberFrom} has {record.ColCount} fields, the header has {_fieldCount}");
            if (rows == capacity)
            {
                capacity = Math.Min(maxRows, capacity * 2);
                AllocateColumns(capacity);
            }
            for (var slot = 0; slot < _fieldOfSlot.Length; slot++)
            {
                var col = record[_fieldOfSlot[slot]];
                var cell = col.Span;
                if (_requests[slot].Type == ColumnType.Numeric)
                {
                    // Sep's number parser (csFastFloat) for plain decimal numbers; Kiln's cell rule (blanks, NaN,
                    // Infinity, spaces) for the rest. Both round correctly, so a number gets the same bits either way.
                    if (NumericColumn.IsPlainDecimal(cell) && col.TryParse<double>() is { } v) numeric[slot][rows] = v;
                    else if (!NumericColumn.TryParseCell(cell, out numeric[slot][rows]))
                        throw new KilnException($"{_path}: line {record.LineNumberFrom}, column '{_requests[slot].Name}': '{Shorten(cell)}' is not a number");
                }
                else if (ends[slot] is { } e)
                {
                    var at = charsUsed[slot];
                    if (at + cell.Length > chars[slot].Length) Array.Resize(ref chars[slot], Math.Max(at + cell.Length, chars[slot].Length * 2));
                    cell.CopyTo(chars[slot].AsSpan(at));
                    charsUsed[slot] = at += cell.Length;
                    e[rows] = cell.IsEmpty ? ~at : at;
                }
                else
                {
                    text[slot][rows] = cell.IsEmpty ? null : Intern(slot, cell);
                }
            }
            rows++;
            if ((rows & 0xFFFF) == 0) ct.ThrowIfCancellationRequested();
        }
        var table = new DataTable(rows);
        for (var r = 0; r < _requests.Length; r++)
        {
            // Past the last row an array holds zeros (nulls), as a fresh one did, never a recycled chunk's values.
            if (numeric[r] is { } nv && rows < nv.Length) nv.AsSpan(rows).Clear();
            if (text[r] is { } tv && rows < tv.Length) tv.AsSpan(rows).Clear();
            table.Add(_requests[r].Type == ColumnType.Numeric ? new NumericColumn(_requests[r].Name, numeric[r])
                : ends[r] is { } e ? new TextColumn(_requests[r].Name, new PackedText(chars[r], e, rows))
                : new TextColumn(_requests[r].Name, text[r]));
        }
        return table;

        void AllocateColumns(int size)
        {
            for (var r = 0; r < _requests.Length; r++)
            {
                if (_requests[r].Type == ColumnType.Numeric) Array.Resize(ref numeric[r], size);
                else if (ends[r] is not null) Array.Resize(ref ends[r], size);
                else Array.Resize(ref text[r], size);
            }
        }
    }

    /// <summary>Bytes consumed so far (for progress).</summary>
    public long Position => _stream.Position;

    public long Length => _stream.Length;

    /// <summary>The next record; an unclosed quote or a parse failure of Sep's becomes an error naming the file (and line).</summary>
    private bool Next(out SepReader.Row row)
    {
        bool more;
        try
        {
            more = _reader.MoveNext();
        }
        catch (Exception e) when (e is not KilnException and not OperationCanceledException)
        {
            throw new KilnException($"{_path}: {e.Message.Split('\n')[0].TrimEnd()}");
        }
        row = more ? _reader.Current : default;
        // A quote left open swallows the rest of the file into one field; every well-formed record has an even count.
        if (more && row.Span.Contains('"') && row.Span.Count('"') % 2 == 1)
            throw new KilnException($"{_path}: line {row.LineNumberFrom}: a quoted field is never closed");
        return more;
    }

    private string Intern(int slot, ReadOnlySpan<char> cell)
    {
        if (_unique[slot]) return cell.ToString();
        var interned = _interned[slot];
        var lookup = interned.GetAlternateLookup<ReadOnlySpan<char>>();
        var full = interned.Count >= InternLimit;
        if (lookup.TryGetValue(cell, out var s))
        {
            if (full) _fullHits[slot]++;
            return s;
        }
        s = cell.ToString();
        if (!full) interned[s] = s;
        else if (++_fullMisses[slot] == InternProbe && _fullHits[slot] < InternProbe)
        {
            // Once the table is full, a column whose values mostly miss it (an id, a free-text field) is not a
            // category: looking each cell up again would cost a hash and give nothing back, so its cells are just copied.
            _unique[slot] = true;
            interned.Clear();
            interned.TrimExcess();
        }
        return s;
    }

    private static string Shorten(ReadOnlySpan<char> s) => s.Length <= 40 ? s.ToString() : string.Concat(s[..40], "...");

    public void Dispose()
    {
        _reader.Dispose();
        _stream.Dispose();
    }
}
