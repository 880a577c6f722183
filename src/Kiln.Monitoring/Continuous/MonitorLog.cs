using Microsoft.Extensions.Logging;

namespace Kiln.Monitoring;

/// <summary>Source-generated log messages of continuous monitoring and alerting (event ids 5100–5199).</summary>
internal static partial class MonitorLog
{
    [LoggerMessage(5100, LogLevel.Warning, "alert {Alert} FIRING ({Severity}): {Series} = {Value} ({Condition} {Threshold})")]
    public static partial void AlertFiring(ILogger logger, string alert, string severity, string series, string value, string condition, double threshold);

    [LoggerMessage(5101, LogLevel.Information, "alert {Alert} RESOLVED ({Severity}): {Series} = {Value}")]
    public static partial void AlertResolved(ILogger logger, string alert, string severity, string series, string value);

    [LoggerMessage(5102, LogLevel.Information, "alert {Alert} {From} -> {To}: {Series} = {Value}")]
    public static partial void AlertTransition(ILogger logger, string alert, string from, string to, string series, string value);

    [LoggerMessage(5110, LogLevel.Information, "monitoring: {Targets} target(s), {Rules} rule(s), every {Interval}")]
    public static partial void Started(ILogger logger, int targets, int rules, TimeSpan interval);

    [LoggerMessage(5111, LogLevel.Warning, "monitoring: evaluator {Evaluator} failed on target {Target}: {Message}")]
    public static partial void EvaluationFailed(ILogger logger, string evaluator, string target, string message, Exception exception);

    [LoggerMessage(5112, LogLevel.Debug, "monitoring: target {Target}: {Count} measurement(s) over [{Start:o}, {End:o}) in {Millis} ms")]
    public static partial void Evaluated(ILogger logger, string target, int count, DateTimeOffset start, DateTimeOffset end, long millis);

    [LoggerMessage(5113, LogLevel.Warning, "monitoring: alert sink {Sink} failed: {Message}")]
    public static partial void SinkFailed(ILogger logger, string sink, string message, Exception exception);

    [LoggerMessage(5114, LogLevel.Information, "monitoring: compacted feedback in {Directory}: {Summary}")]
    public static partial void FeedbackCompacted(ILogger logger, string directory, string summary);

    [LoggerMessage(5115, LogLevel.Warning, "monitoring: feedback compaction in {Directory} failed: {Message}")]
    public static partial void FeedbackCompactionFailed(ILogger logger, string directory, string message, Exception exception);

    [LoggerMessage(5116, LogLevel.Warning, "monitoring: alert state {Path} could not be read ({Problem}); starting with no alert pending or firing")]
    public static partial void AlertStateUnreadable(ILogger logger, string path, string problem);

    [LoggerMessage(5117, LogLevel.Information, "monitoring: restored {Count} alert(s) from {Path}")]
    public static partial void AlertStateRestored(ILogger logger, int count, string path);

    [LoggerMessage(5118, LogLevel.Warning, "monitoring: alert state {Path}: {Reason}; not restored")]
    public static partial void AlertStateSkipped(ILogger logger, string path, string reason);

    [LoggerMessage(5119, LogLevel.Warning, "monitoring: alert state {Path} could not be written: {Message}")]
    public static partial void AlertStateSaveFailed(ILogger logger, string path, string message, Exception exception);

    [LoggerMessage(5120, LogLevel.Warning, "{Kind} {Url}: attempt {Attempt}/{Attempts} failed ({Reason}); retrying in {DelayMs} ms")]
    public static partial void DeliveryRetry(ILogger logger, string kind, Uri url, int attempt, int attempts, string reason, long delayMs);

    [LoggerMessage(5121, LogLevel.Error, "{Kind} {Url}: gave up after {Attempt} attempt(s): {Reason} ({Description})")]
    public static partial void DeliveryFailed(ILogger logger, string kind, Uri url, int attempt, string reason, string description);

    [LoggerMessage(5122, LogLevel.Debug, "{Kind} {Url}: delivered ({Description}) on attempt {Attempt}")]
    public static partial void Delivered(ILogger logger, string kind, Uri url, string description, int attempt);

    [LoggerMessage(5123, LogLevel.Warning, "{Kind}: the delivery queue is full ({Capacity}); dropped the oldest notification ({Description})")]
    public static partial void DeliveryDropped(ILogger logger, string kind, int capacity, string description);
}
