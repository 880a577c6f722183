using Kiln.Core;
using Kiln.Http;
using Kiln.Pipelines.Definition;
using Kiln.Pipelines.Execution;
using Kiln.Pipelines.State;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Routing;

namespace Kiln.Pipelines.Http;

/// <summary>The pipeline API under <c>/api/v1/pipelines</c>: start, list, show, logs, cancel, resume, events, Alertmanager's webhook.</summary>
public static class PipelineEndpoints
{
    public static IEndpointRouteBuilder MapKilnPipelineEndpoints(this IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapGroup("/api/v1/pipelines").WithTags("pipelines");
        group.MapGet("/", ListPipelines);
        group.MapPost("/runs", StartRun);
        group.MapGet("/runs", ListRuns);
        group.MapGet("/runs/{runId}", ShowRun);
        group.MapGet("/runs/{runId}/logs", Logs);
        group.MapPost("/runs/{runId}/cancel", Cancel);
        group.MapPost("/runs/{runId}/resume", Resume);
        group.MapPost("/events/{eventName}", TriggerEvent);
        group.MapPost("/alertmanager", (HttpRequest request, AlertmanagerReceiver receiver, CancellationToken ct) => receiver.ReceiveAsync(request, ct));
        return endpoints;
    }

    private static JsonHttpResult<PipelineListDto> ListPipelines(PipelineEngine engine, CancellationToken cancellationToken) =>
        TypedResults.Json(new PipelineListDto([.. engine.Catalog.All.Select(PipelineDto.From)]), PipelineJson.Default.PipelineListDto);

    private static async Task<Results<JsonHttpResult<RunDto>, ProblemHttpResult>> StartRun(HttpRequest request, PipelineEngine engine, CancellationToken cancellationToken)
    {
        var (body, problem) = await JsonBodies.ReadAsync(request, PipelineJson.Default.StartRunRequest, BodyProblem("start request"), cancellationToken: cancellationToken)
            .ConfigureAwait(false);
        if (problem is not null) return problem;
        if (body is null || (body.Pipeline is null) == (body.Definition is null))
            return Problem(StatusCodes.Status400BadRequest, "invalid start request", "give exactly one of 'pipeline' (a known pipeline's name) or 'definition' (pipeline YAML)");
        PipelineDefinition def;
        if (body.Pipeline is not null)
        {
            var known = engine.Catalog.Find(body.Pipeline);
            if (known is null) return Problem(StatusCodes.Status404NotFound, "unknown pipeline", $"pipeline: no pipeline named '{body.Pipeline}' is loaded");
            def = known;
        }
        else
        {
            try
            {
                def = PipelineLoader.Load(body.Definition!, engine.Kinds, "definition");
            }
            catch (KilnException e)
            {
                return Problem(StatusCodes.Status422UnprocessableEntity, "invalid pipeline", e.Message);
            }
        }
        try
        {
            var run = await engine.StartAsync(def, ParameterValues.ToStrings(body.Params), "api", null, cancellationToken).ConfigureAwait(false);
            return TypedResults.Json(RunDto.From(run), PipelineJson.Default.RunDto, statusCode: StatusCodes.Status202Accepted);
        }
        catch (PipelineValidationException e)
        {
            return Problem(StatusCodes.Status422UnprocessableEntity, "invalid parameters", e.Message);
        }
    }

    private static async Task<Results<JsonHttpResult<RunListDto>, ProblemHttpResult>> ListRuns(PipelineEngine engine, string? pipeline, string? state, int? limit, CancellationToken cancellationToken)
    {
        RunState? s = null;
        if (state is not null)
        {
            try
            {
                s = StateNames.ParseRun(state);
            }
            catch (InvalidDataException)
            {
                return Problem(StatusCodes.Status400BadRequest, "invalid query", $"state: '{state}' is not one of pending, running, succeeded, failed, cancelled");
            }
        }
        if (limit is < 1 or > 1000) return Problem(StatusCodes.Status400BadRequest, "invalid query", "limit: must be between 1 and 1000");
        var runs = await Runs(engine).ListRunsAsync(pipeline, s, limit ?? 50, cancellationToken).ConfigureAwait(false);
        return TypedResults.Json(runs, PipelineJson.Default.RunListDto);
    }

    private static async Task<Results<JsonHttpResult<RunDetailDto>, ProblemHttpResult>> ShowRun(string runId, PipelineEngine engine, CancellationToken cancellationToken)
    {
        try
        {
            return TypedResults.Json(await Runs(engine).GetRunAsync(runId, cancellationToken).ConfigureAwait(false), PipelineJson.Default.RunDetailDto);
        }
        catch (RunNotFoundException)
        {
            return NotFound(runId);
        }
    }

    private static async Task<Results<JsonHttpResult<LogListDto>, ProblemHttpResult>> Logs(string runId, string? task, long? after, PipelineEngine engine, CancellationToken cancellationToken)
    {
        try
        {
            return TypedResults.Json(await Runs(engine).GetLogsAsync(runId, task, after ?? 0, cancellationToken).ConfigureAwait(false), PipelineJson.Default.LogListDto);
        }
        catch (RunNotFoundException)
        {
            return NotFound(runId);
        }
    }

    private static async Task<Results<JsonHttpResult<RunDto>, ProblemHttpResult>> Cancel(string runId, PipelineEngine engine, CancellationToken cancellationToken)
    {
        try
        {
            var run = await Runs(engine).CancelAsync(runId, cancellationToken).ConfigureAwait(false);
            return TypedResults.Json(run, PipelineJson.Default.RunDto, statusCode: StatusCodes.Status202Accepted);
        }
        catch (RunNotFoundException)
        {
            return NotFound(runId);
        }
        catch (RunFinishedException e)
        {
            return Problem(StatusCodes.Status409Conflict, "run already finished", e.Message);
        }
    }

    /// <summary>The server's runs, answered by the same code as an embedded store's in the CLI.</summary>
    private static StorePipelineRuns Runs(PipelineEngine engine) => new(engine.Store, engine, ownsStore: false);

    private static async Task<Results<JsonHttpResult<RunDto>, ProblemHttpResult>> Resume(string runId, PipelineEngine engine, CancellationToken cancellationToken)
    {
        var run = await engine.Store.GetRunAsync(runId, cancellationToken).ConfigureAwait(false);
        if (run is null) return NotFound(runId);
        if (run.State == RunState.Succeeded)
            return Problem(StatusCodes.Status409Conflict, "run already succeeded", $"run {runId} already succeeded; there is nothing to resume");
        try
        {
            await engine.ResumeInBackgroundAsync(runId, cancellationToken).ConfigureAwait(false);
        }
        catch (KilnException e)
        {
            return Problem(StatusCodes.Status409Conflict, "cannot resume", e.Message);
        }
        var after = await engine.Store.GetRunAsync(runId, cancellationToken).ConfigureAwait(false);
        return TypedResults.Json(RunDto.From(after!), PipelineJson.Default.RunDto, statusCode: StatusCodes.Status202Accepted);
    }

    private static async Task<Results<JsonHttpResult<EventResultDto>, ProblemHttpResult>> TriggerEvent(string eventName, HttpRequest request, PipelineEngine engine, CancellationToken cancellationToken)
    {
        EventRequest? body = null;
        if (request.ContentLength is > 0 || request.Headers.TransferEncoding.Count > 0)
        {
            (body, var problem) = await JsonBodies.ReadAsync(request, PipelineJson.Default.EventRequest, BodyProblem("event"), cancellationToken: cancellationToken)
                .ConfigureAwait(false);
            if (problem is not null) return problem;
        }
        try
        {
            var runs = await engine.TriggerByEventAsync(eventName, ParameterValues.ToStrings(body?.Payload), cancellationToken).ConfigureAwait(false);
            return TypedResults.Json(new EventResultDto(eventName, [.. runs.Select(RunDto.From)]), PipelineJson.Default.EventResultDto, statusCode: StatusCodes.Status202Accepted);
        }
        catch (PipelineValidationException e)
        {
            return Problem(StatusCodes.Status422UnprocessableEntity, "invalid parameters", e.Message);
        }
    }

    private static ProblemHttpResult NotFound(string runId) =>
        Problem(StatusCodes.Status404NotFound, "run not found", $"run_id: no pipeline run '{runId}'");

    /// <summary>A body that is not JSON of the request's shape is a 400; a <c>null</c> body is left to the endpoint's own checks.</summary>
    private static Func<JsonBodyError, ProblemHttpResult?> BodyProblem(string what) => e => e.Failure switch
    {
        JsonBodyFailure.Missing => null,
        JsonBodyFailure.TooLarge => Problem(StatusCodes.Status413PayloadTooLarge, "body too large", $"the {what} is larger than {e.Limit} bytes"),
        _ => Problem(StatusCodes.Status400BadRequest, "invalid JSON body", $"the body is not a valid {what}: {e.Detail}"),
    };

    private static ProblemHttpResult Problem(int status, string title, string detail) =>
        TypedResults.Problem(detail: detail, statusCode: status, title: title);
}
