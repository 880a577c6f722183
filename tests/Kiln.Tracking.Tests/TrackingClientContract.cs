using Kiln.Testing;

namespace Kiln.Tracking.Tests;

/// <summary>
/// What `kiln train --tracking-uri … --register …` does, and how serving finds the package again:
/// run, params, metrics, package upload, registration, and models:/ URI resolution.
/// </summary>
public abstract class TrackingClientContract(IStoresFixture fixture)
{
    private static string MakePackage(TempDir dir, string marker)
    {
        var pkg = Path.Combine(dir.Path, "package-" + marker);
        Directory.CreateDirectory(Path.Combine(pkg, "model"));
        File.WriteAllText(Path.Combine(pkg, "kiln.json"), $"{{\"format_version\":1,\"marker\":\"{marker}\"}}");
        File.WriteAllBytes(Path.Combine(pkg, "model", "model.zip"), Enumerable.Range(0, 70_000).Select(i => (byte)(i * 7)).ToArray());
        return pkg;
    }

    [Fact]
    public async Task Train_log_upload_register_and_resolve()
    {
        using var dir = new TempDir();
        var client = new TrackingClient(fixture.Stores);
        var experiment = $"train-{Guid.NewGuid():N}";
        var model = $"churn-{Guid.NewGuid():N}"[..14];

        var run = await client.StartRunAsync(experiment, "fit-1", [new KeyValue("kiln.command", "train")]);
        Assert.Equal(run.ExperimentId, await client.GetOrCreateExperimentAsync(experiment));
        // More params and metrics than one MLflow batch holds: the client splits them.
        await run.LogParamsAsync(Enumerable.Range(0, 150).Select(i => KeyValuePair.Create($"p{i}", i.ToString(System.Globalization.CultureInfo.InvariantCulture))));
        await run.LogMetricsAsync(Enumerable.Range(0, 2500).Select(i => new Metric("loss", 1.0 / (i + 1), 1000 + i, i)));
        await run.LogMetricAsync("auc", 0.91);
        var source = await run.LogArtifactsAsync(MakePackage(dir, "v1"), "model");
        Assert.Equal($"runs:/{run.RunId}/model", source);
        await run.EndAsync();

        var stored = await fixture.Stores.Tracking.GetRunAsync(run.RunId);
        Assert.Equal(RunStatus.Finished, stored.Info.Status);
        Assert.Equal(150, stored.Data.Params.Count);
        Assert.Equal(1.0 / 2500, stored.Metric("loss"));
        Assert.Equal(2500, (await fixture.Stores.Tracking.GetMetricHistoryAsync(run.RunId, "loss")).Count);

        var v1 = await client.RegisterModelAsync(model, source, "first");
        Assert.Equal(1, v1.Version);
        Assert.Equal(run.RunId, v1.RunId);

        var run2 = await client.StartRunAsync(experiment);
        var v2 = await client.RegisterModelAsync(model, await run2.LogArtifactsAsync(MakePackage(dir, "v2"), "model"));
        Assert.Equal(2, v2.Version);
        await fixture.Stores.Registry.SetAliasAsync(model, "production", 1, "ada");

        var resolver = new RegistryModelLocator(fixture.Stores, Path.Combine(dir.Path, "cache"));
        async Task<string> Marker(string uri)
        {
            var resolved = await resolver.ResolveAsync(uri);
            var json = await File.ReadAllTextAsync(Path.Combine(resolved.PackageDirectory, "kiln.json"));
            Assert.Equal(70_000, new FileInfo(Path.Combine(resolved.PackageDirectory, "model", "model.zip")).Length);
            return System.Text.Json.JsonDocument.Parse(json).RootElement.GetProperty("marker").GetString()!;
        }
        Assert.Equal("v1", await Marker($"models:/{model}/1"));
        Assert.Equal("v2", await Marker($"models:/{model}/2"));
        Assert.Equal("v1", await Marker($"models:/{model}@production"));
        Assert.Equal("v2", await Marker($"models:/{model}/latest"));
        Assert.Equal("v1", await Marker($"runs:/{run.RunId}/model"));
        var byAlias = await resolver.ResolveAsync($"models:/{model}@production");
        Assert.Equal((model, 1, run.RunId), (byAlias.Name!, byAlias.RegistryVersion!.Value, byAlias.RunId!));

        // Serving polls the alias; after a move and a rollback it sees each version in turn.
        Assert.Equal("1", await resolver.CurrentVersionAsync($"models:/{model}@production"));
        await fixture.Stores.Registry.SetAliasAsync(model, "production", 2, "ada");
        Assert.Equal("2", await resolver.CurrentVersionAsync($"models:/{model}@production"));
        Assert.Equal("v2", await Marker($"models:/{model}@production"));
        await fixture.Stores.Registry.RollbackAliasAsync(model, "production", "ops");
        Assert.Equal("1", await resolver.CurrentVersionAsync($"models:/{model}@production"));

        var missing = await Assert.ThrowsAsync<TrackingException>(() => resolver.ResolveAsync($"models:/{model}@staging"));
        Assert.Equal(ErrorCode.ResourceDoesNotExist, missing.Code);
        await Assert.ThrowsAsync<TrackingException>(() => resolver.ResolveAsync($"models:/{model}/3"));
        var bad = await Assert.ThrowsAsync<TrackingException>(() => resolver.ResolveAsync($"models:/{model}"));
        Assert.Equal(ErrorCode.InvalidParameterValue, bad.Code);
        var local = await resolver.ResolveAsync(Path.Combine(dir.Path, "package-v1"));
        Assert.True(File.Exists(Path.Combine(local.PackageDirectory, "kiln.json")));
    }
}

public sealed class SqliteTrackingClientTests(SqliteFixture fixture) : TrackingClientContract(fixture), IClassFixture<SqliteFixture>;

public sealed class PostgresTrackingClientTests(PostgresFixture fixture) : TrackingClientContract(fixture), IClassFixture<PostgresFixture>;
