using System.Globalization;
using System.Text.Json;
using Kiln.Core;
using Kiln.Features.Online;
using Kiln.Scoring.Validation;

namespace Kiln.Serving.Features;

/// <summary>
/// Scoring a model that reads its inputs from the feature store: each row carries the entity's join keys (and any
/// request-time inputs); the features come from the online store (as of now, ttl enforced), fill the model's inputs,
/// and the row is scored. Features that are not PRESENT reach the model as missing values and are listed. The
/// protocols (native /predict, MLflow /invocations, Open Inference v2 over REST and gRPC) decode their bodies into
/// <see cref="FeatureRow"/>s (<see cref="FeatureRows"/>) and render the answer; <see cref="Inference.Call.FillFeaturesAsync"/>
/// hands the rows to <see cref="FillAsync"/>, with the binding the model version made once.
/// </summary>
internal static class FeaturePredict
{
    /// <summary>
    /// Checks the rows (every join key, no feature sent, only the model's request fields), reads the features of every
    /// row in one online read and fills the call's batch. Returns the features that had no value (row, input, status),
    /// or the client's mistake (400/422 naming the key, field and row) or a store failure (503).
    /// </summary>
    public static async Task<(List<(int Row, string Input, FeatureStatus Status)>? Missing, RequestError? Error)> FillAsync(
        FeatureBinding binding, Inference.Call call, IReadOnlyList<FeatureRow> rows, bool isBatch, int maxRows, CancellationToken ct)
    {
        var model = call.Model!;
        if (rows.Count == 0) return (null, new RequestError(422, "the request holds no rows"));
        if (rows.Count > maxRows) return (null, new RequestError(422, $"the request has more than {maxRows} rows"));

        // Entity keys, column-major, for one online read of every row.
        var entities = new Dictionary<string, IReadOnlyList<object?>>(StringComparer.Ordinal);
        foreach (var key in binding.JoinKeys) entities[key] = new object?[rows.Count];
        var schema = model.Schema;
        for (var i = 0; i < rows.Count; i++)
        {
            var row = rows[i];
            foreach (var key in binding.JoinKeys)
            {
                if (row.Find(key) is not { ValueKind: not JsonValueKind.Null } value)
                    return (null, new RequestError(400, Prefix(isBatch, i) + $"{key}: missing entity key (model '{model.Name}' reads feature service '{binding.Service}' by {string.Join(", ", binding.JoinKeys)})", key, isBatch ? i : null) { Code = "missing_entity_key" });
                ((object?[])entities[key])[i] = value;
            }
            foreach (var (name, _) in row.Cells)
            {
                if (binding.JoinKeys.Contains(name)) continue;
                var field = schema.IndexOf(name);
                if (field < 0)
                    return (null, RequestError.Invalid(name, i, isBatch, $"unknown field (send the entity keys {string.Join(", ", binding.JoinKeys)}{RequestFields(binding, schema)})"));
                if (binding.FromStore[field])
                    return (null, RequestError.Invalid(name, i, isBatch, $"is read from the feature store ({FeatureOf(binding, field)}); do not send it"));
            }
        }

        OnlineFeatureResult online;
        try
        {
            online = await binding.Reader.ReadAsync(binding.Features, entities, fullNames: true, includeJoinKeys: false, ct).ConfigureAwait(false);
        }
        catch (KilnException e)
        {
            // Entity keys of the wrong type: the client's mistake, named.
            return (null, new RequestError(400, e.Message, "entities") { Code = "invalid_entity_key" });
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            return (null, new RequestError(503, $"the online store could not be read: {OneLine(e)}", "feature_store"));
        }
        var columns = new OnlineFeatureColumn[binding.Features.Count];
        for (var f = 0; f < columns.Length; f++)
        {
            var name = binding.Features[f].FullName;
            foreach (var c in online.Columns) if (c.Name == name) { columns[f] = c; break; }
        }

        var batch = call.NewBatch(rows.Count);
        batch.IsBatch = isBatch;
        var missing = new List<(int Row, string Input, FeatureStatus Status)>();
        for (var i = 0; i < rows.Count; i++)
        {
            var error = batch.BeginRow();
            if (error is not null) return (null, error);
            foreach (var (name, value) in rows[i].Cells)
            {
                var field = schema.IndexOf(name);
                if (field < 0) continue; // a join key that is not a model input
                if ((error = batch.Mark(field)) is not null || (error = JsonRowsDecoder.SetCell(value, batch, field)) is not null) return (null, error);
            }
            for (var f = 0; f < columns.Length; f++)
            {
                var field = binding.Fields[f];
                var column = columns[f];
                batch.Mark(field);
                if (column.Statuses[i] != FeatureStatus.Present || column.Values[i] is null)
                {
                    missing.Add((i, schema.Fields[field].Name, column.Statuses[i]));
                    SetMissing(batch, field);
                }
                else if ((error = Set(batch, field, column.Values[i]!)) is not null)
                {
                    return (null, error);
                }
            }
            if ((error = batch.EndRow()) is not null) return (null, error);
        }
        return (missing, null);
    }

    /// <summary>A feature value as the model input takes it, converted exactly as the trainer read the training set's column.</summary>
    private static RequestError? Set(InputBatch batch, int field, object value)
    {
        if (batch.Schema.Fields[field].IsNumeric)
        {
            double number = value switch
            {
                double d => d,
                float f => f,
                long l => l,
                int i => i,
                bool b => b ? 1 : 0,
                _ => double.NaN,
            };
            if (double.IsNaN(number)) { SetMissing(batch, field); return null; }
            return batch.SetNumber(field, number);
        }
        var text = value switch
        {
            string s => s,
            double d => d.ToString("R", CultureInfo.InvariantCulture),
            float f => ((double)f).ToString("R", CultureInfo.InvariantCulture),
            long l => ((double)l).ToString("R", CultureInfo.InvariantCulture),
            int i => ((double)i).ToString("R", CultureInfo.InvariantCulture),
            bool b => b ? "1" : "0",
            DateTime t => t.ToString("O", CultureInfo.InvariantCulture),
            _ => Convert.ToString(value, CultureInfo.InvariantCulture) ?? "",
        };
        return batch.SetString(field, text, text);
    }

    /// <summary>A feature with no value is missing for the model (NaN or no category), whatever the signature's nullability says.</summary>
    private static void SetMissing(InputBatch batch, int field)
    {
        if (batch.Schema.Fields[field].IsNumeric) batch.NumericValues(field)[batch.Rows] = double.NaN;
        else batch.TextValues(field)[batch.Rows] = null;
    }

    /// <summary>The features of a row that had no value, as <c>"missing_features": {input: status}</c> (nothing when all were found).</summary>
    internal static void WriteMissing(Utf8JsonWriter writer, List<(int Row, string Input, FeatureStatus Status)> missing, int row)
    {
        var any = false;
        foreach (var (r, input, status) in missing)
        {
            if (r != row) continue;
            if (!any) { writer.WriteStartObject("missing_features"); any = true; }
            writer.WriteString(input, status switch
            {
                FeatureStatus.NotFound => "NOT_FOUND",
                FeatureStatus.NullValue => "NULL_VALUE",
                FeatureStatus.OutsideMaxAge => "OUTSIDE_MAX_AGE",
                _ => "NULL_VALUE",
            });
        }
        if (any) writer.WriteEndObject();
    }

    private static string FeatureOf(FeatureBinding binding, int field)
    {
        for (var f = 0; f < binding.Fields.Length; f++) if (binding.Fields[f] == field) return binding.Features[f].ToString();
        return "?";
    }

    private static string RequestFields(FeatureBinding binding, ModelSchema schema)
    {
        var names = schema.Fields.Where(f => !binding.FromStore[f.Index] && !binding.JoinKeys.Contains(f.Name)).Select(f => f.Name).ToList();
        return names.Count == 0 ? "" : $" and the request fields {string.Join(", ", names)}";
    }

    private static string Prefix(bool batch, int row) => batch ? $"row {row}: " : "";

    private static string OneLine(Exception e) => e.Message.ReplaceLineEndings(" ");
}

/// <summary>One request row as a protocol decoded it: named JSON values (join keys and request fields), in request order.</summary>
internal readonly record struct FeatureRow(IReadOnlyList<(string Name, JsonElement Value)> Cells)
{
    public static FeatureRow Of(JsonElement obj) => new([.. obj.EnumerateObject().Select(p => (p.Name, p.Value))]);

    public JsonElement? Find(string name)
    {
        foreach (var (n, v) in Cells) if (n == name) return v;
        return null;
    }
}
