using Kiln.Core;

namespace Kiln.Tracking;

/// <summary>MLflow's error codes that Kiln's stores raise; each maps to an HTTP status.</summary>
public enum ErrorCode
{
    InvalidParameterValue,
    ResourceDoesNotExist,
    ResourceAlreadyExists,
    InvalidState,
    BadRequest,
    InternalError,
}

/// <summary>A tracking or registry error with MLflow's error code; the message names the field or resource at fault.</summary>
public sealed class TrackingException : KilnException
{
    public TrackingException(ErrorCode code, string message) : base(message) => Code = code;

    public TrackingException(ErrorCode code, string message, Exception inner) : base(message, inner) => Code = code;

    public TrackingException() : this(ErrorCode.InternalError, "tracking error") { }

    public TrackingException(string message) : this(ErrorCode.InternalError, message) { }

    public TrackingException(string message, Exception inner) : this(ErrorCode.InternalError, message, inner) { }

    public ErrorCode Code { get; }

    /// <summary>MLflow's spelling of the code, e.g. RESOURCE_DOES_NOT_EXIST.</summary>
    public string MlflowCode => ToMlflow(Code);

    /// <summary>The HTTP status MLflow answers with for this code.</summary>
    public int HttpStatus => Code switch
    {
        ErrorCode.ResourceDoesNotExist => 404,
        ErrorCode.InternalError => 500,
        _ => 400,
    };

    public static string ToMlflow(ErrorCode code) => code switch
    {
        ErrorCode.InvalidParameterValue => "INVALID_PARAMETER_VALUE",
        ErrorCode.ResourceDoesNotExist => "RESOURCE_DOES_NOT_EXIST",
        ErrorCode.ResourceAlreadyExists => "RESOURCE_ALREADY_EXISTS",
        ErrorCode.InvalidState => "INVALID_STATE",
        ErrorCode.BadRequest => "BAD_REQUEST",
        _ => "INTERNAL_ERROR",
    };

    public static ErrorCode FromMlflow(string? code) => code switch
    {
        "INVALID_PARAMETER_VALUE" => ErrorCode.InvalidParameterValue,
        "RESOURCE_DOES_NOT_EXIST" => ErrorCode.ResourceDoesNotExist,
        "RESOURCE_ALREADY_EXISTS" => ErrorCode.ResourceAlreadyExists,
        "INVALID_STATE" => ErrorCode.InvalidState,
        "BAD_REQUEST" or "MALFORMED_REQUEST" => ErrorCode.BadRequest,
        _ => ErrorCode.InternalError,
    };

    public static TrackingException NotFound(string message) => new(ErrorCode.ResourceDoesNotExist, message);

    public static TrackingException Invalid(string message) => new(ErrorCode.InvalidParameterValue, message);

    public static TrackingException Exists(string message) => new(ErrorCode.ResourceAlreadyExists, message);
}
