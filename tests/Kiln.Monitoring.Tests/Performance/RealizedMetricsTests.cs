using Kiln.Core.Packaging;
using Kiln.Monitoring.Performance;
using Kiln.Monitoring.Tests.Statistics;

namespace Kiln.Monitoring.Tests.Performance;

public sealed class RealizedMetricsTests
{
    private static RealizedMetrics Binary(string[] truth, double[] scores, string[] classes)
    {
        var b = new RealizedMetricsBuilder(ModelTask.Binary, classes);
        for (var i = 0; i < truth.Length; i++) b.Add(scores[i] >= 0.5 ? classes[1] : classes[0], scores[i], [], truth[i]);
        return b.Build(truth.Length * 2);
    }

    [Fact]
    public void Binary_fixed_case_matches_sklearn()
    {
        // y=[1,0,1,1,0,0,1,0]; s=[0.9,0.2,0.4,0.8,0.6,0.1,0.4,0.4]; p=[1 if v>=0.5 else 0 for v in s]
        // accuracy_score(y,p)=0.625  roc_auc_score(y,s)=0.8125  f1_score(y,p)=0.5714285714285715  log_loss(y,s)=0.48958824416656593
        string[] truth = ["fraud", "legit", "fraud", "fraud", "legit", "legit", "fraud", "legit"];
        double[] scores = [0.9, 0.2, 0.4, 0.8, 0.6, 0.1, 0.4, 0.4];
        var m = Binary(truth, scores, ["legit", "fraud"]);
        Assert.Equal(0.625, m.Accuracy!.Value, 12);
        Assert.Equal(0.8125, m.Auc!.Value, 12);
        Assert.Equal(0.5714285714285715, m.F1!.Value, 12);
        Assert.Equal(0.48958824416656593, m.LogLoss!.Value, 12);
        Assert.Equal("fraud", m.PositiveClass);
        Assert.Equal(8, m.LabelledRows);
        Assert.Equal(0.5, m.LabelCoverage);
    }

    [Fact]
    public void Multiclass_fixed_case_matches_sklearn()
    {
        // yt=['a','b','c','a','b','c','a','a']; yp=['a','b','b','a','c','c','b','a']; P = the rows below (columns a, b, c)
        // accuracy_score(yt,yp)=0.625  f1_score(yt,yp,average='macro')=0.5857142857142857  log_loss(yt,P,labels=['a','b','c'])=0.7383169170403345
        string[] truth = ["a", "b", "c", "a", "b", "c", "a", "a"];
        string[] predicted = ["a", "b", "b", "a", "c", "c", "b", "a"];
        double[][] p = [[0.7, 0.2, 0.1], [0.1, 0.6, 0.3], [0.2, 0.5, 0.3], [0.8, 0.1, 0.1], [0.1, 0.3, 0.6], [0.2, 0.2, 0.6], [0.3, 0.4, 0.3], [0.5, 0.25, 0.25]];
        var b = new RealizedMetricsBuilder(ModelTask.Multiclass, ["a", "b", "c"]);
        for (var i = 0; i < truth.Length; i++) b.Add(predicted[i], p[i].Max(), p[i], truth[i]);
        var m = b.Build(8);
        Assert.Equal(0.625, m.Accuracy!.Value, 12);
        Assert.Equal(0.5857142857142857, m.F1!.Value, 12);
        Assert.Equal("macro", m.F1Average);
        Assert.Equal(0.7383169170403345, m.LogLoss!.Value, 12);
        Assert.Null(m.Auc);
    }

    [Fact]
    public void Regression_fixed_case_matches_sklearn()
    {
        // y=[3.0,-0.5,2.0,7.0]; q=[2.5,0.0,2.0,8.0]
        // math.sqrt(mean_squared_error(y,q))=0.6123724356957945  mean_absolute_error(y,q)=0.5
        var b = new RealizedMetricsBuilder(ModelTask.Regression, null);
        double[] y = [3.0, -0.5, 2.0, 7.0], q = [2.5, 0.0, 2.0, 8.0];
        for (var i = 0; i < y.Length; i++) b.Add(null, q[i], [], y[i].ToString("R", System.Globalization.CultureInfo.InvariantCulture));
        b.Add(null, 1, [], "not a number");
        var m = b.Build(10);
        Assert.Equal(0.6123724356957945, m.Rmse!.Value, 12);
        Assert.Equal(0.5, m.Mae!.Value, 12);
        Assert.Equal(5, m.LabelledRows);
        Assert.Equal(1, m.UnknownLabelRows);
        Assert.Contains(RealizedWarnings.UnknownLabels, m.Warnings);
    }

    [Fact]
    public void Labels_posted_as_numbers_match_text_classes_and_one_class_leaves_auc_undefined()
    {
        var b = new RealizedMetricsBuilder(ModelTask.Binary, ["0", "1"]);
        b.Add("1", 0.9, [], "1");   // the JSON number 1 is stored as "1"
        b.Add("0", 0.2, [], "1.0"); // a file may carry 1.0
        var m = b.Build(2);
        Assert.Equal(2, m.EvaluatedRows);
        Assert.Equal(0.5, m.Accuracy);
        Assert.Null(m.Auc);
        Assert.Contains(RealizedWarnings.AucUndefined, m.Warnings);

        var none = new RealizedMetricsBuilder(ModelTask.Binary, ["0", "1"]).Build(100);
        Assert.Contains(RealizedWarnings.NoFeedback, none.Warnings);
        Assert.Null(none.Accuracy);
        Assert.Equal(0, none.LabelCoverage);
    }

    [Theory]
    [InlineData(1, 50)]
    [InlineData(2, 400)]
    [InlineData(3, 2000)]
    public async Task Randomized_binary_multiclass_and_regression_match_sklearn(int seed, int n)
    {
        var rng = new Random(seed);
        // Binary, with tied scores (rounded to 2 decimals) so the AUC's tie handling is exercised.
        var yb = new int[n];
        var sb = new double[n];
        for (var i = 0; i < n; i++)
        {
            yb[i] = rng.NextDouble() < 0.3 ? 1 : 0;
            sb[i] = Math.Round(Math.Clamp(0.3 * yb[i] + rng.NextDouble() * 0.7, 0, 1), 2);
        }
        // Multiclass (4 classes), predicted = argmax of a noisy probability vector.
        string[] classes = ["ant", "bee", "cat", "dog"];
        var ym = new string[n];
        var pm = new double[n][];
        var predm = new string[n];
        for (var i = 0; i < n; i++)
        {
            var t = rng.Next(4);
            ym[i] = classes[t];
            var raw = new double[4];
            for (var c = 0; c < 4; c++) raw[c] = rng.NextDouble() + (c == t ? 0.8 : 0);
            var sum = raw.Sum();
            pm[i] = [.. raw.Select(v => v / sum)];
            predm[i] = classes[Array.IndexOf(pm[i], pm[i].Max())];
        }
        // Regression.
        var yr = new double[n];
        var pr = new double[n];
        for (var i = 0; i < n; i++)
        {
            yr[i] = rng.NextDouble() * 100 - 20;
            pr[i] = yr[i] + (rng.NextDouble() - 0.5) * 10;
        }

        var expected = await ScipyOracle.RunAsync(new { yb, sb, ym, pm, predm, yr, pr, classes }, """
            from sklearn import metrics as m
            yb, sb = data['yb'], data['sb']
            pb = [1 if v >= 0.5 else 0 for v in sb]
            out = {
              'acc_b': m.accuracy_score(yb, pb), 'auc_b': m.roc_auc_score(yb, sb), 'f1_b': m.f1_score(yb, pb), 'll_b': m.log_loss(yb, sb),
              'acc_m': m.accuracy_score(data['ym'], data['predm']), 'f1_m': m.f1_score(data['ym'], data['predm'], average='macro'),
              'll_m': m.log_loss(data['ym'], data['pm'], labels=data['classes']),
              'rmse': m.mean_squared_error(data['yr'], data['pr']) ** 0.5, 'mae': m.mean_absolute_error(data['yr'], data['pr']),
            }
            print(json.dumps(out))
            """);

        var b = new RealizedMetricsBuilder(ModelTask.Binary, ["0", "1"]);
        for (var i = 0; i < n; i++) b.Add(sb[i] >= 0.5 ? "1" : "0", sb[i], [], yb[i].ToString(System.Globalization.CultureInfo.InvariantCulture));
        var mb = b.Build(n);
        ScipyOracle.Close(expected.GetProperty("acc_b").GetDouble(), mb.Accuracy!.Value, 1e-12, "accuracy");
        ScipyOracle.Close(expected.GetProperty("auc_b").GetDouble(), mb.Auc!.Value, 1e-12, "auc");
        ScipyOracle.Close(expected.GetProperty("f1_b").GetDouble(), mb.F1!.Value, 1e-12, "f1");
        ScipyOracle.Close(expected.GetProperty("ll_b").GetDouble(), mb.LogLoss!.Value, 1e-9, "log loss");

        var mc = new RealizedMetricsBuilder(ModelTask.Multiclass, classes);
        for (var i = 0; i < n; i++) mc.Add(predm[i], pm[i].Max(), pm[i], ym[i]);
        var mm = mc.Build(n);
        ScipyOracle.Close(expected.GetProperty("acc_m").GetDouble(), mm.Accuracy!.Value, 1e-12, "multiclass accuracy");
        ScipyOracle.Close(expected.GetProperty("f1_m").GetDouble(), mm.F1!.Value, 1e-12, "macro f1");
        ScipyOracle.Close(expected.GetProperty("ll_m").GetDouble(), mm.LogLoss!.Value, 1e-9, "multiclass log loss");

        var rr = new RealizedMetricsBuilder(ModelTask.Regression, null);
        for (var i = 0; i < n; i++) rr.Add(null, pr[i], [], yr[i].ToString("R", System.Globalization.CultureInfo.InvariantCulture));
        var mr = rr.Build(n);
        ScipyOracle.Close(expected.GetProperty("rmse").GetDouble(), mr.Rmse!.Value, 1e-9, "rmse");
        ScipyOracle.Close(expected.GetProperty("mae").GetDouble(), mr.Mae!.Value, 1e-9, "mae");
    }
}
