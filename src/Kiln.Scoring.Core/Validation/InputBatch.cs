using Kiln.Core.Data;

namespace Kiln.Scoring.Validation;

/// <summary>
/// The rows of one request, decoded and validated into columns named as the signature's inputs
/// (numbers as doubles, NaN = missing; categories as strings). Every protocol fills one through
/// the same cell setters, so every protocol validates the same way. Pooled per model.
/// </summary>
public sealed class InputBatch
{
    private readonly ModelSchema _schema;
    private readonly bool[] _seen;
    private double[]?[] _numeric;
    private string?[]?[] _text;
    private DataTable _table;

    internal InputBatch(ModelSchema schema, int capacity)
    {
        _schema = schema;
        _seen = new bool[schema.Fields.Count];
        _numeric = new double[schema.Fields.Count][];
        _text = new string?[schema.Fields.Count][];
        _table = Allocate(capacity);
    }

    public ModelSchema Schema => _schema;

    /// <summary>The rows as a table for the scorer (its arrays may be longer than <see cref="Rows"/>).</summary>
    public DataTable Table => _table;

    public int Rows { get; private set; }

    public int Capacity { get; private set; }

    /// <summary>Did the request come as a batch (an array) rather than one object? Error messages then name the row.</summary>
    public bool IsBatch { get; set; }

    /// <summary>Rows accepted with a warning (unseen categories under the flag policy): row and message.</summary>
    public List<(int Row, string Message)>? Flags { get; private set; }

    public double[] NumericValues(int field) => _numeric[field]!;

    public string?[] TextValues(int field) => _text[field]!;

    internal void Clear(int rowsHint)
    {
        Rows = 0;
        IsBatch = false;
        Flags = null;
        if (rowsHint > Capacity) _table = Allocate(rowsHint);
    }

    private DataTable Allocate(int capacity)
    {
        var table = new DataTable();
        for (var i = 0; i < _schema.Fields.Count; i++)
        {
            var f = _schema.Fields[i];
            if (f.IsNumeric)
            {
                var values = new double[capacity];
                if (_numeric[i] is { } old) Array.Copy(old, values, Math.Min(old.Length, Rows));
                _numeric[i] = values;
                table.Add(new NumericColumn(f.Name, values));
            }
            else
            {
                var values = new string?[capacity];
                if (_text[i] is { } old) Array.Copy(old, values, Math.Min(old.Length, Rows));
                _text[i] = values;
                table.Add(new TextColumn(f.Name, values));
            }
        }
        Capacity = capacity;
        return table;
    }

    /// <summary>Starts a new row; false (with an error) when the request has too many rows.</summary>
    public RequestError? BeginRow()
    {
        if (Rows >= _schema.MaxRows) return new RequestError(422, $"the request has more than {_schema.MaxRows} rows");
        if (Rows == Capacity) _table = Allocate(Math.Max(4, Capacity * 2));
        Array.Clear(_seen);
        return null;
    }

    /// <summary>Ends the current row: fields not given are missing (allowed only when nullable).</summary>
    public RequestError? EndRow()
    {
        var row = Rows;
        for (var i = 0; i < _seen.Length; i++)
        {
            if (_seen[i]) continue;
            var f = _schema.Fields[i];
            if (!f.Nullable) return RequestError.Invalid(f.Name, row, IsBatch, ValidationMessages.RequiredFieldMissing);
            SetMissing(i, row);
        }
        Rows = row + 1;
        return null;
    }

    /// <summary>Marks a field as given in the current row; an error when it was given twice.</summary>
    public RequestError? Mark(int field)
    {
        if (_seen[field]) return RequestError.Invalid(_schema.Fields[field].Name, Rows, IsBatch, "field appears twice");
        _seen[field] = true;
        return null;
    }

    public RequestError Unknown(string name) =>
        RequestError.Invalid(name, Rows, IsBatch, $"unknown field (the model's inputs are {string.Join(", ", _schema.Fields.Select(f => f.Name))})");

    public RequestError? SetNumber(int field, double value)
    {
        var f = _schema.Fields[field];
        if (!double.IsFinite(value)) return RequestError.Invalid(f.Name, Rows, IsBatch, ValidationMessages.NotFinite);
        if (f.IsNumeric)
        {
            if (f.WholeNumber && ValidationMessages.WholeNumberProblem(value, f.TensorType) is { } problem)
                return RequestError.Invalid(f.Name, Rows, IsBatch, problem);
            _numeric[field]![Rows] = value;
            return null;
        }
        // A categorical field given as a number (pandas sends integer codes this way): compare its text.
        return SetCategory(f, value.ToString("R", System.Globalization.CultureInfo.InvariantCulture));
    }

    public RequestError? SetString(int field, ReadOnlySpan<char> value, string? text = null)
    {
        var f = _schema.Fields[field];
        if (!f.IsNumeric)
        {
            if (f.Categories is not null && f.CategoryLookup.TryGetValue(value, out var known))
            {
                _text[field]![Rows] = known;
                return null;
            }
            return SetCategory(f, text ?? value.ToString());
        }
        // JSON has no NaN or Infinity; clients send them as strings.
        var trimmed = value.Trim();
        if (f.IsBoolean && trimmed.Equals("true", StringComparison.OrdinalIgnoreCase)) return SetBoolean(field, true);
        if (f.IsBoolean && trimmed.Equals("false", StringComparison.OrdinalIgnoreCase)) return SetBoolean(field, false);
        if (trimmed.Equals("NaN", StringComparison.OrdinalIgnoreCase))
        {
            if (!f.Nullable) return RequestError.Invalid(f.Name, Rows, IsBatch, ValidationMessages.NaNNotAllowed);
            _numeric[field]![Rows] = double.NaN;
            return null;
        }
        if (IsInfinity(trimmed)) return RequestError.Invalid(f.Name, Rows, IsBatch, "Infinity is not allowed");
        return RequestError.Invalid(f.Name, Rows, IsBatch, "expected a number, got a string");
    }

    /// <summary>A cell from text where numbers come as text too (CSV): numeric fields parse it; empty = missing.</summary>
    public RequestError? SetText(int field, string cell)
    {
        var f = _schema.Fields[field];
        if (cell.Length == 0) return SetNull(field);
        if (!f.IsNumeric) return SetString(field, cell, cell);
        if (NumericColumn.TryParseCell(cell, out var v))
        {
            if (double.IsNaN(v) || double.IsInfinity(v)) return SetString(field, cell, cell);
            return SetNumber(field, v);
        }
        return SetString(field, cell, cell) ?? RequestError.Invalid(f.Name, Rows, IsBatch, ValidationMessages.NotANumber(cell));
    }

    /// <summary>A JSON true/false: 1 or 0 for an input fed to a boolean tensor, a wrong type for any other.</summary>
    public RequestError? SetBoolean(int field, bool value)
    {
        var f = _schema.Fields[field];
        if (!f.IsBoolean) return WrongType(field, "a boolean");
        _numeric[field]![Rows] = value ? 1 : 0;
        return null;
    }

    public RequestError? SetNull(int field)
    {
        var f = _schema.Fields[field];
        if (!f.Nullable) return RequestError.Invalid(f.Name, Rows, IsBatch, ValidationMessages.NullNotAllowed);
        SetMissing(field, Rows);
        return null;
    }

    public RequestError WrongType(int field, string got)
    {
        var f = _schema.Fields[field];
        return RequestError.Invalid(f.Name, Rows, IsBatch, $"expected {(f.IsBoolean ? "true, false, 0 or 1" : f.IsNumeric ? "a number" : "a string (category)")}, got {got}");
    }

    private void SetMissing(int field, int row)
    {
        if (_numeric[field] is { } n) n[row] = double.NaN;
        else _text[field]![row] = null;
    }

    private RequestError? SetCategory(SchemaField f, string value)
    {
        if (f.Categories is null || f.Categories.Contains(value))
        {
            _text[f.Index]![Rows] = value;
            return null;
        }
        if (_schema.Policy == UnseenCategoryPolicy.Reject)
            return RequestError.Invalid(f.Name, Rows, IsBatch, ValidationMessages.UnseenCategory(value));
        (Flags ??= []).Add((Rows, $"{f.Name}: unseen category '{ValidationMessages.Shorten(value)}'"));
        _text[f.Index]![Rows] = value;
        return null;
    }

    private static bool IsInfinity(ReadOnlySpan<char> s) =>
        s.Equals("Infinity", StringComparison.OrdinalIgnoreCase) || s.Equals("+Infinity", StringComparison.OrdinalIgnoreCase)
        || s.Equals("-Infinity", StringComparison.OrdinalIgnoreCase) || s.Equals("inf", StringComparison.OrdinalIgnoreCase)
        || s.Equals("-inf", StringComparison.OrdinalIgnoreCase) || s.Equals("+inf", StringComparison.OrdinalIgnoreCase);
}
