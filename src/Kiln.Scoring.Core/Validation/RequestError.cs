namespace Kiln.Scoring.Validation;

/// <summary>
/// A client mistake found while reading or validating a request: the HTTP status to answer
/// (400 malformed, 413 too large, 415 wrong content type, 422 valid JSON that breaks the
/// signature), the field at fault (when there is one), the row (for batches) and a one-line message.
/// </summary>
public sealed record RequestError(int Status, string Message, string? Field = null, int? Row = null)
{
    /// <summary>A stable short code: malformed_json, invalid_input, payload_too_large, unsupported_media_type…</summary>
    public string Code { get; init; } = Status switch
    {
        413 => "payload_too_large",
        415 => "unsupported_media_type",
        422 => "invalid_input",
        404 => "not_found",
        503 => "unavailable",
        _ => "bad_request",
    };

    public static RequestError Malformed(string message) => new(400, message) { Code = "malformed_json" };

    public static RequestError Invalid(string field, int row, bool batch, string message) =>
        new(422, batch ? $"row {row}: {field}: {message}" : $"{field}: {message}", field, batch ? row : null);
}
