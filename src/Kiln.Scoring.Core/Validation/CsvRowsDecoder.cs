using System.Text;

namespace Kiln.Scoring.Validation;

/// <summary>
/// Reads CSV records (RFC 4180: commas, double-quoted cells with "" escapes and embedded newlines; a CR outside
/// quotes is dropped) one at a time from a text stream, counting lines so errors can name them.
/// </summary>
public sealed class CsvRecordReader(TextReader reader)
{
    private readonly char[] _buffer = new char[1 << 16];
    private readonly StringBuilder _cell = new();
    private int _position;
    private int _length;
    private int _line = 1;

    /// <summary>The line on which the record last read starts (1 = the first line).</summary>
    public int Line { get; private set; }

    /// <summary>Reads the next record into <paramref name="record"/>; false at the end of the input.</summary>
    public bool Read(List<string> record)
    {
        record.Clear();
        _cell.Clear();
        Line = _line;
        var quoted = false;
        var any = false;
        while (true)
        {
            if (_position == _length)
            {
                _length = reader.Read(_buffer, 0, _buffer.Length);
                _position = 0;
                if (_length == 0)
                {
                    if (!any) return false;
                    record.Add(_cell.ToString());
                    return true;
                }
            }
            var c = _buffer[_position++];
            any = true;
            if (c == '\n') _line++;
            if (quoted)
            {
                if (c != '"') { _cell.Append(c); continue; }
                if (_position == _length)
                {
                    _length = reader.Read(_buffer, 0, _buffer.Length);
                    _position = 0;
                }
                if (_position < _length && _buffer[_position] == '"') { _cell.Append('"'); _position++; }
                else quoted = false;
                continue;
            }
            switch (c)
            {
                case '"': quoted = true; break;
                case ',': record.Add(_cell.ToString()); _cell.Clear(); break;
                case '\r': break;
                case '\n': record.Add(_cell.ToString()); return true;
                default: _cell.Append(c); break;
            }
        }
    }
}

/// <summary>
/// CSV rows into an <see cref="InputBatch"/>: a header naming the inputs, then one row per record, each cell set with
/// <see cref="InputBatch.SetText"/> (numbers parsed, empty = missing). Used by MLflow's /invocations and the edge scorer.
/// </summary>
public static class CsvRowsDecoder
{
    /// <summary>Is the record an empty line (skipped)?</summary>
    public static bool IsBlank(List<string> record) => record.Count == 1 && record[0].Length == 0;

    /// <summary>The schema field of each header cell; an error names a column that is not an input.</summary>
    public static RequestError? Header(List<string> record, InputBatch batch, out int[] columns)
    {
        columns = new int[record.Count];
        for (var i = 0; i < record.Count; i++)
        {
            var index = batch.Schema.IndexOf(record[i].Trim());
            if (index < 0) return batch.Unknown(record[i].Trim());
            columns[i] = index;
        }
        return null;
    }

    /// <summary>Why a record cannot be a row (its cell count differs from the header's), or null.</summary>
    public static string? CountProblem(List<string> record, int[] columns) =>
        record.Count == columns.Length ? null : $"has {record.Count} cells, the header has {columns.Length}";

    /// <summary>Adds one record (of the header's width: <see cref="CountProblem"/>) as a row.</summary>
    public static RequestError? Row(List<string> record, int[] columns, InputBatch batch)
    {
        var error = batch.BeginRow();
        if (error is not null) return error;
        for (var i = 0; i < columns.Length; i++)
        {
            if ((error = batch.Mark(columns[i])) is not null) return error;
            if ((error = batch.SetText(columns[i], record[i])) is not null) return error;
        }
        return batch.EndRow();
    }

    /// <summary>A whole CSV body (a header row, then rows) into a batch whose errors name the row.</summary>
    public static RequestError? Decode(TextReader text, InputBatch batch)
    {
        batch.IsBatch = true;
        var reader = new CsvRecordReader(text);
        var record = new List<string>();
        int[]? columns = null;
        var line = 0;
        while (reader.Read(record))
        {
            line++;
            if (IsBlank(record)) continue;
            RequestError? error;
            if (columns is null) error = Header(record, batch, out columns);
            else if (CountProblem(record, columns) is { } problem) error = new RequestError(422, $"line {line}: {problem}", Row: batch.Rows);
            else error = Row(record, columns, batch);
            if (error is not null) return error;
        }
        if (columns is null) return new RequestError(400, "the CSV body is empty; send a header row and data rows");
        return batch.Rows == 0 ? new RequestError(422, "the CSV body has a header but no rows") : null;
    }
}
