using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;
using Kiln.Serving.Protocols.OpenInference.Grpc;
using Kiln.Testing;

namespace Kiln.Serving.Tests;

/// <summary>
/// The real kiln serve with --tls-cert/--tls-key (a self-signed EC certificate made by the test) and --require-token:
/// REST over HTTPS, and the Open Inference gRPC service over TLS with the generated client, on the gRPC port and on the
/// HTTP port (HTTP/2 by ALPN). Also gRPC refusals under --require-token in clear text.
/// </summary>
public sealed class ServeTlsTests
{
    private static async Task<System.Diagnostics.Process> StartAsync(string[] args, HttpClient http)
    {
        var process = KilnCli.Start(["serve", .. args, "--poll-interval", "0"]);
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (DateTime.UtcNow < deadline && !process.HasExited)
        {
            try
            {
                if ((await http.GetAsync("/ready")).IsSuccessStatusCode) return process;
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
            }
            await Task.Delay(200);
        }
        process.Kill(entireProcessTree: true);
        throw new TimeoutException("kiln serve never became ready");
    }

    private static ModelInferRequest Infer(float amount, string merchant)
    {
        var request = new ModelInferRequest { ModelName = "fraud", Id = "tls-1" };
        request.Inputs.Add(new ModelInferRequest.Types.InferInputTensor { Name = "amount", Datatype = "FP32", Shape = { 1 }, Contents = new InferTensorContents { Fp32Contents = { amount } } });
        request.Inputs.Add(new ModelInferRequest.Types.InferInputTensor { Name = "hour", Datatype = "INT64", Shape = { 1 }, Contents = new InferTensorContents { Int64Contents = { 3 } } });
        request.Inputs.Add(new ModelInferRequest.Types.InferInputTensor { Name = "merchant", Datatype = "BYTES", Shape = { 1 }, Contents = new InferTensorContents { BytesContents = { ByteString.CopyFromUtf8(merchant) } } });
        return request;
    }

    private static Metadata Bearer(string token) => [new Metadata.Entry("authorization", "Bearer " + token)];

    private static async Task<string> TokenFileAsync(TempDir dir)
    {
        var created = await KilnCli.RunAsync(["auth", "token", "create", "--file", dir.File("tokens.txt"), "--name", "scorer"]);
        Assert.True(created.ExitCode == 0, created.ToString());
        return created.StdOut.Trim();
    }

    [Fact]
    public async Task Rest_and_grpc_answer_over_tls_with_a_token_and_refuse_without_one()
    {
        using var dir = new TempDir("kiln-serve-tls");
        var package = TestPackages.CreateFraud(dir.File("fraud"));
        var cert = TestCertificate.Create(dir.Path, ec: true);
        var token = await TokenFileAsync(dir);
        var port = TestEnvironment.FreePort();
        var grpcPort = TestEnvironment.FreePort();
        using var http = cert.Client(new Uri($"https://127.0.0.1:{port}"));
        var process = await StartAsync(["--model", package, "--port", port.ToString(CultureInfo.InvariantCulture), "--grpc-port", grpcPort.ToString(CultureInfo.InvariantCulture),
            "--tls-cert", cert.CertFile, "--tls-key", cert.KeyFile, "--require-token", "--token-file", dir.File("tokens.txt")], http);
        try
        {
            // ML.NET's own prediction engine on the same package is the oracle.
            var expected = TestPackages.PredictWithMlnet(package, 420.5f, 3, "online");

            using (var request = new HttpRequestMessage(HttpMethod.Post, "/predict")
            {
                Content = new StringContent("""{"amount": 420.5, "hour": 3, "merchant": "online"}""", Encoding.UTF8, "application/json"),
            })
            {
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
                using var response = await http.SendAsync(request);
                var body = await response.Content.ReadAsStringAsync();
                Assert.True(response.StatusCode == HttpStatusCode.OK, body);
                Assert.Contains("probability", body, StringComparison.Ordinal);
            }
            Assert.Equal(HttpStatusCode.Unauthorized, (await http.PostAsync("/predict", new StringContent("{}", Encoding.UTF8, "application/json"))).StatusCode);

            // The gRPC port and the HTTPS port (HTTP/2 chosen by ALPN) both carry the gRPC service over TLS.
            foreach (var address in new[] { $"https://127.0.0.1:{grpcPort}", $"https://127.0.0.1:{port}" })
            {
                using var channel = GrpcChannel.ForAddress(address, new GrpcChannelOptions { HttpHandler = cert.Handler() });
                var client = new GRPCInferenceService.GRPCInferenceServiceClient(channel);
                var answer = await client.ModelInferAsync(Infer(420.5f, "online"), Bearer(token));
                Assert.Equal("tls-1", answer.Id);
                Assert.Equal(expected.Probability, answer.Outputs.Single(o => o.Name == "probability").Contents.Fp64Contents[0], 5);

                var e = await Assert.ThrowsAsync<RpcException>(async () => await client.ModelInferAsync(Infer(420.5f, "online")));
                Assert.Equal(StatusCode.Unauthenticated, e.StatusCode);
                e = await Assert.ThrowsAsync<RpcException>(async () => await client.ModelInferAsync(Infer(420.5f, "online"), Bearer(token + "x")));
                Assert.Equal(StatusCode.Unauthenticated, e.StatusCode);
                Assert.Contains("bearer token", e.Status.Detail, StringComparison.Ordinal);
            }

            // A client that does not trust the certificate is refused by its own TLS check.
            using var untrusting = new HttpClient { BaseAddress = http.BaseAddress, Timeout = TimeSpan.FromSeconds(10) };
            await Assert.ThrowsAsync<HttpRequestException>(() => untrusting.GetAsync("/health"));
        }
        finally
        {
            process.Kill(entireProcessTree: true);
        }
    }

    [Fact]
    public async Task Grpc_without_tls_is_refused_unauthenticated_without_a_good_token()
    {
        using var dir = new TempDir("kiln-serve-grpc-token");
        var package = TestPackages.CreateFraud(dir.File("fraud"));
        var token = await TokenFileAsync(dir);
        var port = TestEnvironment.FreePort();
        var grpcPort = TestEnvironment.FreePort();
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(30) };
        var process = await StartAsync(["--model", package, "--port", port.ToString(CultureInfo.InvariantCulture), "--grpc-port", grpcPort.ToString(CultureInfo.InvariantCulture),
            "--require-token", "--token-file", dir.File("tokens.txt")], http);
        try
        {
            using var channel = GrpcChannel.ForAddress($"http://127.0.0.1:{grpcPort}");
            var client = new GRPCInferenceService.GRPCInferenceServiceClient(channel);
            foreach (var headers in new Metadata?[] { null, Bearer(token + "x"), [new Metadata.Entry("authorization", "Basic " + token)] })
            {
                var e = await Assert.ThrowsAsync<RpcException>(async () => await client.ModelInferAsync(Infer(1, "online"), headers));
                Assert.Equal(StatusCode.Unauthenticated, e.StatusCode);
                e = await Assert.ThrowsAsync<RpcException>(async () => await client.ModelMetadataAsync(new ModelMetadataRequest { Name = "fraud" }, headers));
                Assert.Equal(StatusCode.Unauthenticated, e.StatusCode);
            }
            var expected = TestPackages.PredictWithMlnet(package, 1, 3, "online");
            var answer = await client.ModelInferAsync(Infer(1, "online"), Bearer(token));
            Assert.Equal(expected.Probability, answer.Outputs.Single(o => o.Name == "probability").Contents.Fp64Contents[0], 5);
            Assert.Equal(["amount", "hour", "merchant"], (await client.ModelMetadataAsync(new ModelMetadataRequest { Name = "fraud" }, Bearer(token))).Inputs.Select(i => i.Name));
        }
        finally
        {
            process.Kill(entireProcessTree: true);
        }
    }

    [Fact]
    public async Task Kiln_serve_refuses_a_key_that_does_not_match_in_one_line()
    {
        using var dir = new TempDir("kiln-serve-tls-bad");
        var package = TestPackages.CreateFraud(dir.File("fraud"));
        var cert = TestCertificate.Create(dir.Path);
        var other = TestCertificate.Create(dir.Path, "other");
        var r = await KilnCli.RunAsync(["serve", "--model", package, "--port", TestEnvironment.FreePort().ToString(CultureInfo.InvariantCulture), "--grpc-port", "-1",
            "--tls-cert", cert.CertFile, "--tls-key", other.KeyFile]);
        Assert.Equal(1, r.ExitCode);
        Assert.Equal($"error: --tls-key {other.KeyFile}: this key does not match the certificate in --tls-cert {cert.CertFile} (CN=server)",
            r.StdErr.Split('\n')[0].Trim());
        Assert.DoesNotContain("kiln serve: HTTP", r.StdOut, StringComparison.Ordinal);
    }
}
