using Kiln.Core.Data;
using Kiln.Core.Profiling;
using Kiln.Monitoring.Drift;
using Kiln.Monitoring.Statistics;
using Kiln.Monitoring.Tests.Statistics;

namespace Kiln.Monitoring.Tests.Drift;

public sealed class DriftCalculatorTests
{
    private static double Normal(Random rng, double mean, double sd)
    {
        var u1 = 1.0 - rng.NextDouble();
        return mean + sd * Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * rng.NextDouble());
    }

    private static DataTable Table(Random rng, int rows, double shift, string[] colors, double pYes)
    {
        var x = new double[rows];
        var color = new string?[rows];
        var flag = new string?[rows];
        for (var i = 0; i < rows; i++)
        {
            x[i] = Normal(rng, shift, 1);
            color[i] = colors[rng.Next(colors.Length)];
            flag[i] = rng.NextDouble() < pYes ? "yes" : "no";
        }
        return new DataTable(rows).Add(new NumericColumn("x", x)).Add(new TextColumn("color", color)).Add(new TextColumn("flag", flag));
    }

    private static FeatureDrift Feature(DriftReport r, string name) => r.Features.Single(f => f.Name == name);

    [Fact]
    public async Task Small_reference_uses_ks_chisquare_and_z_and_matches_scipy_on_the_same_data()
    {
        var rng = new Random(1);
        var referenceTable = Table(rng, 800, 0, ["red", "green", "blue"], 0.3);
        var currentTable = Table(rng, 600, 0.25, ["red", "green", "blue", "green"], 0.4);
        var reference = DatasetProfile.Build(referenceTable);
        var report = DriftCalculator.Compare(reference, currentTable);

        var x = Feature(report, "x");
        var color = Feature(report, "color");
        var flag = Feature(report, "flag");
        Assert.Equal(("ks", "chisquare", "z"), (x.Test, color.Test, flag.Test));
        Assert.Equal("exact", x.Method);

        var data = new
        {
            ref_x = ((NumericColumn)referenceTable["x"]).Values,
            cur_x = ((NumericColumn)currentTable["x"]).Values,
            ref_color = ((TextColumn)referenceTable["color"]).Values,
            cur_color = ((TextColumn)currentTable["color"]).Values,
            ref_flag = ((TextColumn)referenceTable["flag"]).Values,
            cur_flag = ((TextColumn)currentTable["flag"]).Values,
        };
        var expected = await ScipyOracle.RunAsync(data, """
            from collections import Counter
            ks = stats.ks_2samp(data['ref_x'], data['cur_x'])
            # Evidently's chi-square: keys from both sides, expected = reference counts * len(cur)/len(ref)
            rc, cc = Counter(data['ref_color']), Counter(data['cur_color'])
            keys = sorted(set(rc) | set(cc))
            k = len(data['cur_color']) / len(data['ref_color'])
            chi = stats.chisquare([cc[key] for key in keys], [rc[key] * k for key in keys])
            # Evidently's z-test: first sorted key -> 0, else 1
            keys = sorted(set(data['ref_flag']) | set(data['cur_flag']))
            a = np.array([0 if v == keys[0] else 1 for v in data['ref_flag']]); b = np.array([0 if v == keys[0] else 1 for v in data['cur_flag']])
            p1, p2 = a.mean(), b.mean(); P = (a.sum() + b.sum()) / (len(a) + len(b))
            z = (p1 - p2) / np.sqrt(P * (1 - P) * (1 / len(a) + 1 / len(b)))
            print(json.dumps([ks.statistic, ks.pvalue, chi.statistic, chi.pvalue, z, 2 * (1 - stats.norm.cdf(abs(z)))]))
            """);
        ScipyOracle.Close(expected[0].GetDouble(), x.Statistic!.Value, 1e-12, "ks statistic");
        ScipyOracle.Close(expected[1].GetDouble(), x.PValue!.Value, 1e-6, "ks p-value");
        ScipyOracle.Close(expected[2].GetDouble(), color.Statistic!.Value, 1e-9, "chi-square statistic");
        ScipyOracle.Close(expected[3].GetDouble(), color.PValue!.Value, 1e-6, "chi-square p-value");
        ScipyOracle.Close(expected[4].GetDouble(), flag.Statistic!.Value, 1e-9, "z");
        ScipyOracle.Close(expected[5].GetDouble(), flag.PValue!.Value, 1e-6, "z p-value");
        Assert.True(x.Drifted); // a 0.25 sd shift with 800 vs 600 rows
        Assert.Equal(x.PValue < 0.05, x.Drifted);
        Assert.Equal(0.05, x.Threshold);
    }

    [Fact]
    public async Task Large_reference_uses_normed_wasserstein_and_jensen_shannon()
    {
        var rng = new Random(2);
        var referenceTable = Table(rng, 5000, 0, ["a", "b", "c", "d"], 0.5);
        var currentTable = Table(rng, 3000, 0.5, ["a", "b", "c", "d", "d"], 0.5);
        var reference = DatasetProfile.Build(referenceTable);
        var report = DriftCalculator.Compare(reference, currentTable);
        var x = Feature(report, "x");
        var color = Feature(report, "color");
        Assert.Equal("wasserstein", x.Test);
        Assert.Equal("jensenshannon", color.Test);
        Assert.Equal(0.1, x.Threshold);

        // The reference is summarized: Wasserstein uses its bottom-k sample and its exact population std.
        var data = new
        {
            ref_sample = reference.Find("x")!.Numeric!.Sample.SortedValues(),
            ref_x = ((NumericColumn)referenceTable["x"]).Values,
            cur_x = ((NumericColumn)currentTable["x"]).Values,
            ref_color = ((TextColumn)referenceTable["color"]).Values,
            cur_color = ((TextColumn)currentTable["color"]).Values,
        };
        var expected = await ScipyOracle.RunAsync(data, """
            from collections import Counter
            w = stats.wasserstein_distance(data['ref_sample'], data['cur_x']) / max(np.std(data['ref_x']), 0.001)
            rc, cc = Counter(data['ref_color']), Counter(data['cur_color'])
            keys = sorted(set(rc) | set(cc))
            js = distance.jensenshannon([rc[k] / len(data['ref_color']) for k in keys], [cc[k] / len(data['cur_color']) for k in keys])
            print(json.dumps([w, js]))
            """);
        ScipyOracle.Close(expected[0].GetDouble(), x.Score!.Value, 1e-9, "normed wasserstein");
        ScipyOracle.Close(expected[1].GetDouble(), color.Score!.Value, 1e-9, "jensen-shannon");
        Assert.True(x.Drifted); // half a standard deviation
        Assert.True(color.Drifted);
        Assert.True(report.DatasetDrift);
    }

    [Fact]
    public void Default_test_selection_follows_evidently()
    {
        Assert.Equal(StatTest.Ks, StatTests.Default(ColumnKind.Numeric, 1000, 6));
        Assert.Equal(StatTest.ChiSquare, StatTests.Default(ColumnKind.Numeric, 1000, 5));
        Assert.Equal(StatTest.Z, StatTests.Default(ColumnKind.Numeric, 1000, 2));
        Assert.Equal(StatTest.ChiSquare, StatTests.Default(ColumnKind.Categorical, 10, 3));
        Assert.Equal(StatTest.Z, StatTests.Default(ColumnKind.Categorical, 10, 2));
        Assert.Equal(StatTest.Wasserstein, StatTests.Default(ColumnKind.Numeric, 1001, 6));
        Assert.Equal(StatTest.JensenShannon, StatTests.Default(ColumnKind.Numeric, 1001, 5));
        Assert.Equal(StatTest.JensenShannon, StatTests.Default(ColumnKind.Categorical, 1001, 2));
    }

    [Fact]
    public void Low_cardinality_numbers_are_tested_on_their_value_counts()
    {
        var rng = new Random(3);
        var r = new double[400];
        var c = new double[300];
        for (var i = 0; i < r.Length; i++) r[i] = rng.Next(3);
        for (var i = 0; i < c.Length; i++) c[i] = rng.Next(3);
        var reference = DatasetProfile.Build(new DataTable(r.Length).Add(new NumericColumn("k", r)));
        var report = DriftCalculator.Compare(reference, new DataTable(c.Length).Add(new NumericColumn("k", c)));
        var k = Feature(report, "k");
        Assert.Equal("chisquare", k.Test);
        Assert.Equal(["0", "1", "2"], k.Histogram!.Labels);
        var rc = new double[3];
        var cc = new double[3];
        foreach (var v in r) rc[(int)v]++;
        foreach (var v in c) cc[(int)v]++;
        Assert.Equal(ChiSquare.Test(rc, cc).PValue, k.PValue!.Value, 1e-12);
    }

    [Fact]
    public void Profile_against_profile_equals_profile_against_data_and_merging_partial_profiles_changes_nothing()
    {
        var rng = new Random(4);
        var reference = DatasetProfile.Build(Table(rng, 900, 0, ["a", "b", "c"], 0.5));
        var current = Table(rng, 1500, 0.1, ["a", "b", "c"], 0.6);
        var fromData = DriftCalculator.Compare(reference, current);

        // Two replicas each profile half of the window, with different seeds; their merge is the whole window.
        var rows = Enumerable.Range(0, current.RowCount).ToArray();
        var partA = reference.NewEmptyLike(seed: 101);
        partA.Add(current.Take(rows.AsSpan(0, 700)));
        var partB = reference.NewEmptyLike(seed: 202);
        partB.Add(current.Take(rows.AsSpan(700)));
        partA.Merge(partB);
        var fromProfile = DriftCalculator.Compare(reference, partA);

        foreach (var name in new[] { "x", "color", "flag" })
        {
            var d = Feature(fromData, name);
            var p = Feature(fromProfile, name);
            Assert.Equal(d.Test, p.Test);
            if (name == "x")
            {
                // KS on the profile uses the current bottom-k sample (2048 >= 1500 rows: the whole window).
                Assert.Equal(d.Statistic!.Value, p.Statistic!.Value, 1e-12);
                Assert.Equal(d.PValue!.Value, p.PValue!.Value, 1e-12);
                Assert.Equal(d.Quality.OutOfRangeCount, p.Quality.OutOfRangeCount);
                Assert.Equal(d.Histogram!.Current, p.Histogram!.Current);
            }
            else
            {
                Assert.Equal(d.Score!.Value, p.Score!.Value, 1e-12);
            }
            Assert.Equal(d.Drifted, p.Drifted);
        }
        Assert.Equal(fromData.DatasetDrift, fromProfile.DatasetDrift);
        Assert.Equal(1500, fromProfile.CurrentRows);
    }

    [Fact]
    public void Dataset_drift_follows_the_share_of_drifted_features()
    {
        var rng = new Random(5);
        var reference = DatasetProfile.Build(Table(rng, 1000, 0, ["a", "b", "c"], 0.5));
        // x shifts by 2 sd, flag's share jumps: two of three features drift.
        var current = Table(rng, 1000, 2, ["a", "b", "c"], 0.9);
        var report = DriftCalculator.Compare(reference, current);
        Assert.Equal(3, report.FeaturesTested);
        Assert.Equal(2, report.FeaturesDrifted);
        Assert.True(report.DatasetDrift);
        var strict = DriftCalculator.Compare(reference, current, new DriftOptions { DriftShare = 0.7 });
        Assert.False(strict.DatasetDrift);
        Assert.Equal(2.0 / 3, strict.DriftedShare, 1e-12);
    }

    [Fact]
    public void Per_column_tests_and_thresholds_override_the_defaults()
    {
        var rng = new Random(6);
        var reference = DatasetProfile.Build(Table(rng, 1000, 0, ["a", "b", "c"], 0.5));
        var current = Table(rng, 1000, 0.3, ["a", "b", "c"], 0.5);
        var options = new DriftOptions
        {
            Columns = new Dictionary<string, ColumnDriftOptions>
            {
                ["x"] = new() { Test = StatTest.Psi, Threshold = 0.5 },
                ["color"] = new() { Test = StatTest.Ks }, // not applicable to labels: falls back with a warning
                ["flag"] = new() { Test = StatTest.Hellinger },
            },
        };
        var report = DriftCalculator.Compare(reference, current, options);
        var x = Feature(report, "x");
        Assert.Equal("psi", x.Test);
        Assert.Equal(0.5, x.Threshold);
        Assert.NotNull(x.PsiBand);
        Assert.Equal(x.Score >= 0.5, x.Drifted);
        // PSI on the reference's 20 quantile bins plus the below/above bins, as Distances.Psi computes it.
        var refBins = reference.Find("x")!.Numeric!.Histogram;
        Assert.Equal(refBins.Counts.Length + 2, x.Histogram!.Reference.Length);
        var color = Feature(report, "color");
        Assert.Contains(DriftWarnings.TestNotApplicable, color.Warnings);
        Assert.Equal("chisquare", color.Test);
        Assert.Equal("hellinger", Feature(report, "flag").Test);
    }

    [Fact]
    public void Quality_reports_missing_out_of_range_and_unseen_categories()
    {
        var reference = DatasetProfile.Build(new DataTable(6)
            .Add(new NumericColumn("x", [1, 2, 3, 4, 5, 6]))
            .Add(new TextColumn("c", ["a", "b", "a", "b", "a", "b"])));
        var current = new DataTable(8)
            .Add(new NumericColumn("x", [0, 2, 3, double.NaN, 7, double.PositiveInfinity, 4, 5]))
            .Add(new TextColumn("c", ["a", "b", "z", null, "y", "z", "a", "b"]));
        var report = DriftCalculator.Compare(reference, current);
        var x = Feature(report, "x");
        Assert.Equal(6, x.Quality.CurrentCount);
        Assert.Equal(1, x.Quality.CurrentMissing);
        Assert.Equal(1, x.Quality.CurrentInfinite);
        Assert.Equal(1.0 / 8, x.Quality.MissingRate);
        Assert.Equal(2, x.Quality.OutOfRangeCount); // 0 and 7
        Assert.Equal(2.0 / 6, x.Quality.OutOfRangeShare);
        Assert.Contains(DriftWarnings.InfiniteValues, x.Warnings);
        var c = Feature(report, "c");
        Assert.Equal(2, c.Quality.UnseenCategories);
        Assert.Equal(3.0 / 7, c.Quality.UnseenShare!.Value, 1e-12);
        Assert.Equal(["y", "z"], c.Quality.UnseenExamples);
        Assert.Contains(DriftWarnings.UnseenCategories, c.Warnings);
        // Chi-square (small reference, 4 categories): unseen categories have expected count 0, so p = 0.
        Assert.Equal("chisquare", c.Test);
        Assert.Equal(0.0, c.PValue);
        Assert.True(c.Drifted);
    }

    [Fact]
    public void Empty_window_gives_a_defined_report_with_warnings()
    {
        var reference = DatasetProfile.Build(new DataTable(3).Add(new NumericColumn("x", [1, 2, 3])).Add(new TextColumn("c", ["a", "b", "a"])));
        var report = DriftCalculator.Compare(reference, new DataTable(0).Add(new NumericColumn("x", [])).Add(new TextColumn("c", [])));
        Assert.Contains(DriftWarnings.EmptyWindow, report.Warnings);
        Assert.Contains(DriftWarnings.NoFeatureTested, report.Warnings);
        Assert.False(report.DatasetDrift);
        Assert.All(report.Features, f => Assert.Null(f.Drifted));
        var fromProfile = DriftCalculator.Compare(reference, reference.NewEmptyLike(1));
        Assert.Contains(DriftWarnings.EmptyWindow, fromProfile.Warnings);
    }

    [Fact]
    public void All_missing_constant_single_row_and_missing_columns_are_named()
    {
        var reference = DatasetProfile.Build(new DataTable(4)
            .Add(new NumericColumn("x", [1, 2, 3, 4]))
            .Add(new NumericColumn("k", [7, 7, 7, 7]))
            .Add(new NumericColumn("gone", [1, 2, 3, 4]))
            .Add(new NumericColumn("never", [double.NaN, double.NaN, double.NaN, double.NaN])));
        var allMissing = DriftCalculator.Compare(reference, new DataTable(2)
            .Add(new NumericColumn("x", [double.NaN, double.NaN]))
            .Add(new NumericColumn("k", [7, 7]))
            .Add(new NumericColumn("never", [1, 2]))
            .Add(new TextColumn("extra", ["q", "r"])));
        Assert.Contains(DriftWarnings.AllMissing, Feature(allMissing, "x").Warnings);
        Assert.Null(Feature(allMissing, "x").Drifted);
        var k = Feature(allMissing, "k");
        Assert.Contains(DriftWarnings.ConstantReference, k.Warnings);
        Assert.Contains(DriftWarnings.ConstantCurrent, k.Warnings);
        Assert.False(k.Drifted); // the same constant: no drift (z-test p = 1)
        Assert.Contains(DriftWarnings.NotInCurrent, Feature(allMissing, "gone").Warnings);
        Assert.Contains(DriftWarnings.EmptyReference, Feature(allMissing, "never").Warnings);
        Assert.Contains(DriftWarnings.NotInReference, Feature(allMissing, "extra").Warnings);

        var single = DriftCalculator.Compare(reference, new DataTable(1).Add(new NumericColumn("x", [2.5])));
        var x = Feature(single, "x");
        Assert.Contains(DriftWarnings.SingleRow, x.Warnings);
        Assert.NotNull(x.Drifted);
    }

    [Fact]
    public void Kind_mismatch_and_unparsable_numbers_are_warnings_not_errors()
    {
        var reference = DatasetProfile.Build(new DataTable(4).Add(new NumericColumn("x", [1, 2, 3, 4])));
        var report = DriftCalculator.Compare(reference, new DataTable(3).Add(new TextColumn("x", ["1.5", "oops", "3"])));
        var x = Feature(report, "x");
        Assert.Contains(DriftWarnings.UnparsableValues, x.Warnings);
        Assert.Equal(1, x.Quality.CurrentMissing);
        Assert.Equal(2, x.Quality.CurrentCount);

        var live = new DatasetProfile();
        live.Columns.Add(ColumnProfile.NewCategorical("x"));
        live.Columns[0].Add("1");
        var mismatch = DriftCalculator.Compare(reference, live);
        Assert.Contains(DriftWarnings.KindMismatch, Feature(mismatch, "x").Warnings);
    }

    [Fact]
    public void A_reference_column_without_its_summary_is_an_empty_reference_not_a_crash()
    {
        var reference = new DatasetProfile { Rows = 10 };
        reference.Columns.Add(new ColumnProfile { Name = "x", Kind = ColumnKind.Numeric, Missing = 10 });
        reference.Columns.Add(new ColumnProfile { Name = "c", Kind = ColumnKind.Categorical });
        var report = DriftCalculator.Compare(reference, new DataTable(2).Add(new NumericColumn("x", [1, 2])).Add(new TextColumn("c", ["a", "b"])));
        Assert.All(report.Features, f => Assert.Contains(DriftWarnings.EmptyReference, f.Warnings));
        Assert.Contains(DriftWarnings.NoFeatureTested, report.Warnings);
    }

    [Fact]
    public void Report_json_is_snake_case_and_round_trips()
    {
        var rng = new Random(8);
        var reference = DatasetProfile.Build(Table(rng, 300, 0, ["a", "b", "c"], 0.5));
        var report = DriftCalculator.Compare(reference, Table(rng, 200, 0, ["a", "b", "q"], 0.5));
        var json = DriftJson.Serialize(report);
        Assert.Contains("\"dataset_drift\"", json);
        Assert.Contains("\"p_value\"", json);
        Assert.Contains("\"unseen_categories\"", json);
        Assert.Contains("\"kind\": \"numeric\"", json);
        Assert.Contains("\"statistic\": \"Infinity\"", json); // chi-square with a category unseen in training
        var back = DriftJson.Deserialize(json)!;
        Assert.Equal(report.Features.Count, back.Features.Count);
        Assert.Equal(report.Features[0].PValue, back.Features[0].PValue);
        Assert.Equal(report.DatasetDrift, back.DatasetDrift);
    }
}
