using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using Kiln.Testing;

namespace Kiln.Workers.Tests;

/// <summary>kiln worker --metrics-port: a real worker process scraped after a real distributed batch job.</summary>
public class WorkerMetricsTests(WorkerFixture fixture) : IClassFixture<WorkerFixture>
{
    /// <summary>The value of one sample (name and labels exactly as exposed), or null when the series is absent.</summary>
    private static double? Sample(string exposition, string series)
    {
        var m = Regex.Match(exposition, "^" + Regex.Escape(series) + " (\\S+)$", RegexOptions.Multiline);
        return m.Success ? double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture) : null;
    }

    [Fact]
    public async Task A_worker_counts_the_rows_partitions_and_jobs_of_a_distributed_batch_and_loads_its_scorer_once()
    {
        using var dir = new TempDir("kiln-worker-metrics");
        await using var database = await TestDatabase.CreateAsync("kiln_workers");
        var (db, name) = (database.Uri, database.Name);
        Process? worker = null;
        try
        {
            var port = TestEnvironment.FreePort();
            worker = await WorkerFixture.StartWorkerAsync(db, dir.Path, "--concurrency", "2", "--metrics-port", port.ToString(CultureInfo.InvariantCulture));
            using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(20) };
            // Before any job: the concurrency is there, no rows yet.
            var before = await http.GetStringAsync("/metrics");
            Assert.Equal(2, Sample(before, "kiln_worker_concurrency"));
            Assert.Null(Sample(before, "kiln_batch_rows_total{outcome=\"scored\"}"));

            const int Partitions = 6;
            var output = dir.File("out");
            var batch = await KilnCli.RunAsync(["batch", "--model", fixture.Model, "--input", fixture.Csv, "--output", output, "--keep", "transaction_id",
                "--distributed", "--db", db, "--partitions", Partitions.ToString(CultureInfo.InvariantCulture)], dir.Path, timeout: TimeSpan.FromMinutes(5));
            Assert.True(batch.ExitCode == 0, batch.ToString());

            var response = await http.GetAsync("/metrics");
            Assert.Equal("text/plain", response.Content.Headers.ContentType?.MediaType);
            var text = await response.Content.ReadAsStringAsync();
            // The oracle: the fixture wrote fixture.Rows input rows (the quickstart rows 30 times with unique ids), and
            // the output holds them all; the worker counted each once.
            Assert.Equal(fixture.Rows, (await WorkerFixture.OutputIdsAsync(output)).Count);
            Assert.Equal(fixture.Rows, Sample(text, "kiln_batch_rows_total{outcome=\"scored\"}"));
            Assert.Equal(Partitions, Sample(text, "kiln_batch_parts_total{outcome=\"written\"}"));
            Assert.Equal(Partitions, Sample(text, "kiln_worker_jobs_total{queue=\"batch\",outcome=\"succeeded\"}"));
            Assert.Null(Sample(text, "kiln_worker_jobs_total{queue=\"batch\",outcome=\"failed\"}"));
            Assert.Equal(Partitions, Sample(text, "kiln_worker_job_duration_seconds_count{queue=\"batch\",outcome=\"succeeded\"}"));
            Assert.Equal(Partitions, Sample(text, "kiln_worker_job_duration_seconds_bucket{queue=\"batch\",outcome=\"succeeded\",le=\"+Inf\"}"));
            Assert.Equal(0, Sample(text, "kiln_worker_busy{queue=\"batch\"}"));
            // One package load for the six partitions of the job; the other five reused the open scorer.
            Assert.Equal(1, Sample(text, "kiln_worker_scorer_loads_total{outcome=\"loaded\"}"));
            Assert.Equal(Partitions - 1, Sample(text, "kiln_worker_scorer_loads_total{outcome=\"reused\"}"));
            Assert.Contains("process_resident_memory_bytes ", text, StringComparison.Ordinal);
            var check = await Proc.RunAsync("promtool", ["check", "metrics"], stdin: text, timeout: TimeSpan.FromSeconds(30));
            Assert.True(check.ExitCode == 0, check.ToString());
        }
        finally
        {
            if (worker is { HasExited: false }) worker.Kill(entireProcessTree: true);
        }
    }

    [Fact]
    public async Task A_metrics_port_that_is_taken_or_out_of_range_is_one_line_and_exit_1()
    {
        await using var database = await TestDatabase.CreateAsync("kiln_workers");
        var (db, name) = (database.Uri, database.Name);
        var bad = await KilnCli.RunAsync(["worker", "--db", db, "--metrics-port", "70000"]);
        Assert.Equal(1, bad.ExitCode);
        Assert.Contains("--metrics-port 70000 is not a TCP port", bad.StdErr, StringComparison.Ordinal);
        Assert.Single(bad.StdErr.Trim().Split('\n'));

        using var taken = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        taken.Start();
        var port = ((System.Net.IPEndPoint)taken.LocalEndpoint).Port.ToString(CultureInfo.InvariantCulture);
        var busy = await KilnCli.RunAsync(["worker", "--db", db, "--metrics-port", port]);
        Assert.Equal(1, busy.ExitCode);
        Assert.Contains("--metrics-port", busy.StdErr, StringComparison.Ordinal);
        Assert.Single(busy.StdErr.Trim().Split('\n'));
        Assert.Equal("", busy.StdOut.Trim());
    }
}
