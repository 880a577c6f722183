using Microsoft.Extensions.DependencyInjection;

namespace Kiln.Serving.Tests;

/// <summary>
/// The shared feature path seen from a model that reads no features: every protocol asks the inference call for the
/// model's feature binding, and for such a model the answer must cost nothing (the parity of the four protocols for a
/// model that does read features is in Kiln.Features.Tests, FeatureServiceModelTests, which has the feature store).
/// </summary>
public sealed class FeaturePathTests(ServerFixture server) : IClassFixture<ServerFixture>
{
    [Fact]
    public async Task A_model_that_reads_no_features_is_bound_synchronously_without_allocating()
    {
        var inference = server.Host.Services.GetRequiredService<Inference>();
        using var call = inference.Begin(Protocols.Native.NativeEndpoints.Protocol);
        Assert.Null(call.Open("fraud"));
        await call.BindFeaturesAsync(CancellationToken.None); // first call: JIT and statics out of the way

        var before = GC.GetAllocatedBytesForCurrentThread();
        var pending = call.BindFeaturesAsync(CancellationToken.None);
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.True(pending.IsCompletedSuccessfully);
        Assert.Null(await pending);
        Assert.Null(call.Features);
        Assert.Equal(0, allocated);
    }

    [Fact]
    public async Task A_model_that_reads_no_features_answers_every_protocol_without_feature_fields()
    {
        var (status, body, _) = await server.PostAsync("/predict", """{"amount": 420.5, "hour": 3, "merchant": "online"}""");
        Assert.Equal(200, status);
        Assert.False(body.TryGetProperty("feature_service", out _));
        Assert.False(body.TryGetProperty("missing_features", out _));
        (status, body, _) = await server.PostAsync("/invocations", """{"dataframe_records": [{"amount": 420.5, "hour": 3, "merchant": "online"}]}""");
        Assert.Equal(200, status);
        Assert.Equal(body.GetProperty("predictions")[0].GetProperty("probability").GetDouble(), (await server.PostAsync("/predict", """{"amount": 420.5, "hour": 3, "merchant": "online"}""")).Body.GetProperty("probability").GetDouble());
    }
}
