using System.Text;
using System.Text.Json;
using Kiln.Scoring.Validation;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Kiln.Serving.Protection;
using Microsoft.Extensions.DependencyInjection;

namespace Kiln.Serving.Protocols.MlflowScoring;

/// <summary>
/// MLflow's scoring protocol: POST /invocations with dataframe_split, dataframe_records, instances
/// or inputs (JSON), or a CSV body with a header row; answers {"predictions": …}. Errors use MLflow's
/// {"error_code", "message"} shape. Also GET /ping and /version as MLflow's scoring server has.
/// </summary>
public static class InvocationsEndpoints
{
    public const string Protocol = "mlflow";
    private static readonly string[] Accepted = ["application/json", "text/csv"];

    public static IEndpointRouteBuilder MapInvocationsEndpoints(this IEndpointRouteBuilder app, bool gated = true)
    {
        var inference = app.ServiceProvider.GetRequiredService<Inference>(); // once, not a DI scope per request
        var group = app.MapGroup("/invocations");
        group.MapPost("/", (HttpContext http, CancellationToken ct) => InvokeAsync(http, inference, null, ct));
        group.MapPost("/{model}", (HttpContext http, string model, CancellationToken ct) => InvokeAsync(http, inference, model, ct));
        if (gated) group.RequireGate();
        app.MapGet("/ping", (Models.ModelManager models, CancellationToken ct) => models.AllReady ? Results.Text("\n", "application/json") : Results.StatusCode(503));
        app.MapGet("/version", (CancellationToken ct) => Results.Text(typeof(InvocationsEndpoints).Assembly.GetName().Version?.ToString() ?? "0", "text/plain"));
        return app;
    }

    private static async Task<IResult> InvokeAsync(HttpContext http, Inference inference, string? model, CancellationToken ct)
    {
        using var call = inference.Begin(Protocol);
        var error = call.Open(model);
        if (error is not null) return Error(call, error);
        error = await call.BindFeaturesAsync(ct).ConfigureAwait(false);
        if (error is not null) return Error(call, error);
        var (body, readError) = await RequestBody.ReadAsync(http.Request, inference.Options.MaxRequestBodyBytes, Accepted, ct).ConfigureAwait(false);
        if (readError is not null) return Error(call, readError);
        using (body)
        {
            if (call.Features is { } binding)
            {
                // A model that reads features: the rows name join keys and request fields (JSON only); the store fills the rest.
                if (body!.MediaType == "text/csv")
                    return Error(call, new RequestError(415, $"model '{call.Model!.Name}' reads feature service '{binding.Service}': send JSON rows of its join keys ({string.Join(", ", binding.JoinKeys)}) and request fields, not CSV"));
                error = await call.FillFeaturesAsync(body.Memory, static (root, rows) => (Features.FeatureRows.FromMlflow(root, rows), true), ct).ConfigureAwait(false);
            }
            else
            {
                var batch = call.NewBatch();
                error = body!.MediaType == "text/csv" ? DecodeCsv(body.Span, batch) : DecodeJson(body.Memory, batch);
            }
            if (error is not null) return Error(call, error);
        }
        return await AnswerAsync(http, call, ct).ConfigureAwait(false);
    }

    /// <summary>Scores the call's batch and writes {"predictions": […]}.</summary>
    private static async Task<IResult> AnswerAsync(HttpContext http, Inference.Call call, CancellationToken ct)
    {
        var requestId = Inference.RequestId(http.Request.Headers["X-Request-Id"]);
        var predictions = call.Score(requestId);
        var served = call.Model!;
        http.Response.Headers["X-Request-Id"] = requestId;
        http.Response.Headers["X-Kiln-Model"] = served.Name;
        http.Response.Headers["X-Kiln-Model-Version"] = served.Version;
        http.Response.ContentType = "application/json";
        using (var writer = new Utf8JsonWriter(http.Response.BodyWriter))
        {
            writer.WriteStartObject();
            writer.WriteStartArray("predictions");
            foreach (var p in predictions)
            {
                if (p.Label is null) { writer.WriteNumberValue(p.Value); continue; }
                writer.WriteStartObject();
                writer.WriteString("prediction", p.Label);
                writer.WriteNumber("probability", p.Value);
                writer.WriteEndObject();
            }
            writer.WriteEndArray();
            writer.WriteEndObject();
        }
        await http.Response.BodyWriter.FlushAsync(ct).ConfigureAwait(false);
        return TypedResults.Empty;
    }

    internal static RequestError? DecodeJson(ReadOnlyMemory<byte> json, InputBatch batch)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json, new JsonDocumentOptions { MaxDepth = 64 });
        }
        catch (JsonException e)
        {
            return RequestError.Malformed($"malformed JSON: {JsonRowsDecoder.FirstSentence(e.Message)}");
        }
        using (doc)
        {
            var error = Payload(doc.RootElement, out var kind, out var value);
            if (error is not null) return error;
            batch.IsBatch = true;
            return kind switch
            {
                "dataframe_split" => DecodeSplit(value, batch),
                "dataframe_records" => DecodeRecords(value, batch, kind),
                _ => value.ValueKind == JsonValueKind.Object ? DecodeColumns(value, batch, kind) : DecodeRecords(value, batch, kind),
            };
        }
    }

    /// <summary>The body's one payload (dataframe_split, dataframe_records, instances or inputs; params aside) and its kind.</summary>
    internal static RequestError? Payload(JsonElement root, out string kind, out JsonElement payload)
    {
        kind = "";
        payload = default;
        if (root.ValueKind != JsonValueKind.Object) return new RequestError(400, "expected a JSON object with one of dataframe_split, dataframe_records, instances or inputs");
        foreach (var p in root.EnumerateObject())
        {
            if (p.Name is "dataframe_split" or "dataframe_records" or "instances" or "inputs")
            {
                if (kind.Length > 0) return new RequestError(400, $"the body has both {kind} and {p.Name}; send exactly one", p.Name);
                kind = p.Name;
                payload = p.Value;
            }
            else if (p.Name != "params")
            {
                return new RequestError(400, $"unknown key '{p.Name}'; expected one of dataframe_split, dataframe_records, instances, inputs (and optional params)", p.Name);
            }
        }
        return kind.Length == 0 ? new RequestError(400, "the body has none of dataframe_split, dataframe_records, instances or inputs", "dataframe_split") : null;
    }

    private static RequestError? DecodeRecords(JsonElement value, InputBatch batch, string kind)
    {
        if (value.ValueKind != JsonValueKind.Array) return new RequestError(400, $"{kind} must be an array of records", kind);
        foreach (var row in value.EnumerateArray())
        {
            RequestError? error;
            if (row.ValueKind == JsonValueKind.Array)
            {
                // A positional row (instances as lists): values in the signature's input order.
                error = DecodePositional(row, batch, null);
            }
            else
            {
                error = JsonRowsDecoder.DecodeRow(row, batch);
            }
            if (error is not null) return error;
        }
        return batch.Rows == 0 ? new RequestError(422, $"{kind} holds no rows", kind) : null;
    }

    private static RequestError? DecodeSplit(JsonElement value, InputBatch batch)
    {
        if (value.ValueKind != JsonValueKind.Object) return new RequestError(400, "dataframe_split must be an object with columns and data", "dataframe_split");
        int[]? columns = null;
        if (value.TryGetProperty("columns", out var cols))
        {
            if (cols.ValueKind != JsonValueKind.Array) return new RequestError(400, "dataframe_split.columns must be an array of names", "columns");
            columns = new int[cols.GetArrayLength()];
            var i = 0;
            foreach (var c in cols.EnumerateArray())
            {
                if (c.ValueKind != JsonValueKind.String) return new RequestError(400, "dataframe_split.columns must be an array of names", "columns");
                var name = c.GetString()!;
                var index = batch.Schema.IndexOf(name);
                if (index < 0) return batch.Unknown(name);
                columns[i++] = index;
            }
        }
        if (!value.TryGetProperty("data", out var data) || data.ValueKind != JsonValueKind.Array)
            return new RequestError(400, "dataframe_split.data must be an array of rows", "data");
        foreach (var row in data.EnumerateArray())
        {
            if (row.ValueKind != JsonValueKind.Array) return new RequestError(422, $"row {batch.Rows}: dataframe_split.data rows must be arrays", "data", batch.Rows);
            var error = DecodePositional(row, batch, columns);
            if (error is not null) return error;
        }
        return batch.Rows == 0 ? new RequestError(422, "dataframe_split.data holds no rows", "data") : null;
    }

    private static RequestError? DecodePositional(JsonElement row, InputBatch batch, int[]? columns)
    {
        var error = batch.BeginRow();
        if (error is not null) return error;
        var width = columns?.Length ?? batch.Schema.Fields.Count;
        if (row.GetArrayLength() != width)
            return new RequestError(422, $"row {batch.Rows}: has {row.GetArrayLength()} values, expected {width}", "data", batch.Rows);
        var i = 0;
        foreach (var cell in row.EnumerateArray())
        {
            var field = columns?[i] ?? i;
            i++;
            if ((error = batch.Mark(field)) is not null) return error;
            if ((error = JsonRowsDecoder.SetCell(cell, batch, field)) is not null) return error;
        }
        return batch.EndRow();
    }

    /// <summary>Columnar input: {"name": [v0, v1, …], …}; every column has the same length.</summary>
    private static RequestError? DecodeColumns(JsonElement value, InputBatch batch, string kind)
    {
        var columns = new List<(int Field, JsonElement Values)>();
        var rows = -1;
        foreach (var p in value.EnumerateObject())
        {
            var field = batch.Schema.IndexOf(p.Name);
            if (field < 0) return batch.Unknown(p.Name);
            var values = p.Value;
            if (values.ValueKind != JsonValueKind.Array) return new RequestError(422, $"{p.Name}: {kind} columns must be arrays of values", p.Name);
            if (rows >= 0 && values.GetArrayLength() != rows)
                return new RequestError(422, $"{p.Name}: has {values.GetArrayLength()} values where other columns have {rows}", p.Name);
            rows = values.GetArrayLength();
            columns.Add((field, values));
        }
        if (rows <= 0) return new RequestError(422, $"{kind} holds no rows", kind);
        var enumerators = columns.Select(c => c.Values.EnumerateArray()).ToArray();
        for (var r = 0; r < rows; r++)
        {
            var error = batch.BeginRow();
            if (error is not null) return error;
            for (var c = 0; c < columns.Count; c++)
            {
                enumerators[c].MoveNext();
                if ((error = batch.Mark(columns[c].Field)) is not null) return error;
                if ((error = JsonRowsDecoder.SetCell(enumerators[c].Current, batch, columns[c].Field)) is not null) return error;
            }
            if ((error = batch.EndRow()) is not null) return error;
        }
        return null;
    }

    /// <summary>A CSV body: a header row naming the inputs, then one row per line (RFC 4180 quoting).</summary>
    internal static RequestError? DecodeCsv(ReadOnlySpan<byte> body, InputBatch batch)
    {
        string text;
        try
        {
            text = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(body);
        }
        catch (DecoderFallbackException)
        {
            return new RequestError(400, "the CSV body is not valid UTF-8");
        }
        using var reader = new StringReader(text);
        return CsvRowsDecoder.Decode(reader, batch);
    }

    private static IResult Error(Inference.Call call, RequestError error)
    {
        call.Status = error.Status == 422 ? 400 : error.Status;
        var code = error.Status switch
        {
            404 => "RESOURCE_DOES_NOT_EXIST",
            413 or 415 => "BAD_REQUEST",
            503 => "TEMPORARILY_UNAVAILABLE",
            _ => error.Code == "malformed_json" ? "MALFORMED_REQUEST" : "BAD_REQUEST",
        };
        return TypedResults.Json(new MlflowError(code, error.Message), ServingJsonContext.Default.MlflowError, statusCode: call.Status);
    }
}
