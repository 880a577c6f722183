namespace Kiln.Scoring.Validation;

/// <summary>
/// The words of every signature check, shared by request validation (<see cref="InputBatch"/>, cell by cell) and
/// batch scoring (column by column over a whole chunk), so a bad value reads the same wherever it is found.
/// </summary>
public static class ValidationMessages
{
    public const string NullNotAllowed = "null is not allowed (the field is not nullable)";

    public const string RequiredFieldMissing = "required field is missing";

    public const string NaNNotAllowed = "NaN is not allowed (the field is not nullable)";

    public const string NotFinite = "is not a finite number";

    public static string NotANumber(string cell) => $"'{Shorten(cell)}' is not a number";

    public static string UnseenCategory(string value) => $"category '{Shorten(value)}' was never seen in training";

    /// <summary>Why a number does not fit an integer or boolean tensor input, or null when it fits (or the input takes any number).</summary>
    public static string? WholeNumberProblem(double value, string? tensorType)
    {
        var text = value.ToString("R", System.Globalization.CultureInfo.InvariantCulture);
        return tensorType switch
        {
            "bool" when value is not (0 or 1) => $"{text} is not a boolean (send true, false, 0 or 1)",
            "int64" or "int32" when value != Math.Floor(value) => $"{text} is not an integer (the model takes {tensorType})",
            "int32" when value is < int.MinValue or > int.MaxValue => $"{text} is out of range for int32",
            "int64" when value is < -9.2233720368547758e18 or >= 9.2233720368547758e18 => $"{text} is out of range for int64",
            _ => null,
        };
    }

    /// <summary>A value as quoted in a message: long ones are cut at 64 characters.</summary>
    public static string Shorten(string s) => s.Length <= 64 ? s : s[..64] + "…";
}
