using Kiln.Core.PredictionLog;
using Kiln.Testing;

namespace Kiln.Core.Tests.PredictionLog;

/// <summary>The one spelling of the prediction log's partitions and columns that the writer and every reader share.</summary>
public sealed class PredictionLogLayoutTests : IDisposable
{
    private readonly TempDir _dir = new("kiln-log-layout");

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void A_partition_is_model_version_date_under_the_log_directory()
    {
        var path = PredictionLogLayout.PartitionDirectory("/logs", "fraud", "3", new DateOnly(2026, 12, 6));
        Assert.Equal(Path.Combine("/logs", "model=fraud", "version=3", "date=2026-12-06"), path);
        Assert.Equal(Path.Combine("/logs", "model=fraud"), PredictionLogLayout.ModelDirectory("/logs", "fraud"));
        Assert.Equal("date=2026-01-31", PredictionLogLayout.DateDirectoryName(new DateOnly(2026, 1, 31)));
    }

    [Theory]
    [InlineData("fraud", "fraud")]
    [InlineData("team/fraud", "team_fraud")]
    [InlineData(@"a\b", "a_b")]
    [InlineData("k=v", "k_v")]
    [InlineData("tab\there\nnewline", "tab_here_newline")]
    [InlineData("../escape", ".._escape")]
    [InlineData("fraud v2 (é)", "fraud v2 (é)")]
    public void Odd_characters_cannot_make_a_partition_leave_its_level(string name, string safe)
    {
        Assert.Equal(safe, PredictionLogLayout.SafeName(name));
        var path = PredictionLogLayout.PartitionDirectory(_dir.Path, name, name, new DateOnly(2026, 12, 6));
        // Exactly three levels under the log directory, whatever the name holds.
        Assert.Equal(3, Path.GetRelativePath(_dir.Path, path).Split(Path.DirectorySeparatorChar).Length);
    }

    [Fact]
    public void A_window_lists_only_the_partitions_of_its_dates_across_midnight_and_month_ends()
    {
        foreach (var (version, dayOfJanuary) in new[] { ("1", 30), ("1", 31), ("2", 31) })
            Directory.CreateDirectory(PredictionLogLayout.PartitionDirectory(_dir.Path, "team/fraud", version, new DateOnly(2026, 1, dayOfJanuary)));
        Directory.CreateDirectory(PredictionLogLayout.PartitionDirectory(_dir.Path, "team/fraud", "2", new DateOnly(2026, 2, 1)));
        Directory.CreateDirectory(PredictionLogLayout.PartitionDirectory(_dir.Path, "other", "2", new DateOnly(2026, 1, 31)));
        Directory.CreateDirectory(Path.Combine(PredictionLogLayout.ModelDirectory(_dir.Path, "team/fraud"), "version=2", "date=not-a-date"));

        // 23:00 on Jan 31 to 01:00 on Feb 1: two days, every version, nothing of another model.
        var window = PredictionLogLayout.Partitions(_dir.Path, "team/fraud", null,
            new DateTimeOffset(2026, 1, 31, 23, 0, 0, TimeSpan.Zero), new DateTimeOffset(2026, 2, 1, 1, 0, 0, TimeSpan.Zero));
        Assert.Equal(["1 2026-01-31", "2 2026-01-31", "2 2026-02-01"], window.Select(p => $"{p.Version} {p.Date:yyyy-MM-dd}"));

        // A window ending exactly at midnight does not reach into the next day; one version only.
        var day = PredictionLogLayout.Partitions(_dir.Path, "team/fraud", "2",
            new DateTimeOffset(2026, 1, 31, 0, 0, 0, TimeSpan.Zero), new DateTimeOffset(2026, 2, 1, 0, 0, 0, TimeSpan.Zero));
        Assert.Equal(["2 2026-01-31"], day.Select(p => $"{p.Version} {p.Date:yyyy-MM-dd}"));

        // Times in another offset count by their UTC date.
        var offset = PredictionLogLayout.Partitions(_dir.Path, "team/fraud", "1",
            new DateTimeOffset(2026, 1, 31, 1, 0, 0, TimeSpan.FromHours(2)), new DateTimeOffset(2026, 1, 31, 1, 30, 0, TimeSpan.FromHours(2)));
        Assert.Equal(["1 2026-01-30"], offset.Select(p => $"{p.Version} {p.Date:yyyy-MM-dd}"));

        Assert.Empty(PredictionLogLayout.Partitions(_dir.Path, "missing", null, new DateOnly(2026, 1, 1), new DateOnly(2026, 12, 31)));
        Assert.Equal(["other", "team_fraud"], PredictionLogLayout.Models(_dir.Path));
    }

    [Fact]
    public void Files_being_written_are_not_listed()
    {
        var dir = PredictionLogLayout.PartitionDirectory(_dir.Path, "fraud", "1", new DateOnly(2026, 12, 6));
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "part-1.parquet"), "");
        File.WriteAllText(Path.Combine(dir, ".part-2.parquet.inprogress"), "");
        File.WriteAllText(Path.Combine(dir, ".part-3.parquet"), "");
        Assert.Equal(["part-1.parquet"], PredictionLogLayout.CompleteFiles(dir).Select(Path.GetFileName));
    }

    [Fact]
    public void The_fixed_columns_are_the_ones_every_log_file_has()
    {
        Assert.Equal(
            ["flags", "model", "prediction", "protocol", "request_id", "row", "timestamp", "value", "version"],
            PredictionLogLayout.FixedColumns.Order(StringComparer.Ordinal));
        Assert.Equal("input_", PredictionLogLayout.InputPrefix);
        Assert.Equal("probability_", PredictionLogLayout.ProbabilityPrefix);
    }
}
