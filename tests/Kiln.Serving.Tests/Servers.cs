using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace Kiln.Serving.Tests;

/// <summary>A server for one test (lifecycle tests: hot swap, shutdown, overload), with a client.</summary>
public sealed class OwnServer : IAsyncDisposable
{
    private bool _stopped;

    private OwnServer(ServingHost host)
    {
        Host = host;
        Http = new HttpClient { BaseAddress = host.HttpUri };
    }

    public ServingHost Host { get; }

    public HttpClient Http { get; }

    public static async Task<OwnServer> StartAsync(ServeOptions options)
    {
        var host = await ServingHost.BuildAsync(options, logging: _ => { });
        await host.StartAndLoadAsync();
        return new OwnServer(host);
    }

    public async Task<(int Status, JsonElement Body)> PostAsync(string path, string json)
    {
        using var content = new StringContent(json, Encoding.UTF8);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        using var response = await Http.PostAsync(path, content);
        var text = await response.Content.ReadAsStringAsync();
        return ((int)response.StatusCode, text.Length > 0 && text[0] is '{' or '[' ? JsonDocument.Parse(text).RootElement.Clone() : default);
    }

    public async Task<(int Status, JsonElement Body)> GetAsync(string path)
    {
        using var response = await Http.GetAsync(path);
        var text = await response.Content.ReadAsStringAsync();
        return ((int)response.StatusCode, text.Length > 0 && text[0] is '{' or '[' ? JsonDocument.Parse(text).RootElement.Clone() : default);
    }

    public async Task<string> MetricsAsync() => await Http.GetStringAsync("/metrics");

    /// <summary>Graceful stop: drain requests, then write out the prediction log.</summary>
    public async Task StopAsync()
    {
        if (_stopped) return;
        _stopped = true;
        await Host.StopAsync();
    }

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        await StopAsync();
        await Host.DisposeAsync();
    }
}
