namespace Kiln.Core.Tests;

public class DurationTests
{
    [Theory]
    [InlineData("250ms", 0.25)]
    [InlineData("30s", 30)]
    [InlineData("5m", 300)]
    [InlineData("2h", 7200)]
    [InlineData("1d", 86400)]
    [InlineData("1w", 604800)]
    [InlineData("90", 90)]
    [InlineData("0", 0)]
    public void Every_unit_and_a_bare_number_of_seconds(string text, double seconds) =>
        Assert.Equal(TimeSpan.FromSeconds(seconds), Duration.Parse(text, "--x"));

    [Theory]
    [InlineData("1.5h", 5400)]
    [InlineData("0.5s", 0.5)]
    [InlineData("2.5", 2.5)]
    [InlineData("1.5ms", 0.0015)]
    [InlineData(".5m", 30)]
    public void Decimals(string text, double seconds) =>
        Assert.Equal(TimeSpan.FromSeconds(seconds), Duration.Parse(text, "--x"));

    [Theory]
    [InlineData("1d12h", 129600)]
    [InlineData("1h30m", 5400)]
    [InlineData("2w3d", 1468800)]
    [InlineData("1m500ms", 60.5)]
    public void Compound_forms_the_feature_repository_always_accepted(string text, double seconds) =>
        Assert.Equal(TimeSpan.FromSeconds(seconds), Duration.Parse(text, "ttl"));

    [Theory]
    [InlineData(" 15m ", 900)]
    [InlineData("15M", 900)]
    [InlineData("7D", 604800)]
    [InlineData("01:30:00", 5400)]
    public void Forms_the_window_option_always_accepted(string text, double seconds) =>
        Assert.Equal(TimeSpan.FromSeconds(seconds), Duration.Parse(text, "--window"));

    [Theory]
    [InlineData("")]
    [InlineData("soon")]
    [InlineData("5y")]
    [InlineData("-5s")]
    [InlineData("1h30")]
    [InlineData("1..5s")]
    [InlineData("s")]
    [InlineData("5 s")]
    [InlineData("999999999999999w")]
    public void Bad_text_is_refused_naming_the_field_the_text_and_the_units(string text)
    {
        Assert.False(Duration.TryParse(text, out _));
        var e = Assert.Throws<KilnException>(() => Duration.Parse(text, "--request-timeout"));
        Assert.StartsWith($"--request-timeout: '{text}' is not a duration", e.Message, StringComparison.Ordinal);
        Assert.Contains("ms, s, m, h, d, w", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Theory]
    [InlineData("--request-timeout")]
    [InlineData("--poll-interval")]
    [InlineData("--log-roll")]
    public void Serve_duration_options_accept_days(string option) =>
        // kiln serve's ParseDuration is Duration.Parse(text, option); it once refused 1d.
        Assert.Equal(TimeSpan.FromDays(1), Duration.Parse("1d", option));

    [Fact]
    public void Null_is_refused() => Assert.False(Duration.TryParse(null, out _));

    [Theory]
    [InlineData(0, "0")]
    [InlineData(90, "1m30s")]
    [InlineData(129600, "1d12h")]
    public void Format_parses_back(double seconds, string text)
    {
        Assert.Equal(text, Duration.Format(TimeSpan.FromSeconds(seconds)));
        Assert.Equal(TimeSpan.FromSeconds(seconds), Duration.Parse(text, "ttl"));
    }
}
