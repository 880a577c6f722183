using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Kiln.Testing;
using Kiln.Scoring.Validation;

namespace Kiln.Serving.Tests;

/// <summary>One real server on loopback ports for a test class: the fraud model (default), the spend regression model, and the fraud model again under the flag policy.</summary>
public sealed class ServerFixture : IAsyncLifetime
{
    public TempDir Dir { get; } = new("kiln-serving");

    public string FraudPackage { get; private set; } = "";

    public string SpendPackage { get; private set; } = "";

    public ServingHost Host { get; private set; } = null!;

    public HttpClient Http { get; private set; } = null!;

    public string LogDir => Dir.File("log");

    public async Task InitializeAsync()
    {
        FraudPackage = TestPackages.CreateFraud(Dir.File("fraud"));
        SpendPackage = TestPackages.CreateSpend(Dir.File("spend"));
        Host = await ServingHost.BuildAsync(new ServeOptions
        {
            Models = [new ModelSpec(FraudPackage), new ModelSpec(SpendPackage), new ModelSpec(FraudPackage, "fraud-flag", UnseenCategoryPolicy.Flag)],
            Port = 0,
            GrpcPort = 0,
            LogDirectory = LogDir,
            MaxRequestBodyBytes = 64 * 1024,
            PollInterval = TimeSpan.Zero,
        }, logging: _ => { });
        await Host.StartAndLoadAsync();
        Assert.True(Host.Models.AllReady, string.Join("; ", Host.Models.Slots.Select(s => s.LastError)));
        Http = new HttpClient { BaseAddress = Host.HttpUri };
    }

    public async Task DisposeAsync()
    {
        Http.Dispose();
        await Host.StopAsync();
        await Host.DisposeAsync();
        Dir.Dispose();
    }

    public async Task<(int Status, JsonElement Body, HttpResponseMessage Response)> PostAsync(string path, string body, string contentType = "application/json")
    {
        using var content = new StringContent(body, Encoding.UTF8);
        content.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType);
        var response = await Http.PostAsync(path, content);
        var text = await response.Content.ReadAsStringAsync();
        var json = text.Length > 0 && (response.Content.Headers.ContentType?.MediaType?.Contains("json") ?? false)
            ? JsonDocument.Parse(text).RootElement.Clone() : default;
        return ((int)response.StatusCode, json, response);
    }

    public async Task<(int Status, JsonElement Body)> GetAsync(string path)
    {
        var response = await Http.GetAsync(path);
        var text = await response.Content.ReadAsStringAsync();
        return ((int)response.StatusCode, text.Length > 0 ? JsonDocument.Parse(text).RootElement.Clone() : default);
    }
}
