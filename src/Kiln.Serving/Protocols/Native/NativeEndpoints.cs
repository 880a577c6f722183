using System.Buffers;
using System.Text.Json;
using Kiln.Scoring;
using Kiln.Serving.Models;
using Kiln.Scoring.Validation;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Routing;
using Kiln.Serving.Protection;
using Microsoft.Extensions.DependencyInjection;

namespace Kiln.Serving.Protocols.Native;

/// <summary>Kiln's own routes: POST /predict[/{model}], GET /health, /ready, /models.</summary>
public static class NativeEndpoints
{
    public const string Protocol = "native";
    private static readonly string[] JsonOnly = ["application/json"];

    public static IEndpointRouteBuilder MapNativeEndpoints(this IEndpointRouteBuilder app, bool gated = true)
    {
        // Resolved once here, not per request: a service parameter makes every request open a DI scope.
        var inference = app.ServiceProvider.GetRequiredService<Inference>();
        var predict = app.MapGroup("/predict");
        // Plain request delegates, not minimal-API handlers: nothing to bind (the route value is read here), no IResult
        // to execute for the answer; a problem answer is executed by the same code as before.
        RequestDelegate predictDefault = http => PredictAsync(http, inference, null);
        RequestDelegate predictNamed = http => PredictAsync(http, inference, http.Request.RouteValues["model"] as string);
        predict.MapPost("/", predictDefault);
        predict.MapPost("/{model}", predictNamed);
        if (gated) predict.RequireGate();

        app.MapGet("/health", (CancellationToken ct) => TypedResults.Ok(new HealthResponse("ok")));
        app.MapGet("/ready", Results<Ok<ReadyResponse>, JsonHttpResult<ReadyResponse>> (ModelManager models, CancellationToken ct) =>
        {
            var body = new ReadyResponse(models.AllReady, [.. models.Slots.Select(Status)]);
            return body.Ready ? TypedResults.Ok(body) : TypedResults.Json(body, ServingJsonContext.Default.ReadyResponse, statusCode: 503);
        });
        app.MapGet("/models", (ModelManager models, CancellationToken ct) => TypedResults.Ok(models.Slots.Select(Status).ToList()));
        return app;
    }

    public static ModelStatus Status(ModelSlot s)
    {
        var m = s.Current;
        return new ModelStatus(s.Name, s.Spec.Uri, s.State.ToString().ToLowerInvariant(), m?.Version, m?.LoadedAt,
            m?.Signature.Task.ToString().ToLowerInvariant(), s.FailedVersion, s.LastError, s.LastErrorAt);
    }

    private static async Task PredictAsync(HttpContext http, Inference inference, string? model)
    {
        var ct = http.RequestAborted;
        using var call = inference.Begin(Protocol);
        var error = call.Open(model);
        if (error is not null) { await Problem(call, error).ExecuteAsync(http).ConfigureAwait(false); return; }
        error = await call.BindFeaturesAsync(ct).ConfigureAwait(false);
        if (error is not null) { await Problem(call, error).ExecuteAsync(http).ConfigureAwait(false); return; }
        var (body, readError) = await RequestBody.ReadAsync(http.Request, inference.Options.MaxRequestBodyBytes, JsonOnly, ct).ConfigureAwait(false);
        if (readError is not null) { await Problem(call, readError).ExecuteAsync(http).ConfigureAwait(false); return; }
        using (body)
        {
            if (call.Features is null)
            {
                var batch = call.NewBatch();
                error = JsonRowsDecoder.Decode(body!.Span, batch);
            }
            else
            {
                // A model that reads features: the rows carry join keys and request fields; the store fills the rest.
                error = await call.FillFeaturesAsync(body!.Memory, Features.FeatureRows.FromNative, ct).ConfigureAwait(false);
            }
            if (error is not null) { await Problem(call, error).ExecuteAsync(http).ConfigureAwait(false); return; }
        }
        var requestId = Inference.RequestId(http.Request.Headers["X-Request-Id"]);
        var predictions = call.Score(requestId);
        var served = call.Model!;
        var response = http.Response;
        response.Headers["X-Request-Id"] = requestId;
        response.Headers["X-Kiln-Model-Version"] = served.Version;
        response.ContentType = "application/json";
        // The answer is written whole into this thread's buffer first, so that it goes out with a Content-Length (no
        // chunk framing) in the one write Kestrel makes when the request ends.
        var buffer = t_buffer ??= new ArrayBufferWriter<byte>(1024);
        var writer = RentWriter(buffer);
        try
        {
            var batch = call.Batch!;
            writer.WriteStartObject();
            if (batch.IsBatch)
            {
                writer.WriteStartArray(Names.Predictions);
                for (var i = 0; i < predictions.Length; i++)
                {
                    writer.WriteStartObject();
                    WritePrediction(writer, served, predictions[i], batch, i);
                    if (call.MissingFeatures is { } missing) Features.FeaturePredict.WriteMissing(writer, missing, i);
                    writer.WriteEndObject();
                }
                writer.WriteEndArray();
            }
            else
            {
                WritePrediction(writer, served, predictions[0], batch, 0);
                if (call.MissingFeatures is { } missing) Features.FeaturePredict.WriteMissing(writer, missing, 0);
            }
            writer.WriteString(Names.Model, served.EncodedName);
            writer.WriteString(Names.Version, served.EncodedVersion);
            if (call.Features is { } binding) writer.WriteString(Names.FeatureService, binding.Service);
            writer.WriteString(Names.RequestId, requestId);
            writer.WriteEndObject();
            writer.Flush();
            response.ContentLength = buffer.WrittenCount;
            response.BodyWriter.Write(buffer.WrittenSpan);
        }
        finally
        {
            writer.Reset(); // the writer and its buffer stay with this thread for the next answer
            if (buffer.Capacity > MaxKeptBuffer) t_buffer = null; // a huge batch's answer: not kept for the thread's life
            else buffer.ResetWrittenCount();
        }
    }

    /// <summary>The largest answer buffer a thread keeps between requests.</summary>
    private const int MaxKeptBuffer = 1 << 20;

    [ThreadStatic]
    private static ArrayBufferWriter<byte>? t_buffer;

    internal static void WritePrediction(Utf8JsonWriter writer, ServedModel model, in Prediction p, InputBatch batch, int row)
    {
        if (p.Label is null)
        {
            writer.WriteNumber(Names.Prediction, p.Value);
        }
        else
        {
            writer.WriteString(Names.Prediction, model.EncodedLabel(p.Label));
            writer.WriteNumber(Names.Probability, p.Value);
            if (p.Probabilities is { } probs && model.ClassLabels.Count == probs.Length)
            {
                var labels = model.EncodedClassLabels;
                writer.WriteStartObject(Names.Probabilities);
                for (var c = 0; c < probs.Length; c++) writer.WriteNumber(labels[c], probs[c]);
                writer.WriteEndObject();
            }
        }
        if (batch.Flags is { } flags)
        {
            var any = false;
            foreach (var (r, message) in flags)
            {
                if (r != row) continue;
                if (!any) { writer.WriteStartArray(Names.Flags); any = true; }
                writer.WriteStringValue(message);
            }
            if (any) writer.WriteEndArray();
        }
    }

    /// <summary>
    /// A JSON writer for this thread, pointed at <paramref name="output"/>; the caller writes synchronously, flushes and
    /// calls <see cref="Utf8JsonWriter.Reset()"/>. Structure checks are off: the answers are written by this file's code
    /// only, always balanced, and the bytes are the same.
    /// </summary>
    private static Utf8JsonWriter RentWriter(System.Buffers.IBufferWriter<byte> output)
    {
        var writer = t_writer;
        if (writer is null) return t_writer = new Utf8JsonWriter(output, new JsonWriterOptions { SkipValidation = true });
        writer.Reset(output);
        return writer;
    }

    [ThreadStatic]
    private static Utf8JsonWriter? t_writer;

    /// <summary>The property names of an answer, escaped once.</summary>
    private static class Names
    {
        public static readonly JsonEncodedText Predictions = JsonEncodedText.Encode("predictions");
        public static readonly JsonEncodedText Prediction = JsonEncodedText.Encode("prediction");
        public static readonly JsonEncodedText Probability = JsonEncodedText.Encode("probability");
        public static readonly JsonEncodedText Probabilities = JsonEncodedText.Encode("probabilities");
        public static readonly JsonEncodedText Flags = JsonEncodedText.Encode("flags");
        public static readonly JsonEncodedText Model = JsonEncodedText.Encode("model");
        public static readonly JsonEncodedText Version = JsonEncodedText.Encode("version");
        public static readonly JsonEncodedText FeatureService = JsonEncodedText.Encode("feature_service");
        public static readonly JsonEncodedText RequestId = JsonEncodedText.Encode("request_id");
    }

    /// <summary>An RFC 9457 problem naming the field at fault.</summary>
    internal static IResult Problem(Inference.Call call, RequestError error)
    {
        call.Status = error.Status;
        var extensions = new Dictionary<string, object?> { ["code"] = error.Code };
        if (error.Field is not null) extensions["field"] = error.Field;
        if (error.Row is not null) extensions["row"] = error.Row;
        if (call.Model is { } m) { extensions["model"] = m.Name; extensions["version"] = m.Version; }
        return TypedResults.Problem(detail: error.Message, statusCode: error.Status, title: Title(error.Status),
            type: $"https://kiln.dev/problems/{error.Code.Replace('_', '-')}", extensions: extensions);
    }

    private static string Title(int status) => status switch
    {
        400 => "Bad request",
        404 => "Not found",
        413 => "Request body too large",
        415 => "Unsupported media type",
        422 => "Invalid input",
        503 => "Service unavailable",
        _ => "Request failed",
    };
}
