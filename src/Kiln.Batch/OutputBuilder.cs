using Kiln.Batch.Validation;
using Kiln.Core.Data;
using Kiln.Core.Packaging;
using Kiln.Scoring;

namespace Kiln.Batch;

/// <summary>
/// The prediction columns' arrays of written slices, for the next slices of the same length (every slice but a
/// partition's last has --batch-rows rows): 1 MB a 65,536-row slice of a binary model. Thread-safe.
/// </summary>
internal sealed class OutputSpares
{
    public SpareArrays<double> Numbers { get; } = new();

    public SpareArrays<string?> Text { get; } = new();

    /// <summary>Takes back the arrays of <paramref name="output"/>'s columns from <paramref name="first"/> on; nothing may read them after.</summary>
    public void Return(DataTable output, int first)
    {
        for (var c = first; c < output.Columns.Count; c++)
        {
            switch (output.Columns[c])
            {
                case NumericColumn n: Numbers.Return(n.Values); break;
                case TextColumn t: Text.Return(t.Values); break;
            }
        }
    }
}

/// <summary>Builds an output slice: the --keep columns copied from the input, then the prediction columns.</summary>
internal static class OutputBuilder
{
    /// <summary>
    /// The slice's output: its first <c>plan.Keep.Count</c> columns are the kept input columns (sharing the input's arrays
    /// when the slice starts at row 0), the rest are new, taken from <paramref name="spare"/> when given.
    /// </summary>
    public static DataTable Build(ReadPlan plan, ModelSignature signature, DataTable input, int start, int count, ReadOnlySpan<Prediction> predictions,
        OutputSpares? spare = null)
    {
        double[] Numbers() => spare?.Numbers.Rent(count) ?? new double[count];
        string?[] Text() => spare?.Text.Rent(count) ?? new string?[count];
        var output = new DataTable(count);
        foreach (var k in plan.Keep)
        {
            // A slice from the chunk's first row shares the chunk's array (nothing writes to it after reading; the
            // output's row count bounds what is read of it); a later slice copies its rows.
            switch (input[k])
            {
                case NumericColumn n: output.Add(new NumericColumn(k, start == 0 ? n.Values : n.Values.AsSpan(start, count).ToArray())); break;
                case TextColumn { Packed: { } packed } when start == 0: output.Add(new TextColumn(k, packed)); break; // an id column from CSV: no strings
                case TextColumn t: output.Add(new TextColumn(k, start == 0 ? t.Values : t.Values.AsSpan(start, count).ToArray())); break;
                case TimestampColumn s: output.Add(new TimestampColumn(k, start == 0 ? s.Ticks : s.Ticks.AsSpan(start, count).ToArray(), s.Utc)); break;
                default: throw new InvalidOperationException($"a {input[k].GetType().Name} cannot be kept");
            }
        }
        switch (signature.Task)
        {
            case ModelTask.Regression:
            {
                var values = Numbers();
                for (var i = 0; i < count; i++) values[i] = predictions[i].Value;
                output.Add(new NumericColumn("prediction", values));
                break;
            }
            case ModelTask.Binary:
            {
                var labels = Text();
                var p = Numbers();
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
                var labels = Text();
                var p = Numbers();
                var classes = signature.ClassLabels ?? [];
                var perClass = new double[classes.Count][];
                for (var c = 0; c < perClass.Length; c++) perClass[c] = Numbers();
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
