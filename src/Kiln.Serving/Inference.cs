using System.Buffers;
using System.Diagnostics;
using System.Text.Json;
using Kiln.Features.Online;
using Kiln.Scoring;
using Kiln.Serving.Features;
using Kiln.Serving.Logging;
using Kiln.Serving.Metrics;
using Kiln.Serving.Models;
using Kiln.Scoring.Validation;

namespace Kiln.Serving;

/// <summary>
/// What every protocol shares: find and lease the model, bind it to the feature store (once per model version), fill
/// the features of the rows a protocol decoded, score a validated batch, hand the rows to the prediction log and record
/// metrics. Protocols only decode and render.
/// </summary>
public sealed class Inference(ModelManager models, PredictionLog log, ServingMetrics metrics, ServeOptions options, OnlineFeatures features)
{
    public ModelManager Models => models;

    public ServeOptions Options => options;

    public ServingMetrics Metrics => metrics;

    /// <summary>
    /// The feature binding of a model version: null (and no error) when it reads nothing from the store, an error (503)
    /// when the store cannot be used. Made when the version loads (<see cref="ModelManager"/>) and kept on it, or on a
    /// request when the store could not be used then; a model without a feature service answers synchronously, with
    /// nothing allocated.
    /// </summary>
    internal ValueTask<(FeatureBinding? Binding, RequestError? Error)> FeaturesAsync(ServedModel model, CancellationToken ct) =>
        OnlineFeatures.Applies(model, options) ? BindAsync(model, ct) : default;

    private async ValueTask<(FeatureBinding? Binding, RequestError? Error)> BindAsync(ServedModel model, CancellationToken ct)
    {
        try
        {
            var binding = await features.BindAsync(model, ct).ConfigureAwait(false);
            return (binding.Features.Count == 0 ? null : binding, null);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            return (null, new RequestError(503, $"model '{model.Name}': the feature store is not usable: {e.Message.ReplaceLineEndings(" ")}", "feature_store"));
        }
    }

    /// <summary>Starts timing a request of a protocol (and counts it in flight until <see cref="Call.Dispose"/>).</summary>
    public Call Begin(string protocol) => new(this, protocol);

    /// <summary>A new request id (or the client's, when it sent a sane one).</summary>
    public static string RequestId(string? fromClient) =>
        !string.IsNullOrEmpty(fromClient) && fromClient.Length <= 128 && IsPrintable(fromClient) ? fromClient : NewRequestId();

    /// <summary>
    /// A UUIDv7 (48-bit Unix milliseconds, then random bits) as 32 hex digits. The random bits come
    /// from <see cref="Random.Shared"/>, not the OS's cryptographic source that Guid.CreateVersion7
    /// reads on every call (a system call per request, measured at ~6% of a request's CPU): a
    /// request id correlates log rows and answers; it is not a secret.
    /// </summary>
    public static string NewRequestId()
    {
        Span<byte> b = stackalloc byte[16];
        var ms = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        b[0] = (byte)(ms >> 40);
        b[1] = (byte)(ms >> 32);
        b[2] = (byte)(ms >> 24);
        b[3] = (byte)(ms >> 16);
        b[4] = (byte)(ms >> 8);
        b[5] = (byte)ms;
        Random.Shared.NextBytes(b[6..]);
        b[6] = (byte)(0x70 | (b[6] & 0x0F)); // version 7
        b[8] = (byte)(0x80 | (b[8] & 0x3F)); // RFC 9562 variant
        return new Guid(b, bigEndian: true).ToString("N");
    }

    private static bool IsPrintable(string s)
    {
        foreach (var c in s) if (c < 0x21 || c > 0x7e) return false;
        return true;
    }

    /// <summary>One request's lifetime: the model lease, the batch, the predictions, the metrics.</summary>
    public sealed class Call : IDisposable
    {
        private readonly Inference _owner;
        private readonly long _start;
        private readonly ServingMetrics.InFlightCounter _inFlight;
        private Prediction[]? _predictions;

        internal Call(Inference owner, string protocol)
        {
            _owner = owner;
            Protocol = protocol;
            _start = Stopwatch.GetTimestamp();
            _inFlight = owner.Metrics.InFlight(protocol);
            _inFlight.Increment();
        }

        public string Protocol { get; }

        public ServedModel? Model { get; private set; }

        public InputBatch? Batch { get; private set; }

        /// <summary>The leased model's feature binding (set by <see cref="BindFeaturesAsync"/>); null for a model that reads no features.</summary>
        public FeatureBinding? Features { get; private set; }

        /// <summary>The features of the filled rows that had no value (row, input, status); null until <see cref="FillFeaturesAsync"/>.</summary>
        internal List<(int Row, string Input, FeatureStatus Status)>? MissingFeatures { get; private set; }

        /// <summary>The status to record (set by the protocol before disposing).</summary>
        public int Status { get; set; } = 200;

        public string? ModelName { get; private set; }

        public ReadOnlySpan<Prediction> Predictions => _predictions.AsSpan(0, Batch?.Rows ?? 0);

        /// <summary>Finds and leases a model; an error (404 unknown, 503 not loaded yet) otherwise.</summary>
        public RequestError? Open(string? name, string? version = null)
        {
            var slot = _owner.Models.Find(name);
            if (slot is null) return new RequestError(404, $"model '{name}' is not served here (served: {string.Join(", ", _owner.Models.Slots.Select(s => s.Name))})", "model");
            ModelName = slot.Name;
            var model = slot.Acquire();
            if (model is null) return new RequestError(503, $"model '{slot.Name}' is not loaded yet" + (slot.LastError is { } e ? $" (last load failed: {e})" : ""), "model");
            Model = model;
            if (version is not null && version != model.Version)
                return new RequestError(404, $"model '{slot.Name}' serves version {model.Version}, not {version}", "version");
            return null;
        }

        /// <summary>
        /// Looks up the leased model's feature binding (<see cref="Features"/>). Protocols call it after <see cref="Open"/>:
        /// when it is set, they decode their rows with <see cref="FillFeaturesAsync"/> instead of into <see cref="NewBatch"/>.
        /// </summary>
        public ValueTask<RequestError?> BindFeaturesAsync(CancellationToken ct)
        {
            var pending = _owner.FeaturesAsync(Model!, ct);
            if (pending.IsCompletedSuccessfully)
            {
                (Features, var error) = pending.Result;
                return new(error);
            }
            return AwaitBindingAsync(pending);
        }

        private async ValueTask<RequestError?> AwaitBindingAsync(ValueTask<(FeatureBinding? Binding, RequestError? Error)> pending)
        {
            (Features, var error) = await pending.ConfigureAwait(false);
            return error;
        }

        /// <summary>
        /// The one path by which features reach a model: parses a protocol's JSON body, lets the protocol's decoder read
        /// it as rows (entity keys and request fields; it says whether the request was a batch), then checks the rows,
        /// reads every row's features in one online read and fills the batch. Errors are the client's (400/422 naming
        /// the key, field and row) or the store's (503).
        /// </summary>
        internal async ValueTask<RequestError?> FillFeaturesAsync(ReadOnlyMemory<byte> json, Func<JsonElement, List<FeatureRow>, (RequestError? Error, bool IsBatch)> decode, CancellationToken ct)
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
            using (doc) // the rows are views into the document: it goes only after the batch is filled
            {
                var rows = new List<FeatureRow>();
                var (error, isBatch) = decode(doc.RootElement, rows);
                if (error is not null) return error;
                (MissingFeatures, error) = await FeaturePredict.FillAsync(Features!, this, rows, isBatch, _owner.Options.MaxRowsPerRequest, ct).ConfigureAwait(false);
                return error;
            }
        }

        /// <summary>A cleared batch for the leased model.</summary>
        public InputBatch NewBatch(int rowsHint = 1) => Batch = Model!.Schema.Rent(rowsHint);

        /// <summary>Scores the batch and logs it.</summary>
        public ReadOnlySpan<Prediction> Score(string requestId)
        {
            var batch = Batch!;
            var model = Model!;
            _predictions = ArrayPool<Prediction>.Shared.Rent(batch.Rows);
            model.Score(batch.Table, batch.Rows, _predictions);
            var predictions = _predictions.AsSpan(0, batch.Rows);
            var metrics = _owner.Metrics;
            metrics.Rows.Add(batch.Rows, new("model", model.Name), new("version", model.Version));
            foreach (var p in predictions) metrics.PredictedValue.Record(p.Value, new("model", model.Name), new("version", model.Version));
            if (batch.Flags is { Count: > 0 } flags) metrics.Flagged.Add(flags.Count, new("model", model.Name), new("version", model.Version));
            _owner._log.TryWrite(model, requestId, Protocol, batch, predictions);
            return predictions;
        }

        public void Dispose()
        {
            var seconds = Stopwatch.GetElapsedTime(_start).TotalSeconds;
            _inFlight.Decrement();
            _owner.Metrics.RecordRequest(ModelName ?? "", Model?.Version ?? "", Protocol, Status, seconds);
            if (_predictions is not null) ArrayPool<Prediction>.Shared.Return(_predictions);
            if (Batch is not null) Model!.Schema.Return(Batch);
            Model?.Release();
            _predictions = null;
            Batch = null;
            Model = null;
            Features = null;
            MissingFeatures = null;
        }
    }

    private readonly PredictionLog _log = log;
}
