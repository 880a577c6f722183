using System.Collections.Concurrent;
using System.Net;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Kiln.Monitoring.Tests.Alerts;

/// <summary>
/// A real HTTP receiver on a loopback port (Kestrel). Each request gets the next scripted answer (the last one
/// repeats); every request is recorded with its body and headers.
/// </summary>
internal sealed class WebhookReceiver : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ConcurrentQueue<(int Status, TimeSpan Delay)> _script = new();
    private (int Status, TimeSpan Delay) _last = (200, TimeSpan.Zero);

    public sealed record Received(string Path, JsonElement Body, IReadOnlyDictionary<string, string> Headers);

    public ConcurrentQueue<Received> Requests { get; } = new();

    public SemaphoreSlim Arrived { get; } = new(0);

    private WebhookReceiver(WebApplication app) => _app = app;

    public Uri Url => new(_app.Urls.First() + "/hook");

    public Uri Base => new(_app.Urls.First() + "/");

    public static async Task<WebhookReceiver> StartAsync(params (int Status, TimeSpan Delay)[] answers)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(k => k.Listen(IPAddress.Loopback, 0));
        var app = builder.Build();
        var receiver = new WebhookReceiver(app);
        foreach (var a in answers) receiver._script.Enqueue(a);
        app.MapPost("/{**path}", async (HttpContext http, CancellationToken ct) =>
        {
            using var doc = await JsonDocument.ParseAsync(http.Request.Body, cancellationToken: ct);
            var headers = http.Request.Headers.ToDictionary(h => h.Key, h => h.Value.ToString(), StringComparer.OrdinalIgnoreCase);
            receiver.Requests.Enqueue(new Received(http.Request.Path, doc.RootElement.Clone(), headers));
            var answer = receiver._script.TryDequeue(out var next) ? receiver._last = next : receiver._last;
            receiver.Arrived.Release();
            if (answer.Delay > TimeSpan.Zero)
            {
                try
                {
                    await Task.Delay(answer.Delay, ct);
                }
                catch (OperationCanceledException)
                {
                }
            }
            return Results.StatusCode(answer.Status);
        });
        await app.StartAsync();
        return receiver;
    }

    /// <summary>Waits (bounded) until <paramref name="count"/> requests arrived in all.</summary>
    public async Task WaitForAsync(int count, TimeSpan? within = null)
    {
        var deadline = DateTime.UtcNow + (within ?? TimeSpan.FromSeconds(30));
        while (Requests.Count < count)
        {
            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero) throw new TimeoutException($"expected {count} request(s), got {Requests.Count}");
            await Arrived.WaitAsync(left);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
