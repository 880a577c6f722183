using System.Text.Json;
using Kiln.Core;
using Kiln.Core.Packaging;
using Kiln.Core.Profiling;
using Kiln.Scoring.Validation;

namespace Kiln.Scoring.Tests;

/// <summary>
/// The one signature validator (serving's rules and messages) as the quickstart and any in-process caller use
/// it: JSON rows in, a typed table of exactly those rows out, or one error naming the row and the field.
/// </summary>
public sealed class SignatureValidationTests
{
    private static readonly ModelSignature Signature = new()
    {
        Task = ModelTask.Binary,
        Inputs =
        [
            new InputField { Name = "amount", Type = ColumnKind.Numeric },
            new InputField { Name = "distance", Type = ColumnKind.Numeric, Nullable = true },
            new InputField { Name = "merchant", Type = ColumnKind.Categorical, Categories = ["grocery", "travel"] },
        ],
        Outputs = [new OutputField { Name = "prediction", Type = "categorical" }],
    };

    private static List<Dictionary<string, JsonElement>> Rows(string json) =>
        JsonSerializer.Deserialize<List<Dictionary<string, JsonElement>>>(json)!;

    [Fact]
    public void Good_rows_become_a_typed_table_of_exactly_those_rows()
    {
        var table = JsonRowsDecoder.ToTable(Rows("""
            [{"amount": 12.5, "distance": null, "merchant": "travel"},
             {"merchant": "grocery", "amount": 3}]
            """), Signature);

        Assert.Equal(2, table.RowCount);
        Assert.Equal([12.5, 3.0], table.Numeric("amount").Values[..2]);
        Assert.True(double.IsNaN(table.Numeric("distance").Values[0]));
        Assert.True(double.IsNaN(table.Numeric("distance").Values[1])); // absent and nullable: missing
        Assert.Equal(new string?[] { "travel", "grocery" }, table.Text("merchant").Values);
        Assert.Equal(2, table.Numeric("amount").Values.Length);
    }

    [Theory]
    [InlineData("""[{"amount": 1, "merchant": "travel"}, {"merchant": "travel"}]""", "row 1: amount: required field is missing")]
    [InlineData("""[{"amount": null, "merchant": "travel"}]""", "row 0: amount: null is not allowed (the field is not nullable)")]
    [InlineData("""[{"amount": "twelve", "merchant": "travel"}]""", "row 0: amount: expected a number, got a string")]
    [InlineData("""[{"amount": 1, "merchant": "casino"}]""", "row 0: merchant: category 'casino' was never seen in training")]
    [InlineData("""[{"amount": 1, "merchant": "travel", "colour": "red"}]""", "row 0: colour: unknown field (the model's inputs are amount, distance, merchant)")]
    [InlineData("""[{"amount": [1], "merchant": "travel"}]""", "row 0: amount: expected a number, got an array")]
    public void A_bad_row_is_one_error_naming_the_row_and_the_field(string json, string message)
    {
        var e = Assert.Throws<KilnException>(() => JsonRowsDecoder.ToTable(Rows(json), Signature));
        Assert.Equal(message, e.Message);
    }
}
