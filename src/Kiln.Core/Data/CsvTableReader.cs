namespace Kiln.Core.Data;

/// <summary>
/// Reads CSV (RFC 4180: a header row, commas, double-quoted fields with "" escapes and embedded
/// newlines) into typed columns. Only requested columns are kept. A cell that is not a number in a
/// numeric column is an error naming the file, line and column; an empty cell is missing.
/// </summary>
public sealed class CsvTableReader : IDisposable
{
    private readonly StreamReader _reader;
    private readonly string _path;
    private readonly int[] _slotOfField;     // header field index -> requested slot, or -1
    private readonly ColumnRequest[] _requests;
    private readonly Dictionary<string, string>[] _interned;
    private readonly List<int> _fieldStarts = [];
    private readonly List<int> _fieldLengths = [];
    private readonly System.Text.StringBuilder _record = new();
    private long _line;   // physical line number of the record being read (1 = header)

    private CsvTableReader(string path, IReadOnlyList<ColumnRequest> requests, long rangeStart = 0, long rangeEnd = -1)
    {
        _path = path;
        _reader = new StreamReader(path, System.Text.Encoding.UTF8, detectEncodingFromByteOrderMarks: true, bufferSize: 1 << 16);
        if (!ReadRecord(out var header)) throw new KilnException($"{path}: the file is empty (no header row)");
        var headerFields = new string[_fieldStarts.Count];
        for (var i = 0; i < headerFields.Length; i++) headerFields[i] = Field(header, i).Trim().ToString();
        if (rangeEnd >= 0)
        {
            // A byte range of the file: the header was read above; the records are those of [start, end).
            _reader.Dispose();
            var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
            file.Seek(rangeStart, SeekOrigin.Begin);
            _reader = new StreamReader(new RangeStream(file, rangeEnd - rangeStart), System.Text.Encoding.UTF8, detectEncodingFromByteOrderMarks: false, bufferSize: 1 << 16);
            _path = $"{path} (bytes {rangeStart}-{rangeEnd})";
            _line = 0;
        }
        Header = headerFields;
        _requests = [.. requests];
        _slotOfField = new int[headerFields.Length];
        Array.Fill(_slotOfField, -1);
        for (var r = 0; r < _requests.Length; r++)
        {
            var idx = Array.IndexOf(headerFields, _requests[r].Name);
            if (idx < 0) throw new KilnException($"{path}: column '{_requests[r].Name}' is missing (the header has: {string.Join(", ", headerFields)})");
            _slotOfField[idx] = r;
        }
        _interned = new Dictionary<string, string>[_requests.Length];
        for (var r = 0; r < _interned.Length; r++) _interned[r] = new(StringComparer.Ordinal);
    }

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

    /// <summary>Reads up to <paramref name="maxRows"/> rows; an empty table at the end of the file.</summary>
    public DataTable ReadBatch(int maxRows, CancellationToken ct = default)
    {
        var capacity = Math.Min(maxRows, 1 << 16);
        var numeric = new double[_requests.Length][];
        var text = new string?[_requests.Length][];
        AllocateColumns(capacity);
        var rows = 0;
        while (rows < maxRows && ReadRecord(out var record))
        {
            if (_fieldStarts.Count == 1 && _fieldLengths[0] == 0 && record.IsEmpty) continue; // blank line
            if (_fieldStarts.Count != _slotOfField.Length)
                throw new KilnException($"{_path}: line {_line} has {_fieldStarts.Count} fields, the header has {_slotOfField.Length}");
            if (rows == capacity)
            {
                capacity = Math.Min(maxRows, capacity * 2);
                AllocateColumns(capacity);
            }
            for (var f = 0; f < _slotOfField.Length; f++)
            {
                var slot = _slotOfField[f];
                if (slot < 0) continue;
                var cell = Field(record, f);
                if (_requests[slot].Type == ColumnType.Numeric)
                {
                    if (!NumericColumn.TryParseCell(cell, out numeric[slot][rows]))
                        throw new KilnException($"{_path}: line {_line}, column '{_requests[slot].Name}': '{Shorten(cell)}' is not a number");
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
            table.Add(_requests[r].Type == ColumnType.Numeric
                ? new NumericColumn(_requests[r].Name, numeric[r])
                : new TextColumn(_requests[r].Name, text[r]));
        }
        return table;

        void AllocateColumns(int size)
        {
            for (var r = 0; r < _requests.Length; r++)
            {
                if (_requests[r].Type == ColumnType.Numeric) Array.Resize(ref numeric[r], size);
                else Array.Resize(ref text[r], size);
            }
        }
    }

    /// <summary>Bytes consumed so far (for progress).</summary>
    public long Position => _reader.BaseStream.Position;

    public long Length => _reader.BaseStream.Length;

    private string Intern(int slot, ReadOnlySpan<char> cell)
    {
        var lookup = _interned[slot].GetAlternateLookup<ReadOnlySpan<char>>();
        if (lookup.TryGetValue(cell, out var s)) return s;
        s = cell.ToString();
        if (_interned[slot].Count < 100_000) _interned[slot][s] = s;
        return s;
    }

    private static string Shorten(ReadOnlySpan<char> s) => s.Length <= 40 ? s.ToString() : string.Concat(s[..40], "...");

    private ReadOnlySpan<char> Field(ReadOnlySpan<char> record, int i)
    {
        var field = record.Slice(_fieldStarts[i], _fieldLengths[i]);
        if (field.Length >= 2 && field[0] == '"' && field[^1] == '"')
        {
            field = field[1..^1];
            if (field.Contains("\"\"", StringComparison.Ordinal)) return field.ToString().Replace("\"\"", "\"", StringComparison.Ordinal);
        }
        return field;
    }

    /// <summary>Reads one logical record (which may span lines inside quotes) and splits its fields.</summary>
    private bool ReadRecord(out ReadOnlySpan<char> record)
    {
        record = default;
        var line = _reader.ReadLine();
        if (line is null) return false;
        _line++;
        var startLine = _line;
        string text = line;
        if (CountQuotes(line) % 2 == 1)
        {
            _record.Clear().Append(line);
            var quotes = CountQuotes(line);
            while (quotes % 2 == 1)
            {
                var next = _reader.ReadLine() ?? throw new KilnException($"{_path}: line {startLine}: a quoted field is never closed");
                _line++;
                _record.Append('\n').Append(next);
                quotes += CountQuotes(next);
            }
            text = _record.ToString();
        }
        record = text;
        Split(record);
        _line = Math.Max(_line, startLine);
        return true;
    }

    private static int CountQuotes(string s) => s.AsSpan().Count('"');

    private void Split(ReadOnlySpan<char> record)
    {
        _fieldStarts.Clear();
        _fieldLengths.Clear();
        var start = 0;
        var inQuotes = false;
        for (var i = 0; i < record.Length; i++)
        {
            var c = record[i];
            if (c == '"') inQuotes = !inQuotes;
            else if (c == ',' && !inQuotes)
            {
                _fieldStarts.Add(start);
                _fieldLengths.Add(i - start);
                start = i + 1;
            }
        }
        var end = record.Length;
        if (end > start && record[end - 1] == '\r') end--;
        _fieldStarts.Add(start);
        _fieldLengths.Add(end - start);
    }

    public void Dispose() => _reader.Dispose();
}
