using Kiln.Monitoring.Alerts;
using Kiln.Monitoring.Continuous;

namespace Kiln.Monitoring.Tests.Alerts;

/// <summary>A clock the test moves by hand.</summary>
internal sealed class ManualClock(DateTimeOffset start) : TimeProvider
{
    public DateTimeOffset Now { get; private set; } = start;

    public override DateTimeOffset GetUtcNow() => Now;

    public void Advance(TimeSpan by) => Now += by;
}

// The alert state machine on a manual clock: one Observe call is one evaluation at the clock's time.
public sealed class AlertEngineTests
{
    private static readonly DateTimeOffset T0 = new(2026, 11, 26, 8, 0, 0, TimeSpan.Zero);

    private static AlertRule Rule(TimeSpan forTime, TimeSpan clearFor, NoDataPolicy noData = NoDataPolicy.Keep, AlertCondition condition = AlertCondition.Above,
        double threshold = 0.1) => new()
        {
            Name = "feature_drift",
            Metric = "kiln_monitor_drift_score",
            Labels = new Dictionary<string, string> { ["model"] = "fraud" },
            Condition = condition,
            Threshold = threshold,
            For = forTime,
            ClearFor = clearFor,
            NoData = noData,
        };

    private static Measurement Score(double value, string feature = "amount", string model = "fraud") =>
        Measurement.Of("kiln_monitor_drift_score", value, null, ("model", model), ("feature", feature), ("test", "psi"));

    private static List<string> Steps(IEnumerable<AlertTransition> transitions) => [.. transitions.Select(t => $"{t.From.Name()}->{t.To.Name()}")];

    [Fact]
    public void Fires_only_once_the_condition_has_held_for_the_for_duration()
    {
        var clock = new ManualClock(T0);
        var engine = new AlertEngine([Rule(TimeSpan.FromMinutes(5), TimeSpan.FromMinutes(10))], clock);

        Assert.Equal(["inactive->pending"], Steps(engine.Observe([Score(0.3)])));
        var log = new List<AlertTransition>();
        for (var minute = 1; minute <= 4; minute++)
        {
            clock.Advance(TimeSpan.FromMinutes(1));
            log.AddRange(engine.Observe([Score(0.3)]));
        }
        Assert.Empty(log); // 4 minutes: still pending
        Assert.Equal(AlertState.Pending, engine.All().Single().State);

        clock.Advance(TimeSpan.FromMinutes(1));
        var fired = engine.Observe([Score(0.31)]).Single();
        Assert.Equal((AlertState.Pending, AlertState.Firing), (fired.From, fired.To));
        Assert.Equal(T0.AddMinutes(5), fired.StartedAt);
        Assert.Equal(0.31, fired.Value);
        Assert.Equal("amount", fired.Labels["feature"]);
        Assert.True(WebhookSink.IsNotified(fired));
    }

    [Fact]
    public void A_condition_that_clears_before_for_never_fires_and_restarts_the_timer()
    {
        var clock = new ManualClock(T0);
        var engine = new AlertEngine([Rule(TimeSpan.FromMinutes(5), TimeSpan.Zero)], clock);
        var all = new List<AlertTransition>();
        // Above for 4 minutes, clear once, above again for 4 minutes: 8 of the 9 minutes above, but never 5 in a row.
        double[] values = [0.5, 0.5, 0.5, 0.5, 0.5, 0.05, 0.5, 0.5, 0.5, 0.5, 0.5];
        foreach (var v in values)
        {
            all.AddRange(engine.Observe([Score(v)]));
            clock.Advance(TimeSpan.FromMinutes(1));
        }
        Assert.DoesNotContain(all, t => t.To == AlertState.Firing);
        Assert.Equal(["inactive->pending", "pending->inactive", "inactive->pending"], Steps(all));
        // The fifth minute of the second streak fires.
        Assert.Equal(["pending->firing"], Steps(engine.Observe([Score(0.5)])));
    }

    [Fact]
    public void A_flapping_value_while_firing_does_not_resolve_or_notify_again_and_resolves_after_clear_for()
    {
        var clock = new ManualClock(T0);
        var engine = new AlertEngine([Rule(TimeSpan.Zero, TimeSpan.FromMinutes(10))], clock);
        var all = new List<AlertTransition>(engine.Observe([Score(0.5)]));
        Assert.Equal(["inactive->pending", "pending->firing"], Steps(all)); // for 0: fires at once

        // Clear for 3 minutes, above again, clear: each clear streak is shorter than clear_for.
        double[] flapping = [0.01, 0.01, 0.01, 0.5, 0.02, 0.02, 0.5];
        var during = new List<AlertTransition>();
        foreach (var v in flapping)
        {
            clock.Advance(TimeSpan.FromMinutes(1));
            during.AddRange(engine.Observe([Score(v)]));
        }
        Assert.DoesNotContain(during, t => t.To == AlertState.Resolved);
        Assert.DoesNotContain(during, WebhookSink.IsNotified); // nobody is paged twice
        Assert.Equal(AlertState.Firing, engine.All().Single().State);

        // Now clear for good: resolving at once, resolved 10 minutes later (not 9).
        var resolving = new List<AlertTransition>();
        for (var minute = 0; minute <= 9; minute++)
        {
            clock.Advance(TimeSpan.FromMinutes(1));
            resolving.AddRange(engine.Observe([Score(0.01)]));
        }
        Assert.Equal(["firing->resolving"], Steps(resolving));
        clock.Advance(TimeSpan.FromMinutes(1));
        var resolved = engine.Observe([Score(0.01)]).Single();
        Assert.Equal((AlertState.Resolving, AlertState.Resolved), (resolved.From, resolved.To));
        Assert.Equal(clock.Now, resolved.ResolvedAt);
        Assert.Equal(T0, resolved.StartedAt);
        Assert.True(WebhookSink.IsNotified(resolved));
        Assert.Empty(engine.Active());
    }

    [Fact]
    public void Missing_data_keeps_the_state_by_default_and_the_gap_does_not_break_the_for_streak()
    {
        var clock = new ManualClock(T0);
        var engine = new AlertEngine([Rule(TimeSpan.FromMinutes(5), TimeSpan.FromMinutes(5))], clock);
        engine.Observe([Score(0.5)]);
        var gap = new List<AlertTransition>();
        for (var i = 0; i < 3; i++)
        {
            clock.Advance(TimeSpan.FromMinutes(1));
            gap.AddRange(engine.Observe([])); // the window had no rows: no drift series
            clock.Advance(TimeSpan.FromMinutes(1));
            gap.AddRange(engine.Observe([Score(double.NaN)])); // NaN is missing too
        }
        Assert.Empty(gap);
        var instance = engine.All().Single();
        Assert.Equal(AlertState.Pending, instance.State);
        Assert.True(instance.NoData);
        // Data is back and still above: 6 minutes since the streak began, so it fires.
        Assert.Equal(["pending->firing"], Steps(engine.Observe([Score(0.5)])));
        // A firing alert with no data stays firing (no resolved notification from silence).
        clock.Advance(TimeSpan.FromHours(2));
        Assert.Empty(engine.Observe([]));
        Assert.Equal(AlertState.Firing, engine.Active().Single().State);
    }

    [Fact]
    public void Missing_data_as_ok_resolves_and_as_alerting_fires_a_rule_that_never_had_data()
    {
        var clock = new ManualClock(T0);
        var ok = new AlertEngine([Rule(TimeSpan.Zero, TimeSpan.FromMinutes(2), NoDataPolicy.Ok)], clock);
        ok.Observe([Score(0.5)]);
        clock.Advance(TimeSpan.FromMinutes(1));
        Assert.Equal(["firing->resolving"], Steps(ok.Observe([])));
        clock.Advance(TimeSpan.FromMinutes(2));
        var resolved = ok.Observe([]).Single();
        Assert.Equal(AlertState.Resolved, resolved.To);
        Assert.True(resolved.NoData);
        Assert.Empty(ok.All()); // forgotten once resolved without data

        var alerting = new AlertEngine([Rule(TimeSpan.FromMinutes(3), TimeSpan.Zero, NoDataPolicy.Alerting)], clock);
        Assert.Equal(["inactive->pending"], Steps(alerting.Observe([])));
        clock.Advance(TimeSpan.FromMinutes(3));
        var fired = alerting.Observe([]).Single();
        Assert.Equal(AlertState.Firing, fired.To);
        Assert.Equal("fraud", fired.Model); // the rule's own labels stand for the series
        Assert.True(fired.NoData);
        Assert.Null(WebhookPayload.From(fired, null).Value);
    }

    [Fact]
    public void Each_matching_series_is_its_own_alert_and_other_models_do_not_match()
    {
        var clock = new ManualClock(T0);
        var engine = new AlertEngine([Rule(TimeSpan.Zero, TimeSpan.Zero)], clock);
        var t = engine.Observe([Score(0.5, "amount"), Score(0.01, "hour"), Score(0.9, "amount", model: "spend")]);
        var fired = t.Where(x => x.To == AlertState.Firing).ToList();
        Assert.Single(fired);
        Assert.Equal("amount", fired[0].Labels["feature"]);
        Assert.Equal("fraud", fired[0].Labels["model"]);
        // hour drifts later: a second alert, the first keeps firing
        clock.Advance(TimeSpan.FromMinutes(1));
        var next = engine.Observe([Score(0.5, "amount"), Score(0.2, "hour")]);
        Assert.Equal(["inactive->pending", "pending->firing"], Steps(next));
        Assert.Equal(2, engine.Active().Count);
        Assert.NotEqual(engine.Active()[0].SeriesKey, engine.Active()[1].SeriesKey);
    }

    [Theory]
    [InlineData(AlertCondition.Above, 0.1, false)]
    [InlineData(AlertCondition.AboveOrEqual, 0.1, true)]
    [InlineData(AlertCondition.Below, 0.1, false)]
    [InlineData(AlertCondition.BelowOrEqual, 0.1, true)]
    [InlineData(AlertCondition.Below, 0.05, false)]
    [InlineData(AlertCondition.Below, 0.2, true)]
    public void Conditions_compare_with_the_threshold_as_named(AlertCondition condition, double threshold, bool holdsAtPointOne)
    {
        var rule = Rule(TimeSpan.Zero, TimeSpan.Zero, condition: condition, threshold: threshold);
        Assert.Equal(holdsAtPointOne, rule.Holds(0.1));
        Assert.False(rule.Holds(double.NaN));
    }

    [Fact]
    public void Rule_names_must_be_unique()
    {
        Assert.Throws<ArgumentException>(() => new AlertEngine([Rule(TimeSpan.Zero, TimeSpan.Zero), Rule(TimeSpan.Zero, TimeSpan.Zero)]));
    }
}
