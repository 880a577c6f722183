using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Kiln.Storage.Objects;
using Kiln.Testing;

namespace Kiln.Cli.Tests;

/// <summary>
/// The prediction log in a bucket, with the real kiln binary against a real S3-protocol server (s3rver): kiln serve
/// --log-dir s3://… uploads each closed file under the log's model=/version=/date=/ keys (and the feedback
/// endpoint's files under _feedback/), kiln drift and kiln monitor evaluate read the log from the bucket, files
/// closed while the bucket was unreachable are uploaded at the next start once, and a missing bucket is one line.
/// </summary>
public sealed class PredictionLogS3Tests
{
    private static string Quickstart => Path.Combine(TestEnvironment.RepoRoot, "examples", "quickstart");

    [Fact]
    public async Task A_served_models_log_goes_to_the_bucket_and_drift_and_monitor_read_it_from_there()
    {
        await using var s3 = await S3rver.StartAsync("logs");
        using var dir = new TempDir("kiln-s3-log");
        var env = Env(s3, dir);
        await TrainAsync(dir);
        var rows = TransactionRows(120);

        var port = TestEnvironment.FreePort();
        using var serve = StartServe(dir, env, port);
        List<(string RequestId, string Prediction)> answers;
        try
        {
            using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(10) };
            await WaitReadyAsync(http, serve);
            answers = await PredictAllAsync(http, rows);
            // Labels for every other request, through the serving replica's feedback endpoint.
            var items = answers.Select((a, i) => (a, i)).Where(x => x.i % 2 == 0)
                .Select(x => new Dictionary<string, object> { ["request_id"] = x.a.RequestId, ["label"] = rows[x.i].Label }).ToList();
            using var feedback = await http.PostAsync(new Uri("/api/v1/feedback", UriKind.Relative),
                new StringContent(JsonSerializer.Serialize(new { items }), Encoding.UTF8, "application/json"));
            Assert.True(feedback.IsSuccessStatusCode, await feedback.Content.ReadAsStringAsync());
        }
        finally
        {
            await TerminateAsync(serve);
        }
        Assert.Equal(0, serve.ExitCode);

        // Every file is in the bucket under the log's keys, and none is left in the spool.
        using var bucket = new S3Storage(new S3Location("logs", "prod"), S3Settings.FromVariables(k => s3.Environment.GetValueOrDefault(k)));
        var keys = (await bucket.ListAllAsync("")).Select(o => o.Key).ToList();
        var today = DateTime.UtcNow.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
        Assert.NotEmpty(keys);
        Assert.All(keys, k => Assert.Matches($@"^(model=fraud/version=[^/]+/date={today}/part-[^/]+\.parquet|_feedback/date={today}/feedback-[^/]+\.parquet)$", k));
        Assert.Contains(keys, k => k.StartsWith("_feedback/", StringComparison.Ordinal));
        Assert.Empty(Directory.GetFiles(dir.File("spool"), "*.parquet", SearchOption.AllDirectories));

        // The rows in the bucket, read from s3rver's own files by ParquetSharp (the oracle): every request once.
        var logged = LoggedRequestIds(s3);
        Assert.Equal(answers.Select(a => a.RequestId).Order(StringComparer.Ordinal), logged.Order(StringComparer.Ordinal));

        // kiln drift over the bucket's window says what kiln drift says over the same rows as a data file.
        var window = new[] { "--window", "1h", "--name", "fraud" };
        var fromBucket = await KilnCli.RunAsync(["drift", "--model", dir.File("pkg"), "--log-dir", "s3://logs/prod", .. window, "--json",
            "--fail-on-drift", "false"], dir.Path, env);
        Assert.True(fromBucket.ExitCode == 0, fromBucket.ToString());
        // The inputs sent, as a CSV (the id and the label left out: the log holds neither).
        await File.WriteAllLinesAsync(dir.File("sent.csv"), File.ReadLines(Path.Combine(Quickstart, "transactions.csv")).Take(rows.Count + 1)
            .Select(l => string.Join(',', l.Split(',')[1..^1])));
        var fromFile = await KilnCli.RunAsync(["drift", "--model", dir.File("pkg"), "--current", dir.File("sent.csv"), "--json", "--fail-on-drift", "false"],
            dir.Path, env);
        Assert.True(fromFile.ExitCode == 0, fromFile.ToString());
        Assert.Equal(Features(fromFile.StdOut), Features(fromBucket.StdOut));

        // kiln monitor evaluate joins the feedback from the bucket: accuracy over the labelled rows, counted here from
        // the answers the server gave and the labels sent.
        var evaluate = await KilnCli.RunAsync(["monitor", "evaluate", "--model", dir.File("pkg"), "--log-dir", "s3://logs/prod", .. window, "--json"],
            dir.Path, env);
        Assert.True(evaluate.ExitCode == 0, evaluate.ToString());
        using var report = JsonDocument.Parse(evaluate.StdOut);
        Assert.Equal(rows.Count, report.RootElement.GetProperty("rows").GetInt64());
        var labelled = answers.Where((_, i) => i % 2 == 0).ToList();
        var correct = labelled.Count(a => a.Prediction == rows[answers.IndexOf(a)].Label);
        var realized = report.RootElement.GetProperty("realized");
        Assert.Equal(labelled.Count, realized.GetProperty("labelled_rows").GetInt64());
        Assert.Equal((double)correct / labelled.Count, realized.GetProperty("accuracy").GetDouble(), 12);
    }

    [Fact]
    public async Task Files_closed_while_the_bucket_is_down_are_uploaded_at_the_next_start_and_each_is_in_the_bucket_once()
    {
        await using var s3 = await S3rver.StartAsync("logs");
        using var dir = new TempDir("kiln-s3-log-crash");
        var env = Env(s3, dir);
        await TrainAsync(dir);
        var rows = TransactionRows(70);
        using var bucket = new S3Storage(new S3Location("logs", "prod"), S3Settings.FromVariables(k => s3.Environment.GetValueOrDefault(k)));
        var sent = new List<string>();

        var port = TestEnvironment.FreePort();
        using (var serve = StartServe(dir, env, port))
        {
            try
            {
                using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(10) };
                await WaitReadyAsync(http, serve);
                sent.AddRange((await PredictAllAsync(http, rows[..30])).Select(a => a.RequestId));
                // The first files reach the bucket while it is up and leave the spool.
                await WaitUntilAsync(async () => (await bucket.ListAllAsync("")).Count > 0
                    && Directory.GetFiles(dir.File("spool"), "*.parquet", SearchOption.AllDirectories).Length == 0, "the first files were uploaded");

                // A crash between an upload and the local delete leaves an uploaded file in the spool: put one back
                // (once the bucket is down, so that this server cannot upload it again before its restart).
                var uploaded = (await bucket.ListAllAsync("")).First().Key;
                await using (var source = (await bucket.OpenReadAsync(uploaded))!)
                await using (var copy = File.Create(dir.File("uploaded.parquet")))
                    await source.CopyToAsync(copy);

                // The bucket goes away; rows are still served and logged, files close and wait in the spool.
                await s3.StopAsync();
                var back = Path.Combine(dir.File("spool"), Path.Combine(uploaded.Split('/')));
                Directory.CreateDirectory(Path.GetDirectoryName(back)!);
                File.Move(dir.File("uploaded.parquet"), back);
                sent.AddRange((await PredictAllAsync(http, rows[30..])).Select(a => a.RequestId));
                // Rows wait up to the flush interval (5 s), their file closes after --log-roll (1 s): then nothing is open.
                await Task.Delay(TimeSpan.FromSeconds(9));
                await WaitUntilAsync(() => Task.FromResult(Directory.GetFiles(dir.File("spool"), "part-*.parquet", SearchOption.AllDirectories).Length >= 2
                    && Directory.GetFiles(dir.File("spool"), ".*", SearchOption.AllDirectories).Length == 0), "the files written while the bucket was down were closed");
            }
            finally
            {
                // Killed with nothing uploaded of the second batch: the files are closed in the spool, nothing else.
                serve.Kill(entireProcessTree: true);
                await serve.WaitForExitAsync();
            }
        }

        await s3.StartAgainAsync();
        port = TestEnvironment.FreePort();
        using (var again = StartServe(dir, env, port))
        {
            try
            {
                using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(10) };
                await WaitReadyAsync(http, again);
                await WaitUntilAsync(() => Task.FromResult(Directory.GetFiles(dir.File("spool"), "*.parquet", SearchOption.AllDirectories).Length == 0),
                    "the restarted server uploaded what the killed one left");
            }
            finally
            {
                await TerminateAsync(again);
            }
        }

        // Every row sent is in the bucket exactly once (s3rver's files read by ParquetSharp): no file lost, none doubled.
        var logged = LoggedRequestIds(s3);
        Assert.Equal(sent.Count, logged.Count);
        Assert.Equal(sent.Order(StringComparer.Ordinal), logged.Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task A_log_bucket_that_does_not_exist_is_one_line_for_serve_drift_and_monitor()
    {
        await using var s3 = await S3rver.StartAsync("logs");
        using var dir = new TempDir("kiln-s3-log-nobucket");
        var env = Env(s3, dir);
        await TrainAsync(dir);
        var port = TestEnvironment.FreePort().ToString(CultureInfo.InvariantCulture);
        var serve = await KilnCli.RunAsync(["serve", "--model", dir.File("pkg"), "--port", port, "--grpc-port", "-1",
            "--log-dir", "s3://no-such-bucket/prod", "--log-spool", dir.File("spool")], dir.Path, env, TimeSpan.FromMinutes(2));
        AssertOneLine(serve, s3);
        var drift = await KilnCli.RunAsync(["drift", "--model", dir.File("pkg"), "--log-dir", "s3://no-such-bucket/prod", "--window", "1h"], dir.Path, env);
        AssertOneLine(drift, s3);
        var evaluate = await KilnCli.RunAsync(["monitor", "evaluate", "--model", dir.File("pkg"), "--log-dir", "s3://no-such-bucket/prod", "--window", "1h"],
            dir.Path, env);
        AssertOneLine(evaluate, s3);
        // --log-spool means nothing for a local log: refused rather than ignored.
        var spool = await KilnCli.RunAsync(["serve", "--model", dir.File("pkg"), "--port", port, "--log-dir", dir.File("log"), "--log-spool", dir.File("s")],
            dir.Path, env);
        Assert.Equal(1, spool.ExitCode);
        Assert.Contains("--log-spool: only with --log-dir s3://", spool.StdErr, StringComparison.Ordinal);
    }

    private static void AssertOneLine(Proc.Result r, S3rver s3)
    {
        Assert.True(r.ExitCode == 1, r.ToString());
        var line = Assert.Single(r.StdErr.Split('\n', StringSplitOptions.RemoveEmptyEntries), l => !l.StartsWith("(run with --verbose", StringComparison.Ordinal));
        Assert.Equal($"error: s3://no-such-bucket/prod (endpoint {s3.Endpoint}): bucket 'no-such-bucket' does not exist", line);
    }

    private static Dictionary<string, string> Env(S3rver s3, TempDir dir) => new(s3.Environment)
    {
        ["KILN_LOG_CACHE"] = dir.File("cache"),
        ["KILN_TRACKING_URI"] = dir.File("meta"),
    };

    private static async Task TrainAsync(TempDir dir)
    {
        var train = await KilnCli.RunAsync(["train", Path.Combine(Quickstart, "spec.yaml"), "--out", dir.File("pkg")], dir.Path);
        Assert.True(train.ExitCode == 0, train.ToString());
    }

    private static Process StartServe(TempDir dir, IDictionary<string, string> env, int port) =>
        KilnCli.Start(["serve", "--model", $"fraud={dir.File("pkg")}", "--port", port.ToString(CultureInfo.InvariantCulture), "--grpc-port", "-1",
            "--log-dir", "s3://logs/prod", "--log-spool", dir.File("spool"), "--log-roll", "1s"], dir.Path, env);

    private sealed record Row(string Json, string Label);

    /// <summary>The first rows of the quickstart's transactions as /predict bodies, with their is_fraud label.</summary>
    private static List<Row> TransactionRows(int count)
    {
        var lines = File.ReadLines(Path.Combine(Quickstart, "transactions.csv")).ToList();
        var header = lines[0].Split(',');
        var result = new List<Row>();
        foreach (var line in lines.Skip(1).Take(count))
        {
            var cells = line.Split(',');
            var body = new Dictionary<string, object?>();
            for (var c = 0; c < header.Length; c++)
            {
                if (header[c] is "transaction_id" or "is_fraud") continue;
                // An empty cell is a missing value (JSON null), as the CSV reader takes it.
                body[header[c]] = cells[c].Length == 0 ? null
                    : double.TryParse(cells[c], NumberStyles.Float, CultureInfo.InvariantCulture, out var v) ? v : cells[c];
            }
            result.Add(new Row(JsonSerializer.Serialize(body), cells[Array.IndexOf(header, "is_fraud")]));
        }
        return result;
    }

    private static async Task<List<(string RequestId, string Prediction)>> PredictAllAsync(HttpClient http, IEnumerable<Row> rows)
    {
        var answers = new List<(string, string)>();
        foreach (var row in rows)
        {
            using var response = await http.PostAsync(new Uri("/predict", UriKind.Relative), new StringContent(row.Json, Encoding.UTF8, "application/json"));
            var text = await response.Content.ReadAsStringAsync();
            Assert.True(response.IsSuccessStatusCode, text);
            using var doc = JsonDocument.Parse(text);
            answers.Add((doc.RootElement.GetProperty("request_id").GetString()!, doc.RootElement.GetProperty("prediction").ToString()));
        }
        return answers;
    }

    /// <summary>
    /// The request ids of every log row in s3rver's stored objects (BUCKET/KEY._S3rver_object), read with ParquetSharp's
    /// own column reader rather than Kiln's log reader.
    /// </summary>
    private static List<string> LoggedRequestIds(S3rver s3)
    {
        var ids = new List<string>();
        var root = Path.Combine(s3.DataDirectory, "logs", "prod");
        foreach (var file in Directory.EnumerateFiles(root, "*._S3rver_object", SearchOption.AllDirectories))
        {
            if (!Path.GetRelativePath(root, file).StartsWith("model=", StringComparison.Ordinal)) continue;
            using var reader = new ParquetSharp.ParquetFileReader(file);
            var column = reader.FileMetaData.Schema.ColumnIndex("request_id");
            for (var g = 0; g < reader.FileMetaData.NumRowGroups; g++)
            {
                using var group = reader.RowGroup(g);
                using var values = group.Column(column).LogicalReader<string>();
                ids.AddRange(values.ReadAll(checked((int)group.MetaData.NumRows)));
            }
        }
        return ids;
    }

    /// <summary>The per-feature part of a drift report (what the data says, not how long it took).</summary>
    private static string Features(string json)
    {
        using var doc = JsonDocument.Parse(json);
        var root = doc.RootElement;
        return root.GetProperty("current_rows").ToString() + root.GetProperty("dataset_drift").ToString() + root.GetProperty("features").ToString();
    }

    private static async Task TerminateAsync(Process p)
    {
        if (p.HasExited) return;
        using (var kill = Process.Start("kill", ["-TERM", p.Id.ToString(CultureInfo.InvariantCulture)])) await kill.WaitForExitAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await p.WaitForExitAsync(cts.Token);
    }

    private static async Task WaitReadyAsync(HttpClient http, Process process)
    {
        var deadline = DateTime.UtcNow.AddSeconds(90);
        while (DateTime.UtcNow < deadline && !process.HasExited)
        {
            try
            {
                if ((await http.GetAsync(new Uri("/ready", UriKind.Relative))).IsSuccessStatusCode) return;
            }
            catch (HttpRequestException) { }
            await Task.Delay(200);
        }
        Assert.Fail("kiln serve never became ready");
    }

    private static async Task WaitUntilAsync(Func<Task<bool>> condition, string what)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (DateTime.UtcNow < deadline)
        {
            if (await condition()) return;
            await Task.Delay(200);
        }
        Assert.Fail($"timed out waiting until {what}");
    }
}
