using System.Reflection;
using Microsoft.AspNetCore.Http;

namespace Kiln.Web.Pages.Shared;

/// <summary>
/// Marks a page whose data is slow to read: under enhanced navigation it is rendered with streaming
/// (<see cref="Microsoft.AspNetCore.Components.StreamRenderingAttribute"/>, through <c>StreamingRegion</c>), so the
/// shell shows first.
/// </summary>
/// <remarks>
/// Not <c>[StreamRendering]</c> on the page itself: a streamed page arrives as a shell plus template elements that only
/// blazor.web.js applies, so a browser without JavaScript would show the shell and never the data. blazor.web.js marks
/// its own requests (<c>Accept: text/html; blazor-enhanced-nav=on</c>), which is the one sign that script runs.
/// </remarks>
[AttributeUsage(AttributeTargets.Class, Inherited = false)]
public sealed class StreamWhenEnhancedAttribute : Attribute;

/// <summary>Whether a request for a page is answered with streaming rendering.</summary>
internal static class EnhancedStreaming
{
    /// <summary>True for an enhanced navigation (or enhanced form) request to a page marked <see cref="StreamWhenEnhancedAttribute"/>.</summary>
    public static bool Applies(HttpContext? http, Type pageType) =>
        http is not null && IsEnhancedNavigation(http.Request) && pageType.GetCustomAttribute<StreamWhenEnhancedAttribute>() is not null;

    /// <summary>blazor.web.js's own fetch of a page: its Accept header carries <c>blazor-enhanced-nav=on</c>.</summary>
    public static bool IsEnhancedNavigation(HttpRequest request)
    {
        foreach (var accept in request.Headers.Accept)
        {
            if (accept is not null && accept.Contains("blazor-enhanced-nav=on", StringComparison.OrdinalIgnoreCase)) return true;
        }
        return false;
    }
}
