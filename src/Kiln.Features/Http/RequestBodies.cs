using Kiln.Http;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Kiln.Features.Http;

/// <summary>How the feature endpoints (online features, push, the registry API) word a body they could not read.</summary>
internal static class RequestBodies
{
    /// <summary>"request body: …", answered with the endpoint's own 400.</summary>
    public static Func<JsonBodyError, ProblemHttpResult> Problem(Func<string, ProblemHttpResult> invalid) => e => invalid(e.Failure switch
    {
        JsonBodyFailure.Missing => "request body: empty",
        JsonBodyFailure.TooLarge => $"request body: larger than {e.Limit} bytes",
        _ => $"request body: {e.Detail}",
    });
}
