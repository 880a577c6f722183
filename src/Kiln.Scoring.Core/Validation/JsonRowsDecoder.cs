using System.Text.Json;

namespace Kiln.Scoring.Validation;

/// <summary>
/// Decodes JSON rows into an <see cref="InputBatch"/>: one object of feature values, or an array of
/// such objects. The fast path (a span reader, no document, known categories matched without
/// allocating) serves /predict; the <see cref="JsonElement"/> overloads serve the other protocols.
/// </summary>
public static class JsonRowsDecoder
{
    private static readonly JsonReaderOptions Options = new() { MaxDepth = 64 };

    /// <summary>Decodes a whole body: an object (one row) or an array of objects.</summary>
    public static RequestError? Decode(ReadOnlySpan<byte> json, InputBatch batch)
    {
        var reader = new Utf8JsonReader(json, Options);
        try
        {
            if (!reader.Read()) return RequestError.Malformed("the body is empty; send a JSON object of feature values or an array of them");
            RequestError? error;
            if (reader.TokenType == JsonTokenType.StartObject)
            {
                error = ReadRow(ref reader, batch);
                if (error is not null) return error;
            }
            else if (reader.TokenType == JsonTokenType.StartArray)
            {
                batch.IsBatch = true;
                while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                {
                    if (reader.TokenType != JsonTokenType.StartObject)
                        return new RequestError(422, $"row {batch.Rows}: expected a JSON object of feature values, got {Describe(reader.TokenType)}", Row: batch.Rows);
                    error = ReadRow(ref reader, batch);
                    if (error is not null) return error;
                }
                if (batch.Rows == 0) return new RequestError(422, "the array holds no rows");
            }
            else
            {
                return new RequestError(400, $"expected a JSON object of feature values or an array of them, got {Describe(reader.TokenType)}");
            }
            // Anything after the value (a second document, garbage) is malformed.
            if (reader.Read()) return RequestError.Malformed("unexpected content after the JSON value");
            return null;
        }
        catch (JsonException e)
        {
            return RequestError.Malformed($"malformed JSON: {FirstSentence(e.Message)}");
        }
    }

    private static RequestError? ReadRow(ref Utf8JsonReader reader, InputBatch batch)
    {
        var error = batch.BeginRow();
        if (error is not null) return error;
        Span<char> name = stackalloc char[128];
        var field = -1;
        while (reader.Read() && reader.TokenType != JsonTokenType.EndObject)
        {
            // reader is on a property name: first tried as the field after the previous one (the signature's order)
            string? longName = null;
            var length = reader.HasValueSequence ? int.MaxValue : reader.ValueSpan.Length;
            if (!reader.HasValueSequence && !reader.ValueIsEscaped && batch.Schema.IsNameOf(field + 1, reader.ValueSpan))
            {
                field++;
            }
            else if (length <= name.Length && !reader.ValueIsEscaped)
            {
                var n = System.Text.Encoding.UTF8.GetChars(reader.ValueSpan, name);
                field = batch.Schema.IndexOf(name[..n]);
                if (field < 0) longName = name[..n].ToString();
            }
            else
            {
                longName = reader.GetString()!;
                field = batch.Schema.IndexOf(longName);
            }
            if (field < 0) return batch.Unknown(longName!);
            if ((error = batch.Mark(field)) is not null) return error;
            reader.Read();
            error = reader.TokenType switch
            {
                JsonTokenType.Number => reader.TryGetDouble(out var d) ? batch.SetNumber(field, d) : batch.SetNumber(field, double.PositiveInfinity),
                JsonTokenType.String => SetString(ref reader, batch, field),
                JsonTokenType.Null => batch.SetNull(field),
                JsonTokenType.True or JsonTokenType.False => batch.SetBoolean(field, reader.TokenType == JsonTokenType.True),
                _ => batch.WrongType(field, Describe(reader.TokenType)),
            };
            if (error is not null) return error;
        }
        return batch.EndRow();
    }

    private static RequestError? SetString(ref Utf8JsonReader reader, InputBatch batch, int field)
    {
        Span<char> buffer = stackalloc char[256];
        if (!reader.HasValueSequence && !reader.ValueIsEscaped && reader.ValueSpan.Length <= buffer.Length)
        {
            var n = System.Text.Encoding.UTF8.GetChars(reader.ValueSpan, buffer);
            return batch.SetString(field, buffer[..n]);
        }
        var s = reader.GetString()!;
        return batch.SetString(field, s, s);
    }

    /// <summary>
    /// Validates rows given as name → value maps (an input example, rows from a file) against a signature with the
    /// serving rules and messages, into a table of exactly those rows; a mistake is a KilnException naming the row and field.
    /// </summary>
    public static Kiln.Core.Data.DataTable ToTable(IReadOnlyList<Dictionary<string, JsonElement>> rows, Kiln.Core.Packaging.ModelSignature signature)
    {
        var schema = new ModelSchema(signature, UnseenCategoryPolicy.Reject, int.MaxValue);
        var batch = schema.Rent(rows.Count);
        batch.IsBatch = true;
        foreach (var row in rows)
        {
            if (DecodeRow(row, batch) is { } error) throw new Kiln.Core.KilnException(error.Message);
        }
        // The batch's arrays may be longer than its rows: copy exactly the rows out.
        var all = new int[batch.Rows];
        for (var i = 0; i < all.Length; i++) all[i] = i;
        return batch.Table.Take(all);
    }

    /// <summary>Decodes one row given as a map of input name to JSON value.</summary>
    public static RequestError? DecodeRow(Dictionary<string, JsonElement> row, InputBatch batch)
    {
        var error = batch.BeginRow();
        if (error is not null) return error;
        foreach (var (name, value) in row)
        {
            var field = batch.Schema.IndexOf(name);
            if (field < 0) return batch.Unknown(name);
            if ((error = batch.Mark(field)) is not null) return error;
            if ((error = SetCell(value, batch, field)) is not null) return error;
        }
        return batch.EndRow();
    }

    /// <summary>Decodes one JSON object (a row) given as an element.</summary>
    public static RequestError? DecodeRow(JsonElement row, InputBatch batch)
    {
        if (row.ValueKind != JsonValueKind.Object)
            return new RequestError(422, $"row {batch.Rows}: expected a JSON object of feature values, got {Describe(row.ValueKind)}", Row: batch.Rows);
        var error = batch.BeginRow();
        if (error is not null) return error;
        foreach (var property in row.EnumerateObject())
        {
            var field = batch.Schema.IndexOf(property.Name);
            if (field < 0) return batch.Unknown(property.Name);
            if ((error = batch.Mark(field)) is not null) return error;
            if ((error = SetCell(property.Value, batch, field)) is not null) return error;
        }
        return batch.EndRow();
    }

    /// <summary>Sets one cell of the current row from a JSON value.</summary>
    public static RequestError? SetCell(JsonElement value, InputBatch batch, int field) => value.ValueKind switch
    {
        JsonValueKind.Number => value.TryGetDouble(out var d) ? batch.SetNumber(field, d) : batch.SetNumber(field, double.PositiveInfinity),
        JsonValueKind.String => batch.SetString(field, value.GetString()!, value.GetString()),
        JsonValueKind.Null => batch.SetNull(field),
        JsonValueKind.True or JsonValueKind.False => batch.SetBoolean(field, value.ValueKind == JsonValueKind.True),
        _ => batch.WrongType(field, Describe(value.ValueKind)),
    };

    public static string Describe(JsonTokenType t) => t switch
    {
        JsonTokenType.StartObject => "an object",
        JsonTokenType.StartArray => "an array",
        JsonTokenType.True or JsonTokenType.False => "a boolean",
        JsonTokenType.String => "a string",
        JsonTokenType.Number => "a number",
        JsonTokenType.Null => "null",
        _ => t.ToString(),
    };

    public static string Describe(JsonValueKind k) => k switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.Null => "null",
        _ => k.ToString(),
    };

    /// <summary>System.Text.Json's message (what is wrong, and the line and byte position) on one line.</summary>
    public static string FirstSentence(string message) => message.ReplaceLineEndings(" ");
}
