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

    /// <summary>A value as quoted in a message: long ones are cut at 64 characters.</summary>
    public static string Shorten(string s) => s.Length <= 64 ? s : s[..64] + "…";
}
