using System.Text.Json.Serialization;
using Kiln.Pipelines.Http;

namespace Kiln.Pipelines;

/// <summary>Source-generated JSON (snake_case) for stored outputs and the HTTP API.</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull, WriteIndented = false)]
[JsonSerializable(typeof(string))]
[JsonSerializable(typeof(IReadOnlyDictionary<string, string>))]
[JsonSerializable(typeof(Dictionary<string, string>))]
[JsonSerializable(typeof(StartRunRequest))]
[JsonSerializable(typeof(EventRequest))]
[JsonSerializable(typeof(RunDto))]
[JsonSerializable(typeof(RunDetailDto))]
[JsonSerializable(typeof(RunListDto))]
[JsonSerializable(typeof(LogListDto))]
[JsonSerializable(typeof(PipelineListDto))]
[JsonSerializable(typeof(EventResultDto))]
[JsonSerializable(typeof(AlertmanagerResultDto))]
[JsonSerializable(typeof(StartRunBody))]
[JsonSerializable(typeof(EventBody))]
public sealed partial class PipelineJson : JsonSerializerContext;
