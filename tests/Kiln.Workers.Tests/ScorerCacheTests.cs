using Kiln.Core;
using Kiln.Core.Data;
using Kiln.Core.Packaging;
using Kiln.Scoring;
using Kiln.Workers.Batch;

namespace Kiln.Workers.Tests;

/// <summary>The worker's scorer cache with the fixture's real package (a 10-tree ML.NET forest).</summary>
public class ScorerCacheTests(WorkerFixture fixture) : IClassFixture<WorkerFixture>
{
    private int _opened;

    private Task<LoadedScorer> OpenAsync(CancellationToken ct)
    {
        Interlocked.Increment(ref _opened);
        return Task.FromResult(new LoadedScorer(new ResolvedModel(fixture.Model, fixture.Model, "1"), Scorers.Open(fixture.Model)));
    }

    /// <summary>Scores the second quickstart row (t00001); a scorer that was closed throws.</summary>
    private static double Score(IScorer scorer)
    {
        var input = new DataTable(1)
            .Add(new NumericColumn("amount", [1820.15]))
            .Add(new NumericColumn("hour", [12]))
            .Add(new TextColumn("merchant_category", ["travel"]))
            .Add(new TextColumn("card_present", ["yes"]))
            .Add(new NumericColumn("distance_from_home_km", [6.9]))
            .Add(new NumericColumn("customer_age", [65]));
        var results = new Prediction[1];
        scorer.Score(input, 0, results);
        return results[0].Value;
    }

    [Fact]
    public async Task A_key_is_loaded_once_and_its_scorer_reused_until_another_key_pushes_it_out()
    {
        var cache = new ScorerCache(capacity: 2);
        IScorer first;
        using (var a = await cache.AcquireAsync("models:/fraud/1", OpenAsync, default))
        {
            Assert.True(a.Fresh);
            first = a.Loaded.Scorer;
        }
        using (var again = await cache.AcquireAsync("models:/fraud/1", OpenAsync, default))
        {
            Assert.False(again.Fresh);
            Assert.Same(first, again.Loaded.Scorer);
        }
        using (await cache.AcquireAsync("models:/fraud/2", OpenAsync, default)) { }
        using (await cache.AcquireAsync("models:/fraud/1", OpenAsync, default)) { } // most recent again
        using (await cache.AcquireAsync("models:/fraud/3", OpenAsync, default)) { } // pushes out version 2, the least recently used
        Assert.Equal(["models:/fraud/3", "models:/fraud/1"], cache.Keys);
        Assert.Equal(3, _opened);
        Assert.Equal(3, cache.Loads);
        Assert.Equal(2, cache.Reuses);
    }

    [Fact]
    public async Task Jobs_asking_at_once_share_one_load_and_one_scorer()
    {
        var cache = new ScorerCache();
        var gate = new TaskCompletionSource();
        async Task<LoadedScorer> SlowOpen(CancellationToken ct)
        {
            await gate.Task;
            return await OpenAsync(ct);
        }
        var leases = Enumerable.Range(0, 8).Select(_ => cache.AcquireAsync("models:/fraud/1", SlowOpen, default)).ToList();
        gate.SetResult();
        var held = await Task.WhenAll(leases);
        Assert.Equal(1, _opened);
        Assert.Single(held.Select(l => l.Loaded.Scorer).Distinct());
        Assert.Single(held, l => l.Fresh);
        // The same scorer from eight threads at once gives the same value each time.
        var values = await Task.WhenAll(held.Select(l => Task.Run(() => Score(l.Loaded.Scorer))));
        Assert.Single(values.Distinct());
        foreach (var l in held) l.Dispose();
    }

    [Fact]
    public async Task A_scorer_pushed_out_while_a_job_uses_it_stays_open_until_the_job_ends()
    {
        var cache = new ScorerCache(capacity: 1);
        var a = await cache.AcquireAsync("models:/fraud/1", OpenAsync, default);
        var expected = Score(a.Loaded.Scorer);
        using (await cache.AcquireAsync("models:/fraud/2", OpenAsync, default)) { }
        Assert.Equal(["models:/fraud/2"], cache.Keys);
        // Still usable by the job that holds it.
        Assert.Equal(expected, Score(a.Loaded.Scorer));
        a.Dispose();
        // Asked again, it is loaded again (the old one is closed).
        using var again = await cache.AcquireAsync("models:/fraud/1", OpenAsync, default);
        Assert.True(again.Fresh);
        Assert.NotSame(a.Loaded.Scorer, again.Loaded.Scorer);
        Assert.Equal(expected, Score(again.Loaded.Scorer));
    }

    [Fact]
    public async Task A_load_that_fails_is_not_kept_and_the_next_job_tries_again()
    {
        var cache = new ScorerCache();
        var e = await Assert.ThrowsAsync<KilnException>(() => cache.AcquireAsync("models:/fraud/1",
            _ => throw new KilnException("models:/fraud/1: the package this worker finds is not the one the job was planned with"), default));
        Assert.Contains("not the one the job was planned with", e.Message);
        Assert.Empty(cache.Keys);
        using var ok = await cache.AcquireAsync("models:/fraud/1", OpenAsync, default);
        Assert.True(ok.Fresh);
        Assert.Equal(["models:/fraud/1"], cache.Keys);
    }
}
