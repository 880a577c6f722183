using System.Globalization;
using Kiln.Core;
using Kiln.Core.Data;
using Kiln.Core.Packaging;
using Kiln.Scoring.Validation;

namespace Kiln.Batch.Validation;

/// <summary>A row left out of the output: where it was, which column failed and why, and the row's values as read.</summary>
internal sealed record RejectedRow(string Source, long Row, string Column, string Reason, string?[] Values);

/// <summary>The rows of a slice that can be scored.</summary>
internal sealed class ValidatedRows
{
    /// <summary>The table to score, and its first row; a new table holding only good rows (numbers converted) when the slice needed it.</summary>
    public required DataTable Table { get; init; }

    public required int Start { get; init; }

    public required int Count { get; init; }

    public List<RejectedRow>? Rejects { get; init; }

    public long UnseenCategories { get; init; }
}

/// <summary>
/// Row-level checks before scoring, column by column over a chunk, with the same rules and words as request
/// validation (<see cref="ValidationMessages"/>): text that is not a number in a numeric input, a missing value
/// where the signature says the input is not nullable. Categories unseen in training are allowed
/// (the model's one-hot encoding maps them to zeros) but counted.
/// </summary>
internal sealed class RowValidator
{
    private readonly (string Name, bool Numeric, bool Nullable, HashSet<string>? Categories, string? WholeType)[] _inputs;
    private readonly BadRowPolicy _policy;
    private readonly HashSet<string> _categorical;

    public RowValidator(ModelSignature signature, BadRowPolicy policy)
    {
        _policy = policy;
        // The signature compiled as request validation compiles it; unseen categories are counted, not refused (the flag policy).
        var schema = new ModelSchema(signature, UnseenCategoryPolicy.Flag, int.MaxValue);
        _inputs = [.. schema.Fields.Select(f => (f.Name, f.IsNumeric, f.Nullable, f.Categories, f.WholeNumber ? f.TensorType : null))];
        _categorical = new HashSet<string>(schema.Fields.Where(f => !f.IsNumeric).Select(f => f.Name), StringComparer.Ordinal);
    }

    /// <summary>Checks rows [start, start + count) of a chunk whose row 0 is the source's row <paramref name="firstRow"/> (0-based).</summary>
    public ValidatedRows Check(DataTable table, int start, int count, string source, long firstRow)
    {
        bool[]? bad = null;
        List<RejectedRow>? rejects = null;
        Dictionary<string, double[]>? converted = null;
        long unseen = 0;
        // A Parquet timestamp in a categorical input is checked and scored as its ISO 8601 text, as it always was
        // (only this slice's rows are formatted); a --keep timestamp that is no input stays a timestamp.
        if (table.Columns.Any(c => c is TimestampColumn && _categorical.Contains(c.Name)))
        {
            var rows = new int[count];
            for (var r = 0; r < count; r++) rows[r] = start + r;
            table = table.Take(rows).TimestampsAsText(_categorical);
            firstRow += start;
            start = 0;
        }

        void MarkBad(int r, string column, string reason)
        {
            var rowNumber = firstRow + start + r + 1;
            if (_policy == BadRowPolicy.Fail) throw new KilnException($"{source}: row {rowNumber}, column '{column}': {reason}");
            bad ??= new bool[count];
            if (bad[r]) return;
            bad[r] = true;
            (rejects ??= []).Add(new RejectedRow(source, rowNumber, column, reason, RowValues(table, start + r)));
        }

        foreach (var (name, numeric, nullable, categories, wholeType) in _inputs)
        {
            var column = table[name];
            if (numeric)
            {
                if (column is NumericColumn n)
                {
                    if (nullable && wholeType is null) continue;
                    var values = n.Values;
                    for (var r = 0; r < count; r++)
                    {
                        var v = values[start + r];
                        if (double.IsNaN(v)) { if (!nullable) MarkBad(r, name, ValidationMessages.NullNotAllowed); }
                        else if (wholeType is not null && ValidationMessages.WholeNumberProblem(v, wholeType) is { } problem) MarkBad(r, name, problem);
                    }
                }
                else
                {
                    var text = ((TextColumn)column).Values;
                    var numbers = new double[count];
                    for (var r = 0; r < count; r++)
                    {
                        var cell = text[start + r];
                        if (wholeType == "bool" && BoolCell(cell) is { } flag) numbers[r] = flag;
                        else if (!NumericColumn.TryParseCell(cell, out numbers[r]))
                            MarkBad(r, name, ValidationMessages.NotANumber(cell!));
                        else if (!nullable && double.IsNaN(numbers[r]))
                            MarkBad(r, name, ValidationMessages.NullNotAllowed);
                        else if (wholeType is not null && !double.IsNaN(numbers[r]) && ValidationMessages.WholeNumberProblem(numbers[r], wholeType) is { } problem)
                            MarkBad(r, name, problem);
                    }
                    (converted ??= new(StringComparer.Ordinal))[name] = numbers;
                }
            }
            else
            {
                var text = column is TextColumn t ? t.Values : throw new KilnException($"{source}: column '{name}' was read as numbers but the model expects categories");
                for (var r = 0; r < count; r++)
                {
                    var cell = text[start + r];
                    if (cell is null)
                    {
                        if (!nullable) MarkBad(r, name, ValidationMessages.NullNotAllowed);
                    }
                    else if (categories is not null && !categories.Contains(cell))
                    {
                        unseen++;
                    }
                }
            }
        }

        if (bad is null && converted is null)
            return new ValidatedRows { Table = table, Start = start, Count = count, UnseenCategories = unseen };

        var good = new List<int>(count);
        for (var r = 0; r < count; r++) if (bad is null || !bad[r]) good.Add(start + r);
        var result = table.Take(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(good));
        if (converted is not null)
        {
            var clean = new DataTable(good.Count);
            foreach (var c in result.Columns)
            {
                if (converted.TryGetValue(c.Name, out var numbers))
                {
                    var v = new double[good.Count];
                    for (var i = 0; i < good.Count; i++) v[i] = numbers[good[i] - start];
                    clean.Add(new NumericColumn(c.Name, v));
                }
                else clean.Add(c);
            }
            result = clean;
        }
        return new ValidatedRows { Table = result, Start = 0, Count = good.Count, Rejects = rejects, UnseenCategories = unseen };
    }

    private static string?[] RowValues(DataTable table, int row)
    {
        var values = new string?[table.Columns.Count];
        for (var c = 0; c < values.Length; c++)
        {
            values[c] = table.Columns[c] switch
            {
                NumericColumn n => double.IsNaN(n.Values[row]) ? null : n.Values[row].ToString("R", CultureInfo.InvariantCulture),
                TextColumn t => t.Values[row],
                TimestampColumn s => s.Format(row),
                _ => null,
            };
        }
        return values;
    }

    /// <summary>true/false (any case) for a bool input, as a CSV writer of booleans spells them; null for anything else.</summary>
    private static double? BoolCell(string? cell) =>
        string.Equals(cell, "true", StringComparison.OrdinalIgnoreCase) ? 1
        : string.Equals(cell, "false", StringComparison.OrdinalIgnoreCase) ? 0
        : null;
}
