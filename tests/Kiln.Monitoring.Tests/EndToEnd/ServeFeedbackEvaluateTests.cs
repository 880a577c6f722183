using System.Globalization;
using System.Text;
using System.Text.Json;
using Kiln.Core.Packaging;
using Kiln.Monitoring.Feedback;
using Kiln.Monitoring.Tests.Statistics;
using Kiln.Monitoring.Windows;
using Kiln.Serving;
using Kiln.Testing;

namespace Kiln.Monitoring.Tests.EndToEnd;

/// <summary>
/// The whole loop with the real pieces: `kiln train` makes a package, a ServingHost scores requests into its
/// prediction log, labels arrive on POST /api/v1/feedback, and the window's realized metrics equal scikit-learn's on
/// the same predictions and labels. Then the CLI (`kiln monitor evaluate`, `kiln drift --log-dir`) reads the same log.
/// </summary>
public sealed class ServeFeedbackEvaluateTests : IDisposable
{
    private readonly TempDir _dir = new("kiln-monitor-e2e");

    public void Dispose() => _dir.Dispose();

    private static List<Dictionary<string, string>> QuickstartRows(int n)
    {
        var lines = File.ReadLines(Path.Combine(TestEnvironment.RepoRoot, "examples", "quickstart", "transactions.csv")).Take(n + 1).ToList();
        var header = lines[0].Split(',');
        return [.. lines.Skip(1).Select(l => header.Zip(l.Split(',')).ToDictionary(p => p.First, p => p.Second))];
    }

    private async Task<string> TrainAsync()
    {
        var spec = _dir.File("spec.yaml");
        await File.WriteAllTextAsync(spec, QuickstartSpec.Yaml(trainer: "fast_tree", trees: 20, leaves: 8));
        var package = _dir.File("fraud");
        var r = await KilnCli.RunAsync(["train", spec, "--out", package]);
        Assert.True(r.ExitCode == 0, r.ToString());
        return package;
    }

    private static string RequestBody(IEnumerable<Dictionary<string, string>> rows)
    {
        var sb = new StringBuilder("[");
        foreach (var row in rows)
        {
            if (sb.Length > 1) sb.Append(',');
            sb.Append(CultureInfo.InvariantCulture, $$"""{"amount":{{row["amount"]}},"hour":{{row["hour"]}},"merchant_category":"{{row["merchant_category"]}}","card_present":"{{row["card_present"]}}","distance_from_home_km":{{(row["distance_from_home_km"].Length == 0 ? "null" : row["distance_from_home_km"])}},"customer_age":{{row["customer_age"]}}}""");
        }
        return sb.Append(']').ToString();
    }

    [Fact]
    public async Task Served_predictions_with_posted_labels_give_the_realized_metrics_sklearn_computes()
    {
        var package = await TrainAsync();
        var log = _dir.File("log");
        var rows = QuickstartRows(600);
        var from = DateTimeOffset.UtcNow.AddSeconds(-1);
        var truth = new List<int>();
        var scores = new List<double>();
        var predicted = new List<string>();
        await using (var host = await ServingHost.BuildAsync(new ServeOptions
        {
            Models = [new ModelSpec(package)], Port = 0, GrpcPort = null, LogDirectory = log, PollInterval = TimeSpan.Zero,
            // As kiln serve does with --log-dir: feedback is monitoring's endpoint, mapped beside the log.
            ConfigureEndpoints = app => app.MapKilnFeedbackEndpoints(log),
        }, logging: _ => { }))
        {
            await host.StartAndLoadAsync();
            using var http = new HttpClient { BaseAddress = host.HttpUri };
            var feedback = new List<string>();
            for (var start = 0; start < rows.Count; start += 20)
            {
                var batch = rows.Skip(start).Take(20).ToList();
                using var response = await http.PostAsync("/predict", new StringContent(RequestBody(batch), Encoding.UTF8, "application/json"));
                var text = await response.Content.ReadAsStringAsync();
                Assert.True(response.IsSuccessStatusCode, text);
                using var doc = JsonDocument.Parse(text);
                var requestId = doc.RootElement.GetProperty("request_id").GetString()!;
                var predictions = doc.RootElement.GetProperty("predictions").EnumerateArray().ToList();
                for (var i = 0; i < batch.Count; i++)
                {
                    // Two rows in three get a label, posted as JSON numbers (the package's classes are "0" and "1").
                    if ((start + i) % 3 == 2) continue;
                    feedback.Add($$"""{"request_id":"{{requestId}}","row":{{i}},"label":{{batch[i]["is_fraud"]}}}""");
                    truth.Add(int.Parse(batch[i]["is_fraud"], CultureInfo.InvariantCulture));
                    scores.Add(predictions[i].GetProperty("probability").GetDouble());
                    predicted.Add(predictions[i].GetProperty("prediction").GetString()!);
                }
            }
            // Labels arrive later, in two posts.
            var half = feedback.Count / 2;
            foreach (var part in new[] { feedback.Take(half), feedback.Skip(half) })
            {
                using var response = await http.PostAsync("/api/v1/feedback", new StringContent($$"""{"items":[{{string.Join(",", part)}}]}""", Encoding.UTF8, "application/json"));
                var text = await response.Content.ReadAsStringAsync();
                Assert.True(response.IsSuccessStatusCode, text);
                Assert.Equal(part.Count(), JsonDocument.Parse(text).RootElement.GetProperty("stored").GetInt32());
            }
            // A bad label is refused over the same route, naming the item.
            using (var bad = await http.PostAsync("/api/v1/feedback", new StringContent("""{"items":[{"request_id":"x","label":1},{"request_id":"y"}]}""", Encoding.UTF8, "application/json")))
            {
                Assert.Equal(422, (int)bad.StatusCode);
                Assert.Contains("items[1].label", await bad.Content.ReadAsStringAsync());
            }
            await host.StopAsync(); // writes out the prediction log
        }
        var to = DateTimeOffset.UtcNow.AddSeconds(1);

        var report = await WindowEvaluator.EvaluateAsync(ModelPackage.Load(package), log, "fraud", from, to);
        Assert.Equal(rows.Count, report.Rows);
        var m = report.Realized!;
        Assert.Equal(truth.Count, m.LabelledRows);
        Assert.Equal((double)truth.Count / rows.Count, m.LabelCoverage!.Value, 12);

        var expected = await ScipyOracle.RunAsync(new { truth, scores, predicted }, """
            from sklearn import metrics as m
            y, s = data['truth'], data['scores']
            p = [int(v) for v in data['predicted']]
            print(json.dumps({'acc': m.accuracy_score(y, p), 'auc': m.roc_auc_score(y, s), 'f1': m.f1_score(y, p), 'll': m.log_loss(y, s)}))
            """);
        // The log keeps the scorer's float probabilities; the responses print them: agree to 1e-6.
        ScipyOracle.Close(expected.GetProperty("acc").GetDouble(), m.Accuracy!.Value, 1e-12, "accuracy");
        ScipyOracle.Close(expected.GetProperty("auc").GetDouble(), m.Auc!.Value, 1e-6, "auc");
        ScipyOracle.Close(expected.GetProperty("f1").GetDouble(), m.F1!.Value, 1e-12, "f1");
        ScipyOracle.Close(expected.GetProperty("ll").GetDouble(), m.LogLoss!.Value, 1e-6, "log loss");
        Assert.Equal("1", m.PositiveClass);
        // Proxy: the mean probability is that of the responses.
        Assert.NotNull(report.Proxy.ReferencePredictionMean);
        Assert.NotNull(report.Proxy.PredictionDrift?.Test);
        Assert.Equal(6, report.Drift.Features.Count(f => f.Test is not null));

        // The CLI over the same log and package.
        var window = new[] { "--from", LogWindow.Format(from), "--to", LogWindow.Format(to) };
        var cli = await KilnCli.RunAsync(["monitor", "evaluate", "--model", package, "--log-dir", log, "--json", .. window]);
        Assert.True(cli.ExitCode == 0, cli.ToString());
        var json = JsonDocument.Parse(cli.StdOut).RootElement;
        Assert.Equal(rows.Count, json.GetProperty("rows").GetInt64());
        Assert.Equal(m.Accuracy!.Value, json.GetProperty("realized").GetProperty("accuracy").GetDouble(), 12);
        Assert.Equal(m.Auc!.Value, json.GetProperty("realized").GetProperty("auc").GetDouble(), 12);
        Assert.Contains("accuracy", cli.StdErr);

        var gauges = await KilnCli.RunAsync(["monitor", "evaluate", "--model", package, "--log-dir", log, "--gauges", .. window]);
        Assert.True(gauges.ExitCode == 0, gauges.ToString());
        Assert.Contains($"kiln_monitor_window_rows{{model=\"fraud\"}} {rows.Count}", gauges.StdOut);
        Assert.Contains("kiln_monitor_realized_auc{model=\"fraud\"} ", gauges.StdOut);

        var psi = await KilnCli.RunAsync(["monitor", "evaluate", "--model", package, "--log-dir", log, "--test", "psi", "--no-feedback", "--json", .. window]);
        Assert.True(psi.ExitCode == 0, psi.ToString());
        var psiJson = JsonDocument.Parse(psi.StdOut).RootElement;
        Assert.All(psiJson.GetProperty("drift").GetProperty("features").EnumerateArray(), f => Assert.Equal("psi", f.GetProperty("test").GetString()));
        Assert.False(psiJson.TryGetProperty("realized", out _));

        var driftJson = _dir.File("drift.json");
        var drift = await KilnCli.RunAsync(["drift", "--model", package, "--log-dir", log, "--json", "--json-out", driftJson, .. window]);
        Assert.True(drift.ExitCode is 0 or 2, drift.ToString());
        Assert.Equal(rows.Count, JsonDocument.Parse(drift.StdOut).RootElement.GetProperty("current_rows").GetInt64());
        Assert.Equal(report.Drift.DatasetDrift ? 2 : 0, drift.ExitCode);

        // monitor evaluate is a report: exit 0 whatever the verdict, unless --fail-on-drift asks for 2 on drift.
        // Without --json, stdout is empty (the tables are on stderr); --json-out writes the file.
        var evaluateJson = _dir.File("window.json");
        var strict = await KilnCli.RunAsync(["monitor", "evaluate", "--model", package, "--log-dir", log, "--fail-on-drift", "--json-out", evaluateJson, .. window]);
        Assert.True(strict.ExitCode == (report.Drift.DatasetDrift ? 2 : 0), strict.ToString());
        Assert.Equal("", strict.StdOut);
        Assert.Equal(rows.Count, JsonDocument.Parse(await File.ReadAllTextAsync(evaluateJson)).RootElement.GetProperty("rows").GetInt64());
        var features = JsonDocument.Parse(await File.ReadAllTextAsync(driftJson)).RootElement.GetProperty("features").EnumerateArray()
            .Select(f => f.GetProperty("name").GetString()).ToList();
        Assert.Contains("merchant_category", features);
        Assert.DoesNotContain("request_id", features);

        // An empty window is a report with a warning, not an error; bad options fail naming the option.
        var empty = await KilnCli.RunAsync(["monitor", "evaluate", "--model", package, "--log-dir", log, "--from", "2020-01-01T00:00:00Z", "--to", "2020-01-01T01:00:00Z", "--json"]);
        Assert.True(empty.ExitCode == 0, empty.ToString());
        Assert.Contains("empty_window", JsonDocument.Parse(empty.StdOut).RootElement.GetProperty("warnings").GetRawText());
        var badWindow = await KilnCli.RunAsync(["monitor", "evaluate", "--model", package, "--log-dir", log, "--window", "soon"]);
        Assert.Equal(1, badWindow.ExitCode);
        Assert.Contains("--window", badWindow.StdErr);
    }

    [Fact]
    public async Task Kiln_serve_with_log_dir_accepts_feedback_beside_its_log()
    {
        var package = await TrainAsync();
        var log = _dir.File("serve-log");
        var port = TestEnvironment.FreePort();
        using var serve = KilnCli.Start(["serve", "--model", package, "--port", port.ToString(CultureInfo.InvariantCulture), "--grpc-port", "0",
            "--log-dir", log, "--tracking-uri", _dir.File(".kiln")]);
        try
        {
            using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(5) };
            var ready = false;
            for (var i = 0; i < 600 && !ready && !serve.HasExited; i++)
            {
                try
                {
                    using var health = await http.GetAsync("/ready");
                    ready = health.IsSuccessStatusCode;
                }
                catch (HttpRequestException)
                {
                }
                catch (TaskCanceledException)
                {
                }
                if (!ready) await Task.Delay(100);
            }
            Assert.True(ready, "kiln serve did not become ready");
            using var ok = await http.PostAsync("/api/v1/feedback", new StringContent("""{"request_id":"r1","row":0,"label":"1"}""", Encoding.UTF8, "application/json"));
            Assert.Equal(200, (int)ok.StatusCode);
            var labels = await new Kiln.Monitoring.Feedback.FeedbackStore(log).ReadAsync();
            Assert.Equal("1", Assert.Single(labels).Value.Label);
        }
        finally
        {
            serve.Kill(entireProcessTree: true);
            await serve.WaitForExitAsync();
        }
    }

    [Fact]
    public async Task Kiln_server_with_log_dir_accepts_feedback_for_the_shared_log()
    {
        var log = _dir.File("shared-log");
        var port = TestEnvironment.FreePort();
        using var server = KilnCli.Start(["server", "--db", _dir.File("db"), "--port", port.ToString(CultureInfo.InvariantCulture), "--log-dir", log]);
        try
        {
            using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(5) };
            var ready = false;
            for (var i = 0; i < 300 && !ready && !server.HasExited; i++)
            {
                try
                {
                    using var health = await http.GetAsync("/health");
                    ready = health.IsSuccessStatusCode;
                }
                catch (HttpRequestException)
                {
                }
                catch (TaskCanceledException)
                {
                }
                if (!ready) await Task.Delay(100);
            }
            Assert.True(ready, "kiln server did not start");
            using var ok = await http.PostAsync("/api/v1/feedback", new StringContent("""{"request_id":"r1","row":2,"label":"fraud"}""", Encoding.UTF8, "application/json"));
            Assert.Equal(200, (int)ok.StatusCode);
            using var bad = await http.PostAsync("/api/v1/feedback", new StringContent("""{"request_id":"r1","row":"two","label":"fraud"}""", Encoding.UTF8, "application/json"));
            Assert.Equal(422, (int)bad.StatusCode);
            Assert.Contains("\"field\":\"row\"", await bad.Content.ReadAsStringAsync());
            var labels = await new Kiln.Monitoring.Feedback.FeedbackStore(log).ReadAsync();
            Assert.Equal("fraud", Assert.Single(labels).Value.Label);
        }
        finally
        {
            server.Kill(entireProcessTree: true);
            await server.WaitForExitAsync();
        }
    }
}
