using System.Text.Json;
using Kiln.Core.Packaging;
using Kiln.Testing;
using Kiln.Training;

namespace Kiln.Batch.Tests;

/// <summary>
/// A Parquet timestamp used as a categorical model input is the ISO 8601 text it always was to the model, although
/// tables now hold it as a timestamp: trained from Parquet it gives the model the same categories as a CSV holding that
/// text; `kiln batch` scores the Parquet rows exactly as the CSV rows, and `kiln drift` of the Parquet file gives the
/// same report as of the CSV. Expected values come from the CSV run; the files are written by DuckDB.
/// </summary>
[Collection("batch")]
public sealed class TimestampFeatureTests(BatchFixture fx)
{
    [Fact]
    public async Task A_timestamp_feature_trains_scores_and_drifts_as_its_text_from_CSV()
    {
        using var dir = new TempDir();
        var parquet = dir.File("with-slot.parquet");
        var csv = dir.File("with-slot.csv");
        // slot: a wall-clock time in a few distinct hours, tied to the label so that the model uses it.
        const string Slot = "TIMESTAMP '2026-01-01 00:00:00' + INTERVAL (CASE WHEN is_fraud = 1 AND hour % 2 = 0 THEN 1 ELSE hour % 3 + 2 END) HOUR";
        // card_present stays text (DuckDB would guess a boolean from yes/no).
        const string CardPresentAsText = "{'card_present': 'VARCHAR'}";
        DuckSql.Exec($"COPY (SELECT *, {Slot} AS slot FROM read_csv('{fx.Csv}', types = {CardPresentAsText})) TO '{parquet}' (FORMAT parquet, ROW_GROUP_SIZE 3000)");
        // The CSV spells slot as Kiln has always spelled a Parquet timestamp: ISO 8601 with seven fractional digits.
        DuckSql.Exec($"COPY (SELECT * REPLACE (strftime(slot, '%Y-%m-%dT%H:%M:%S') || '.0000000' AS slot) FROM read_parquet('{parquet}')) TO '{csv}' (HEADER)");
        var fromParquet = dir.File("model-parquet");
        var fromCsv = dir.File("model-csv");

        await Trainer.TrainAsync(Spec(parquet, dir.Path), fromParquet);
        await Trainer.TrainAsync(Spec(csv, dir.Path), fromCsv);

        var slot = ModelPackage.Load(fromParquet).Signature.FindInput("slot")!;
        Assert.Equal(ModelPackage.Load(fromCsv).Signature.FindInput("slot")!.Categories, slot.Categories);
        Assert.Equal(["2026-01-01T01:00:00.0000000", "2026-01-01T02:00:00.0000000", "2026-01-01T03:00:00.0000000", "2026-01-01T04:00:00.0000000"], slot.Categories);

        var outParquet = dir.File("out-parquet");
        var outCsv = dir.File("out-csv");
        var a = await KilnCli.RunAsync(["batch", "--model", fromParquet, "--input", parquet, "--output", outParquet, "--keep", "transaction_id,slot"]);
        var b = await KilnCli.RunAsync(["batch", "--model", fromParquet, "--input", csv, "--output", outCsv, "--keep", "transaction_id"]);
        Assert.True(a.ExitCode == 0, a.StdErr);
        Assert.True(b.ExitCode == 0, b.StdErr);
        // Every prediction the CSV run's to the last digit, and the kept slot the input's timestamp.
        var diff = DuckSql.Rows($"""
            SELECT count(*), count(*) FILTER (p.prediction IS DISTINCT FROM c.prediction OR p.probability IS DISTINCT FROM c.probability),
                   count(*) FILTER (p.slot IS DISTINCT FROM i.slot), count(DISTINCT p.probability)
            FROM read_parquet('{outParquet}/part-*.parquet') p
            JOIN read_parquet('{outCsv}/part-*.parquet') c USING (transaction_id)
            JOIN read_parquet('{parquet}') i USING (transaction_id)
            """)[0];
        Assert.Equal(8000L, Convert.ToInt64(diff[0], System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(0L, Convert.ToInt64(diff[1], System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(0L, Convert.ToInt64(diff[2], System.Globalization.CultureInfo.InvariantCulture));
        Assert.True(Convert.ToInt64(diff[3], System.Globalization.CultureInfo.InvariantCulture) > 1, "the model's scores vary");
        Assert.Equal("TIMESTAMP", DuckSql.Rows($"SELECT column_type FROM (DESCRIBE SELECT slot FROM read_parquet('{outParquet}/part-*.parquet'))")[0][0]);

        var driftParquet = await KilnCli.RunAsync(["drift", "--model", fromParquet, "--current", parquet, "--json", "--fail-on-drift", "false"]);
        var driftCsv = await KilnCli.RunAsync(["drift", "--model", fromParquet, "--current", csv, "--json", "--fail-on-drift", "false"]);
        Assert.True(driftParquet.ExitCode == 0, driftParquet.StdErr);
        Assert.True(driftCsv.ExitCode == 0, driftCsv.StdErr);
        using var p = JsonDocument.Parse(driftParquet.StdOut);
        using var c = JsonDocument.Parse(driftCsv.StdOut);
        Assert.Equal(Feature(c, "slot").GetRawText(), Feature(p, "slot").GetRawText());
        Assert.Equal(0, Feature(p, "slot").GetProperty("quality").GetProperty("unseen_categories").GetInt32());
    }

    private static TrainingSpec Spec(string data, string baseDirectory) => TrainingSpec.Parse(
        QuickstartSpec.Yaml(data).Replace("  card_present: categorical\n", "  card_present: categorical\n  slot: categorical\n", StringComparison.Ordinal),
        "test-spec", baseDirectory);

    private static JsonElement Feature(JsonDocument report, string name) =>
        report.RootElement.GetProperty("features").EnumerateArray().Single(f => f.GetProperty("name").GetString() == name);
}
