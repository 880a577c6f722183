using Kiln.Core;
using Kiln.Core.Data;
using Kiln.Core.Packaging;
using Kiln.Core.Profiling;

namespace Kiln.Batch.Validation;

/// <summary>A column of the job's output.</summary>
public sealed record OutputColumn(string Name, ValueKind Kind, bool Nullable = true);

/// <summary>What to read and what to write, decided once the input's schema has passed the check.</summary>
internal sealed record ReadPlan(IReadOnlyList<ColumnRequest> Requests, IReadOnlyList<OutputColumn> Output, IReadOnlyList<string> Keep);

/// <summary>
/// Checks every file's or table's declared columns against the model signature before any row is
/// read: a missing input or --keep column, or text where the model expects numbers, is an error
/// naming the file and the column.
/// </summary>
internal static class SchemaCheck
{
    /// <summary>
    /// Sorts out the bad files before <see cref="Check"/>: a file whose schema could not be read, or that fails the
    /// check, stops the job (<see cref="BadFilePolicy.Fail"/>, the error as it was) or is left out and listed
    /// (<see cref="BadFilePolicy.Skip"/>). Returns the schemas to go on with; when every file is bad, the job fails.
    /// </summary>
    public static IReadOnlyList<SourceSchema> Screen(ModelSignature signature, IReadOnlyList<SourceSchema> schemas, IReadOnlyList<string> keep,
        BadFilePolicy policy, List<SkippedFile> skipped)
    {
        var good = new List<SourceSchema>(schemas.Count);
        foreach (var schema in schemas)
        {
            if (schema.Failure is { } failure)
            {
                if (policy == BadFilePolicy.Fail) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(failure).Throw();
                skipped.Add(new SkippedFile(schema.Source, Reason(schema.Source, failure.Message)));
                continue;
            }
            try
            {
                CheckColumns(signature, schema, keep);
            }
            catch (KilnException e) when (policy == BadFilePolicy.Skip)
            {
                skipped.Add(new SkippedFile(schema.Source, Reason(schema.Source, e.Message)));
                continue;
            }
            good.Add(schema);
        }
        if (good.Count == 0 && skipped.Count > 0)
            throw new KilnException($"every input file is bad ({skipped.Count}); the first: {skipped[0].File}: {skipped[0].Reason}");
        return good;
    }

    private static string Reason(string file, string message) =>
        message.StartsWith(file + ": ", StringComparison.Ordinal) ? message[(file.Length + 2)..] : message;

    /// <summary>What to read and write, for schemas that passed <see cref="Screen"/> (which checks their columns).</summary>
    public static ReadPlan Check(ModelSignature signature, IReadOnlyList<SourceSchema> schemas, IReadOnlyList<string> keep,
        bool untyped, BadRowPolicy policy)
    {
        var requests = new List<ColumnRequest>();
        foreach (var input in signature.Inputs)
        {
            // An untyped source (CSV) yields numbers as text when bad rows are skipped, so that a bad cell
            // becomes a rejected row instead of a failed read; a bool input always, so that true/false cells are taken.
            var asText = untyped && (policy == BadRowPolicy.Skip || input.TensorType == "bool");
            var type = input.Type == ColumnKind.Numeric && !asText ? ColumnType.Numeric : ColumnType.Text;
            requests.Add(new ColumnRequest(input.Name, type));
        }

        var output = new List<OutputColumn>();
        foreach (var k in keep)
        {
            var kinds = schemas.Select(s => s.Find(k)!.Kind).Distinct().ToList();
            var nullable = schemas.Any(s => s.Find(k)!.Nullable);
            var kind = kinds.Count == 1 ? kinds[0]
                : kinds.All(x => x is ValueKind.Integer or ValueKind.Integer32) ? ValueKind.Integer
                : kinds.All(x => x is ValueKind.Integer or ValueKind.Integer32 or ValueKind.Real) ? ValueKind.Real
                : ValueKind.Text;
            if (kind == ValueKind.Unknown) kind = ValueKind.Text;
            var input = signature.FindInput(k);
            if (input is null) requests.Add(new ColumnRequest(k, IsText(kind) ? ColumnType.Text : ColumnType.Numeric));
            else if (input.Type != ColumnKind.Numeric) kind = kind is ValueKind.Timestamp or ValueKind.LocalTimestamp ? kind : ValueKind.Text;
            else if (kind == ValueKind.Text) kind = ValueKind.Real;
            // A model input may be read as text (CSV with bad rows skipped) or with missing cells: keep it nullable then.
            output.Add(new OutputColumn(k, kind, nullable || input is not null && kind == ValueKind.Text));
        }
        foreach (var p in PredictionColumns(signature))
        {
            if (keep.Contains(p.Name)) throw new KilnException($"--keep column '{p.Name}' has the name of a prediction column; rename it in the input");
            output.Add(p);
        }
        return new ReadPlan(requests, output, keep);
    }

    /// <summary>One file's or table's columns against the signature and --keep: the first mistake, naming the source and the column.</summary>
    private static void CheckColumns(ModelSignature signature, SourceSchema schema, IReadOnlyList<string> keep)
    {
        foreach (var input in signature.Inputs)
        {
            var column = schema.Find(input.Name)
                ?? throw new KilnException($"{schema.Source}: column '{input.Name}' that the model needs is missing (the input has: {Names(schema)})");
            if (column.Unsupported is not null)
                throw new KilnException($"{schema.Source}: column '{input.Name}' is {column.Unsupported}, which Kiln cannot read");
            if (input.Type == ColumnKind.Numeric && column.Kind == ValueKind.Text)
                throw new KilnException($"{schema.Source}: column '{input.Name}' holds text, but the model expects numbers");
            if (input.Type == ColumnKind.Numeric && column.Kind is ValueKind.Timestamp or ValueKind.LocalTimestamp)
                throw new KilnException($"{schema.Source}: column '{input.Name}' holds timestamps, but the model expects numbers");
        }
        foreach (var k in keep)
        {
            var column = schema.Find(k) ?? throw new KilnException($"{schema.Source}: --keep column '{k}' is missing (the input has: {Names(schema)})");
            if (column.Unsupported is not null) throw new KilnException($"{schema.Source}: --keep column '{k}' is {column.Unsupported}, which Kiln cannot read");
        }
    }

    /// <summary>binary: prediction (the class label), probability (of the positive class); multiclass: prediction,
    /// probability (of the predicted class) and probability_&lt;class&gt; for each class; regression: prediction.</summary>
    public static IReadOnlyList<OutputColumn> PredictionColumns(ModelSignature signature)
    {
        switch (signature.Task)
        {
            case ModelTask.Regression:
                return [new OutputColumn("prediction", ValueKind.Real)];
            case ModelTask.Binary:
                return [new OutputColumn("prediction", ValueKind.Text), new OutputColumn("probability", ValueKind.Real)];
            default:
                var columns = new List<OutputColumn> { new("prediction", ValueKind.Text), new("probability", ValueKind.Real) };
                foreach (var label in signature.ClassLabels ?? []) columns.Add(new OutputColumn("probability_" + label, ValueKind.Real));
                return columns;
        }
    }

    /// <summary>Kinds read as text: text itself and timestamps (ISO 8601).</summary>
    public static bool IsText(ValueKind kind) => kind is ValueKind.Text or ValueKind.Timestamp or ValueKind.LocalTimestamp;

    private static string Names(SourceSchema s) => string.Join(", ", s.Columns.Select(c => c.Name));
}
