using System.Text.Json;
using System.Text.RegularExpressions;
using Kiln.Testing;
using Microsoft.Playwright;

namespace Kiln.Web.Tests;

/// <summary>The UI in a real browser against the real kiln server after the quickstart; each test leaves a screenshot.</summary>
public sealed class BrowserTests(BrowserFixture f) : IClassFixture<BrowserFixture>
{
    private static readonly LocatorAssertionsToBeVisibleOptions Visible = new() { Timeout = 15_000 };

    [Fact]
    public async Task The_quickstart_run_appears_with_its_metrics_chart()
    {
        var page = await f.NewPageAsync();
        await page.GotoAsync("/");
        await BrowserFixture.ScreenshotAsync(page, "experiments");
        await page.GetByRole(AriaRole.Link, new() { Name = "quickstart", Exact = true }).ClickAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Heading, new() { Level = 1 })).ToHaveTextAsync("quickstart");
        await BrowserFixture.ScreenshotAsync(page, "runs");
        await page.Locator("table.grid tbody tr td:nth-child(2) a").First.ClickAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Metrics" })).ToBeVisibleAsync(Visible);
        var chart = page.Locator("figure.chart").First;
        await Assertions.Expect(chart.Locator("svg .series")).ToHaveCountAsync(1);
        Assert.True((await chart.Locator("svg").BoundingBoxAsync())!.Width > 300, "the chart is drawn at a readable size");
        await BrowserFixture.ScreenshotAsync(page, "run");

        // The same page in the dark theme (the system setting decides).
        var dark = await f.NewPageAsync(ColorScheme.Dark);
        await dark.GotoAsync(page.Url);
        var background = await dark.EvaluateAsync<string>("getComputedStyle(document.body).backgroundColor");
        Assert.Equal("rgb(21, 24, 29)", background);
        await BrowserFixture.ScreenshotAsync(dark, "run-dark");
    }

    [Fact]
    public async Task Comparing_two_runs_shows_both_series()
    {
        var page = await f.NewPageAsync();
        await page.GotoAsync("/");
        await page.GetByRole(AriaRole.Link, new() { Name = "quickstart", Exact = true }).ClickAsync();
        var boxes = page.GetByRole(AriaRole.Checkbox);
        await Assertions.Expect(boxes).ToHaveCountAsync(2);
        await boxes.Nth(0).CheckAsync();
        await boxes.Nth(1).CheckAsync();
        await page.GetByRole(AriaRole.Button, new() { Name = "Compare selected runs" }).ClickAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Compare runs" })).ToBeVisibleAsync(Visible);
        await Assertions.Expect(page.Locator("figure.chart").First.Locator("svg .series")).ToHaveCountAsync(2);
        await BrowserFixture.ScreenshotAsync(page, "compare");
    }

    [Fact]
    public async Task A_rollback_from_the_models_page_moves_the_alias_and_kiln_models_history_shows_it()
    {
        var page = await f.NewPageAsync();
        await page.GotoAsync("/models");
        await BrowserFixture.ScreenshotAsync(page, "models");
        await page.GetByRole(AriaRole.Link, new() { Name = "fraud", Exact = true }).ClickAsync();
        await page.GetByRole(AriaRole.Link, new() { Name = "Roll back production…" }).ClickAsync();
        await BrowserFixture.ScreenshotAsync(page, "model-rollback-confirm");
        await page.GetByRole(AriaRole.Button, new() { Name = "Confirm rollback of production" }).ClickAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Status)).ToHaveTextAsync("production moved back from version 2 to version 1.");
        await BrowserFixture.ScreenshotAsync(page, "model");

        // The real CLI reads the history through the server's API.
        var r = await KilnCli.RunAsync(["models", "history", "fraud", "--json", "--tracking-uri", f.Server.Address.ToString().TrimEnd('/')], f.Server.Dir);
        Assert.True(r.ExitCode == 0, r.ToString());
        var last = JsonDocument.Parse(r.StdOut).RootElement.GetProperty("events").EnumerateArray().Last();
        Assert.Equal("rollback", last.GetProperty("action").GetString());
        Assert.Equal(2, last.GetProperty("from_version").GetInt32());
        Assert.Equal(1, last.GetProperty("to_version").GetInt32());
        Assert.Equal("web-ui", last.GetProperty("user_id").GetString());
    }

    [Fact]
    public async Task A_malformed_filter_shows_the_message_beside_the_box_and_an_unknown_page_offers_a_way_back()
    {
        var page = await f.NewPageAsync();
        await page.GotoAsync("/");
        await page.GetByRole(AriaRole.Link, new() { Name = "quickstart", Exact = true }).ClickAsync();
        await page.GetByLabel(new Regex("^Filter")).FillAsync("metrics.auc >> 1");
        await page.Keyboard.PressAsync("Enter");
        await Assertions.Expect(page.GetByRole(AriaRole.Alert)).ToContainTextAsync("metrics.auc >> 1");
        await BrowserFixture.ScreenshotAsync(page, "runs-bad-filter");

        var missing = await page.GotoAsync("/runs/ffffffffffffffffffffffffffffffff");
        Assert.Equal(404, missing!.Status);
        await Assertions.Expect(page.GetByRole(AriaRole.Heading, new() { Level = 1 })).ToHaveTextAsync("Not found");
        await BrowserFixture.ScreenshotAsync(page, "not-found");
        await page.GetByRole(AriaRole.Link, new() { Name = "Back to experiments" }).ClickAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Heading, new() { Level = 1 })).ToHaveTextAsync("Experiments");
    }

    [Fact]
    public async Task The_keyboard_reaches_the_skip_link_and_the_navigation()
    {
        var page = await f.NewPageAsync();
        await page.GotoAsync("/models");
        await page.Keyboard.PressAsync("Tab");
        Assert.Equal("Skip to content", await page.EvaluateAsync<string>("document.activeElement.textContent"));
        await page.Keyboard.PressAsync("Tab");
        await page.Keyboard.PressAsync("Tab");
        Assert.Equal("Experiments", await page.EvaluateAsync<string>("document.activeElement.textContent"));
        await page.Keyboard.PressAsync("Enter");
        await Assertions.Expect(page.GetByRole(AriaRole.Heading, new() { Level = 1 })).ToHaveTextAsync("Experiments");
    }

    [Fact]
    public async Task A_drifted_window_shows_the_drifted_feature_first()
    {
        var page = await f.NewPageAsync();
        await page.GotoAsync("/monitoring");
        await BrowserFixture.ScreenshotAsync(page, "monitoring");
        await page.GetByRole(AriaRole.Link, new() { Name = "fraud", Exact = true }).ClickAsync();
        var first = page.Locator(".drift-report .card").First;
        await Assertions.Expect(first).ToHaveClassAsync("card drift");
        await Assertions.Expect(first.Locator(".verdict")).ToHaveTextAsync("drift");
        await BrowserFixture.ScreenshotAsync(page, "drift");
    }

    [Fact]
    public async Task A_pipeline_runs_graph_shows_the_failed_task_in_red_and_run_again_starts_a_new_run()
    {
        var page = await f.NewPageAsync();
        await page.GotoAsync("/pipelines");
        await BrowserFixture.ScreenshotAsync(page, "pipelines");
        await page.GetByRole(AriaRole.Link, new() { Name = f.Server.FailedPipelineRun }).ClickAsync();
        var train = page.Locator("svg.dag g.task[data-task=train] rect");
        await Assertions.Expect(train).ToHaveAttributeAsync("fill", "#c92a2a");
        // What the eye sees: the computed fill of the box is red.
        Assert.Equal("rgb(201, 42, 42)", await train.EvaluateAsync<string>("e => getComputedStyle(e).fill"));
        await page.GetByRole(AriaRole.Link, new() { Name = "logs" }).Nth(1).ClickAsync();
        await Assertions.Expect(page.Locator("pre.log")).ToContainTextAsync("no training data today");
        await BrowserFixture.ScreenshotAsync(page, "pipeline-run");

        await page.GetByRole(AriaRole.Button, new() { Name = "Run again" }).ClickAsync();
        await page.WaitForURLAsync(new Regex("/pipelines/runs/(?!" + f.Server.FailedPipelineRun + ")"));
        await Assertions.Expect(page.GetByRole(AriaRole.Heading, new() { Level = 1 })).ToContainTextAsync("nightly");
    }

    [Fact]
    public async Task The_serving_and_features_pages_render()
    {
        var page = await f.NewPageAsync();
        await page.GotoAsync("/serving");
        await Assertions.Expect(page.GetByRole(AriaRole.Heading, new() { Name = "fraud" })).ToBeVisibleAsync(Visible);
        await BrowserFixture.ScreenshotAsync(page, "serving");
        await page.GetByRole(AriaRole.Link, new() { Name = "Features" }).ClickAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Feature views" })).ToBeVisibleAsync(Visible);
        await BrowserFixture.ScreenshotAsync(page, "features");
    }

    [Fact]
    public async Task With_javascript_links_and_forms_use_enhanced_navigation_and_the_page_is_never_reloaded()
    {
        var page = await f.NewPageAsync();
        // Every answer of the server, script and pages alike, is a success (no framework file missing).
        var refused = new List<string>();
        page.Response += (_, r) => { if (r.Status >= 400) refused.Add($"{r.Status} {r.Url}"); };
        var script = await page.GotoAsync("/_framework/blazor.web.js");
        Assert.Equal(200, script!.Status);
        await page.GotoAsync("/");
        // blazor.web.js served by kiln itself took over: a marker on window survives only same-document navigations.
        await page.EvaluateAsync("window.kilnSameDocument = 'yes'");
        await page.GetByRole(AriaRole.Link, new() { Name = "quickstart", Exact = true }).ClickAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Heading, new() { Level = 1 })).ToHaveTextAsync("quickstart");
        await Assertions.Expect(page.Locator("table.grid tbody tr")).ToHaveCountAsync(2);
        // The search form (GET, enhanced): a filter every quickstart run passes.
        await page.GetByLabel(new Regex("^Filter")).FillAsync("attributes.status = 'FINISHED'");
        await page.Keyboard.PressAsync("Enter");
        await page.WaitForURLAsync(new Regex("filter="));
        await Assertions.Expect(page.Locator("table.grid tbody tr")).ToHaveCountAsync(2);
        // Compare (a GET form to another page, streamed under enhanced navigation): both series arrive.
        var boxes = page.GetByRole(AriaRole.Checkbox);
        await boxes.Nth(0).CheckAsync();
        await boxes.Nth(1).CheckAsync();
        await page.GetByRole(AriaRole.Button, new() { Name = "Compare selected runs" }).ClickAsync();
        await Assertions.Expect(page.Locator("figure.chart").First.Locator("svg .series")).ToHaveCountAsync(2);
        Assert.Equal("yes", await page.EvaluateAsync<string?>("window.kilnSameDocument"));
        // The drift page, streamed: the report replaces the shell's placeholder.
        await page.GetByRole(AriaRole.Link, new() { Name = "Monitoring" }).ClickAsync();
        await page.GetByRole(AriaRole.Link, new() { Name = "fraud", Exact = true }).ClickAsync();
        await Assertions.Expect(page.Locator(".drift-report .card").First).ToHaveClassAsync("card drift");
        await Assertions.Expect(page.GetByRole(AriaRole.Status)).ToHaveCountAsync(0);
        Assert.Equal("yes", await page.EvaluateAsync<string?>("window.kilnSameDocument"));
        Assert.Empty(refused);
    }

    [Fact]
    public async Task Without_javascript_every_page_is_whole_and_a_form_with_an_anti_forgery_token_posts()
    {
        var page = await f.NewPageAsync(javaScript: false);
        await page.GotoAsync("/");
        await page.GetByRole(AriaRole.Link, new() { Name = "quickstart", Exact = true }).ClickAsync();
        await Assertions.Expect(page.Locator("table.grid tbody tr")).ToHaveCountAsync(2);
        await page.GetByLabel(new Regex("^Filter")).FillAsync("attributes.status = 'FINISHED'");
        await page.Keyboard.PressAsync("Enter");
        await page.WaitForURLAsync(new Regex("filter="));
        await Assertions.Expect(page.Locator("table.grid tbody tr")).ToHaveCountAsync(2);
        var boxes = page.GetByRole(AriaRole.Checkbox);
        await boxes.Nth(0).CheckAsync();
        await boxes.Nth(1).CheckAsync();
        await page.GetByRole(AriaRole.Button, new() { Name = "Compare selected runs" }).ClickAsync();
        await Assertions.Expect(page.Locator("figure.chart").First.Locator("svg .series")).ToHaveCountAsync(2);
        await page.GotoAsync("/monitoring");
        await page.GetByRole(AriaRole.Link, new() { Name = "fraud", Exact = true }).ClickAsync();
        await Assertions.Expect(page.Locator(".drift-report .card").First).ToHaveClassAsync("card drift");

        // A state-changing form, posted by the browser itself with the page's anti-forgery token.
        await page.GotoAsync($"/pipelines/runs/{f.Server.FailedPipelineRun}");
        await page.GetByRole(AriaRole.Button, new() { Name = "Run again" }).ClickAsync();
        await page.WaitForURLAsync(new Regex("/pipelines/runs/(?!" + f.Server.FailedPipelineRun + ")"));
        await Assertions.Expect(page.GetByRole(AriaRole.Heading, new() { Level = 1 })).ToContainTextAsync("nightly");
    }
}
