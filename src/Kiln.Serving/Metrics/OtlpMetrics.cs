using Kiln.Core;
using OpenTelemetry;
using OpenTelemetry.Exporter;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;

namespace Kiln.Serving.Metrics;

/// <summary>Where and how often to push metrics over OTLP (--otlp-endpoint, --otlp-protocol, --otlp-interval).</summary>
public sealed record OtlpOptions(Uri Endpoint, OtlpExportProtocol Protocol, TimeSpan Interval)
{
    /// <summary>
    /// Reads the options as given on the command line: an http(s) URL; with http/protobuf a base URL
    /// (a collector's :4318) gets OTLP's /v1/metrics path appended, a URL that names a path is used as it is.
    /// </summary>
    public static OtlpOptions Parse(string endpoint, string protocol, TimeSpan interval)
    {
        if (!Uri.TryCreate(endpoint, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
            throw new KilnException($"--otlp-endpoint: '{endpoint}' is not an http(s) URL (e.g. http://127.0.0.1:4318)");
        var kind = protocol switch
        {
            "http" or "http/protobuf" => OtlpExportProtocol.HttpProtobuf,
            "grpc" => OtlpExportProtocol.Grpc,
            _ => throw new KilnException($"--otlp-protocol: '{protocol}' is not a protocol (expected http or grpc)"),
        };
        if (interval <= TimeSpan.Zero) throw new KilnException($"--otlp-interval: must be positive");
        if (kind == OtlpExportProtocol.HttpProtobuf && uri.AbsolutePath is "/" or "") uri = new Uri(uri, "v1/metrics");
        return new OtlpOptions(uri, kind, interval);
    }
}

/// <summary>
/// Pushes the same instruments that /metrics exposes to an OpenTelemetry collector through
/// OpenTelemetry's own OTLP exporter, beside Kiln's Prometheus page rather than instead of it.
/// </summary>
public static class OtlpMetrics
{
    public static MeterProvider Start(OtlpOptions options, string serviceName, params string[] meters) =>
        Sdk.CreateMeterProviderBuilder()
            .ConfigureResource(r => r.AddService(serviceName))
            .AddMeter(meters)
            .AddOtlpExporter((exporter, reader) =>
            {
                exporter.Endpoint = options.Endpoint;
                exporter.Protocol = options.Protocol;
                reader.PeriodicExportingMetricReaderOptions.ExportIntervalMilliseconds = (int)Math.Clamp(options.Interval.TotalMilliseconds, 100, int.MaxValue);
            })
            .Build();
}
