namespace Kiln.Tracking.Tests;

/// <summary>
/// The behaviour every backend of the tracking store, the registry and the artifact store must
/// show. Runs against SQLite and PostgreSQL here, and against the HTTP client (through a real
/// kiln server) in Kiln.Server.Tests.
/// </summary>
public abstract class StoreContract(IStoresFixture fixture)
{
    protected ITrackingStore T => fixture.Stores.Tracking;

    protected IModelRegistry R => fixture.Stores.Registry;

    protected IArtifactStore A => fixture.Stores.Artifacts;

    protected static string Unique(string prefix) => $"{prefix}-{Guid.NewGuid():N}"[..(prefix.Length + 13)];

    private async Task<(string Exp, Run Run)> NewRunAsync(string? name = null)
    {
        var exp = await T.CreateExperimentAsync(Unique("exp"));
        var run = await T.CreateRunAsync(new CreateRun(exp, RunName: name, UserId: "ada"));
        return (exp, run);
    }

    private static async Task<TrackingException> Throws(ErrorCode code, Func<Task> action)
    {
        var e = await Assert.ThrowsAsync<TrackingException>(action);
        Assert.Equal(code, e.Code);
        return e;
    }

    // ---- experiments ----

    [Fact]
    public async Task Experiment_create_get_rename_tag_delete_restore()
    {
        var name = Unique("churn");
        var id = await T.CreateExperimentAsync(name, tags: [new KeyValue("team", "risk")]);
        var e = await T.GetExperimentAsync(id);
        Assert.Equal(name, e.Name);
        Assert.Equal(LifecycleStage.Active, e.LifecycleStage);
        Assert.Equal($"mlflow-artifacts:/{id}", e.ArtifactLocation);
        Assert.Equal("risk", Assert.Single(e.Tags).Value);
        Assert.Equal(id, (await T.GetExperimentByNameAsync(name))!.ExperimentId);
        Assert.Null(await T.GetExperimentByNameAsync(Unique("absent")));

        await Throws(ErrorCode.ResourceAlreadyExists, () => T.CreateExperimentAsync(name));

        var renamed = Unique("churn2");
        await T.RenameExperimentAsync(id, renamed);
        Assert.Equal(renamed, (await T.GetExperimentAsync(id)).Name);

        await T.SetExperimentTagAsync(id, "team", "growth");
        Assert.Equal("growth", Assert.Single((await T.GetExperimentAsync(id)).Tags).Value);

        await T.DeleteExperimentAsync(id);
        Assert.Equal(LifecycleStage.Deleted, (await T.GetExperimentAsync(id)).LifecycleStage);
        var active = await T.SearchExperimentsAsync(new ExperimentQuery(MaxResults: 50000));
        Assert.DoesNotContain(active.Items, x => x.ExperimentId == id);
        var deleted = await T.SearchExperimentsAsync(new ExperimentQuery(ViewType.DeletedOnly, MaxResults: 50000));
        Assert.Contains(deleted.Items, x => x.ExperimentId == id);
        await Throws(ErrorCode.InvalidState, () => T.CreateRunAsync(new CreateRun(id)));

        await T.RestoreExperimentAsync(id);
        Assert.Equal(LifecycleStage.Active, (await T.GetExperimentAsync(id)).LifecycleStage);
    }

    [Fact]
    public async Task Experiment_missing_or_malformed_ids_are_clear_errors()
    {
        await Throws(ErrorCode.ResourceDoesNotExist, () => T.GetExperimentAsync("987654321"));
        var e = await Throws(ErrorCode.InvalidParameterValue, () => T.GetExperimentAsync("abc"));
        Assert.Contains("experiment_id", e.Message, StringComparison.Ordinal);
        await Throws(ErrorCode.InvalidParameterValue, () => T.CreateExperimentAsync(""));
    }

    [Fact]
    public async Task Default_experiment_exists()
    {
        var e = await T.GetExperimentAsync("0");
        Assert.Equal("Default", e.Name);
    }

    // ---- runs ----

    [Fact]
    public async Task Run_lifecycle_params_metrics_tags()
    {
        var (exp, run) = await NewRunAsync("first-try");
        Assert.Equal(RunStatus.Running, run.Info.Status);
        Assert.Equal("first-try", run.Info.RunName);
        Assert.Equal("first-try", run.Tag("mlflow.runName"));
        Assert.Equal(exp, run.Info.ExperimentId);
        Assert.Equal($"mlflow-artifacts:/{exp}/{run.RunId}/artifacts", run.Info.ArtifactUri);
        Assert.Equal(32, run.RunId.Length);

        await T.LogBatchAsync(run.RunId,
            [new Metric("loss", 0.9, 1000, 0), new Metric("loss", 0.5, 1001, 1), new Metric("loss", 0.7, 999, 2), new Metric("auc", 0.81, 1000, 0)],
            [new KeyValue("lr", "0.1"), new KeyValue("trees", "100")],
            [new KeyValue("stage", "dev")]);
        await T.LogMetricAsync(run.RunId, "loss", 0.3, step: 3, timestamp: 1002);

        var got = await T.GetRunAsync(run.RunId);
        Assert.Equal(0.3, got.Metric("loss"));          // latest = highest step
        Assert.Equal(0.81, got.Metric("auc"));
        Assert.Equal("0.1", got.Param("lr"));
        Assert.Equal("dev", got.Tag("stage"));

        var history = await T.GetMetricHistoryAsync(run.RunId, "loss");
        Assert.Equal([0.9, 0.5, 0.7, 0.3], history.Select(m => m.Value));
        Assert.Equal([0L, 1, 2, 3], history.Select(m => m.Step));
        Assert.Empty(await T.GetMetricHistoryAsync(run.RunId, "never-logged"));

        // Params are immutable: the same value again is fine, a different one is refused.
        await T.LogParamAsync(run.RunId, "lr", "0.1");
        var e = await Throws(ErrorCode.InvalidParameterValue, () => T.LogParamAsync(run.RunId, "lr", "0.2"));
        Assert.Contains("lr", e.Message, StringComparison.Ordinal);
        // The failed batch left nothing behind, not even its metrics.
        await Throws(ErrorCode.InvalidParameterValue, () => T.LogBatchAsync(run.RunId, [new Metric("partial", 1, 1, 0)], [new KeyValue("lr", "9")], null));
        Assert.Empty(await T.GetMetricHistoryAsync(run.RunId, "partial"));

        await T.SetTagAsync(run.RunId, "stage", "prod");
        Assert.Equal("prod", (await T.GetRunAsync(run.RunId)).Tag("stage"));
        await T.DeleteTagAsync(run.RunId, "stage");
        Assert.Null((await T.GetRunAsync(run.RunId)).Tag("stage"));
        await Throws(ErrorCode.ResourceDoesNotExist, () => T.DeleteTagAsync(run.RunId, "stage"));

        var info = await T.UpdateRunAsync(run.RunId, RunStatus.Finished, 5000, "renamed");
        Assert.Equal(RunStatus.Finished, info.Status);
        Assert.Equal(5000, info.EndTime);
        got = await T.GetRunAsync(run.RunId);
        Assert.Equal("renamed", got.Info.RunName);
        Assert.Equal("renamed", got.Tag("mlflow.runName"));
        Assert.Equal(5000, got.Info.EndTime);

        await Throws(ErrorCode.InvalidParameterValue, () => T.UpdateRunAsync(run.RunId, "DONE", null, null));
    }

    [Fact]
    public async Task Deleted_runs_are_hidden_refuse_writes_and_restore()
    {
        var (exp, run) = await NewRunAsync();
        await T.DeleteRunAsync(run.RunId);
        Assert.Equal(LifecycleStage.Deleted, (await T.GetRunAsync(run.RunId)).Info.LifecycleStage);
        Assert.Empty((await T.SearchRunsAsync(new RunQuery([exp]))).Items);
        Assert.Single((await T.SearchRunsAsync(new RunQuery([exp], ViewType: ViewType.DeletedOnly))).Items);
        await Throws(ErrorCode.InvalidParameterValue, () => T.LogMetricAsync(run.RunId, "x", 1));
        await T.RestoreRunAsync(run.RunId);
        await T.LogMetricAsync(run.RunId, "x", 1);
        Assert.Single((await T.SearchRunsAsync(new RunQuery([exp]))).Items);
        await Throws(ErrorCode.ResourceDoesNotExist, () => T.GetRunAsync("0123456789abcdef0123456789abcdef"));
    }

    [Fact]
    public async Task NaN_and_infinite_metric_values_round_trip()
    {
        var (_, run) = await NewRunAsync();
        await T.LogBatchAsync(run.RunId, [new Metric("a", double.NaN, 1, 0), new Metric("b", double.PositiveInfinity, 1, 0), new Metric("c", -1e300, 1, 0)], null, null);
        var got = await T.GetRunAsync(run.RunId);
        Assert.True(double.IsNaN(got.Metric("a")!.Value));
        Assert.Equal(double.PositiveInfinity, got.Metric("b"));
        Assert.Equal(-1e300, got.Metric("c"));
    }

    [Fact]
    public async Task MLflow_limits_are_refused_with_invalid_parameter_value()
    {
        var (_, run) = await NewRunAsync();
        var tooMany = Enumerable.Range(0, 1001).Select(i => new Metric("m", i, i, i)).ToList();
        var e = await Throws(ErrorCode.InvalidParameterValue, () => T.LogBatchAsync(run.RunId, tooMany, null, null));
        Assert.Contains("1000", e.Message, StringComparison.Ordinal);
        var params101 = Enumerable.Range(0, 101).Select(i => new KeyValue($"p{i}", "v")).ToList();
        await Throws(ErrorCode.InvalidParameterValue, () => T.LogBatchAsync(run.RunId, null, params101, null));
        await Throws(ErrorCode.InvalidParameterValue, () => T.LogParamAsync(run.RunId, new string('k', 251), "v"));
        await Throws(ErrorCode.InvalidParameterValue, () => T.LogParamAsync(run.RunId, "k", new string('v', 6001)));
        await Throws(ErrorCode.InvalidParameterValue, () => T.SetTagAsync(run.RunId, "t", new string('v', 5001)));
        await Throws(ErrorCode.InvalidParameterValue, () => T.LogMetricAsync(run.RunId, "../escape", 1));
        await Throws(ErrorCode.InvalidParameterValue, () => T.LogMetricAsync(run.RunId, "bad;key", 1));
        // Exactly at the limits is fine.
        await T.LogBatchAsync(run.RunId, tooMany.Take(1000).ToList(), null, null);
        await T.LogParamAsync(run.RunId, new string('k', 250), new string('v', 6000));
        Assert.Equal(1000, (await T.GetMetricHistoryAsync(run.RunId, "m")).Count);
    }

    // ---- search ----

    private async Task<(string Exp, List<Run> Runs)> SearchFixtureAsync()
    {
        var exp = await T.CreateExperimentAsync(Unique("search"));
        var runs = new List<Run>();
        // acc: 0.5, 0.6, ..., 0.9 and one run without acc; lr alternates; tags name the model family.
        for (var i = 0; i < 6; i++)
        {
            var run = await T.CreateRunAsync(new CreateRun(exp, RunName: $"run-{i}", StartTime: 1000 + i));
            var metrics = i < 5 ? new List<Metric> { new("acc", 0.5 + (0.1 * i), 1, 0) } : [];
            await T.LogBatchAsync(run.RunId, metrics, [new KeyValue("lr", i % 2 == 0 ? "0.1" : "0.01")],
                [new KeyValue("family", i < 3 ? "FastTree" : "LightGbm")]);
            if (i == 4) await T.UpdateRunAsync(run.RunId, RunStatus.Finished, 2000, null);
            runs.Add(run);
        }
        return (exp, runs);
    }

    private async Task<List<string>> Names(string exp, string? filter, params string[] orderBy) =>
        (await T.SearchRunsAsync(new RunQuery([exp], filter, orderBy))).Items.Select(r => r.Info.RunName).ToList();

    [Fact]
    public async Task Search_filters_with_MLflow_grammar()
    {
        var (exp, runs) = await SearchFixtureAsync();
        Assert.Equal(["run-4", "run-3"], await Names(exp, "metrics.acc > 0.75"));
        Assert.Equal(["run-4", "run-3", "run-2"], await Names(exp, "metrics.acc >= 0.7"));
        Assert.Equal(["run-1"], await Names(exp, "metric.acc = 0.6"));
        Assert.Equal(["run-4", "run-2", "run-0"], await Names(exp, "params.lr = '0.1' AND metrics.acc > 0"));
        Assert.Equal(["run-5", "run-3", "run-1"], await Names(exp, "params.lr != '0.1'"));
        Assert.Equal(["run-5", "run-4", "run-3"], await Names(exp, "tags.family LIKE 'Light%'"));
        Assert.Empty(await Names(exp, "tags.family LIKE 'light%'"));
        Assert.Equal(["run-5", "run-4", "run-3"], await Names(exp, "tags.family ILIKE 'light%'"));
        Assert.Equal(["run-4"], await Names(exp, "attributes.status = 'FINISHED'"));
        Assert.Equal(["run-2"], await Names(exp, "attributes.run_name = 'run-2'"));
        Assert.Equal(["run-2"], await Names(exp, "tags.`mlflow.runName` = 'run-2'"));
        Assert.Equal(["run-1", "run-0"], await Names(exp, "attributes.start_time < 1002"));
        Assert.Equal(["run-3", "run-0"], await Names(exp, $"attributes.run_id IN ('{runs[0].RunId}', '{runs[3].RunId}')"));
        Assert.Equal(["run-4"], await Names(exp, "metrics.acc > 0.85 AND params.lr = '0.1' AND tags.family = 'LightGbm'"));
    }

    [Fact]
    public async Task Search_orders_and_pages()
    {
        var (exp, _) = await SearchFixtureAsync();
        // Runs without the metric come last in both directions, as in MLflow.
        Assert.Equal(["run-4", "run-3", "run-2", "run-1", "run-0", "run-5"], await Names(exp, null, "metrics.acc DESC"));
        Assert.Equal(["run-0", "run-1", "run-2", "run-3", "run-4", "run-5"], await Names(exp, null, "metrics.acc ASC"));
        Assert.Equal(["run-0", "run-1", "run-2", "run-3", "run-4", "run-5"], await Names(exp, null, "attributes.start_time"));
        Assert.Equal(["run-5", "run-4", "run-3", "run-2", "run-1", "run-0"], await Names(exp, null));   // default: newest first
        Assert.Equal(["run-1", "run-3", "run-5", "run-0", "run-2", "run-4"], await Names(exp, null, "params.lr", "attributes.start_time"));

        var seen = new List<string>();
        string? token = null;
        var pages = 0;
        do
        {
            var page = await T.SearchRunsAsync(new RunQuery([exp], OrderBy: ["metrics.acc DESC"], MaxResults: 4, PageToken: token));
            seen.AddRange(page.Items.Select(r => r.Info.RunName));
            token = page.NextPageToken;
            pages++;
        }
        while (token is not null && pages < 10);
        Assert.Equal(2, pages);
        Assert.Equal(["run-4", "run-3", "run-2", "run-1", "run-0", "run-5"], seen);
    }

    [Fact]
    public async Task Search_refuses_bad_filters_and_tokens()
    {
        var (exp, _) = await SearchFixtureAsync();
        foreach (var bad in (string[])["metrics.acc > 'high'", "params.lr > '0.1'", "acc > 0.5 OR 1=1", "metrics.acc >", "color.x = 'y'", "attributes.nope = 'x'", "params.lr = 0.1; DROP TABLE runs"])
        {
            var e = await Throws(ErrorCode.InvalidParameterValue, () => T.SearchRunsAsync(new RunQuery([exp], bad)));
            Assert.Contains("filter", e.Message, StringComparison.Ordinal);
        }
        await Throws(ErrorCode.InvalidParameterValue, () => T.SearchRunsAsync(new RunQuery([exp], PageToken: "garbage!")));
        await Throws(ErrorCode.InvalidParameterValue, () => T.SearchRunsAsync(new RunQuery([exp], MaxResults: 50001)));
        await Throws(ErrorCode.InvalidParameterValue, () => T.SearchRunsAsync(new RunQuery([exp], OrderBy: ["metrics.acc sideways"])));
        // A quote inside a value is data, not SQL.
        Assert.Empty(await Names(exp, "params.lr = 'x'' OR ''1''=''1'"));
    }

    // ---- registry ----

    [Fact]
    public async Task Registered_models_and_versions()
    {
        var (_, run) = await NewRunAsync();
        var name = Unique("churn-model");
        var m = await R.CreateRegisteredModelAsync(name, "predicts churn", [new KeyValue("owner", "risk")]);
        Assert.Equal("predicts churn", m.Description);
        await Throws(ErrorCode.ResourceAlreadyExists, () => R.CreateRegisteredModelAsync(name));

        var v1 = await R.CreateModelVersionAsync(new CreateModelVersion(name, $"runs:/{run.RunId}/model", run.RunId, "first"));
        var v2 = await R.CreateModelVersionAsync(new CreateModelVersion(name, $"runs:/{run.RunId}/model", run.RunId));
        Assert.Equal(1, v1.Version);
        Assert.Equal(2, v2.Version);
        Assert.Equal(ModelStage.None, v2.CurrentStage);
        Assert.Equal("READY", v2.Status);
        Assert.Equal(run.RunId, v1.RunId);
        Assert.Equal("first", (await R.GetModelVersionAsync(name, 1)).Description);
        await Throws(ErrorCode.ResourceDoesNotExist, () => R.GetModelVersionAsync(name, 3));
        await Throws(ErrorCode.ResourceDoesNotExist, () => R.CreateModelVersionAsync(new CreateModelVersion(Unique("nope"), "x")));

        await R.UpdateModelVersionAsync(name, 2, "second");
        await R.SetModelVersionTagAsync(name, 2, "validated", "yes");
        var got = await R.GetModelVersionAsync(name, 2);
        Assert.Equal("second", got.Description);
        Assert.Equal("yes", Assert.Single(got.Tags).Value);

        await R.TransitionStageAsync(name, 1, "production", archiveExisting: false);
        await R.TransitionStageAsync(name, 2, "Production", archiveExisting: true);
        Assert.Equal(ModelStage.Archived, (await R.GetModelVersionAsync(name, 1)).CurrentStage);
        Assert.Equal(ModelStage.Production, (await R.GetModelVersionAsync(name, 2)).CurrentStage);
        await Throws(ErrorCode.InvalidParameterValue, () => R.TransitionStageAsync(name, 2, "Prod", false));

        var model = await R.GetRegisteredModelAsync(name);
        Assert.Equal([1, 2], model.LatestVersions.Select(v => v.Version).Order());
        Assert.Equal("risk", Assert.Single(model.Tags).Value);
        Assert.Contains((await R.SearchRegisteredModelsAsync(name[..10] + "%")).Items, x => x.Name == name);
        Assert.Equal([2, 1], (await R.SearchModelVersionsAsync(name)).Items.Select(v => v.Version));
        Assert.Equal(2, (await R.SearchModelVersionsAsync(runId: run.RunId)).Items.Count(v => v.Name == name));

        var renamed = Unique("renamed");
        await R.SetAliasAsync(name, "production", 2, "ada");
        await R.RenameRegisteredModelAsync(name, renamed);
        Assert.Equal(2, (await R.GetModelVersionByAliasAsync(renamed, "production")).Version);
        await Throws(ErrorCode.ResourceDoesNotExist, () => R.GetRegisteredModelAsync(name));

        await R.DeleteModelVersionAsync(renamed, 2);
        await Throws(ErrorCode.ResourceDoesNotExist, () => R.GetModelVersionByAliasAsync(renamed, "production"));
        await R.DeleteRegisteredModelAsync(renamed);
        await Throws(ErrorCode.ResourceDoesNotExist, () => R.GetRegisteredModelAsync(renamed));
    }

    [Fact]
    public async Task Aliases_record_every_move_and_roll_back()
    {
        var name = Unique("fraud");
        await R.CreateRegisteredModelAsync(name);
        for (var i = 0; i < 3; i++) await R.CreateModelVersionAsync(new CreateModelVersion(name, $"file:///m{i}"));

        await R.SetAliasAsync(name, "production", 1, "ada");
        await R.SetAliasAsync(name, "production", 2, "bob");
        await R.SetAliasAsync(name, "production", 3, "cy");
        await R.SetAliasAsync(name, "challenger", 2, "ada");
        Assert.Equal(3, (await R.GetModelVersionByAliasAsync(name, "production")).Version);
        Assert.Equal(["challenger"], (await R.GetModelVersionAsync(name, 2)).Aliases);
        var model = await R.GetRegisteredModelAsync(name);
        Assert.Equal([("challenger", 2), ("production", 3)], model.Aliases.Select(a => (a.Alias, a.Version)));

        // Rollback walks back through the moves: 3 → 2 → 1, then there is nothing earlier.
        var back = await R.RollbackAliasAsync(name, "production", "ops");
        Assert.Equal((3, 2), (back.FromVersion, back.ToVersion));
        Assert.Equal(AliasAction.Rollback, back.Action);
        Assert.Equal(2, (await R.GetModelVersionByAliasAsync(name, "production")).Version);
        await R.RollbackAliasAsync(name, "production", "ops");
        Assert.Equal(1, (await R.GetModelVersionByAliasAsync(name, "production")).Version);
        await Throws(ErrorCode.InvalidState, () => R.RollbackAliasAsync(name, "production"));

        var history = await R.GetAliasHistoryAsync(name, "production");
        Assert.Equal(
            [("set", (int?)null, (int?)1, "ada"), ("set", 1, 2, "bob"), ("set", 2, 3, "cy"), ("rollback", 3, 2, "ops"), ("rollback", 2, 1, "ops")],
            history.Select(h => (h.Action, h.FromVersion, h.ToVersion, h.UserId)));
        Assert.True(history.Zip(history.Skip(1)).All(p => p.First.Timestamp <= p.Second.Timestamp));
        Assert.Equal(6, (await R.GetAliasHistoryAsync(name)).Count);

        await R.DeleteAliasAsync(name, "challenger", "ada");
        await Throws(ErrorCode.ResourceDoesNotExist, () => R.GetModelVersionByAliasAsync(name, "challenger"));
        await Throws(ErrorCode.ResourceDoesNotExist, () => R.DeleteAliasAsync(name, "challenger"));
        // A deleted alias can be rolled back to the version it held.
        await R.RollbackAliasAsync(name, "challenger");
        Assert.Equal(2, (await R.GetModelVersionByAliasAsync(name, "challenger")).Version);

        await Throws(ErrorCode.InvalidParameterValue, () => R.SetAliasAsync(name, "v3", 1));
        await Throws(ErrorCode.InvalidParameterValue, () => R.SetAliasAsync(name, "latest", 1));
        await Throws(ErrorCode.ResourceDoesNotExist, () => R.SetAliasAsync(name, "production", 9));
    }

    // ---- artifacts ----

    [Fact]
    public async Task Artifacts_put_list_read()
    {
        var root = Unique("art");
        await A.PutAsync($"{root}/model/kiln.json", new MemoryStream("{\"format_version\":1}"u8.ToArray()));
        await A.PutAsync($"{root}/model/data/weights.bin", new MemoryStream(new byte[1000]));
        var top = await A.ListAsync($"{root}/model");
        Assert.Equal([($"{root}/model/data", true), ($"{root}/model/kiln.json", false)], top.Select(f => (f.Path, f.IsDir)));
        Assert.Equal(20, top[1].FileSize);
        await using var s = await A.OpenReadAsync($"{root}/model/kiln.json");
        Assert.Equal("{\"format_version\":1}", await new StreamReader(s).ReadToEndAsync());
        Assert.Empty(await A.ListAsync($"{root}/absent"));
        await Throws(ErrorCode.ResourceDoesNotExist, () => A.OpenReadAsync($"{root}/absent.txt"));
    }

    [Theory]
    [InlineData("../outside.txt")]
    [InlineData("a/../../outside.txt")]
    [InlineData("/etc/passwd")]
    [InlineData("a%2F..%2F..%2Fx")]
    [InlineData("a\\..\\x")]
    public async Task Artifact_paths_that_escape_are_refused(string path)
    {
        await Throws(ErrorCode.InvalidParameterValue, () => A.PutAsync(path, new MemoryStream([1, 2, 3])));
    }

    [Fact]
    public async Task Artifact_uploads_over_the_limit_are_refused_and_leave_nothing()
    {
        var root = Unique("big");
        var e = await Throws(ErrorCode.InvalidParameterValue, () => A.PutAsync($"{root}/big.bin", new MemoryStream(new byte[1024 * 1024 + 1])));
        Assert.Contains("limit", e.Message, StringComparison.Ordinal);
        Assert.Empty(await A.ListAsync(root));
    }

    // ---- concurrency ----

    [Fact]
    public async Task Sixteen_concurrent_writers_lose_no_acknowledged_metric()
    {
        var exp = await T.CreateExperimentAsync(Unique("load"));
        var runs = new List<string>();
        for (var i = 0; i < 4; i++) runs.Add((await T.CreateRunAsync(new CreateRun(exp))).RunId);
        var acknowledged = new long[16];
        var until = DateTime.UtcNow.AddSeconds(3);
        var writers = Enumerable.Range(0, 16).Select(w => Task.Run(async () =>
        {
            var run = runs[w % runs.Count];
            for (var batch = 0; batch < 2000 && DateTime.UtcNow < until; batch++)
            {
                var metrics = Enumerable.Range(0, 50).Select(i => new Metric($"w{w}", i, batch, (batch * 50) + i)).ToList();
                await T.LogBatchAsync(run, metrics, null, null);
                acknowledged[w] += metrics.Count;
            }
        })).ToArray();
        await Task.WhenAll(writers);
        for (var w = 0; w < 16; w++)
        {
            var stored = await T.GetMetricHistoryAsync(runs[w % runs.Count], $"w{w}");
            Assert.Equal(acknowledged[w], stored.Count);
        }
        Assert.True(acknowledged.Sum() > 0);
    }
}
