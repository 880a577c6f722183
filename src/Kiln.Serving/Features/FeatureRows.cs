using System.Text.Json;
using Kiln.Scoring.Validation;

namespace Kiln.Serving.Features;

/// <summary>
/// The request bodies of the native protocol, MLflow's scoring protocol and Open Inference v2 read as rows of named values, for models that
/// read features: there the names are join keys and request fields, not the model's inputs, so the bodies cannot go
/// straight into the model's input batch as they do for other models.
/// </summary>
internal static class FeatureRows
{
    /// <summary>Native /predict: one object of join keys and request fields, or an array of them (a batch).</summary>
    public static (RequestError? Error, bool IsBatch) FromNative(JsonElement root, List<FeatureRow> rows)
    {
        var isBatch = root.ValueKind == JsonValueKind.Array;
        if (!isBatch && root.ValueKind != JsonValueKind.Object)
            return (new RequestError(400, $"expected a JSON object (join keys and request fields) or an array of them, got {JsonRowsDecoder.Describe(root.ValueKind)}"), false);
        if (!isBatch)
        {
            rows.Add(FeatureRow.Of(root));
            return (null, false);
        }
        foreach (var r in root.EnumerateArray())
        {
            if (r.ValueKind != JsonValueKind.Object)
                return (new RequestError(422, $"row {rows.Count}: expected a JSON object, got {JsonRowsDecoder.Describe(r.ValueKind)}", Row: rows.Count), true);
            rows.Add(FeatureRow.Of(r));
        }
        return (null, true);
    }

    /// <summary>
    /// MLflow: dataframe_split ({columns, data}), dataframe_records, or instances/inputs as records or as columns
    /// ({name: [values]}). Rows without names (positional lists) are refused: the names say which value is which key.
    /// </summary>
    public static RequestError? FromMlflow(JsonElement root, List<FeatureRow> rows)
    {
        var error = Protocols.MlflowScoring.InvocationsEndpoints.Payload(root, out var kind, out var payload);
        if (error is not null) return error;
        if (kind == "dataframe_split") return Split(payload, rows);
        if (payload.ValueKind == JsonValueKind.Object) return FromColumns(payload, kind, rows);
        if (payload.ValueKind != JsonValueKind.Array) return new RequestError(400, $"{kind} must be an array of records", kind);
        foreach (var row in payload.EnumerateArray())
        {
            if (row.ValueKind != JsonValueKind.Object)
                return new RequestError(422, $"row {rows.Count}: expected a record of join keys and request fields, got {JsonRowsDecoder.Describe(row.ValueKind)}", kind, rows.Count);
            rows.Add(FeatureRow.Of(row));
        }
        return null;
    }

    private static RequestError? Split(JsonElement value, List<FeatureRow> rows)
    {
        if (value.ValueKind != JsonValueKind.Object || !value.TryGetProperty("columns", out var cols) || cols.ValueKind != JsonValueKind.Array)
            return new RequestError(400, "dataframe_split needs columns (the join keys and request fields) and data", "columns");
        var names = new List<string>();
        foreach (var c in cols.EnumerateArray())
        {
            if (c.ValueKind != JsonValueKind.String) return new RequestError(400, "dataframe_split.columns must be an array of names", "columns");
            names.Add(c.GetString()!);
        }
        if (!value.TryGetProperty("data", out var data) || data.ValueKind != JsonValueKind.Array)
            return new RequestError(400, "dataframe_split.data must be an array of rows", "data");
        foreach (var row in data.EnumerateArray())
        {
            if (row.ValueKind != JsonValueKind.Array || row.GetArrayLength() != names.Count)
                return new RequestError(422, $"row {rows.Count}: expected an array of {names.Count} values (one per column)", "data", rows.Count);
            var cells = new List<(string, JsonElement)>(names.Count);
            var i = 0;
            foreach (var cell in row.EnumerateArray()) cells.Add((names[i++], cell));
            rows.Add(new FeatureRow(cells));
        }
        return null;
    }

    /// <summary>Columns {name: [v0, v1, …]} of one length, as rows (MLflow's columnar instances/inputs; gRPC's tensors).</summary>
    public static RequestError? FromColumns(JsonElement value, string kind, List<FeatureRow> rows)
    {
        var columns = new List<(string Name, List<JsonElement> Values)>();
        foreach (var p in value.EnumerateObject())
        {
            if (p.Value.ValueKind != JsonValueKind.Array) return new RequestError(422, $"{p.Name}: {kind} columns must be arrays of values", p.Name);
            columns.Add((p.Name, [.. p.Value.EnumerateArray()]));
        }
        return ToRows(columns, rows);
    }

    /// <summary>
    /// Open Inference v2: one tensor per join key or request field, each of shape [rows] or [rows, 1], BYTES for text.
    /// Also reads the request's id and the outputs it asks for.
    /// </summary>
    public static RequestError? FromV2(JsonElement root, List<FeatureRow> rows, out string? id, out List<string> requested)
    {
        var error = Protocols.OpenInference.V2RestEndpoints.Envelope(root, out id, out requested, out var inputs);
        if (error is not null) return error;
        var columns = new List<(string Name, List<JsonElement> Values)>();
        foreach (var t in inputs.EnumerateArray())
        {
            if (t.ValueKind != JsonValueKind.Object || !t.TryGetProperty("name", out var n) || n.ValueKind != JsonValueKind.String)
                return new RequestError(400, "each input must be a tensor object with a name", "inputs");
            var name = n.GetString()!;
            if (!t.TryGetProperty("shape", out var shape) || shape.ValueKind != JsonValueKind.Array || shape.GetArrayLength() is < 1 or > 2)
                return new RequestError(400, $"{name}: shape must be [rows] or [rows, 1]", name);
            var dims = shape.EnumerateArray().Select(d => d.TryGetInt64(out var v) ? v : -1).ToArray();
            if (dims[0] < 0 || (dims.Length == 2 && dims[1] != 1)) return new RequestError(400, $"{name}: shape must be [rows] or [rows, 1]", name);
            var values = new List<JsonElement>();
            if (!t.TryGetProperty("data", out var data) || !Protocols.OpenInference.V2RestEndpoints.Flatten(data, values, 0))
                return new RequestError(400, $"{name}: data must be an array (nested arrays are read row-major)", name);
            if (values.Count != dims[0]) return new RequestError(400, $"{name}: shape says {dims[0]} values, data has {values.Count}", name);
            columns.Add((name, values));
        }
        return ToRows(columns, rows);
    }

    private static RequestError? ToRows(List<(string Name, List<JsonElement> Values)> columns, List<FeatureRow> rows)
    {
        var count = columns.Count == 0 ? 0 : columns[0].Values.Count;
        foreach (var (name, values) in columns)
            if (values.Count != count) return new RequestError(422, $"{name}: has {values.Count} values where {columns[0].Name} has {count}", name);
        for (var r = 0; r < count; r++) rows.Add(new FeatureRow([.. columns.Select(c => (c.Name, c.Values[r]))]));
        return null;
    }
}
