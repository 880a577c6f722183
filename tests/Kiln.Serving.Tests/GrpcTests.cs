using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;
using Kiln.Serving.Protocols.OpenInference.Grpc;
using Kiln.Testing;

namespace Kiln.Serving.Tests;

public sealed class GrpcTests(ServerFixture server) : IClassFixture<ServerFixture>
{
    private GRPCInferenceService.GRPCInferenceServiceClient Client()
    {
        var channel = GrpcChannel.ForAddress(server.Host.GrpcUri!);
        return new GRPCInferenceService.GRPCInferenceServiceClient(channel);
    }

    private static ModelInferRequest Request(float amount, string merchant)
    {
        var request = new ModelInferRequest { ModelName = "fraud", Id = "g-1" };
        request.Inputs.Add(new ModelInferRequest.Types.InferInputTensor { Name = "amount", Datatype = "FP32", Shape = { 1 }, Contents = new InferTensorContents { Fp32Contents = { amount } } });
        request.Inputs.Add(new ModelInferRequest.Types.InferInputTensor { Name = "hour", Datatype = "INT64", Shape = { 1, 1 }, Contents = new InferTensorContents { Int64Contents = { 3 } } });
        request.Inputs.Add(new ModelInferRequest.Types.InferInputTensor { Name = "merchant", Datatype = "BYTES", Shape = { 1 }, Contents = new InferTensorContents { BytesContents = { ByteString.CopyFromUtf8(merchant) } } });
        return request;
    }

    [Fact]
    public async Task Grpc_infer_answers_as_the_rest_protocol_does()
    {
        var client = Client();
        Assert.True((await client.ServerLiveAsync(new ServerLiveRequest())).Live);
        Assert.True((await client.ServerReadyAsync(new ServerReadyRequest())).Ready);
        Assert.True((await client.ModelReadyAsync(new ModelReadyRequest { Name = "fraud" })).Ready);
        var meta = await client.ModelMetadataAsync(new ModelMetadataRequest { Name = "fraud" });
        Assert.Equal(["amount", "hour", "merchant"], meta.Inputs.Select(i => i.Name));
        var response = await client.ModelInferAsync(Request(420.5f, "online"));
        Assert.Equal("fraud", response.ModelName);
        Assert.Equal(Kiln.Core.Packaging.DirectoryModelLocator.ContentVersion(server.FraudPackage), response.ModelVersion);
        Assert.Equal("g-1", response.Id);
        var expected = TestPackages.PredictWithMlnet(server.FraudPackage, 420.5f, 3, "online");
        var probability = response.Outputs.Single(o => o.Name == "probability");
        Assert.Equal(expected.Probability, probability.Contents.Fp64Contents[0], 5);
        Assert.Equal(expected.PredictedLabel ? "fraud" : "legit", response.Outputs.Single(o => o.Name == "prediction").Contents.BytesContents[0].ToStringUtf8());
    }

    [Fact]
    public async Task Grpc_mistakes_are_invalid_argument_naming_the_field()
    {
        var client = Client();
        var e = await Assert.ThrowsAsync<RpcException>(async () => await client.ModelInferAsync(Request(1, "casino")));
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        Assert.Contains("merchant", e.Status.Detail);
        var wrongShape = Request(1, "online");
        wrongShape.Inputs[0].Shape.Add(3);
        e = await Assert.ThrowsAsync<RpcException>(async () => await client.ModelInferAsync(wrongShape));
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        Assert.Contains("amount", e.Status.Detail);
        e = await Assert.ThrowsAsync<RpcException>(async () => await client.ModelMetadataAsync(new ModelMetadataRequest { Name = "nope" }));
        Assert.Equal(StatusCode.NotFound, e.StatusCode);
        // …and the next call works.
        Assert.Equal("fraud", (await client.ModelInferAsync(Request(1, "online"))).ModelName);
    }

    /// <summary>Two rows in raw_input_contents: amount FP64, hour INT64, merchant BYTES with 4-byte little-endian lengths.</summary>
    private static ModelInferRequest RawRequest(byte[] merchantBytes, long rows = 2)
    {
        var request = new ModelInferRequest { ModelName = "fraud" };
        request.Inputs.Add(new ModelInferRequest.Types.InferInputTensor { Name = "amount", Datatype = "FP64", Shape = { rows } });
        request.Inputs.Add(new ModelInferRequest.Types.InferInputTensor { Name = "hour", Datatype = "INT64", Shape = { rows, 1 } });
        request.Inputs.Add(new ModelInferRequest.Types.InferInputTensor { Name = "merchant", Datatype = "BYTES", Shape = { rows } });
        var amount = new byte[16];
        System.Buffers.Binary.BinaryPrimitives.WriteDoubleLittleEndian(amount, 420.5);
        System.Buffers.Binary.BinaryPrimitives.WriteDoubleLittleEndian(amount.AsSpan(8), 12);
        var hour = new byte[16];
        System.Buffers.Binary.BinaryPrimitives.WriteInt64LittleEndian(hour, 3);
        System.Buffers.Binary.BinaryPrimitives.WriteInt64LittleEndian(hour.AsSpan(8), 14);
        request.RawInputContents.Add(ByteString.CopyFrom(amount));
        request.RawInputContents.Add(ByteString.CopyFrom(hour));
        request.RawInputContents.Add(ByteString.CopyFrom(merchantBytes));
        return request;
    }

    private static byte[] LengthPrefixed(params string[] values)
    {
        var bytes = new List<byte>();
        foreach (var v in values)
        {
            var b = System.Text.Encoding.UTF8.GetBytes(v);
            bytes.AddRange(BitConverter.GetBytes((uint)b.Length)); // little-endian on x64, as the protocol wants
            bytes.AddRange(b);
        }
        return [.. bytes];
    }

    [Fact]
    public async Task Raw_input_contents_score_like_contents_and_bad_lengths_are_invalid_argument_naming_the_input()
    {
        var client = Client();
        var response = await client.ModelInferAsync(RawRequest(LengthPrefixed("online", "fuel")));
        var probability = response.Outputs.Single(o => o.Name == "probability").Contents.Fp64Contents;
        Assert.Equal(TestPackages.PredictWithMlnet(server.FraudPackage, 420.5f, 3, "online").Probability, probability[0], 5);
        Assert.Equal(TestPackages.PredictWithMlnet(server.FraudPackage, 12f, 14, "fuel").Probability, probability[1], 5);

        // A BYTES element whose declared length runs past the end.
        var truncated = LengthPrefixed("online", "fuel")[..^2];
        var e = await Assert.ThrowsAsync<RpcException>(async () => await client.ModelInferAsync(RawRequest(truncated)));
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        Assert.Contains("merchant", e.Status.Detail);
        // Bytes for two rows where the shape says three.
        e = await Assert.ThrowsAsync<RpcException>(async () => await client.ModelInferAsync(RawRequest(LengthPrefixed("online", "fuel"), rows: 3)));
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        Assert.Contains("amount", e.Status.Detail);
        // Contents and raw contents together.
        var both = RawRequest(LengthPrefixed("online", "fuel"));
        both.Inputs[0].Contents = new InferTensorContents { Fp64Contents = { 1, 2 } };
        e = await Assert.ThrowsAsync<RpcException>(async () => await client.ModelInferAsync(both));
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        Assert.Contains("amount", e.Status.Detail);
        // The server goes on answering.
        Assert.Equal("fraud", (await client.ModelInferAsync(Request(1, "online"))).ModelName);
    }

    [Fact]
    public async Task A_grpc_js_client_generated_from_the_public_proto_calls_the_server()
    {
        var js = Path.Combine(TestEnvironment.RepoRoot, "tests", "js");
        Assert.True(Directory.Exists(Path.Combine(js, "node_modules", "@grpc", "grpc-js")),
            "tests/js/node_modules lacks @grpc/grpc-js: run `npm install` in tests/js (test.sh does)");
        var proto = Path.Combine(TestEnvironment.RepoRoot, "src", "Kiln.Serving", "Protocols", "OpenInference", "grpc_predict_v2.proto");
        var target = $"{server.Host.GrpcUri!.Host}:{server.Host.GrpcUri.Port}";
        var result = await Proc.RunAsync("node", [Path.Combine(js, "grpc_v2_client.js"), proto, target, "fraud"], js, timeout: TimeSpan.FromSeconds(60));
        Assert.True(result.ExitCode == 0, result.ToString());
        var output = System.Text.Json.JsonDocument.Parse(result.StdOut).RootElement;
        Assert.True(output.GetProperty("live").GetBoolean());
        Assert.Equal("fraud", output.GetProperty("metadata_name").GetString());
        Assert.Equal(Kiln.Core.Packaging.DirectoryModelLocator.ContentVersion(server.FraudPackage), output.GetProperty("model_version").GetString());
        var expected = TestPackages.PredictWithMlnet(server.FraudPackage, 420.5f, 3, "online");
        Assert.Equal(expected.Probability, output.GetProperty("probability").GetDouble(), 5);
        Assert.Equal("INVALID_ARGUMENT", output.GetProperty("bad_request_code").GetString());
        // raw_input_contents: the same row as little-endian bytes scores the same; bytes that do not fit the shape are refused, naming the input.
        Assert.Equal(expected.Probability, output.GetProperty("raw_probability").GetDouble(), 5);
        Assert.Equal(output.GetProperty("prediction").GetString(), output.GetProperty("raw_prediction").GetString());
        // Output tensors carry the signature's names, as /predict does.
        Assert.Equal(["prediction", "probability"], output.GetProperty("outputs").EnumerateArray().Select(o => o.GetString()));
        Assert.Equal("INVALID_ARGUMENT", output.GetProperty("raw_bad_code").GetString());
        Assert.Contains("amount", output.GetProperty("raw_bad_message").GetString());
        Assert.Contains("3 bytes", output.GetProperty("raw_bad_message").GetString());
    }

    [Fact]
    public async Task Server_reflection_lists_the_inference_service_and_describes_it_without_the_proto()
    {
        // The reflection client is gRPC's own (Grpc.Reflection), as grpcurl speaks the same protocol.
        using var channel = GrpcChannel.ForAddress(server.Host.GrpcUri!);
        var reflection = new Grpc.Reflection.V1Alpha.ServerReflection.ServerReflectionClient(channel);
        using var call = reflection.ServerReflectionInfo();
        await call.RequestStream.WriteAsync(new Grpc.Reflection.V1Alpha.ServerReflectionRequest { ListServices = "" });
        Assert.True(await call.ResponseStream.MoveNext(CancellationToken.None));
        var services = call.ResponseStream.Current.ListServicesResponse.Service.Select(s => s.Name).ToList();
        Assert.Contains("inference.GRPCInferenceService", services);

        await call.RequestStream.WriteAsync(new Grpc.Reflection.V1Alpha.ServerReflectionRequest { FileContainingSymbol = "inference.GRPCInferenceService" });
        Assert.True(await call.ResponseStream.MoveNext(CancellationToken.None));
        var files = call.ResponseStream.Current.FileDescriptorResponse.FileDescriptorProto
            .Select(b => Google.Protobuf.Reflection.FileDescriptorProto.Parser.ParseFrom(b)).ToList();
        var service = files.SelectMany(f => f.Service).Single(s => s.Name == "GRPCInferenceService");
        Assert.Contains("ModelInfer", service.Method.Select(m => m.Name));
        await call.RequestStream.CompleteAsync();
    }
}
