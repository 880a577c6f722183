using Microsoft.Extensions.Logging;

namespace Kiln.Serving.Logging;

/// <summary>The server's log messages (source-generated, stable event ids).</summary>
internal static partial class ServingLog
{
    [LoggerMessage(1001, LogLevel.Information, "Model {Model} version {Version} loaded from {Directory} in {Milliseconds} ms")]
    public static partial void ModelLoaded(ILogger logger, string model, string version, string directory, long milliseconds);

    [LoggerMessage(1002, LogLevel.Error, "Model {Model} version {Version} failed to load from {Uri}: {Reason}")]
    public static partial void ModelLoadFailed(ILogger logger, string model, string version, string uri, string reason);

    [LoggerMessage(1003, LogLevel.Information, "Model {Model} now serves version {Version} (was {Previous})")]
    public static partial void ModelSwapped(ILogger logger, string model, string version, string previous);

    [LoggerMessage(1005, LogLevel.Warning, "Model {Model} version {Version} loaded, but its features cannot be bound yet (requests answer 503 until the feature store is usable): {Reason}")]
    public static partial void FeatureBindingFailed(ILogger logger, string model, string version, string reason);

    [LoggerMessage(1004, LogLevel.Warning, "Polling {Uri} for a new version failed: {Reason}")]
    public static partial void PollFailed(ILogger logger, string uri, string reason);

    [LoggerMessage(1101, LogLevel.Warning, "Prediction log is full: {Dropped} rows dropped so far")]
    public static partial void LogDropping(ILogger logger, long dropped);

    [LoggerMessage(1102, LogLevel.Error, "Prediction log write to {Path} failed: {Reason}")]
    public static partial void LogWriteFailed(ILogger logger, string path, string reason);

    [LoggerMessage(1103, LogLevel.Information, "Prediction log closed {Path} with {Rows} rows")]
    public static partial void LogFileClosed(ILogger logger, string path, long rows);

    [LoggerMessage(1104, LogLevel.Information, "Prediction log uploaded {Key}")]
    public static partial void LogUploaded(ILogger logger, string key);

    [LoggerMessage(1105, LogLevel.Warning, "Prediction log upload of {Key} failed (kept in the spool, tried again): {Reason}")]
    public static partial void LogUploadFailed(ILogger logger, string key, string reason);

    [LoggerMessage(1201, LogLevel.Information, "Serving HTTP on {HttpUrl}, gRPC on {GrpcUrl}")]
    public static partial void Listening(ILogger logger, string httpUrl, string grpcUrl);
}
