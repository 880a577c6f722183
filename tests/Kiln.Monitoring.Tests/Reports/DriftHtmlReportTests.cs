using System.Text.RegularExpressions;
using Kiln.Core.Data;
using Kiln.Core.Packaging;
using Kiln.Core.Profiling;
using Kiln.Monitoring.Drift;
using Kiln.Monitoring.Reports;

namespace Kiln.Monitoring.Tests.Reports;

public sealed partial class DriftHtmlReportTests
{
    [GeneratedRegex("<text class=\"tick\"[^>]*>([^<]*)</text>")]
    private static partial Regex TickText();

    private static DataTable Amounts(int rows, double max)
    {
        var values = new double[rows];
        for (var i = 0; i < rows; i++) values[i] = max * i / (rows - 1);
        return new DataTable(rows).Add(new NumericColumn("amount", values));
    }

    [Fact]
    public void Value_axis_shows_round_ticks_without_exponents()
    {
        var reference = DatasetProfile.Build(Amounts(500, 10_430));
        var report = DriftCalculator.Compare(reference, Amounts(400, 10_430));
        var html = DriftHtmlReport.Render(report, "ticks");

        var ticks = TickText().Matches(html).Select(m => m.Groups[1].Value).ToList();
        Assert.InRange(ticks.Count, 4, 6);
        Assert.Equal(["0", "2,500", "5,000", "7,500", "10,000"], ticks);
        Assert.DoesNotContain("E+", html, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(0, 10_430, new[] { 0.0, 2500, 5000, 7500, 10000 })]
    [InlineData(0, 1, new[] { 0.0, 0.25, 0.5, 0.75, 1 })]
    [InlineData(3.2, 97.5, new[] { 20.0, 40, 60, 80 })]
    [InlineData(-5, 5, new[] { -5.0, -2.5, 0, 2.5, 5 })]
    public void Nice_ticks_step_by_1_2_2point5_or_5_times_a_power_of_ten(double min, double max, double[] expected) =>
        Assert.Equal(expected, AxisTicks.Nice(min, max));

    [Fact]
    public void Labels_are_compact_and_share_one_unit()
    {
        Assert.Equal(["0", "0.25", "0.5", "0.75", "1"], AxisTicks.Labels(AxisTicks.Nice(0, 1)));
        Assert.Equal(["0", "2,500", "5,000", "7,500", "10,000"], AxisTicks.Labels(AxisTicks.Nice(0, 10_430)));
        Assert.Equal(["0", "100k", "200k", "300k", "400k", "500k"], AxisTicks.Labels(AxisTicks.Nice(0, 500_000)));
        Assert.Equal(["0", "0.25M", "0.5M", "0.75M", "1M"], AxisTicks.Labels(AxisTicks.Nice(0, 1_000_000)));
        Assert.Equal("10,430", AxisTicks.Compact(10_430));
        Assert.Equal("123.5k", AxisTicks.Compact(123_456));
        Assert.Equal("0.25", AxisTicks.Compact(0.25));
    }

    [Fact]
    public void Output_probability_column_is_labelled_numeric()
    {
        var outputs = new DataTable(3)
            .Add(new TextColumn("prediction", ["fraud", "legit", "legit"]))
            .Add(new NumericColumn("probability", [0.9, 0.1, 0.2]));
        var profile = new PackageProfile { Inputs = DatasetProfile.Build(Amounts(50, 100)), Outputs = DatasetProfile.Build(outputs) };
        Assert.Equal(ColumnKind.Numeric, OutputColumns.KindOf(profile, null, "probability"));
        Assert.Equal(ColumnKind.Categorical, OutputColumns.KindOf(profile, null, "prediction"));
        Assert.Null(OutputColumns.KindOf(profile, null, "amount"));

        var report = DriftCalculator.Compare(profile.Inputs, Amounts(40, 100));
        report.AddColumnNotInReference("probability", OutputColumns.KindOf(profile, null, "probability")!.Value);
        var html = DriftHtmlReport.Render(report, "kinds");
        Assert.Contains("probability</span> <span class=\"muted\">numeric</span>", html, StringComparison.Ordinal);
        Assert.DoesNotContain("probability</span> <span class=\"muted\">categorical", html, StringComparison.Ordinal);
    }
}
