using System.Text.Json;
using Kiln.Serving.Models;
using Kiln.Scoring.Validation;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Kiln.Serving.Protection;
using Microsoft.Extensions.DependencyInjection;

namespace Kiln.Serving.Protocols.OpenInference;

/// <summary>The Open Inference Protocol (KServe V2) over REST under /v2; errors are {"error": "…"}.</summary>
public static class V2RestEndpoints
{
    public const string Protocol = "v2";
    public const string ServerName = "kiln";
    private static readonly string[] JsonOnly = ["application/json"];

    public static string ServerVersion => typeof(V2RestEndpoints).Assembly.GetName().Version?.ToString(3) ?? "0.0.0";

    public static IEndpointRouteBuilder MapOpenInferenceEndpoints(this IEndpointRouteBuilder app, bool gated = true)
    {
        var v2 = app.MapGroup("/v2");
        v2.MapGet("/", (CancellationToken ct) => TypedResults.Ok(new V2ServerMetadata(ServerName, ServerVersion, [])));
        v2.MapGet("/health/live", (CancellationToken ct) => TypedResults.Ok(new V2Live(true)));
        v2.MapGet("/health/ready", (ModelManager models, CancellationToken ct) =>
            TypedResults.Json(new V2Ready(models.AllReady), ServingJsonContext.Default.V2Ready, statusCode: models.AllReady ? 200 : 503));

        var model = v2.MapGroup("/models/{name}");
        model.MapGet("/", (HttpContext http, ModelManager models, string name, CancellationToken ct) => MetadataAsync(http, models, name, null, ct));
        model.MapGet("/versions/{version}", (HttpContext http, ModelManager models, string name, string version, CancellationToken ct) => MetadataAsync(http, models, name, version, ct));
        model.MapGet("/ready", (ModelManager models, string name, CancellationToken ct) => ModelReady(models, name, null));
        model.MapGet("/versions/{version}/ready", (ModelManager models, string name, string version, CancellationToken ct) => ModelReady(models, name, version));
        var inference = app.ServiceProvider.GetRequiredService<Inference>(); // once, not a DI scope per request
        var infer = model.MapPost("/infer", (HttpContext http, string name, CancellationToken ct) => InferAsync(http, inference, name, null, ct));
        var inferVersion = model.MapPost("/versions/{version}/infer", (HttpContext http, string name, string version, CancellationToken ct) => InferAsync(http, inference, name, version, ct));
        if (gated)
        {
            infer.RequireGate();
            inferVersion.RequireGate();
        }
        return app;
    }

    private static async Task<IResult> MetadataAsync(HttpContext http, ModelManager models, string name, string? version, CancellationToken ct)
    {
        var slot = models.Find(name);
        if (slot is null) return Error(404, $"model '{name}' is not served here");
        var m = slot.Current;
        if (m is null) return Error(503, $"model '{name}' is not loaded yet");
        if (version is not null && version != m.Version) return Error(404, $"model '{name}' serves version {m.Version}, not {version}");
        // A model that reads features takes its join keys and request fields: those are its inputs here.
        var (binding, error) = await http.RequestServices.GetRequiredService<Inference>().FeaturesAsync(m, ct).ConfigureAwait(false);
        if (error is not null) return Error(error.Status, error.Message);
        return TypedResults.Ok(new V2ModelMetadata(m.Name, [m.Version], V2Tensors.Platform(m),
            [.. V2Tensors.Inputs(m, binding).Select(t => new V2TensorMetadata(t.Name, t.Datatype, [.. t.Shape]))],
            [.. V2Tensors.Outputs(m).Select(t => new V2TensorMetadata(t.Name, t.Datatype, [.. t.Shape]))]));
    }

    private static IResult ModelReady(ModelManager models, string name, string? version)
    {
        var slot = models.Find(name);
        if (slot is null) return Error(404, $"model '{name}' is not served here");
        var ready = slot.Current is { } m && (version is null || version == m.Version);
        return TypedResults.Json(new V2ModelReady(slot.Name, ready), ServingJsonContext.Default.V2ModelReady, statusCode: ready ? 200 : 503);
    }

    private static async Task<IResult> InferAsync(HttpContext http, Inference inference, string name, string? version, CancellationToken ct)
    {
        using var call = inference.Begin(Protocol);
        var error = call.Open(name, version);
        if (error is not null) return Error(call, error);
        error = await call.BindFeaturesAsync(ct).ConfigureAwait(false);
        if (error is not null) return Error(call, error);
        var (body, readError) = await RequestBody.ReadAsync(http.Request, inference.Options.MaxRequestBodyBytes, JsonOnly, ct).ConfigureAwait(false);
        if (readError is not null) return Error(call, readError);
        string? id;
        List<string> requested;
        using (body)
        {
            if (call.Features is null)
            {
                var batch = call.NewBatch();
                error = Decode(body!.Memory, batch, out id, out requested);
            }
            else
            {
                // A model that reads features: the tensors are its join keys and request fields; the store fills the rest.
                string? v2Id = null;
                List<string> v2Requested = [];
                error = await call.FillFeaturesAsync(body!.Memory, (root, rows) => (Features.FeatureRows.FromV2(root, rows, out v2Id, out v2Requested), true), ct).ConfigureAwait(false);
                (id, requested) = (v2Id, v2Requested);
            }
            if (error is not null) return Error(call, error);
        }
        var served = call.Model!;
        error = V2Tensors.SelectOutputs(served, requested, out var outputs);
        if (error is not null) return Error(call, error);
        var requestId = Inference.RequestId(id ?? http.Request.Headers["X-Request-Id"]);
        var predictions = call.Score(requestId);
        http.Response.ContentType = "application/json";
        http.Response.Headers["X-Kiln-Model-Version"] = served.Version;
        using (var writer = new Utf8JsonWriter(http.Response.BodyWriter))
        {
            writer.WriteStartObject();
            writer.WriteString("model_name", served.Name);
            writer.WriteString("model_version", served.Version);
            writer.WriteString("id", requestId);
            writer.WriteStartArray("outputs");
            var numbers = new List<double>();
            var labels = new List<string>();
            foreach (var (outName, datatype, shape) in outputs)
            {
                numbers.Clear();
                labels.Clear();
                V2Tensors.Fill(served, outName, predictions, numbers, labels);
                writer.WriteStartObject();
                writer.WriteString("name", outName);
                writer.WriteString("datatype", datatype);
                writer.WriteStartArray("shape");
                writer.WriteNumberValue(predictions.Length);
                if (shape.Length == 2) writer.WriteNumberValue(shape[1]);
                writer.WriteEndArray();
                writer.WriteStartArray("data");
                if (datatype == "BYTES") foreach (var l in labels) writer.WriteStringValue(l);
                else foreach (var n in numbers) writer.WriteNumberValue(n);
                writer.WriteEndArray();
                writer.WriteEndObject();
            }
            writer.WriteEndArray();
            writer.WriteEndObject();
        }
        await http.Response.BodyWriter.FlushAsync(ct).ConfigureAwait(false);
        return TypedResults.Empty;
    }

    internal static RequestError? Decode(ReadOnlyMemory<byte> json, InputBatch batch, out string? id, out List<string> requested)
    {
        id = null;
        requested = [];
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
            var envelopeError = Envelope(doc.RootElement, out id, out requested, out var inputs);
            if (envelopeError is not null) return envelopeError;
            batch.IsBatch = true;
            var tensors = new List<(int Field, List<JsonElement> Values)>();
            var rowsPerInput = new List<(int, int)>();
            foreach (var t in inputs.EnumerateArray())
            {
                if (t.ValueKind != JsonValueKind.Object) return new RequestError(400, "each input must be a tensor object", "inputs");
                var name = t.TryGetProperty("name", out var n) && n.ValueKind == JsonValueKind.String ? n.GetString()! : null;
                if (name is null) return new RequestError(400, "an input has no name", "inputs");
                if (!t.TryGetProperty("datatype", out var dt) || dt.ValueKind != JsonValueKind.String) return new RequestError(400, $"{name}: datatype is missing", name);
                if (!t.TryGetProperty("shape", out var sh) || sh.ValueKind != JsonValueKind.Array) return new RequestError(400, $"{name}: shape is missing", name);
                var shape = new List<long>();
                foreach (var d in sh.EnumerateArray())
                {
                    if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out var dim)) return new RequestError(400, $"{name}: shape must hold integers", name);
                    shape.Add(dim);
                }
                if (!t.TryGetProperty("data", out var data)) return new RequestError(400, $"{name}: data is missing", name);
                var values = new List<JsonElement>();
                if (!Flatten(data, values, 0)) return new RequestError(400, $"{name}: data must be an array (nested arrays are read row-major)", name);
                var error = V2Tensors.Check(batch, name, dt.GetString()!, shape, values.Count, out var field, out var rows);
                if (error is not null) return error;
                tensors.Add((field, values));
                rowsPerInput.Add((field, rows));
            }
            var rowsError = V2Tensors.CheckRows(batch, rowsPerInput, out var rowCount);
            if (rowsError is not null) return rowsError;
            for (var r = 0; r < rowCount; r++)
            {
                var error = batch.BeginRow();
                if (error is not null) return error;
                foreach (var (field, values) in tensors)
                {
                    if ((error = batch.Mark(field)) is not null) return error;
                    if ((error = JsonRowsDecoder.SetCell(values[r], batch, field)) is not null) return error;
                }
                if ((error = batch.EndRow()) is not null) return error;
            }
            return null;
        }
    }

    /// <summary>An inference request's id, the outputs it asks for (none: all) and its array of input tensors.</summary>
    internal static RequestError? Envelope(JsonElement root, out string? id, out List<string> requested, out JsonElement inputs)
    {
        id = null;
        requested = [];
        inputs = default;
        if (root.ValueKind != JsonValueKind.Object) return new RequestError(400, "expected an inference request object with inputs");
        if (root.TryGetProperty("id", out var idElement))
        {
            if (idElement.ValueKind != JsonValueKind.String) return new RequestError(400, "id must be a string", "id");
            id = idElement.GetString();
        }
        if (root.TryGetProperty("outputs", out var outs))
        {
            if (outs.ValueKind != JsonValueKind.Array) return new RequestError(400, "outputs must be an array", "outputs");
            foreach (var o in outs.EnumerateArray())
            {
                if (o.ValueKind != JsonValueKind.Object || !o.TryGetProperty("name", out var n) || n.ValueKind != JsonValueKind.String)
                    return new RequestError(400, "each requested output needs a name", "outputs");
                requested.Add(n.GetString()!);
            }
        }
        if (!root.TryGetProperty("inputs", out inputs) || inputs.ValueKind != JsonValueKind.Array)
            return new RequestError(400, "inputs must be an array of tensors", "inputs");
        return null;
    }

    /// <summary>A tensor's data, nested arrays read row-major, into one list; false when it is not an array (or nests past 8 levels).</summary>
    internal static bool Flatten(JsonElement e, List<JsonElement> into, int depth)
    {
        if (e.ValueKind != JsonValueKind.Array || depth > 8) return false;
        foreach (var item in e.EnumerateArray())
        {
            if (item.ValueKind == JsonValueKind.Array) { if (!Flatten(item, into, depth + 1)) return false; }
            else into.Add(item);
        }
        return true;
    }

    private static IResult Error(Inference.Call call, RequestError error)
    {
        call.Status = error.Status == 422 ? 400 : error.Status;
        return Error(call.Status, error.Message);
    }

    private static IResult Error(int status, string message) =>
        TypedResults.Json(new V2Error(message), ServingJsonContext.Default.V2Error, statusCode: status);
}
