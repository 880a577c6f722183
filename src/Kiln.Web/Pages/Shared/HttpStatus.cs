using Microsoft.AspNetCore.Http;

namespace Kiln.Web.Pages.Shared;

/// <summary>Sets a page's HTTP status from inside its rendering.</summary>
internal static class HttpStatus
{
    /// <summary>
    /// Answers with the status and the page rendered. A 404 is set as the response starts: a static render that ends
    /// with 404 is otherwise left unwritten for a status-code re-execution, and the user would get an empty page.
    /// </summary>
    public static void Set(HttpContext? http, int status)
    {
        if (http is null || http.Response.HasStarted) return;
        if (status != StatusCodes.Status404NotFound)
        {
            http.Response.StatusCode = status;
            return;
        }
        http.Response.OnStarting(() =>
        {
            http.Response.StatusCode = status;
            return Task.CompletedTask;
        });
    }
}
