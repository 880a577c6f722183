using System.Globalization;
using Kiln.Core.Data;
using Kiln.Core.Packaging;
using Kiln.Core.Profiling;
using Kiln.Scoring;
using Kiln.Testing;

namespace Kiln.Training.Tests;

public class TrainerTests
{
    [Fact]
    public async Task Binary_training_writes_a_verified_self_describing_package()
    {
        using var dir = new TempDir();
        TrainingData.Binary(dir.File("data.csv"));
        var spec = TrainingSpec.Load(TrainingData.Spec(dir.Path, TrainingData.BinarySpec));
        var result = await Trainer.TrainAsync(spec, dir.File("out/churn"));

        Assert.Empty(ModelPackage.Verify(result.PackageDirectory));
        var p = ModelPackage.Load(result.PackageDirectory);
        Assert.Equal(ModelRuntime.Mlnet, p.Manifest.Runtime);
        Assert.Equal(["accuracy", "auc", "f1", "log_loss", "precision", "recall"], p.Metadata.Metrics.Keys);
        Assert.True(p.Metadata.Metrics["auc"] > 0.8, $"auc {p.Metadata.Metrics["auc"]}");
        Assert.Equal(["no", "yes"], p.Signature.ClassLabels);
        Assert.Equal(["blue", "green", "red"], p.Signature.FindInput("colour")!.Categories);
        Assert.True(p.Signature.FindInput("x2")!.Nullable);      // rows with an empty x2 were seen
        Assert.False(p.Signature.FindInput("x1")!.Nullable);
        Assert.InRange(p.Signature.FindInput("x1")!.Min!.Value, 0, 0.1);
        Assert.Equal(900, p.Metadata.Split!.TrainRows);
        Assert.Equal(300, p.Metadata.Split.HoldoutRows);
        Assert.Equal(ModelPackage.Sha256OfFile(dir.File("data.csv")), p.Metadata.Dataset!.Sha256);
        Assert.Equal(1200, p.Metadata.Dataset.Rows);
        Assert.Contains("trees: 30", p.Metadata.Spec, StringComparison.Ordinal);

        var profile = p.Profile!;
        Assert.Equal(["x1", "x2", "colour"], profile.Inputs.Columns.Select(c => c.Name));
        Assert.Equal(900, profile.Inputs.Rows);
        Assert.Equal(ColumnKind.Categorical, profile.Outputs.Find("prediction")!.Kind);
        Assert.Equal(300, profile.Outputs.Find("probability")!.Count);
        Assert.Equal(3, p.ReadInputExample().Count);
    }

    [Fact]
    public async Task Holdout_metrics_match_scikit_learn_on_the_same_predictions()
    {
        // Oracle: sklearn.metrics on the holdout labels and predictions the trainer wrote.
        using var dir = new TempDir();
        TrainingData.Binary(dir.File("data.csv"));
        var spec = TrainingSpec.Load(TrainingData.Spec(dir.Path, TrainingData.BinarySpec));
        var result = await Trainer.TrainAsync(spec, dir.File("pkg"), holdoutPredictionsPath: dir.File("holdout.csv"));
        var py = await Proc.PythonAsync($"""
            import pandas as pd
            from sklearn import metrics as m
            d = pd.read_csv('{dir.File("holdout.csv")}')
            y = (d.label == 'yes').astype(int); yhat = (d.prediction == 'yes').astype(int); p = d.probability
            print(m.accuracy_score(y, yhat), m.roc_auc_score(y, p), m.f1_score(y, yhat), m.log_loss(y, p), m.precision_score(y, yhat), m.recall_score(y, yhat))
            """);
        Assert.True(py.ExitCode == 0, py.ToString());
        var v = py.StdOut.Split(' ').Select(s => double.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        Assert.Equal(v[0], result.Metrics["accuracy"], 1e-6);
        Assert.Equal(v[1], result.Metrics["auc"], 1e-4);
        Assert.Equal(v[2], result.Metrics["f1"], 1e-6);
        Assert.Equal(v[3], result.Metrics["log_loss"], 1e-4);
        Assert.Equal(v[4], result.Metrics["precision"], 1e-6);
        Assert.Equal(v[5], result.Metrics["recall"], 1e-6);
    }

    [Fact]
    public async Task Same_data_spec_and_seed_give_the_same_metrics_and_predictions()
    {
        using var dir = new TempDir();
        TrainingData.Binary(dir.File("data.csv"));
        var spec = TrainingSpec.Load(TrainingData.Spec(dir.Path, TrainingData.BinarySpec));
        var a = await Trainer.TrainAsync(spec, dir.File("a"));
        var b = await Trainer.TrainAsync(spec, dir.File("b"));
        Assert.Equal(a.Metrics, b.Metrics);

        var data = await TableReader.ReadAllAsync([dir.File("data.csv")], [new("x1", ColumnType.Numeric), new("x2", ColumnType.Numeric), new("colour", ColumnType.Text)]);
        using var sa = Scorers.Open(a.PackageDirectory);
        using var sb = Scorers.Open(b.PackageDirectory);
        Assert.Equal(sa.ScoreAll(data), sb.ScoreAll(data));
    }

    [Fact]
    public async Task A_parquet_file_written_by_duckdb_trains_the_same_model_as_the_same_rows_from_csv()
    {
        // DuckDB (an independent Parquet writer) converts the CSV; its empty x2 cells become nulls. The label stays text
        // (DuckDB's CSV sniffer would make yes/no a BOOLEAN column, a different training set).
        using var dir = new TempDir();
        TrainingData.Binary(dir.File("data.csv"));
        using (var duck = new DuckDB.NET.Data.DuckDBConnection("DataSource=:memory:"))
        {
            duck.Open();
            using var copy = duck.CreateCommand();
            copy.CommandText = $"COPY (SELECT * FROM read_csv('{dir.File("data.csv")}', types = {{'y': 'VARCHAR'}})) TO '{dir.File("data.parquet")}' (FORMAT parquet, ROW_GROUP_SIZE 500)";
            copy.ExecuteNonQuery();
        }
        var fromCsv = await Trainer.TrainAsync(TrainingSpec.Load(TrainingData.Spec(dir.Path, TrainingData.BinarySpec)), dir.File("csv"));
        var fromParquet = await Trainer.TrainAsync(
            TrainingSpec.Load(TrainingData.Spec(dir.Path, TrainingData.BinarySpec.Replace("data: data.csv", "data: data.parquet", StringComparison.Ordinal))),
            dir.File("parquet"));

        Assert.Equal(fromCsv.Metrics, fromParquet.Metrics);
        var a = ModelPackage.Load(fromCsv.PackageDirectory);
        var b = ModelPackage.Load(fromParquet.PackageDirectory);
        Assert.Equal(a.Signature.FindInput("x2")!.Nullable, b.Signature.FindInput("x2")!.Nullable);
        Assert.Equal(a.Signature.FindInput("colour")!.Categories, b.Signature.FindInput("colour")!.Categories);
        var data = await TableReader.ReadAllAsync([dir.File("data.csv")], [new("x1", ColumnType.Numeric), new("x2", ColumnType.Numeric), new("colour", ColumnType.Text)]);
        using var sa = Scorers.Open(fromCsv.PackageDirectory);
        using var sb = Scorers.Open(fromParquet.PackageDirectory);
        Assert.Equal(sa.ScoreAll(data), sb.ScoreAll(data));
    }

    [Fact]
    public async Task A_forests_probabilities_are_calibrated_on_scores_of_rows_its_trees_were_not_grown_on()
    {
        // Noisy data (15% of labels flipped) that deep trees memorize. Oracle: scikit-learn, on a second sample of the
        // same distribution scored by the packages: expected calibration error (10 equal-width bins), log-loss, and as a
        // reference a RandomForestClassifier calibrated by CalibratedClassifierCV(method="sigmoid", cv=5) on the same rows.
        using var dir = new TempDir();
        var gen = await Proc.PythonAsync($"""
            import pandas as pd
            from sklearn.datasets import make_classification
            X, y = make_classification(n_samples=12000, n_features=5, n_informative=4, n_redundant=0, flip_y=0.15, class_sep=0.7, random_state=7)
            d = pd.DataFrame(X, columns=[f"f{"{i}"}" for i in range(5)]); d["label"] = y
            d.iloc[:6000].to_csv('{dir.File("train.csv")}', index=False); d.iloc[6000:].to_csv('{dir.File("test.csv")}', index=False)
            """);
        Assert.True(gen.ExitCode == 0, gen.ToString());
        async Task<string> Train(string name, int folds)
        {
            var spec = TrainingSpec.Load(TrainingData.Spec(dir.Path, $$"""
                name: {{name}}
                task: binary
                data: train.csv
                label: label
                features: { f0: numeric, f1: numeric, f2: numeric, f3: numeric, f4: numeric }
                trainer: { kind: fast_forest, trees: 60, leaves: 512, min_samples_leaf: 2, calibration_folds: {{folds}} }
                holdout: 0.1
                """));
            var result = await Trainer.TrainAsync(spec, dir.File(name));
            var test = await TableReader.ReadAllAsync([dir.File("test.csv")], [.. Enumerable.Range(0, 5).Select(i => new ColumnRequest($"f{i}", ColumnType.Numeric))]);
            using var scorer = Scorers.Open(result.PackageDirectory);
            var path = dir.File(name + ".txt");
            await File.WriteAllLinesAsync(path, scorer.ScoreAll(test).Select(p => p.Value.ToString("R", CultureInfo.InvariantCulture)));
            return path;
        }
        var outOfFold = await Train("oof", 3); // the default
        var inSample = await Train("insample", 0);

        var py = await Proc.PythonAsync($"""
            import numpy as np, pandas as pd
            from sklearn.metrics import log_loss
            from sklearn.ensemble import RandomForestClassifier
            from sklearn.calibration import CalibratedClassifierCV
            tr = pd.read_csv('{dir.File("train.csv")}'); te = pd.read_csv('{dir.File("test.csv")}'); y = te.label.values
            def ece(p):
                b = np.minimum((p * 10).astype(int), 9)
                return sum((b == k).mean() * abs(p[b == k].mean() - y[b == k].mean()) for k in range(10) if (b == k).any())
            out = []
            for f in ['{outOfFold}', '{inSample}']:
                p = np.clip(np.loadtxt(f), 1e-15, 1 - 1e-15); out += [ece(p), log_loss(y, p)]
            ref = CalibratedClassifierCV(RandomForestClassifier(n_estimators=60, random_state=0), method="sigmoid", cv=5)
            ref.fit(tr.drop(columns="label").values[:5400], tr.label.values[:5400])
            out.append(log_loss(y, ref.predict_proba(te.drop(columns="label").values)[:, 1]))
            print(*out)
            """);
        Assert.True(py.ExitCode == 0, py.ToString());
        var v = py.StdOut.Split(' ').Select(x => double.Parse(x, CultureInfo.InvariantCulture)).ToArray();
        var (eceOof, lossOof, eceIn, lossIn, lossReference) = (v[0], v[1], v[2], v[3], v[4]);
        Assert.True(eceOof < 0.03, $"calibration error {eceOof:F4} with out-of-fold calibration");
        Assert.True(eceOof < eceIn / 2, $"out-of-fold {eceOof:F4} against in-sample {eceIn:F4}");
        Assert.True(lossOof < lossIn, $"log-loss out-of-fold {lossOof:F4}, in-sample {lossIn:F4}");
        Assert.True(lossOof < lossReference + 0.02, $"log-loss {lossOof:F4}; scikit-learn's calibrated forest {lossReference:F4}");
    }

    [Fact]
    public async Task Multiclass_training_scores_every_class()
    {
        using var dir = new TempDir();
        TrainingData.Multiclass(dir.File("data.csv"));
        var spec = TrainingSpec.Load(TrainingData.Spec(dir.Path, """
            name: flowers
            task: multiclass
            data: data.csv
            label: species
            features: { x1: numeric, x2: numeric }
            trainer: { kind: lightgbm, trees: 40, leaves: 8 }
            """));
        var result = await Trainer.TrainAsync(spec, dir.File("pkg"));
        Assert.Equal(["log_loss", "macro_accuracy", "micro_accuracy"], result.Metrics.Keys.Order());
        Assert.True(result.Metrics["micro_accuracy"] > 0.8, $"accuracy {result.Metrics["micro_accuracy"]}");
        using var scorer = Scorers.Open(result.PackageDirectory);
        var input = new DataTable(3).Add(new NumericColumn("x1", [0.5, 3, 5.5])).Add(new NumericColumn("x2", [4, 2.2, 0.5]));
        var predictions = scorer.ScoreAll(input);
        Assert.Equal(["setosa", "versicolor", "virginica"], predictions.Select(p => p.Label));
        Assert.All(predictions, p => Assert.Equal(1.0, p.Probabilities!.Sum(), 1e-4));
        Assert.All(predictions, p => Assert.Equal(p.Probabilities!.Max(), p.Value, 1e-6));
    }

    [Fact]
    public async Task Regression_training_learns_the_linear_relation()
    {
        using var dir = new TempDir();
        TrainingData.Regression(dir.File("data.csv"));
        var spec = TrainingSpec.Load(TrainingData.Spec(dir.Path, """
            name: price
            task: regression
            data: data.csv
            label: y
            features: { x1: numeric, x2: numeric }
            trainer: { kind: linear, iterations: 200 }
            """));
        var result = await Trainer.TrainAsync(spec, dir.File("pkg"), holdoutPredictionsPath: dir.File("h.csv"));
        Assert.True(result.Metrics["r2"] > 0.99, $"r2 {result.Metrics["r2"]}");
        var py = await Proc.PythonAsync($"""
            import pandas as pd
            from sklearn import metrics as m
            d = pd.read_csv('{dir.File("h.csv")}')
            print(m.mean_squared_error(d.label, d.prediction) ** 0.5, m.mean_absolute_error(d.label, d.prediction), m.r2_score(d.label, d.prediction))
            """);
        Assert.True(py.ExitCode == 0, py.ToString());
        var v = py.StdOut.Split(' ').Select(s => double.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        Assert.Equal(v[0], result.Metrics["rmse"], 1e-4);
        Assert.Equal(v[1], result.Metrics["mae"], 1e-4);
        Assert.Equal(v[2], result.Metrics["r2"], 1e-4);

        using var scorer = Scorers.Open(result.PackageDirectory);
        var p = scorer.ScoreAll(new DataTable(1).Add(new NumericColumn("x1", [4])).Add(new NumericColumn("x2", [1])));
        Assert.Equal(15.0, p[0].Value, 0.5);   // 3·4 − 2·1 + 5
    }

    [Fact]
    public async Task Missing_values_and_unseen_categories_are_scored_with_the_training_transformations()
    {
        using var dir = new TempDir();
        TrainingData.Binary(dir.File("data.csv"));
        var result = await Trainer.TrainAsync(TrainingSpec.Load(TrainingData.Spec(dir.Path, TrainingData.BinarySpec)), dir.File("pkg"));
        using var scorer = Scorers.Open(result.PackageDirectory);
        var input = new DataTable(2)
            .Add(new NumericColumn("x1", [9.5, 9.5]))
            .Add(new NumericColumn("x2", [double.NaN, 1]))
            .Add(new TextColumn("colour", ["purple", null]));
        var p = scorer.ScoreAll(input);
        Assert.All(p, x => Assert.InRange(x.Value, 0, 1));
        Assert.All(p, x => Assert.Equal("yes", x.Label)); // x1 = 9.5 is far on the positive side
    }
}
