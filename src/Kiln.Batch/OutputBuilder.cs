using Kiln.Batch.Validation;
using Kiln.Core.Data;
using Kiln.Core.Packaging;
using Kiln.Scoring;

namespace Kiln.Batch;

/// <summary>Builds an output slice: the --keep columns copied from the input, then the prediction columns.</summary>
internal static class OutputBuilder
{
    public static DataTable Build(ReadPlan plan, ModelSignature signature, DataTable input, int start, int count, ReadOnlySpan<Prediction> predictions)
    {
        var output = new DataTable(count);
        foreach (var k in plan.Keep)
        {
            // A slice from the chunk's first row shares the chunk's array (nothing writes to it after reading; the
            // output's row count bounds what is read of it); a later slice copies its rows.
            switch (input[k])
            {
                case NumericColumn n: output.Add(new NumericColumn(k, start == 0 ? n.Values : n.Values.AsSpan(start, count).ToArray())); break;
                case TextColumn t: output.Add(new TextColumn(k, start == 0 ? t.Values : t.Values.AsSpan(start, count).ToArray())); break;
                case TimestampColumn s: output.Add(new TimestampColumn(k, start == 0 ? s.Ticks : s.Ticks.AsSpan(start, count).ToArray(), s.Utc)); break;
            }
        }
        switch (signature.Task)
        {
            case ModelTask.Regression:
            {
                var values = new double[count];
                for (var i = 0; i < count; i++) values[i] = predictions[i].Value;
                output.Add(new NumericColumn("prediction", values));
                break;
            }
            case ModelTask.Binary:
            {
                var labels = new string?[count];
                var p = new double[count];
                for (var i = 0; i < count; i++)
                {
                    labels[i] = predictions[i].Label;
                    p[i] = predictions[i].Value;
                }
                output.Add(new TextColumn("prediction", labels)).Add(new NumericColumn("probability", p));
                break;
            }
            default:
            {
                var labels = new string?[count];
                var p = new double[count];
                var classes = signature.ClassLabels ?? [];
                var perClass = new double[classes.Count][];
                for (var c = 0; c < perClass.Length; c++) perClass[c] = new double[count];
                for (var i = 0; i < count; i++)
                {
                    labels[i] = predictions[i].Label;
                    p[i] = predictions[i].Value;
                    var probabilities = predictions[i].Probabilities;
                    for (var c = 0; c < perClass.Length; c++) perClass[c][i] = probabilities is not null && c < probabilities.Length ? probabilities[c] : double.NaN;
                }
                output.Add(new TextColumn("prediction", labels)).Add(new NumericColumn("probability", p));
                for (var c = 0; c < perClass.Length; c++) output.Add(new NumericColumn("probability_" + classes[c], perClass[c]));
                break;
            }
        }
        return output;
    }
}
