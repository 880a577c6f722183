using System.Globalization;
using System.Text.Json;
using Kiln.Core.Data;
using Kiln.Testing;

namespace Kiln.Cli.Tests;

/// <summary>The batch_score, materialize and drift_check task kinds, run by the real `kiln pipeline run`.</summary>
public class PipelineKindTests(TrainedPackage package) : IClassFixture<TrainedPackage>
{
    private static string Features => Path.Combine(TestEnvironment.RepoRoot, "examples", "features");

    [Fact]
    public async Task Batch_score_scores_every_row_as_kiln_batch_does_and_finishes_an_existing_output_only_with_resume()
    {
        using var dir = new TempDir("kiln-kind");
        var output = dir.File("scored");
        string Yaml(string extra) => $$$"""
            name: score
            tasks:
              score:
                kind: batch_score
                model: {{{package.Directory}}}
                input: {{{TrainedPackage.Transactions}}}
                output: {{{output}}}
                keep: [transaction_id]{{{extra}}}
              after:
                kind: shell
                depends_on: score
                command: echo "scored {{ tasks.score.outputs.rows }} rows into {{ tasks.score.outputs.output }}"
            """;
        var run = await Pipelines.RunAsync(dir, Yaml(""));
        Assert.True(run.ExitCode == 0, run.ToString());
        var tasks = await Pipelines.TasksAsync(dir, run);
        Assert.Equal("8000", tasks["score"].Output("rows"));
        Assert.Equal("0", tasks["score"].Output("rejected"));
        Assert.Equal($"scored 8000 rows into {output}", tasks["after"].Output("stdout"));

        // The same answer as `kiln batch` with the same package, row for row.
        var direct = dir.File("direct");
        var batch = await KilnCli.RunAsync(["batch", "--model", package.Directory, "--input", TrainedPackage.Transactions, "--output", direct, "--keep", "transaction_id"], dir.Path);
        Assert.True(batch.ExitCode == 0, batch.ToString());
        var mine = await ReadScoresAsync(output);
        var theirs = await ReadScoresAsync(direct);
        Assert.Equal(8000, mine.RowCount);
        Assert.Equal(theirs.Text("transaction_id").Values.Take(8000), mine.Text("transaction_id").Values.Take(8000));
        Assert.Equal(theirs.Numeric("probability").Values.Take(8000), mine.Numeric("probability").Values.Take(8000));

        // A second run into the same output is refused (it would mix two jobs) and says how to finish it.
        var again = await Pipelines.RunAsync(dir, Yaml(""));
        Assert.Equal(1, again.ExitCode);
        var refused = await Pipelines.TasksAsync(dir, again);
        Assert.Equal("failed", refused["score"].State());
        Assert.Contains("set 'resume: true'", refused["score"].Error(), StringComparison.Ordinal);
        Assert.Equal("upstream_failed", refused["after"].State());

        var resumed = await Pipelines.RunAsync(dir, Yaml("\n    resume: true"));
        Assert.True(resumed.ExitCode == 0, resumed.ToString());
        var r = (await Pipelines.TasksAsync(dir, resumed))["score"];
        Assert.Equal("1", r.Output("parts_resumed"));
        Assert.Equal("0", r.Output("rows"));
    }

    private static async Task<DataTable> ReadScoresAsync(string dir) =>
        await TableReader.ReadAllAsync(DataSources.Resolve(dir),
            [new ColumnRequest("transaction_id", ColumnType.Text), new ColumnRequest("probability", ColumnType.Numeric)], null);

    [Fact]
    public async Task Batch_score_refuses_bad_settings_when_loaded_and_names_the_missing_column_at_run()
    {
        using var dir = new TempDir("kiln-kind");
        var file = dir.File("bad.yaml");
        await File.WriteAllTextAsync(file, $$"""
            name: bad
            tasks:
              score:
                kind: batch_score
                model: {{package.Directory}}
                input: in.csv
                keep: [transaction_id]
                key: amount
                on_bad_row: maybe
                shard: 3/2
                batch_rows: 0
                colour: blue
            """);
        var r = await KilnCli.RunAsync(["pipeline", "validate", file], dir.Path);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("bad.yaml:3:3: task 'score': kind batch_score needs 'output'", r.StdErr, StringComparison.Ordinal);
        Assert.Contains("bad.yaml:8:5: task 'score': 'key' 'amount' must also be a 'keep' column", r.StdErr, StringComparison.Ordinal);
        Assert.Contains("bad.yaml:9:5: task 'score': 'on_bad_row' must be one of fail, skip", r.StdErr, StringComparison.Ordinal);
        Assert.Contains("bad.yaml:10:5: task 'score': 'shard' '3/2' is not i/N", r.StdErr, StringComparison.Ordinal);
        Assert.Contains("bad.yaml:11:5: task 'score': 'batch_rows' must be a whole number of at least 1", r.StdErr, StringComparison.Ordinal);
        Assert.Contains("bad.yaml:12:5: task 'score': 'colour' is not a setting of kind batch_score", r.StdErr, StringComparison.Ordinal);

        var input = dir.File("partial.csv");
        await File.WriteAllTextAsync(input, "transaction_id,amount\nt1,12.5\n");
        var run = await Pipelines.RunAsync(dir, $$"""
            name: partial
            tasks:
              score:
                kind: batch_score
                model: {{package.Directory}}
                input: {{input}}
                output: out
            """);
        Assert.Equal(1, run.ExitCode);
        var error = (await Pipelines.TasksAsync(dir, run))["score"].Error();
        Assert.Contains("partial.csv: column 'hour' that the model needs is missing", error, StringComparison.Ordinal);
        Assert.False(Directory.Exists(dir.File("out")) && Directory.EnumerateFiles(dir.File("out"), "*.parquet").Any(), "nothing is written");
    }

    [Fact]
    public async Task Materialize_loads_the_window_into_the_online_store_then_goes_on_incrementally()
    {
        using var dir = new TempDir("kiln-kind");
        var online = dir.File("online.db");
        var registry = dir.File("features.db");
        string Yaml(string window) => $$"""
            name: features
            tasks:
              load:
                kind: materialize
                repo: {{Features}}
                views: driver_hourly_stats
                registry: {{registry}}
                online_store: {{online}}
            {{window}}
            """;
        var run = await Pipelines.RunAsync(dir, Yaml("    start: 2024-05-01T00:00:00Z\n    end: 2024-05-01T09:30:00Z"));
        Assert.True(run.ExitCode == 0, run.ToString());
        var load = (await Pipelines.TasksAsync(dir, run))["load"];

        // Oracle: the drivers with a row in the window, and the latest row's trips_today for each (pandas).
        var expected = await Proc.PythonAsync($$"""
            import pandas as pd, sqlite3, json
            d = pd.read_csv("{{Path.Combine(Features, "data", "driver_hourly.csv")}}", parse_dates=["event_timestamp", "created"])
            w = d[(d.event_timestamp >= pd.Timestamp("2024-05-01T00:00:00Z")) & (d.event_timestamp <= pd.Timestamp("2024-05-01T09:30:00Z"))]
            latest = w.sort_values(["event_timestamp", "created"]).groupby("driver_id").tail(1)
            rows = sqlite3.connect("{{online}}").execute("select entity_key, payload from feature_online where view = 'driver_hourly_stats' order by entity_key").fetchall()
            print(len(latest), ",".join(str(i) for i in sorted(latest.driver_id)), ",".join(k for k, _ in rows))
            """);
        Assert.True(expected.ExitCode == 0, expected.ToString());
        var parts = expected.StdOut.Trim().Split(' ');
        Assert.Equal(parts[0], load.Output("written_driver_hourly_stats"));
        Assert.Equal(parts[0], load.Output("written"));
        Assert.Equal(parts[1], parts[2]); // the online store holds exactly those drivers
        Assert.Equal("driver_hourly_stats", load.Output("views"));

        // Incremental: from where the window ended (09:30) to 13:00 picks up the later rows only.
        var next = await Pipelines.RunAsync(dir, Yaml("    end: 2024-05-01T13:00:00Z"));
        Assert.True(next.ExitCode == 0, next.ToString());
        var inc = (await Pipelines.TasksAsync(dir, next))["load"];
        // Rows after 09:30 and up to 13:00: driver 1001 at 10:00 and driver 1002 at 12:00.
        Assert.Equal("2", inc.Output("rows_driver_hourly_stats"));
        var logs = await KilnCli.RunAsync(["pipeline", "logs", next.StdOut.Trim(), "load", "--db", dir.File("kiln.db")], dir.Path);
        Assert.Contains("2024-05-01T09:30:00", logs.StdOut, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Materialize_refuses_a_bad_time_when_loaded_and_a_missing_repository_at_run()
    {
        using var dir = new TempDir("kiln-kind");
        var file = dir.File("bad.yaml");
        await File.WriteAllTextAsync(file, """
            name: bad
            tasks:
              load:
                kind: materialize
                repo: features
                start: yesterday
                end: 2024-01-01T00:00:00Z
                views: {a: 1}
            """);
        var r = await KilnCli.RunAsync(["pipeline", "validate", file], dir.Path);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("bad.yaml:6:5: task 'load': 'start' 'yesterday' is not a time", r.StdErr, StringComparison.Ordinal);
        Assert.Contains("bad.yaml:8:5: task 'load': 'views' must be a list of names", r.StdErr, StringComparison.Ordinal);

        var run = await Pipelines.RunAsync(dir, """
            name: missing
            tasks:
              load:
                kind: materialize
                repo: no-such-repo
                online_store: online.db
            """);
        Assert.Equal(1, run.ExitCode);
        Assert.Contains("no-such-repo", (await Pipelines.TasksAsync(dir, run))["load"].Error(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Drift_check_reports_drift_as_kiln_drift_does_and_can_fail_or_skip_what_follows()
    {
        using var dir = new TempDir("kiln-kind");
        var drifted = await Pipelines.DriftedAsync(dir);
        string Check(string name, string current, string option) => $$$"""
              {{{name}}}:
                kind: drift_check
                model: {{{package.Directory}}}
                current: {{{current}}}
                {{{option}}}
              {{{name}}}_next:
                kind: shell
                depends_on: {{{name}}}
                command: echo "drifted {{ tasks.{{{name}}}.outputs.drifted_features }}"
            """;
        var run = await Pipelines.RunAsync(dir, $"""
            name: drift
            tasks:
            {Check("clean", TrainedPackage.Transactions, "on_no_drift: skip")}
            {Check("guard", drifted, "fail_on_drift: true")}
            {Check("branch", drifted, "on_drift: skip")}
            {Check("report", drifted, "report: " + dir.File("reports/drift.html"))}
            """);
        Assert.Equal(1, run.ExitCode); // the guard failed the run
        var tasks = await Pipelines.TasksAsync(dir, run);

        Assert.Equal("skipped", tasks["clean"].State());
        Assert.Contains("no dataset drift: 0/6 features drifted", tasks["clean"].Error(), StringComparison.Ordinal);
        Assert.Equal("skipped", tasks["clean_next"].State());
        Assert.Equal("failed", tasks["guard"].State());
        Assert.Contains("dataset drift: 3/6 features drifted", tasks["guard"].Error(), StringComparison.Ordinal);
        Assert.Equal("upstream_failed", tasks["guard_next"].State());
        Assert.Equal("skipped", tasks["branch"].State());
        Assert.Equal("skipped", tasks["branch_next"].State());

        var report = tasks["report"];
        Assert.Equal("succeeded", report.State());
        Assert.Equal("true", report.Output("dataset_drift"));
        Assert.Equal("0.5", report.Output("drift_share"));
        Assert.Equal(["amount", "customer_age", "distance_from_home_km"], report.Output("drifted_features").Split(',').Order(StringComparer.Ordinal));
        Assert.Equal($"drifted {report.Output("drifted_features")}", tasks["report_next"].Output("stdout"));
        Assert.Contains("<html", await File.ReadAllTextAsync(dir.File("reports/drift.html")), StringComparison.Ordinal);

        // The same verdict and scores as `kiln drift` on the same data.
        var cli = await KilnCli.RunAsync(["drift", "--model", package.Directory, "--current", drifted, "--json-out", dir.File("cli.json")], dir.Path);
        Assert.Equal(2, cli.ExitCode);
        using var mine = JsonDocument.Parse(await File.ReadAllTextAsync(report.Output("report_json")));
        using var theirs = JsonDocument.Parse(await File.ReadAllTextAsync(dir.File("cli.json")));
        Assert.Equal(theirs.RootElement.GetProperty("drifted_share").GetDouble(), mine.RootElement.GetProperty("drifted_share").GetDouble());
        Assert.Equal(
            Scores(theirs.RootElement), Scores(mine.RootElement));
        Assert.Equal(6, Scores(mine.RootElement).Count());
    }

    private static IEnumerable<(string?, double)> Scores(JsonElement report) => report.GetProperty("features").EnumerateArray()
        .Where(f => f.TryGetProperty("score", out _)).Select(f => (f.GetProperty("name").GetString(), f.GetProperty("score").GetDouble()));

    [Fact]
    public async Task Drift_check_reads_the_models_own_folder_of_a_prediction_log()
    {
        using var dir = new TempDir("kiln-kind");
        // kiln serve's prediction log layout (docs/serving.md), written as CSV: model=NAME/version=V/date=D/part-*.
        var log = dir.File("log");
        var fraud = Path.Combine(log, "model=fraud", "version=1", "date=2026-11-26");
        var other = Path.Combine(log, "model=churn", "version=3", "date=2026-11-26");
        Directory.CreateDirectory(fraud);
        Directory.CreateDirectory(other);
        var source = await File.ReadAllLinesAsync(TrainedPackage.Transactions);
        var header = source[0].Split(',');
        var lines = new List<string> { "request_id,timestamp,model,version,protocol,row," + string.Join(",", header[1..7].Select(h => "input_" + h)) + ",prediction,value,flags" };
        foreach (var (line, i) in source.Skip(1).Take(500).Select((l, i) => (l, i)))
            lines.Add($"r{i},2026-11-26T10:00:00Z,fraud,1,native,0,{string.Join(",", line.Split(',')[1..7])},0,0.1,");
        await File.WriteAllLinesAsync(Path.Combine(fraud, "part-1.csv"), lines);
        await File.WriteAllTextAsync(Path.Combine(other, "part-1.csv"), "request_id,version,input_tenure\nx,3,not-a-number\n");

        var run = await Pipelines.RunAsync(dir, $$"""
            name: log
            tasks:
              check:
                kind: drift_check
                model: {{package.Directory}}
                current: {{log}}
            """);
        Assert.True(run.ExitCode == 0, run.ToString());
        var check = (await Pipelines.TasksAsync(dir, run))["check"];
        Assert.Equal("500", check.Output("current_rows"));
        Assert.Equal("6", check.Output("features_tested")); // input_ columns read as the inputs, bookkeeping left out
        Assert.Equal("false", check.Output("dataset_drift"));

        Directory.Delete(Path.Combine(log, "model=fraud"), recursive: true);
        var missing = await Pipelines.RunAsync(dir, $$"""
            name: log
            tasks:
              check:
                kind: drift_check
                model: {{package.Directory}}
                current: {{log}}
            """);
        Assert.Equal(1, missing.ExitCode);
        Assert.Contains("is a prediction log without model fraud (it has churn)", (await Pipelines.TasksAsync(dir, missing))["check"].Error(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Drift_check_refuses_bad_settings_when_loaded_and_a_bad_model_at_run()
    {
        using var dir = new TempDir("kiln-kind");
        var file = dir.File("bad.yaml");
        await File.WriteAllTextAsync(file, """
            name: bad
            tasks:
              check:
                kind: drift_check
                model: m
                current: c.csv
                test: kolmogorov
                drift_share_threshold: 2
                on_drift: explode
                fail_on_drift: true
                columns:
                  age: psi:lots
            """);
        var r = await KilnCli.RunAsync(["pipeline", "validate", file], dir.Path);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("bad.yaml:7:5: task 'check': 'test' unknown test 'kolmogorov'", r.StdErr, StringComparison.Ordinal);
        Assert.Contains("bad.yaml:8:5: task 'check': 'drift_share_threshold' must be a number from 0 to 1", r.StdErr, StringComparison.Ordinal);
        Assert.Contains("bad.yaml:9:5: task 'check': 'on_drift' must be one of continue, fail, skip", r.StdErr, StringComparison.Ordinal);
        Assert.Contains("bad.yaml:10:5: task 'check': 'fail_on_drift' give either fail_on_drift or on_drift, not both", r.StdErr, StringComparison.Ordinal);
        Assert.Contains("bad.yaml:11:5: task 'check': 'columns' column 'age': threshold 'lots' is not a non-negative number", r.StdErr, StringComparison.Ordinal);

        var run = await Pipelines.RunAsync(dir, $$"""
            name: nomodel
            parameters:
              tracking_uri: {{dir.File("store")}}
            tasks:
              check:
                kind: drift_check
                model: models:/fraud@production
                current: {{TrainedPackage.Transactions}}
            """);
        Assert.Equal(1, run.ExitCode);
        Assert.Contains("'model' models:/fraud@production:", (await Pipelines.TasksAsync(dir, run))["check"].Error(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Every_example_pipeline_passes_the_load_time_checks()
    {
        var examples = Directory.GetFiles(Path.Combine(TestEnvironment.RepoRoot, "examples", "pipelines"), "*.yaml");
        Assert.True(examples.Length >= 4, string.Join(", ", examples));
        foreach (var example in examples)
        {
            var r = await KilnCli.RunAsync(["pipeline", "validate", example]);
            Assert.True(r.ExitCode == 0, $"{example}: {r}");
            Assert.Contains("ok: pipeline", r.StdErr, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task The_nightly_scoring_example_materializes_checks_and_scores_with_the_production_model()
    {
        using var dir = new TempDir("kiln-kind");
        var store = dir.File("store");
        // A production model to score with: register the trained package and point the alias at it.
        var promote = await Pipelines.RunAsync(dir, $$$"""
            name: promote
            parameters:
              tracking_uri: {{{store}}}
            tasks:
              register:
                kind: register
                model: fraud
                package: {{{package.Directory}}}
              promote:
                kind: set_alias
                depends_on: register
                model: fraud
                alias: production
                version: "{{ tasks.register.outputs.version }}"
            """);
        Assert.True(promote.ExitCode == 0, promote.ToString());

        var run = await KilnCli.RunAsync(["pipeline", "run", Path.Combine(TestEnvironment.RepoRoot, "examples", "pipelines", "nightly-scoring.yaml"),
            "--db", dir.File("kiln.db"), "--param", $"tracking_uri={store}", "--param", $"input={TrainedPackage.Transactions}", "--param", $"features={Features}"], dir.Path);
        Assert.True(run.ExitCode == 0, run.ToString());
        var tasks = await Pipelines.TasksAsync(dir, run);
        Assert.Equal("false", tasks["guard"].Output("dataset_drift"));
        Assert.Equal("1", tasks["guard"].Output("model_version"));
        Assert.Equal("8000", tasks["score"].Output("rows"));
        Assert.Equal("1", tasks["score"].Output("model_version"));
        Assert.StartsWith(dir.File(Path.Combine(".kiln", "scored")), tasks["score"].Output("output"), StringComparison.Ordinal);
        Assert.True(int.Parse(tasks["features"].Output("written"), CultureInfo.InvariantCulture) > 0);
    }
}
