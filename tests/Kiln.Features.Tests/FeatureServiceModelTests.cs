using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using DuckDB.NET.Data;
using Grpc.Core;
using Grpc.Net.Client;
using Kiln.Core.Data;
using Kiln.Core.Packaging;
using Kiln.Features.Definitions;
using Kiln.Features.Offline;
using Kiln.Features.Online;
using Kiln.Features.Registry;
using Kiln.Scoring;
using Kiln.Serving;
using Kiln.Serving.Features;
using Kiln.Serving.Protocols.OpenInference.Grpc;
using Kiln.Testing;
using Kiln.Training;

namespace Kiln.Features.Tests;

/// <summary>
/// A model trained from a feature service and served with online features: the package records the service, and for
/// the same entity and time the values the served model sees (from the prediction log) equal the training set's row
/// built offline, and its predictions equal scoring that row offline.
/// </summary>
public sealed class FeatureServiceModelTests
{
    public static TheoryData<string> Stores => new() { "sqlite", "redis" };

    [Theory]
    [MemberData(nameof(Stores))]
    public async Task Served_model_sees_the_training_set_values_and_predicts_the_same(string kind)
    {
        using var world = new RideWorld(seed: kind == "sqlite" ? 11 : 12);
        var repo = RepositoryLoader.Load(world.Repo);
        int version;
        await using (var registry = await FeatureRegistry.OpenAsync(world.Registry))
            version = (await registry.ApplyAsync(repo, world.Repo)).Version;

        // Train from the feature service; the package records which service, version and features it used.
        var spec = TrainingSpec.Load(world.Dir.File("train.yaml"));
        var result = await Trainer.TrainAsync(spec, world.Dir.File("pkg"));
        var package = ModelPackage.Load(result.PackageDirectory);
        var fs = Assert.IsType<FeatureStoreInfo>(package.Metadata.FeatureStore);
        Assert.Equal(RideWorld.Service, fs.Service);
        Assert.Equal(world.Project, fs.Project);
        Assert.Equal(version, fs.DefinitionsVersion);
        Assert.Equal(["driver_stats:conv_rate", "driver_stats:trips", "driver_profile:tier"], fs.Features);
        Assert.Equal(new Dictionary<string, string> { ["conv_rate"] = "driver_stats:conv_rate", ["tier"] = "driver_profile:tier", ["trips"] = "driver_stats:trips" }, fs.Inputs);
        Assert.Equal(["driver_id"], fs.JoinKeys);
        Assert.Equal(ModelPackage.Sha256OfFile(world.Dir.File("training_set.parquet")), fs.TrainingSetSha256);
        Assert.Equal("entities.parquet", package.Metadata.Dataset!.Uri);
        Assert.Equal(500, package.Metadata.Dataset.Rows);

        // Materialize up to now, then serve over a real socket with the prediction log on.
        var online = kind == "sqlite" ? world.Dir.File("online.db") : "redis://" + TestEnvironment.Redis;
        await using (var store = await OnlineStores.OpenAsync(online))
            await Materializer.MaterializeAsync(repo, store, null, null, world.Now.AddDays(-30), world.Now);
        var logDir = world.Dir.File("log");
        var host = await ServingHost.BuildAsync(new ServeOptions
        {
            Models = [new ModelSpec(result.PackageDirectory)],
            Port = 0,
            GrpcPort = 0,
            LogDirectory = logDir,
            PollInterval = TimeSpan.Zero,
            FeatureStore = new FeatureStoreOptions { Registry = world.Registry, OnlineStore = online },
        }, logging: _ => { });
        var responses = new Dictionary<int, JsonElement>();
        JsonElement batch, mlflowRecords, mlflowSplit, v2;
        ModelInferResponse grpc, grpcRaw;
        await using (host)
        {
            await host.StartAndLoadAsync();
            // Bound to the store when it loaded, before its first request: no request pays for the binding.
            var binding = host.Models.Default.Current!.FeatureBinding;
            Assert.NotNull(binding);
            Assert.Equal(fs.Service, binding.Service);
            using var http = new HttpClient { BaseAddress = host.HttpUri };
            for (var d = 1; d <= RideWorld.Drivers; d++)
            {
                var (status, body) = await PostAsync(http, $$"""{"driver_id": {{d}}, "amount": {{RideWorld.Amount(d).ToString(System.Globalization.CultureInfo.InvariantCulture)}}}""", $"parity-{d}");
                Assert.True(status == 200, $"driver {d}: {status} {body}");
                responses[d] = body;
            }
            var rows = string.Join(", ", Enumerable.Range(1, RideWorld.Drivers).Select(d => $$"""{"driver_id": {{d}}, "amount": {{RideWorld.Amount(d).ToString(System.Globalization.CultureInfo.InvariantCulture)}}}"""));
            int batchStatus;
            (batchStatus, batch) = await PostAsync(http, $"[{rows}]", "parity-batch");
            Assert.Equal(200, batchStatus);

            // The same rows through MLflow's scoring protocol (records and split) and Open Inference v2 REST: there too
            // the rows carry the join key and the request field, and the store fills the features.
            var drivers = Enumerable.Range(1, RideWorld.Drivers).ToList();
            string Amount(int d) => RideWorld.Amount(d).ToString(System.Globalization.CultureInfo.InvariantCulture);
            int protocolStatus;
            (protocolStatus, mlflowRecords) = await PostAsync(http, $$"""{"dataframe_records": [{{rows}}]}""", path: "/invocations");
            Assert.True(protocolStatus == 200, mlflowRecords.ToString());
            var splitData = string.Join(", ", drivers.Select(d => $"[{d}, {Amount(d)}]"));
            (protocolStatus, mlflowSplit) = await PostAsync(http, "{\"dataframe_split\": {\"columns\": [\"driver_id\", \"amount\"], \"data\": [" + splitData + "]}}", path: "/invocations");
            Assert.True(protocolStatus == 200, mlflowSplit.ToString());
            var v2Path = $"/v2/models/{host.Models.Default.Name}/infer";
            (protocolStatus, v2) = await PostAsync(http, $$"""
                {"inputs": [{"name": "driver_id", "datatype": "INT64", "shape": [{{drivers.Count}}], "data": [{{string.Join(", ", drivers)}}]},
                            {"name": "amount", "datatype": "FP64", "shape": [{{drivers.Count}}, 1], "data": [{{string.Join(", ", drivers.Select(Amount))}}]}]}
                """, path: v2Path);
            Assert.True(protocolStatus == 200, v2.ToString());
            // v2 metadata lists what a request sends: the join key (typed as the entity declares) and the request field.
            var metadata = JsonDocument.Parse(await http.GetStringAsync($"/v2/models/{host.Models.Default.Name}")).RootElement;
            Assert.Equal(["driver_id:INT64", "amount:FP64"], metadata.GetProperty("inputs").EnumerateArray().Select(t => $"{t.GetProperty("name").GetString()}:{t.GetProperty("datatype").GetString()}"));
            var (m1, e1) = await PostAsync(http, """{"dataframe_records": [{"driver_id": 1, "amount": 1}, {"amount": 2}]}""", path: "/invocations");
            Assert.Equal(400, m1);
            Assert.Equal("BAD_REQUEST", e1.GetProperty("error_code").GetString());
            Assert.StartsWith("row 1: driver_id: missing entity key", e1.GetProperty("message").GetString());
            var (m2, e2) = await PostAsync(http, $$"""{"inputs": [{"name": "driver_id", "datatype": "INT64", "shape": [1], "data": [1]}, {"name": "conv_rate", "datatype": "FP64", "shape": [1], "data": [0.5]}, {"name": "amount", "datatype": "FP64", "shape": [1], "data": [1]}]}""", path: v2Path);
            Assert.Equal(400, m2);
            Assert.Contains("driver_stats:conv_rate", e2.GetProperty("error").GetString());
            using (var csv = new StringContent("driver_id,amount\n1,2\n", Encoding.UTF8, "text/csv"))
            using (var csvResponse = await http.PostAsync("/invocations", csv))
                Assert.Equal(415, (int)csvResponse.StatusCode);

            // And over gRPC (inference.GRPCInferenceService), typed contents.
            using (var channel = GrpcChannel.ForAddress(host.GrpcUri!))
            {
                var client = new GRPCInferenceService.GRPCInferenceServiceClient(channel);
                ModelInferRequest Request(bool withKeys)
                {
                    var request = new ModelInferRequest { ModelName = host.Models.Default.Name };
                    var keys = new ModelInferRequest.Types.InferInputTensor { Name = "driver_id", Datatype = "INT64", Shape = { drivers.Count }, Contents = new() };
                    keys.Contents.Int64Contents.Add(drivers.Select(d => (long)d));
                    var amounts = new ModelInferRequest.Types.InferInputTensor { Name = "amount", Datatype = "FP64", Shape = { drivers.Count, 1 }, Contents = new() };
                    amounts.Contents.Fp64Contents.Add(drivers.Select(RideWorld.Amount));
                    if (withKeys) request.Inputs.Add(keys);
                    request.Inputs.Add(amounts);
                    return request;
                }
                var grpcMetadata = await client.ModelMetadataAsync(new ModelMetadataRequest { Name = host.Models.Default.Name });
                Assert.Equal(["driver_id:INT64", "amount:FP64"], grpcMetadata.Inputs.Select(t => $"{t.Name}:{t.Datatype}"));
                grpc = await client.ModelInferAsync(Request(withKeys: true));
                // raw_input_contents (little-endian int64 keys, float64 amounts) take the same path to the store.
                var raw = new ModelInferRequest { ModelName = host.Models.Default.Name };
                raw.Inputs.Add(new ModelInferRequest.Types.InferInputTensor { Name = "driver_id", Datatype = "INT64", Shape = { drivers.Count } });
                raw.Inputs.Add(new ModelInferRequest.Types.InferInputTensor { Name = "amount", Datatype = "FP64", Shape = { drivers.Count, 1 } });
                raw.RawInputContents.Add(Google.Protobuf.ByteString.CopyFrom([.. drivers.SelectMany(d => BitConverter.GetBytes((long)d))]));
                raw.RawInputContents.Add(Google.Protobuf.ByteString.CopyFrom([.. drivers.SelectMany(d => BitConverter.GetBytes(RideWorld.Amount(d)))]));
                grpcRaw = await client.ModelInferAsync(raw);
                var refused = await Assert.ThrowsAsync<RpcException>(async () => await client.ModelInferAsync(Request(withKeys: false)));
                Assert.Equal(StatusCode.InvalidArgument, refused.StatusCode);
                Assert.Contains("driver_id: missing entity key", refused.Status.Detail);
            }

            // Client mistakes: named, never a 500, never scored.
            var (s1, b1) = await PostAsync(http, """{"amount": 3.5}""");
            Assert.Equal(400, s1);
            Assert.Equal("driver_id", b1.GetProperty("field").GetString());
            Assert.Contains("missing entity key", b1.GetProperty("detail").GetString());
            var (s2, b2) = await PostAsync(http, """[{"driver_id": 1, "amount": 1}, {"amount": 2}]""");
            Assert.Equal(400, s2);
            Assert.StartsWith("row 1: driver_id:", b2.GetProperty("detail").GetString());
            var (s3, b3) = await PostAsync(http, """{"driver_id": "abc", "amount": 3.5}""");
            Assert.Equal(400, s3);
            Assert.Contains("driver_id", b3.GetProperty("detail").GetString());
            var (s4, b4) = await PostAsync(http, """{"driver_id": 1, "amount": 3.5, "conv_rate": 0.2}""");
            Assert.Equal(422, s4);
            Assert.Contains("driver_stats:conv_rate", b4.GetProperty("detail").GetString());
            var (s5, b5) = await PostAsync(http, """{"driver_id": 1}""");
            Assert.Equal(422, s5);
            Assert.Equal("amount", b5.GetProperty("field").GetString());
            var (s6, b6) = await PostAsync(http, """{"driver_id": 1, "amount": 1, "speed": 3}""");
            Assert.Equal(422, s6);
            Assert.Equal("speed", b6.GetProperty("field").GetString());
            await host.StopAsync();
        }

        // The offline side: the training set row of each driver at the same time, scored offline by the same package.
        var frame = await HistoricalRetrieval.ToFrameAsync(repo, world.Dir.File("parity.parquet"), repo.ServiceFeatures(RideWorld.Service));
        var table = new DataTable(frame.Rows.Count)
            .Add(new NumericColumn("conv_rate", [.. frame.Rows.Select(r => r[frame.Ordinal("conv_rate")] is double v ? v : double.NaN)]))
            .Add(new NumericColumn("trips", [.. frame.Rows.Select(r => r[frame.Ordinal("trips")] is long v ? v : double.NaN)]))
            .Add(new TextColumn("tier", [.. frame.Rows.Select(r => (string?)r[frame.Ordinal("tier")])]))
            .Add(new NumericColumn("amount", [.. frame.Rows.Select(r => (double)r[frame.Ordinal("amount")]!)]));
        Prediction[] offline;
        using (var scorer = Scorers.Open(result.PackageDirectory)) offline = scorer.ScoreAll(table);

        // What the served model saw, from the prediction log.
        var seen = ReadLog(logDir);
        var statuses = new HashSet<string>();
        for (var d = 1; d <= RideWorld.Drivers; d++)
        {
            var row = frame.Rows[d - 1];
            Assert.Equal((long)d, row[frame.Ordinal("driver_id")]);
            var log = seen[$"parity-{d}"];
            Assert.True(Equals(row[frame.Ordinal("conv_rate")], log.ConvRate), $"driver {d} conv_rate: offline {row[frame.Ordinal("conv_rate")]}, online {log.ConvRate}");
            Assert.True(Equals(row[frame.Ordinal("trips")] is long t ? (double)t : null, log.Trips), $"driver {d} trips: offline {row[frame.Ordinal("trips")]}, online {log.Trips}");
            Assert.True(Equals(row[frame.Ordinal("tier")], log.Tier), $"driver {d} tier: offline {row[frame.Ordinal("tier")]}, online {log.Tier}");
            Assert.Equal(RideWorld.Amount(d), log.Amount);

            var response = responses[d];
            Assert.Equal(offline[d - 1].Value, response.GetProperty("probability").GetDouble());
            Assert.Equal(offline[d - 1].Label, response.GetProperty("prediction").GetString());
            Assert.Equal(RideWorld.Service, response.GetProperty("feature_service").GetString());
            var fromBatch = batch.GetProperty("predictions")[d - 1];
            Assert.Equal(offline[d - 1].Value, fromBatch.GetProperty("probability").GetDouble());
            Assert.Equal(offline[d - 1].Value, mlflowRecords.GetProperty("predictions")[d - 1].GetProperty("probability").GetDouble());
            Assert.Equal(offline[d - 1].Value, mlflowSplit.GetProperty("predictions")[d - 1].GetProperty("probability").GetDouble());
            var v2Probability = v2.GetProperty("outputs").EnumerateArray().Single(o => o.GetProperty("name").GetString() == "probability");
            Assert.Equal(offline[d - 1].Value, v2Probability.GetProperty("data")[d - 1].GetDouble());
            Assert.Equal(offline[d - 1].Value, grpc.Outputs.Single(o => o.Name == "probability").Contents.Fp64Contents[d - 1]);
            Assert.Equal(offline[d - 1].Value, grpcRaw.Outputs.Single(o => o.Name == "probability").Contents.Fp64Contents[d - 1]);
            // Every protocol gives the same entity the same prediction: the label too, where the protocol answers one.
            Assert.Equal(offline[d - 1].Label, mlflowRecords.GetProperty("predictions")[d - 1].GetProperty("prediction").GetString());
            var v2Label = v2.GetProperty("outputs").EnumerateArray().Single(o => o.GetProperty("datatype").GetString() == "BYTES");
            Assert.Equal(offline[d - 1].Label, v2Label.GetProperty("data")[d - 1].GetString());
            Assert.Equal(offline[d - 1].Label, grpc.Outputs.Single(o => o.Datatype == "BYTES").Contents.BytesContents[d - 1].ToStringUtf8());

            // Features without a value are listed with their status, and only they.
            var missing = response.TryGetProperty("missing_features", out var m) ? m.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString()!) : [];
            Assert.Equal(row[frame.Ordinal("conv_rate")] is null, missing.ContainsKey("conv_rate"));
            Assert.Equal(row[frame.Ordinal("trips")] is null, missing.ContainsKey("trips"));
            Assert.Equal(row[frame.Ordinal("tier")] is null, missing.ContainsKey("tier"));
            foreach (var s in missing.Values) statuses.Add(s);
            if (d > 40) Assert.Equal("NOT_FOUND", missing["conv_rate"]);
            else if (d > 30) Assert.Equal("OUTSIDE_MAX_AGE", missing["trips"]);
        }
        Assert.Superset(new HashSet<string> { "NOT_FOUND", "OUTSIDE_MAX_AGE", "NULL_VALUE" }, statuses);
    }

    [Fact]
    public async Task A_plain_package_served_with_a_feature_service_predicts_like_the_one_trained_from_it()
    {
        using var world = new RideWorld(seed: 21);
        var repo = RepositoryLoader.Load(world.Repo);
        await using (var registry = await FeatureRegistry.OpenAsync(world.Registry))
            await registry.ApplyAsync(repo, world.Repo);
        var fromService = await Trainer.TrainAsync(TrainingSpec.Load(world.Dir.File("train.yaml")), world.Dir.File("pkg"));
        // The same training set as a flat file, same seed: the same model, but its package records no feature service.
        File.WriteAllText(world.Dir.File("flat.yaml"), File.ReadAllText(world.Dir.File("train.yaml"))
            .Replace("name: accept", "name: flat", StringComparison.Ordinal)
            .Replace("""
                features_from:
                  service: acceptance
                  entities: entities.parquet
                  registry: registry.db
                  out: training_set.parquet
                """, "data: training_set.parquet", StringComparison.Ordinal));
        var flat = await Trainer.TrainAsync(TrainingSpec.Load(world.Dir.File("flat.yaml")), world.Dir.File("flat"));
        Assert.Null(ModelPackage.Load(flat.PackageDirectory).Metadata.FeatureStore);

        var online = world.Dir.File("online.db");
        await using (var store = await OnlineStores.OpenAsync(online))
            await Materializer.MaterializeAsync(repo, store, null, null, world.Now.AddDays(-30), world.Now);
        await using var host = await ServingHost.BuildAsync(new ServeOptions
        {
            Models = [new ModelSpec(fromService.PackageDirectory), new ModelSpec(flat.PackageDirectory)],
            Port = 0,
            GrpcPort = null,
            PollInterval = TimeSpan.Zero,
            FeatureStore = new FeatureStoreOptions { Registry = world.Registry, OnlineStore = online, Service = RideWorld.Service },
        }, logging: _ => { });
        await host.StartAndLoadAsync();
        using var http = new HttpClient { BaseAddress = host.HttpUri };
        foreach (var d in new[] { 2, 17, 33, 44 })
        {
            var body = $$"""{"driver_id": {{d}}, "amount": 41.5}""";
            var (s1, recorded) = await PostAsync(http, body, path: "/predict/accept");
            var (s2, named) = await PostAsync(http, body, path: "/predict/flat");
            Assert.True(s1 == 200 && s2 == 200, $"{s1} {recorded} / {s2} {named}");
            Assert.Equal(recorded.GetProperty("probability").GetDouble(), named.GetProperty("probability").GetDouble());
            Assert.Equal(recorded.TryGetProperty("missing_features", out var m1) ? m1.GetRawText() : "", named.TryGetProperty("missing_features", out var m2) ? m2.GetRawText() : "");
        }
        await host.StopAsync();

        // An online store that does not exist is a 503 naming it, not an empty store created on the fly, on every protocol.
        await using var wrong = await ServingHost.BuildAsync(new ServeOptions
        {
            Models = [new ModelSpec(fromService.PackageDirectory)],
            Port = 0,
            GrpcPort = 0,
            PollInterval = TimeSpan.Zero,
            FeatureStore = new FeatureStoreOptions { Registry = world.Registry, OnlineStore = world.Dir.File("nope.db") },
        }, logging: _ => { });
        await wrong.StartAndLoadAsync();
        // The store could not be bound at load; the version serves all the same, and answers 503 until it can be.
        Assert.NotNull(wrong.Models.Default.Current);
        Assert.Null(wrong.Models.Default.Current!.FeatureBinding);
        using var http2 = new HttpClient { BaseAddress = wrong.HttpUri };
        var (status, problem) = await PostAsync(http2, """{"driver_id": 2, "amount": 1}""");
        Assert.Equal(503, status);
        Assert.Contains("nope.db does not exist", problem.GetProperty("detail").GetString());
        var (mlflowStatus, mlflowError) = await PostAsync(http2, """{"dataframe_records": [{"driver_id": 2, "amount": 1}]}""", path: "/invocations");
        Assert.Equal(503, mlflowStatus);
        Assert.Equal("TEMPORARILY_UNAVAILABLE", mlflowError.GetProperty("error_code").GetString());
        Assert.Contains("nope.db does not exist", mlflowError.GetProperty("message").GetString());
        var (v2Status, v2Error) = await PostAsync(http2, """{"inputs": [{"name": "driver_id", "datatype": "INT64", "shape": [1], "data": [2]}, {"name": "amount", "datatype": "FP64", "shape": [1], "data": [1]}]}""",
            path: $"/v2/models/{wrong.Models.Default.Name}/infer");
        Assert.Equal(503, v2Status);
        Assert.Contains("nope.db does not exist", v2Error.GetProperty("error").GetString());
        using (var channel = GrpcChannel.ForAddress(wrong.GrpcUri!))
        {
            var client = new GRPCInferenceService.GRPCInferenceServiceClient(channel);
            var request = new ModelInferRequest { ModelName = wrong.Models.Default.Name };
            request.Inputs.Add(new ModelInferRequest.Types.InferInputTensor { Name = "driver_id", Datatype = "INT64", Shape = { 1 }, Contents = new() { Int64Contents = { 2 } } });
            request.Inputs.Add(new ModelInferRequest.Types.InferInputTensor { Name = "amount", Datatype = "FP64", Shape = { 1 }, Contents = new() { Fp64Contents = { 1 } } });
            var refused = await Assert.ThrowsAsync<RpcException>(async () => await client.ModelInferAsync(request));
            Assert.Equal(StatusCode.Unavailable, refused.StatusCode);
            Assert.Contains("nope.db does not exist", refused.Status.Detail);
        }
        Assert.False(File.Exists(world.Dir.File("nope.db")));
    }

    private static async Task<(int Status, JsonElement Body)> PostAsync(HttpClient http, string json, string? requestId = null, string path = "/predict")
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(json, Encoding.UTF8) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        if (requestId is not null) request.Headers.Add("X-Request-Id", requestId);
        using var response = await http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        return ((int)response.StatusCode, JsonDocument.Parse(text).RootElement.Clone());
    }

    private sealed record Logged(double? ConvRate, double? Trips, string? Tier, double? Amount);

    private static Dictionary<string, Logged> ReadLog(string logDir)
    {
        using var connection = new DuckDBConnection("DataSource=:memory:");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = $"SELECT request_id, input_conv_rate, input_trips, input_tier, input_amount FROM read_parquet('{logDir}/**/*.parquet') WHERE request_id LIKE 'parity-%' AND request_id <> 'parity-batch'";
        using var reader = command.ExecuteReader();
        var result = new Dictionary<string, Logged>();
        double? D(int i) => reader.IsDBNull(i) ? null : reader.GetDouble(i);
        while (reader.Read())
            result.Add(reader.GetString(0), new Logged(D(1), D(2), reader.IsDBNull(3) ? null : reader.GetString(3), D(4)));
        return result;
    }
}
