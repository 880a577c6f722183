using System.Buffers;
using System.Text.Json;
using Google.Protobuf;
using Grpc.Core;
using Kiln.Serving.Protocols.OpenInference.Grpc;
using Kiln.Scoring.Validation;

namespace Kiln.Serving.Protocols.OpenInference;

/// <summary>
/// inference.GRPCInferenceService: the Open Inference Protocol over gRPC. Client mistakes are
/// INVALID_ARGUMENT naming the field; unknown models NOT_FOUND; models not loaded UNAVAILABLE.
/// </summary>
public sealed class V2GrpcService(Inference inference) : GRPCInferenceService.GRPCInferenceServiceBase
{
    public const string Protocol = "grpc";

    public override Task<ServerLiveResponse> ServerLive(ServerLiveRequest request, ServerCallContext context) =>
        Task.FromResult(new ServerLiveResponse { Live = true });

    public override Task<ServerReadyResponse> ServerReady(ServerReadyRequest request, ServerCallContext context) =>
        Task.FromResult(new ServerReadyResponse { Ready = inference.Models.AllReady });

    public override Task<ModelReadyResponse> ModelReady(ModelReadyRequest request, ServerCallContext context)
    {
        var slot = inference.Models.Find(request.Name) ?? throw new RpcException(new Status(StatusCode.NotFound, $"model '{request.Name}' is not served here"));
        var ready = slot.Current is { } m && (string.IsNullOrEmpty(request.Version) || request.Version == m.Version);
        return Task.FromResult(new ModelReadyResponse { Ready = ready });
    }

    public override Task<ServerMetadataResponse> ServerMetadata(ServerMetadataRequest request, ServerCallContext context) =>
        Task.FromResult(new ServerMetadataResponse { Name = V2RestEndpoints.ServerName, Version = V2RestEndpoints.ServerVersion });

    public override async Task<ModelMetadataResponse> ModelMetadata(ModelMetadataRequest request, ServerCallContext context)
    {
        var slot = inference.Models.Find(request.Name) ?? throw new RpcException(new Status(StatusCode.NotFound, $"model '{request.Name}' is not served here"));
        var m = slot.Current ?? throw new RpcException(new Status(StatusCode.Unavailable, $"model '{slot.Name}' is not loaded yet"));
        if (!string.IsNullOrEmpty(request.Version) && request.Version != m.Version)
            throw new RpcException(new Status(StatusCode.NotFound, $"model '{slot.Name}' serves version {m.Version}, not {request.Version}"));
        // A model that reads features takes its join keys and request fields: those are its inputs here.
        var (binding, error) = await inference.FeaturesAsync(m, context.CancellationToken).ConfigureAwait(false);
        if (error is not null) throw new RpcException(new Status(StatusCode.Unavailable, error.Message));
        var response = new ModelMetadataResponse { Name = m.Name, Platform = V2Tensors.Platform(m) };
        response.Versions.Add(m.Version);
        foreach (var (name, datatype, shape) in V2Tensors.Inputs(m, binding))
            response.Inputs.Add(new ModelMetadataResponse.Types.TensorMetadata { Name = name, Datatype = datatype, Shape = { shape } });
        foreach (var (name, datatype, shape) in V2Tensors.Outputs(m))
            response.Outputs.Add(new ModelMetadataResponse.Types.TensorMetadata { Name = name, Datatype = datatype, Shape = { shape } });
        return response;
    }

    public override async Task<ModelInferResponse> ModelInfer(ModelInferRequest request, ServerCallContext context)
    {
        using var call = inference.Begin(Protocol);
        var error = call.Open(request.ModelName, string.IsNullOrEmpty(request.ModelVersion) ? null : request.ModelVersion);
        if (error is not null) throw Fail(call, error);
        error = await call.BindFeaturesAsync(context.CancellationToken).ConfigureAwait(false);
        if (error is not null) throw Fail(call, error);
        // A model that reads features: the tensors are its join keys and request fields; the store fills the rest.
        error = call.Features is null ? Decode(request, call.NewBatch())
            : await DecodeWithFeaturesAsync(request, call, context.CancellationToken).ConfigureAwait(false);
        if (error is not null) throw Fail(call, error);
        var served = call.Model!;
        error = V2Tensors.SelectOutputs(served, [.. request.Outputs.Select(o => o.Name)], out var outputs);
        if (error is not null) throw Fail(call, error);
        var requestId = Inference.RequestId(request.Id);
        var predictions = call.Score(requestId);
        var response = new ModelInferResponse { ModelName = served.Name, ModelVersion = served.Version, Id = requestId };
        var numbers = new List<double>();
        var labels = new List<string>();
        foreach (var (name, datatype, shape) in outputs)
        {
            numbers.Clear();
            labels.Clear();
            V2Tensors.Fill(served, name, predictions, numbers, labels);
            var tensor = new ModelInferResponse.Types.InferOutputTensor { Name = name, Datatype = datatype, Contents = new InferTensorContents() };
            tensor.Shape.Add(predictions.Length);
            if (shape.Length == 2) tensor.Shape.Add(shape[1]);
            if (datatype == "BYTES") foreach (var l in labels) tensor.Contents.BytesContents.Add(ByteString.CopyFromUtf8(l));
            else tensor.Contents.Fp64Contents.Add(numbers);
            response.Outputs.Add(tensor);
        }
        return response;
    }

    /// <summary>
    /// The tensors (typed contents or raw_input_contents, each of shape [rows] or [rows, 1]) as columns of JSON values,
    /// read as rows of join keys and request fields, and filled from the feature store by the shared path.
    /// </summary>
    private static async Task<RequestError?> DecodeWithFeaturesAsync(ModelInferRequest request, Inference.Call call, CancellationToken ct)
    {
        var raw = request.RawInputContents;
        if (raw.Count > 0 && raw.Count != request.Inputs.Count)
            return new RequestError(400, $"raw_input_contents has {raw.Count} entries for {request.Inputs.Count} inputs; send one per input, in the inputs' order", "raw_input_contents");
        var json = new ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(json))
        {
            w.WriteStartObject();
            for (var i = 0; i < request.Inputs.Count; i++)
            {
                var t = request.Inputs[i];
                if (t.Shape.Count is < 1 or > 2 || t.Shape[0] < 0 || (t.Shape.Count == 2 && t.Shape[1] != 1))
                    return new RequestError(400, $"{t.Name}: shape must be [rows] or [rows, 1]", t.Name);
                RawValues? values = null;
                if (raw.Count > 0)
                {
                    var rawError = RawValues.Decode(t.Name, t.Datatype, t.Shape, raw[i].Span, out values);
                    if (rawError is not null) return rawError;
                }
                var count = values?.Count ?? Count(t);
                if (count != t.Shape[0]) return new RequestError(400, $"{t.Name}: shape says {t.Shape[0]} values, the contents have {count}", t.Name);
                w.WriteStartArray(t.Name);
                for (var r = 0; r < count; r++)
                {
                    if (values is not null)
                    {
                        if (values.Texts is { } texts) w.WriteStringValue(texts[r]);
                        else w.WriteNumberValue(values.Numbers![r]);
                        continue;
                    }
                    var c = t.Contents;
                    switch (t.Datatype)
                    {
                        case "BYTES": w.WriteStringValue(c.BytesContents[r].ToStringUtf8()); break;
                        case "FP32" or "FP16": w.WriteNumberValue(c.Fp32Contents[r]); break;
                        case "FP64": w.WriteNumberValue(c.Fp64Contents[r]); break;
                        case "INT8" or "INT16" or "INT32": w.WriteNumberValue(c.IntContents[r]); break;
                        case "INT64": w.WriteNumberValue(c.Int64Contents[r]); break;
                        case "UINT8" or "UINT16" or "UINT32": w.WriteNumberValue(c.UintContents[r]); break;
                        case "UINT64": w.WriteNumberValue(c.Uint64Contents[r]); break;
                        case "BOOL": w.WriteBooleanValue(c.BoolContents[r]); break;
                        default: return new RequestError(400, $"{t.Name}: datatype {t.Datatype} is not supported", t.Name);
                    }
                }
                w.WriteEndArray();
            }
            w.WriteEndObject();
        }
        return await call.FillFeaturesAsync(json.WrittenMemory, static (root, rows) => (Features.FeatureRows.FromColumns(root, "inputs", rows), true), ct).ConfigureAwait(false);
    }

    private static RequestError? Decode(ModelInferRequest request, InputBatch batch)
    {
        batch.IsBatch = true;
        var raw = request.RawInputContents;
        if (raw.Count > 0 && raw.Count != request.Inputs.Count)
            return new RequestError(400, $"raw_input_contents has {raw.Count} entries for {request.Inputs.Count} inputs; send one per input, in the inputs' order", "raw_input_contents");
        var rowsPerInput = new List<(int, int)>();
        var tensors = new List<(int Field, ModelInferRequest.Types.InferInputTensor Tensor, RawValues? Raw)>();
        for (var i = 0; i < request.Inputs.Count; i++)
        {
            var t = request.Inputs[i];
            RawValues? values = null;
            int count;
            if (raw.Count > 0)
            {
                if (Count(t) > 0) return new RequestError(400, $"{t.Name}: the input has contents although the request uses raw_input_contents; send one or the other", t.Name);
                var rawError = RawValues.Decode(t.Name, t.Datatype, t.Shape, raw[i].Span, out values);
                if (rawError is not null) return rawError;
                count = values!.Count;
            }
            else
            {
                count = Count(t);
            }
            var error = V2Tensors.Check(batch, t.Name, t.Datatype, t.Shape, count, out var field, out var rows);
            if (error is not null) return error;
            rowsPerInput.Add((field, rows));
            tensors.Add((field, t, values));
        }
        var rowsError = V2Tensors.CheckRows(batch, rowsPerInput, out var rowCount);
        if (rowsError is not null) return rowsError;
        for (var r = 0; r < rowCount; r++)
        {
            var error = batch.BeginRow();
            if (error is not null) return error;
            foreach (var (field, t, values) in tensors)
            {
                if ((error = batch.Mark(field)) is not null) return error;
                if (values is not null)
                {
                    error = values.Texts is { } texts ? batch.SetString(field, texts[r], texts[r]) : batch.SetNumber(field, values.Numbers![r]);
                    if (error is not null) return error;
                    continue;
                }
                var c = t.Contents;
                error = t.Datatype switch
                {
                    "BYTES" => batch.SetString(field, c.BytesContents[r].ToStringUtf8(), null),
                    "FP32" or "FP16" => batch.SetNumber(field, c.Fp32Contents[r]),
                    "FP64" => batch.SetNumber(field, c.Fp64Contents[r]),
                    "INT8" or "INT16" or "INT32" => batch.SetNumber(field, c.IntContents[r]),
                    "INT64" => batch.SetNumber(field, c.Int64Contents[r]),
                    "UINT8" or "UINT16" or "UINT32" => batch.SetNumber(field, c.UintContents[r]),
                    "UINT64" => batch.SetNumber(field, c.Uint64Contents[r]),
                    "BOOL" => batch.SetNumber(field, c.BoolContents[r] ? 1 : 0),
                    _ => new RequestError(400, $"{t.Name}: datatype {t.Datatype} is not supported", t.Name),
                };
                if (error is not null) return error;
            }
            if ((error = batch.EndRow()) is not null) return error;
        }
        return null;
    }

    private static int Count(ModelInferRequest.Types.InferInputTensor t)
    {
        var c = t.Contents;
        if (c is null) return 0;
        return t.Datatype switch
        {
            "BYTES" => c.BytesContents.Count,
            "FP32" or "FP16" => c.Fp32Contents.Count,
            "FP64" => c.Fp64Contents.Count,
            "INT8" or "INT16" or "INT32" => c.IntContents.Count,
            "INT64" => c.Int64Contents.Count,
            "UINT8" or "UINT16" or "UINT32" => c.UintContents.Count,
            "UINT64" => c.Uint64Contents.Count,
            "BOOL" => c.BoolContents.Count,
            _ => 0,
        };
    }

    private static RpcException Fail(Inference.Call call, RequestError error)
    {
        var code = error.Status switch
        {
            404 => StatusCode.NotFound,
            503 => StatusCode.Unavailable,
            _ => StatusCode.InvalidArgument,
        };
        call.Status = error.Status == 422 ? 400 : error.Status;
        var metadata = new Metadata();
        if (error.Field is not null) metadata.Add("kiln-field", error.Field);
        return new RpcException(new Status(code, error.Message), metadata);
    }
}
