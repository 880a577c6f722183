using Kiln.Pipelines.Definition;
using Kiln.Pipelines.Tasks;

namespace Kiln.Pipelines.Tests;

public class ValidationTests
{
    private static readonly TaskKindRegistry s_kinds = TaskKindRegistry.CreateDefault();

    private static PipelineValidationException Refused(string yaml) =>
        Assert.Throws<PipelineValidationException>(() => PipelineLoader.Load(yaml, s_kinds, "p.yaml"));

    [Fact]
    public void A_cycle_is_refused_naming_the_tasks_on_it_and_a_line()
    {
        var e = Refused("""
            name: loop
            tasks:
              start:
                kind: noop
              a:
                kind: noop
                depends_on: [start, c]
              b:
                kind: noop
                depends_on: a
              c:
                kind: noop
                depends_on: b
            """);
        var error = Assert.Single(e.Errors);
        Assert.Contains("cycle", error);
        Assert.Contains("a -> ", error);
        Assert.Contains("b -> ", error);
        Assert.Contains("c -> ", error);
        Assert.DoesNotContain("start ->", error);
        Assert.Matches(@"^p\.yaml:(5|8|11):3: ", error);
    }

    [Fact]
    public void An_unknown_dependency_is_refused_with_the_task_line_and_a_suggestion()
    {
        var e = Refused("""
            name: p
            tasks:
              ingest:
                kind: noop
              train:
                kind: noop
                depends_on: [ingset]
            """);
        Assert.Equal("p.yaml:5:3: task 'train' depends on unknown task 'ingset' (did you mean 'ingest'?)", Assert.Single(e.Errors));
    }

    [Fact]
    public void An_unknown_task_kind_is_refused_listing_the_known_ones()
    {
        var e = Refused("""
            name: p
            tasks:
              t:
                kind: trian
            """);
        var error = Assert.Single(e.Errors);
        Assert.StartsWith("p.yaml:3:3: task 't' has unknown kind 'trian'", error);
        Assert.Contains("shell", error);
    }

    [Fact]
    public void A_bad_cron_expression_is_refused_at_its_line()
    {
        var e = Refused("""
            name: p
            triggers:
              - cron: "61 * * * *"
                timezone: Europe/Paris
            tasks:
              t:
                kind: noop
            """);
        Assert.StartsWith("p.yaml:3:11: bad cron expression '61 * * * *'", Assert.Single(e.Errors));
    }

    [Fact]
    public void An_unknown_time_zone_and_missed_policy_are_refused()
    {
        var e = Refused("""
            name: p
            triggers:
              - cron: "0 3 * * *"
                timezone: Mars/Olympus
                missed: sometimes
            tasks:
              t:
                kind: noop
            """);
        Assert.Equal(2, e.Errors.Count);
        Assert.StartsWith("p.yaml:4:15: unknown time zone 'Mars/Olympus'", e.Errors[0]);
        Assert.StartsWith("p.yaml:5:13: missed must be 'skip' or 'catch_up'", e.Errors[1]);
    }

    [Fact]
    public void A_reference_to_an_undeclared_parameter_is_refused_at_the_config_line()
    {
        var e = Refused("""
            name: p
            parameters:
              day: "2024-01-01"
            tasks:
              t:
                kind: shell
                command: echo {{ params.dya }}
            """);
        Assert.Equal("p.yaml:7:5: task 't': 'command' refers to parameter 'dya' which is not declared under 'parameters:'", Assert.Single(e.Errors));
    }

    [Fact]
    public void A_reference_to_outputs_of_a_task_that_is_not_upstream_is_refused()
    {
        var e = Refused("""
            name: p
            tasks:
              a:
                kind: noop
              b:
                kind: shell
                command: echo {{ tasks.a.outputs.x }}
            """);
        Assert.Contains("task 'b': 'command' refers to the outputs of task 'a' but does not depend on it", Assert.Single(e.Errors));
    }

    [Fact]
    public void A_required_parameter_that_is_not_given_is_refused_when_the_run_starts()
    {
        var def = PipelineLoader.Load("""
            name: p
            parameters:
              model:
              day: today
            tasks:
              t:
                kind: shell
                command: echo {{ params.model }} {{ params.day }}
            """, s_kinds, "p.yaml");
        var e = Assert.Throws<PipelineValidationException>(() => def.ResolveParameters(new Dictionary<string, string>()));
        Assert.Equal("p.yaml:3:3: parameter 'model' has no default and was not given (use --param model=VALUE)", Assert.Single(e.Errors));
        var ok = def.ResolveParameters(new Dictionary<string, string> { ["model"] = "m" });
        Assert.Equal("m", ok["model"]);
        Assert.Equal("today", ok["day"]);
        var unknown = Assert.Throws<PipelineValidationException>(() => def.ResolveParameters(new Dictionary<string, string> { ["model"] = "m", ["dya"] = "x" }));
        Assert.Contains("unknown parameter 'dya'", unknown.Message);
    }

    [Fact]
    public void Invalid_yaml_names_the_line()
    {
        var e = Refused("name: p\ntasks:\n  t:\n    kind: noop\n   bad: [\n");
        Assert.Matches(@"^p\.yaml:\d+:\d+: invalid YAML: ", Assert.Single(e.Errors));
    }

    [Theory]
    [InlineData("name: p\ntasks: {}\n", "p.yaml:2:8: the pipeline has no tasks")]
    [InlineData("# no tasks yet\nname: p\n", "p.yaml:2:1: the pipeline has no tasks")]
    public void A_pipeline_without_tasks_is_refused_where_they_belong(string yaml, string expected) =>
        Assert.Equal(expected, Assert.Single(Refused(yaml).Errors));

    [Fact]
    public void Every_problem_is_reported_at_once()
    {
        var e = Refused("""
            name: p
            tasks:
              a:
                kind: nope
              b:
                kind: shell
                depends_on: [zzz]
              c:
                depends_on: [a]
            """);
        Assert.Equal(4, e.Errors.Count);
        Assert.Contains(e.Errors, x => x.StartsWith("p.yaml:8:3: task 'c' has no 'kind'", StringComparison.Ordinal));
        Assert.Contains(e.Errors, x => x.StartsWith("p.yaml:3:3: task 'a' has unknown kind 'nope'", StringComparison.Ordinal));
        Assert.Contains(e.Errors, x => x.StartsWith("p.yaml:5:3: task 'b': kind shell needs 'command'", StringComparison.Ordinal));
        Assert.Contains(e.Errors, x => x.StartsWith("p.yaml:5:3: task 'b' depends on unknown task 'zzz'", StringComparison.Ordinal));
    }

    [Fact]
    public void The_builder_applies_the_same_checks()
    {
        var e = Assert.Throws<PipelineValidationException>(() => new PipelineBuilder("code")
            .Step("x", _ => Outputs.None, dependsOn: ["y"])
            .Step("y", _ => Outputs.None, dependsOn: ["x"])
            .Schedule("not a cron")
            .Build(s_kinds));
        Assert.Contains(e.Errors, x => x.Contains("cycle", StringComparison.Ordinal) && x.Contains("x -> y", StringComparison.Ordinal) || x.Contains("y -> x", StringComparison.Ordinal));
        Assert.Contains(e.Errors, x => x.Contains("bad cron expression 'not a cron'", StringComparison.Ordinal));
    }

    [Fact]
    public void Retry_delays_grow_exponentially_up_to_the_cap_within_the_jitter()
    {
        var p = new RetryPolicy(5, TimeSpan.FromSeconds(1), 2, TimeSpan.FromSeconds(5), 0.25);
        // Without jitter (random 0.5 is the midpoint): 1s, 2s, 4s, then capped at 5s.
        Assert.Equal(TimeSpan.FromSeconds(1), p.DelayAfter(1, 0.5));
        Assert.Equal(TimeSpan.FromSeconds(2), p.DelayAfter(2, 0.5));
        Assert.Equal(TimeSpan.FromSeconds(4), p.DelayAfter(3, 0.5));
        Assert.Equal(TimeSpan.FromSeconds(5), p.DelayAfter(4, 0.5));
        // Jitter spreads by ±25%: 2s becomes 1.5s..2.5s.
        Assert.Equal(TimeSpan.FromSeconds(1.5), p.DelayAfter(2, 0.0));
        Assert.Equal(TimeSpan.FromSeconds(2.5), p.DelayAfter(2, 1.0));
    }

    [Fact]
    public void Yaml_retries_timeout_cache_and_typed_config_are_read()
    {
        var def = PipelineLoader.Load("""
            name: p
            tasks:
              t:
                kind: noop
                retries: { count: 3, delay: 500ms, backoff: 3, max_delay: 1m, jitter: 0.1 }
                timeout: 2m
                cache: true
                outputs: { a: 1, b: "1", c: true }
            """, s_kinds, "p.yaml");
        var t = def.Tasks[0];
        Assert.Equal(new RetryPolicy(4, TimeSpan.FromMilliseconds(500), 3, TimeSpan.FromMinutes(1), 0.1), t.Retry);
        Assert.Equal(TimeSpan.FromMinutes(2), t.Timeout);
        Assert.True(t.Cache);
        Assert.Equal("{\"a\":1,\"b\":\"1\",\"c\":true}", t.Config["outputs"]!.ToJsonString());
    }
}
