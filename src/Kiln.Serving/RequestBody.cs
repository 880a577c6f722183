using System.Buffers;
using Kiln.Scoring.Validation;
using Microsoft.AspNetCore.Http;
using Microsoft.Net.Http.Headers;

namespace Kiln.Serving;

/// <summary>A request body read whole into a pooled buffer; dispose to give the buffer back.</summary>
public sealed class RequestBody : IDisposable
{
    private byte[]? _buffer;

    private RequestBody(byte[] buffer, int length, string mediaType)
    {
        _buffer = buffer;
        Length = length;
        MediaType = mediaType;
    }

    public int Length { get; }

    /// <summary>The content type without parameters, lower case (application/json, text/csv).</summary>
    public string MediaType { get; }

    public ReadOnlySpan<byte> Span => _buffer.AsSpan(0, Length);

    public ReadOnlyMemory<byte> Memory => _buffer.AsMemory(0, Length);

    public void Dispose()
    {
        if (_buffer is { } b) ArrayPool<byte>.Shared.Return(b);
        _buffer = null;
    }

    /// <summary>
    /// Checks the content type against the accepted ones (415 otherwise) and reads the body,
    /// refusing more than <paramref name="maxBytes"/> (413).
    /// </summary>
    public static async Task<(RequestBody? Body, RequestError? Error)> ReadAsync(HttpRequest request, long maxBytes, string[] accepted, CancellationToken ct)
    {
        var mediaType = MediaTypeOf(request.ContentType, accepted);
        if (Array.IndexOf(accepted, mediaType) < 0)
            return (null, new RequestError(415, $"content type '{request.ContentType ?? "(none)"}' is not accepted here; send {string.Join(" or ", accepted)}"));
        if (request.ContentLength is long declared && declared > maxBytes)
            return (null, TooLarge(maxBytes));
        var size = (int)Math.Min(request.ContentLength ?? 4096, maxBytes);
        var buffer = ArrayPool<byte>.Shared.Rent(Math.Max(size, 256));
        var length = 0;
        try
        {
            var stream = request.Body;
            while (true)
            {
                if (length == buffer.Length)
                {
                    if (length >= maxBytes) { ArrayPool<byte>.Shared.Return(buffer); return (null, TooLarge(maxBytes)); }
                    var bigger = ArrayPool<byte>.Shared.Rent((int)Math.Min((long)buffer.Length * 2, maxBytes + 1));
                    buffer.AsSpan(0, length).CopyTo(bigger);
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = bigger;
                }
                var n = await stream.ReadAsync(buffer.AsMemory(length), ct).ConfigureAwait(false);
                if (n == 0) break;
                length += n;
                if (length > maxBytes) { ArrayPool<byte>.Shared.Return(buffer); return (null, TooLarge(maxBytes)); }
                // A declared length read whole: done, without another read to learn that the body ended
                // (the server never hands over more than Content-Length).
                if (length == request.ContentLength) break;
            }
            return (new RequestBody(buffer, length, mediaType), null);
        }
        catch (BadHttpRequestException e)
        {
            ArrayPool<byte>.Shared.Return(buffer);
            return (null, e.StatusCode == 413 ? TooLarge(maxBytes) : new RequestError(e.StatusCode, e.Message));
        }
        catch
        {
            ArrayPool<byte>.Shared.Return(buffer);
            throw;
        }
    }

    /// <summary>The media type without parameters, lower case; an accepted type sent exactly as written is returned without parsing.</summary>
    private static string MediaTypeOf(string? contentType, string[] accepted)
    {
        if (contentType is null) return "";
        foreach (var a in accepted) if (string.Equals(contentType, a, StringComparison.OrdinalIgnoreCase)) return a;
        return MediaTypeHeaderValue.TryParse(contentType, out var parsed) && parsed.MediaType.HasValue ? parsed.MediaType.Value!.ToLowerInvariant() : "";
    }

    private static RequestError TooLarge(long maxBytes) => new(413, $"the request body is larger than the limit of {maxBytes} bytes");
}
