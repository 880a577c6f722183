using System.CommandLine;
using Kiln.Core;
using Kiln.Serving.Metrics;

namespace Kiln.Cli.Commands;

/// <summary>--otlp-endpoint, --otlp-protocol and --otlp-interval, shared by `kiln serve` and `kiln server`.</summary>
internal sealed class OtlpCliOptions
{
    public Option<string?> Endpoint { get; } = new("--otlp-endpoint")
    {
        Description = "Also push metrics to an OpenTelemetry collector at this URL (e.g. http://127.0.0.1:4318; default $OTEL_EXPORTER_OTLP_ENDPOINT, else none).",
    };

    public Option<string> Protocol { get; } = new("--otlp-protocol") { Description = "OTLP transport: http (http/protobuf, port 4318) or grpc (port 4317).", DefaultValueFactory = _ => "http" };

    public Option<string> Interval { get; } = new("--otlp-interval") { Description = "How often to push metrics.", DefaultValueFactory = _ => "15s" };

    public void AddTo(Command command)
    {
        command.Options.Add(Endpoint);
        command.Options.Add(Protocol);
        command.Options.Add(Interval);
    }

    public OtlpOptions? Read(ParseResult parse)
    {
        var endpoint = parse.GetValue(Endpoint) ?? Environment.GetEnvironmentVariable("OTEL_EXPORTER_OTLP_ENDPOINT");
        if (string.IsNullOrWhiteSpace(endpoint)) return null;
        return OtlpOptions.Parse(endpoint, parse.GetValue(Protocol)!, Duration.Parse(parse.GetValue(Interval)!, "--otlp-interval"));
    }
}
