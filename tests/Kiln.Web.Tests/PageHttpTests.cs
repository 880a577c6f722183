using System.Net;
using System.Text.RegularExpressions;
using Kiln.Tracking;
using Kiln.Tracking.Search;

namespace Kiln.Web.Tests;

/// <summary>Every page read over plain HTTP, as a browser without JavaScript would: the content is in the HTML.</summary>
public sealed class PageHttpTests(UiFixture f) : IClassFixture<UiFixture>
{
    private async Task<IReadOnlyList<Run>> RunsAsync()
    {
        // The runs as the tracking API answers them (the real HTTP client), to compare the pages with.
        await using var stores = TrackingStores.Open(f.Address.ToString().TrimEnd('/'));
        var experiments = await stores.Tracking.SearchExperimentsAsync(new ExperimentQuery());
        // The quickstart's runs (the continuous monitor keeps its history in an experiment of its own, kiln-monitor).
        var ids = experiments.Items.Where(e => e.Name != Kiln.Web.Monitoring.MonitorHistory.Experiment).Select(e => e.ExperimentId).ToList();
        return (await stores.Tracking.SearchRunsAsync(new RunQuery(ids))).Items;
    }

    [Fact]
    public async Task The_pages_are_whole_without_javascript_and_share_the_navigation()
    {
        foreach (var path in (string[])["/", "/experiments", "/models", "/serving", "/monitoring", "/features", "/pipelines"])
        {
            var (status, html) = await f.GetAsync(path);
            Assert.True(status == HttpStatusCode.OK, $"{path}: {(int)status}\n{html}\n{f.ServerLog}");
            Assert.Contains("<nav class=\"side\" aria-label=\"Main\">", html, StringComparison.Ordinal);
            Assert.Contains("<h1", html, StringComparison.Ordinal);
            // Nothing from another host: the UI works offline.
            Assert.DoesNotMatch(new Regex("(src|href)=\"https?://"), html);
        }
    }

    [Fact]
    public async Task The_experiment_page_lists_the_quickstart_runs_and_sorts_and_filters_them()
    {
        var runs = await RunsAsync();
        Assert.Equal(2, runs.Count);
        var experiment = runs[0].Info.ExperimentId;
        var (status, html) = await f.GetAsync($"/experiments/{experiment}");
        Assert.Equal(HttpStatusCode.OK, status);
        foreach (var r in runs) Assert.Contains($"href=\"/runs/{r.RunId}\"", html, StringComparison.Ordinal);

        // A metric every run has: filter to the better run by its value, and sort by it.
        var metric = runs[0].Data.Metrics.Select(m => m.Key).First(k => runs.All(r => r.Metric(k) is not null));
        var best = runs.MaxBy(r => r.Metric(metric))!;
        var filter = Uri.EscapeDataString($"metrics.{metric} >= {best.Metric(metric)!.Value.ToString("R", System.Globalization.CultureInfo.InvariantCulture)}");
        (status, html) = await f.GetAsync($"/experiments/{experiment}?filter={filter}");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Contains($"href=\"/runs/{best.RunId}\"", html, StringComparison.Ordinal);

        // Started ascending: the first run started comes first in the table.
        (status, html) = await f.GetAsync($"/experiments/{experiment}?order={Uri.EscapeDataString("attributes.start_time ASC")}");
        var first = runs.MinBy(r => r.Info.StartTime)!;
        var last = runs.MaxBy(r => r.Info.StartTime)!;
        Assert.True(html.IndexOf($"/runs/{first.RunId}\"", StringComparison.Ordinal) < html.IndexOf($"/runs/{last.RunId}\"", StringComparison.Ordinal));
        (_, html) = await f.GetAsync($"/experiments/{experiment}?order={Uri.EscapeDataString("attributes.start_time DESC")}");
        Assert.True(html.IndexOf($"/runs/{first.RunId}\"", StringComparison.Ordinal) > html.IndexOf($"/runs/{last.RunId}\"", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_malformed_filter_shows_the_parsers_message_beside_the_box()
    {
        var runs = await RunsAsync();
        const string bad = "metrics.auc >> 1 AND";
        // The message the API's parser gives for the same text (the page must show that one, not a second wording).
        var expected = Assert.ThrowsAny<TrackingException>(() => SearchFilter.Parse(bad)).Message;
        var (status, html) = await f.GetAsync($"/experiments/{runs[0].Info.ExperimentId}?filter={Uri.EscapeDataString(bad)}");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Contains("id=\"filter-error\"", html, StringComparison.Ordinal);
        Assert.Contains(expected, WebUtility.HtmlDecode(html), StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_run_page_shows_params_metrics_with_charts_tags_artifacts_and_the_model_version()
    {
        var run = (await RunsAsync())[0];
        var (status, html) = await f.GetAsync($"/runs/{run.RunId}");
        Assert.Equal(HttpStatusCode.OK, status);
        foreach (var p in run.Data.Params) Assert.Contains(p.Value, WebUtility.HtmlDecode(html), StringComparison.Ordinal);
        foreach (var m in run.Data.Metrics) Assert.Contains($"data-chart=\"{m.Key}\"", html, StringComparison.Ordinal);
        Assert.Contains("<svg", html, StringComparison.Ordinal);
        Assert.Contains("href=\"/models/fraud\"", html, StringComparison.Ordinal);
        // An artifact downloads through the artifact proxy.
        var link = Regex.Match(html, "href=\"(/api/2.0/mlflow-artifacts/artifacts/[^\"]+)\" download").Groups[1].Value;
        if (link.Length == 0)
        {
            var dir = Regex.Match(html, "href=\"(/runs/[^\"?]+\\?artifacts=[^\"#]+)").Groups[1].Value;
            Assert.False(string.IsNullOrEmpty(dir), "the run page lists no artifact");
            (_, html) = await f.GetAsync(WebUtility.HtmlDecode(dir));
            link = Regex.Match(html, "href=\"(/api/2.0/mlflow-artifacts/artifacts/[^\"]+)\" download").Groups[1].Value;
        }
        using var http = f.Client();
        using var download = await http.GetAsync(new Uri(WebUtility.HtmlDecode(link), UriKind.Relative));
        Assert.Equal(HttpStatusCode.OK, download.StatusCode);
        Assert.True((await download.Content.ReadAsByteArrayAsync()).Length > 0);
    }

    [Fact]
    public async Task Comparing_two_runs_overlays_both_series_and_one_run_is_refused_with_a_message()
    {
        var runs = await RunsAsync();
        var (status, html) = await f.GetAsync($"/compare?run={runs[0].RunId}&run={runs[1].RunId}");
        Assert.Equal(HttpStatusCode.OK, status);
        var metric = runs[0].Data.Metrics[0].Key;
        var chart = html[html.IndexOf($"data-chart=\"{metric}\"", StringComparison.Ordinal)..];
        chart = chart[..chart.IndexOf("</figure>", StringComparison.Ordinal)];
        Assert.Equal(2, Regex.Matches(chart, "class=\"series\"").Count);

        (status, html) = await f.GetAsync($"/compare?run={runs[0].RunId}");
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Contains("choose 2 to 10 runs", html, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("/runs/0123456789abcdef0123456789abcdef", "There is no run")]
    [InlineData("/experiments/987654", "There is no experiment")]
    [InlineData("/no/such/page", "There is no page")]
    [InlineData("/models/no-such-model", "There is no registered model")]
    public async Task Unknown_things_answer_404_with_a_way_back(string path, string message)
    {
        var (status, html) = await f.GetAsync(path);
        Assert.Equal(HttpStatusCode.NotFound, status);
        Assert.Contains(message, html, StringComparison.Ordinal);
        Assert.Matches("<a href=\"/[a-z]*\">Back to ", html);
    }

    [Fact]
    public async Task The_drift_page_streams_only_for_blazor_web_js_and_is_whole_for_everyone_else()
    {
        // Without blazor.web.js's header (a browser without JavaScript, curl): the report is in the page itself.
        var (status, html) = await f.GetAsync("/monitoring/fraud?alias=production");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.DoesNotContain("<blazor-ssr>", html, StringComparison.Ordinal);
        Assert.DoesNotContain("Reading the window", html, StringComparison.Ordinal);
        Assert.Contains("class=\"drift-report\"", html, StringComparison.Ordinal);

        // blazor.web.js's enhanced navigation: the shell (heading, form, placeholder) first, the report after it as a
        // streamed update the script applies.
        using var http = f.Client();
        using var request = new HttpRequestMessage(HttpMethod.Get, "/monitoring/fraud?alias=production");
        request.Headers.TryAddWithoutValidation("Accept", "text/html; blazor-enhanced-nav=on");
        using var response = await http.SendAsync(request);
        var streamed = await response.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var placeholder = streamed.IndexOf("Reading the window", StringComparison.Ordinal);
        var update = streamed.IndexOf("<blazor-ssr>", StringComparison.Ordinal);
        Assert.True(placeholder > 0 && update > placeholder, streamed);
        Assert.True(streamed.IndexOf("class=\"drift-report\"", StringComparison.Ordinal) > update, streamed);
    }

    [Fact]
    public async Task The_monitoring_page_charts_each_evaluations_proxy_metric_with_the_rules_threshold()
    {
        // The monitor evaluates every 2 s; wait for a few evaluations to be kept.
        string html = "";
        var points = 0;
        for (var deadline = DateTime.UtcNow.AddSeconds(90); DateTime.UtcNow < deadline; await Task.Delay(1000))
        {
            (_, html) = await f.GetAsync("/monitoring");
            var chart = Regex.Match(html, "data-chart=\"prediction_mean\".*?</figure>", RegexOptions.Singleline);
            points = chart.Success ? Regex.Match(chart.Value, "points=\"([^\"]*)\"").Groups[1].Value.Split(' ', StringSplitOptions.RemoveEmptyEntries).Length : 0;
            if (points >= 3) break;
        }
        Assert.True(points >= 3, $"the prediction_mean chart has {points} point(s)\n{html}\n{f.ServerLog}");
        var figure = Regex.Match(html, "data-chart=\"prediction_mean\".*?</figure>", RegexOptions.Singleline).Value;
        // The rule's threshold is a line across the chart, labelled with the rule.
        Assert.Matches("class=\"threshold\" data-threshold=\"fraud_prediction_mean_high \\(above 0.5\\)\" data-value=\"0.5\"", figure);

        // What the chart draws is the monitor's own measurements: the kept history (read through the tracking API, as
        // MLflow's clients would) holds the value the server's /metrics gauge shows (once that evaluation is written).
        await using var stores = TrackingStores.Open(f.Address.ToString().TrimEnd('/'));
        var experiment = await stores.Tracking.GetExperimentByNameAsync("kiln-monitor");
        Assert.NotNull(experiment);
        var run = Assert.Single((await stores.Tracking.SearchRunsAsync(new RunQuery([experiment.ExperimentId]))).Items);
        Assert.Equal("fraud", run.Data.Tags.Single(t => t.Key == "kiln.monitor.target").Value);
        var history = await stores.Tracking.GetMetricHistoryAsync(run.RunId, "prediction_mean");
        Assert.True(history.Count >= 3);
        Assert.True(history.Zip(history.Skip(1)).All(p => p.Second.Timestamp > p.First.Timestamp), "one point per evaluation, in time order");
        using var http = f.Client();
        var metrics = await http.GetStringAsync(new Uri("/metrics", UriKind.Relative));
        var gauge = double.Parse(Regex.Match(metrics, "^kiln_monitor_prediction_mean\\{model=\"fraud\"\\} (\\S+)$", RegexOptions.Multiline).Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        var kept = false;
        for (var deadline = DateTime.UtcNow.AddSeconds(20); !kept && DateTime.UtcNow < deadline; await Task.Delay(250))
            kept = (await stores.Tracking.GetMetricHistoryAsync(run.RunId, "prediction_mean")).Any(p => p.Value == gauge);
        Assert.True(kept, $"the gauge's {gauge} is not in the kept history");
    }
}

/// <summary>Monitoring, pipelines, serving and features over plain HTTP.</summary>
public sealed class AreaPageHttpTests(UiFixture f) : IClassFixture<UiFixture>
{
    private static List<string> CardNames(string html) =>
        Regex.Matches(html, "<div class=\"(card[^\"]*)\"><div class=\"head\"><span class=\"name\">([^<]+)</span>").Select(m => m.Groups[1].Value + ":" + m.Groups[2].Value).ToList();

    [Fact]
    public async Task The_drift_page_puts_the_drifted_features_first_and_says_what_kiln_drift_says()
    {
        var (status, html) = await f.GetAsync("/monitoring/fraud?alias=production&window=1d");
        Assert.True(status == HttpStatusCode.OK, html);
        var cards = CardNames(html);
        Assert.Equal(6, cards.Count);
        Assert.StartsWith("card drift:", cards[0], StringComparison.Ordinal);
        Assert.Contains("card drift:amount", cards);
        var firstCalm = cards.FindIndex(c => !c.StartsWith("card drift:", StringComparison.Ordinal));
        Assert.True(firstCalm < 0 || cards.Skip(firstCalm).All(c => !c.StartsWith("card drift:", StringComparison.Ordinal)), string.Join(", ", cards));

        // kiln drift's HTML report of the same window: the same cards in the same order (one renderer).
        var out_ = Path.Combine(f.Dir, "drift.html");
        var r = await Kiln.Testing.KilnCli.RunAsync(["drift", "--model", "models:/fraud@production", "--log-dir", f.LogDir, "--window", "1d", "--out", out_,
            "--fail-on-drift", "false"], f.Dir);
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal(CardNames(await File.ReadAllTextAsync(out_)), cards);
    }

    [Fact]
    public async Task A_bad_window_is_a_message_not_a_500()
    {
        var (status, html) = await f.GetAsync("/monitoring/fraud?window=soon");
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Contains("role=\"alert\"", html, StringComparison.Ordinal);
        Assert.Contains("soon", html, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_pipeline_run_page_draws_the_failed_task_in_red_with_its_timeline_and_logs()
    {
        var (status, html) = await f.GetAsync("/pipelines");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Contains($"href=\"/pipelines/runs/{f.FailedPipelineRun}\"", html, StringComparison.Ordinal);

        (status, html) = await f.GetAsync($"/pipelines/runs/{f.FailedPipelineRun}?task=train");
        Assert.Equal(HttpStatusCode.OK, status);
        var train = Regex.Match(html, "<g class=\"task\" data-task=\"train\" data-state=\"([a-z_]+)\"><title>[^<]*</title><rect [^>]*fill=\"(#[0-9a-f]+)\"");
        Assert.True(train.Success, html);
        Assert.Equal("failed", train.Groups[1].Value);
        Assert.Equal("#c92a2a", train.Groups[2].Value);
        Assert.Matches("<g class=\"task\" data-task=\"prepare\" data-state=\"succeeded\"><title>[^<]*</title><rect [^>]*fill=\"#2b8a3e\"", html);
        Assert.Contains("<g class=\"attempt\" data-task=\"train\" data-state=\"failed\">", html, StringComparison.Ordinal);
        Assert.Contains("no training data today", html, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_form_post_without_its_antiforgery_token_is_refused()
    {
        using var http = f.Client();
        using var r = await http.PostAsync(new Uri($"/pipelines/runs/{f.FailedPipelineRun}", UriKind.Relative),
            new FormUrlEncodedContent(new Dictionary<string, string> { ["_handler"] = "run-action", ["Action"] = "rerun" }));
        Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
        using var m = await http.PostAsync(new Uri("/models/fraud", UriKind.Relative),
            new FormUrlEncodedContent(new Dictionary<string, string> { ["_handler"] = "rollback", ["Alias"] = "production" }));
        Assert.Equal(HttpStatusCode.BadRequest, m.StatusCode);
        var (_, html) = await f.GetAsync("/models/fraud");
        Assert.DoesNotContain(">rollback<", html, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_serving_page_shows_the_versions_in_the_log_and_the_latest_predictions()
    {
        var (status, html) = await f.GetAsync("/serving");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Contains("<h2 id=\"m-fraud\">fraud</h2>", html, StringComparison.Ordinal);
        Assert.Contains("production → version 2", WebUtility.HtmlDecode(html), StringComparison.Ordinal);
        // The newest of the logged rows (recent.csv's 2,000th row, r01999) is among the latest predictions.
        Assert.Contains("<td>r01999</td>", html, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_features_page_shows_the_applied_definitions()
    {
        var (status, html) = await f.GetAsync("/features");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Contains("<h2 id=\"views\">Feature views</h2>", html, StringComparison.Ordinal);
        Assert.Contains("<h2 id=\"entities\">Entities</h2>", html, StringComparison.Ordinal);
        Assert.DoesNotContain("No feature definitions applied yet", html, StringComparison.Ordinal);
        // examples/features/feature_store.yaml: project rides, entity driver, view driver_hourly_stats with conv_rate.
        Assert.Contains("Project <strong>rides</strong>", html, StringComparison.Ordinal);
        Assert.Contains("<td>driver_hourly_stats</td>", html, StringComparison.Ordinal);
        Assert.Contains("conv_rate", html, StringComparison.Ordinal);
        Assert.Contains("<td>driver</td>", html, StringComparison.Ordinal);
    }
}

/// <summary>A metric logged over many steps is drawn as a line through every step.</summary>
public sealed class MetricChartTests(UiFixture f) : IClassFixture<UiFixture>
{
    [Fact]
    public async Task A_metric_logged_over_steps_is_one_polyline_with_a_point_per_step_rising_where_the_values_rise()
    {
        await using var stores = TrackingStores.Open(f.Address.ToString().TrimEnd('/'));
        var experiment = await stores.Tracking.CreateExperimentAsync("chart-test");
        var run = await stores.Tracking.CreateRunAsync(new CreateRun(experiment, "fifty-steps"));
        // loss = 1 / (step + 1): falling, so on screen (y grows downward) each point is lower than the one before.
        var points = Enumerable.Range(0, 50).Select(s => new Metric("loss", 1.0 / (s + 1), 1_700_000_000_000 + s, s)).ToList();
        await stores.Tracking.LogBatchAsync(run.RunId, points, null, null);

        var (status, html) = await f.GetAsync($"/runs/{run.RunId}");
        Assert.Equal(HttpStatusCode.OK, status);
        var polyline = Regex.Match(html, "<polyline class=\"series\" data-series=\"loss\"[^>]*points=\"([^\"]+)\"");
        Assert.True(polyline.Success, html);
        var xy = polyline.Groups[1].Value.Split(' ', StringSplitOptions.RemoveEmptyEntries)
            .Select(p => p.Split(',').Select(v => double.Parse(v, System.Globalization.CultureInfo.InvariantCulture)).ToArray()).ToList();
        Assert.Equal(50, xy.Count);
        for (var i = 1; i < xy.Count; i++)
        {
            Assert.True(xy[i][0] > xy[i - 1][0], "x grows with the step");
            Assert.True(xy[i][1] >= xy[i - 1][1], "a falling loss is drawn going down");
        }
        Assert.Contains(">50</td>", html, StringComparison.Ordinal); // the metrics table counts 50 points
    }
}

/// <summary>Paging the runs table by its "Next page" links.</summary>
public sealed class PagingTests(UiFixture f) : IClassFixture<UiFixture>
{
    [Fact]
    public async Task Next_page_links_walk_every_run_once_newest_first_even_when_start_times_tie()
    {
        await using var stores = TrackingStores.Open(f.Address.ToString().TrimEnd('/'));
        var experiment = await stores.Tracking.CreateExperimentAsync("paging-test");
        // 120 runs, three at each start time, so that a page boundary (every 50 rows) falls inside a tie.
        var expected = new List<(long Time, string Id)>();
        for (var i = 0; i < 120; i++)
        {
            var run = await stores.Tracking.CreateRunAsync(new CreateRun(experiment, $"r{i}", StartTime: 1_700_000_000_000 + i / 3));
            expected.Add((run.Info.StartTime, run.RunId));
        }
        // The table's order: start time descending, then run id (the store's tie-break).
        var order = expected.OrderByDescending(e => e.Time).ThenBy(e => e.Id, StringComparer.Ordinal).Select(e => e.Id).ToList();

        var seen = new List<string>();
        var url = $"/experiments/{experiment}";
        for (var pages = 0; pages < 10 && url is not null; pages++)
        {
            var (status, html) = await f.GetAsync(url);
            Assert.Equal(HttpStatusCode.OK, status);
            seen.AddRange(Regex.Matches(html, "<td><a href=\"/runs/([0-9a-f]+)\">").Select(m => m.Groups[1].Value));
            var next = Regex.Match(html, "<a href=\"([^\"]+)\" rel=\"next\">");
            url = next.Success ? WebUtility.HtmlDecode(next.Groups[1].Value) : null;
        }
        Assert.Equal(order, seen);

        var (badStatus, badHtml) = await f.GetAsync($"/experiments/{experiment}?before=yesterday");
        Assert.Equal(HttpStatusCode.OK, badStatus);
        Assert.Contains("is not a page cursor", badHtml, StringComparison.Ordinal);
    }
}
