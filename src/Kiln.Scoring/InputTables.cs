using System.Text.Json;
using Kiln.Core;
using Kiln.Core.Data;
using Kiln.Core.Packaging;
using Kiln.Core.Profiling;

namespace Kiln.Scoring;

/// <summary>Builds scorer input tables from JSON rows, typed by a signature.</summary>
public static class InputTables
{
    /// <summary>
    /// One table from rows of name → value. Numbers for numeric inputs, strings for categorical
    /// ones (numbers are accepted and written as text), null for missing. Errors name the row and field.
    /// </summary>
    public static DataTable FromJsonRows(IReadOnlyList<Dictionary<string, JsonElement>> rows, ModelSignature signature)
    {
        var table = new DataTable(rows.Count);
        foreach (var input in signature.Inputs)
        {
            if (input.Type == ColumnKind.Numeric)
            {
                var values = new double[rows.Count];
                for (var r = 0; r < rows.Count; r++)
                {
                    if (!rows[r].TryGetValue(input.Name, out var v)) throw new KilnException($"row {r}: field '{input.Name}' is missing");
                    values[r] = v.ValueKind switch
                    {
                        JsonValueKind.Number => v.GetDouble(),
                        JsonValueKind.Null => double.NaN,
                        _ => throw new KilnException($"row {r}: field '{input.Name}' must be a number, not {v.ValueKind.ToString().ToLowerInvariant()}"),
                    };
                }
                table.Add(new NumericColumn(input.Name, values));
            }
            else
            {
                var values = new string?[rows.Count];
                for (var r = 0; r < rows.Count; r++)
                {
                    if (!rows[r].TryGetValue(input.Name, out var v)) throw new KilnException($"row {r}: field '{input.Name}' is missing");
                    values[r] = v.ValueKind switch
                    {
                        JsonValueKind.String => v.GetString(),
                        JsonValueKind.Number => v.GetRawText(),
                        JsonValueKind.True => "true",
                        JsonValueKind.False => "false",
                        JsonValueKind.Null => null,
                        _ => throw new KilnException($"row {r}: field '{input.Name}' must be a string, not {v.ValueKind.ToString().ToLowerInvariant()}"),
                    };
                }
                table.Add(new TextColumn(input.Name, values));
            }
        }
        return table;
    }
}
