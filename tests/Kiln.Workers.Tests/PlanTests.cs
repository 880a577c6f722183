using Kiln.Batch;
using Kiln.Batch.Distributed;
using Kiln.Testing;

namespace Kiln.Workers.Tests;

/// <summary>Planning a distributed job (no worker needed): what becomes a partition.</summary>
public class PlanTests(WorkerFixture fixture) : IClassFixture<WorkerFixture>
{
    [Fact]
    public async Task A_bad_file_fails_the_plan_by_default_and_with_on_bad_file_skip_has_no_partitions_and_is_listed()
    {
        using var dir = new TempDir("kiln-plan");
        Directory.CreateDirectory(dir.File("in"));
        File.Copy(fixture.Csv, dir.File("in/a.csv"));
        await File.WriteAllTextAsync(dir.File("in/b.csv"), "user,score\nu1,3\n"); // another table's file
        File.Copy(fixture.Csv, dir.File("in/c.csv"));
        BatchOptions Options(BadFilePolicy policy) => new()
        {
            Model = fixture.Model, Input = dir.File("in"), Output = dir.File("out"), Keep = ["transaction_id"], OnBadFile = policy,
        };

        var error = await Assert.ThrowsAsync<Kiln.Core.KilnException>(() => DistributedBatch.PlanAsync(Options(BadFilePolicy.Fail), partitions: 4));
        Assert.StartsWith($"{dir.File("in/b.csv")}: column '", error.Message, StringComparison.Ordinal);

        var plan = await DistributedBatch.PlanAsync(Options(BadFilePolicy.Skip), partitions: 4);
        var skipped = Assert.Single(plan.SkippedFiles!);
        Assert.Equal(dir.File("in/b.csv"), skipped.File);
        Assert.Contains("missing", skipped.Reason);
        // The two good files share the four partitions by size; file index 1 (b.csv) has none.
        Assert.Equal([0, 0, 2, 2], plan.Partitions.Select(p => p.FileIndex));
        Assert.Equal(new FileInfo(fixture.Csv).Length, plan.Partitions.Where(p => p.FileIndex == 2).Max(p => p.ByteEnd));
    }
}
