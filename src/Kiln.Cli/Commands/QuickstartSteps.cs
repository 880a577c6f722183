using Kiln.Scoring;
using Kiln.Scoring.Validation;
using Kiln.Serving;
using Kiln.Tracking;
using Kiln.Training;
using Spectre.Console;

namespace Kiln.Cli.Commands;

/// <summary>The quickstart's steps after training: register in the embedded registry, promote, resolve and score.</summary>
internal static class QuickstartSteps
{
    /// <summary>The embedded tracking store the quickstart uses.</summary>
    public const string TrackingUri = "./.kiln";

    public static async Task<string> AfterTrainingAsync(TrainingSpec spec, TrainingResult result, CancellationToken ct)
    {
        Cli.Err.MarkupLine($"[bold]2. Track and register[/] the run in the embedded store ({TrackingUri}: SQLite + local artifacts)");
        var version = await TrainingRuns.LogAsync(TrackingUri, "quickstart", spec.Name, spec, result, Cli.Err.WriteLine, ct);
        await using var stores = TrackingStores.Open(TrackingUri);
        var before = (await stores.Registry.GetAliasHistoryAsync(version!.Name, "production", ct)) is [.., var last] ? last.ToVersion : null;
        await stores.Registry.SetAliasAsync(version.Name, "production", version.Version, Environment.UserName, ct);
        var uri = $"models:/{version.Name}@production";
        Cli.Err.MarkupLineInterpolated($"Alias [green]production[/] now points at version {version.Version}: {uri}");
        if (version.Version > 1)
        {
            // A second quickstart in the same directory is not a no-op: say what it changed and how to undo it.
            Cli.Err.MarkupLineInterpolated($"[yellow]{TrackingUri} already held {version.Version - 1} version(s) of {version.Name}[/]: this run registered version {version.Version} and moved production from {before?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "nowhere"} to it. Undo with ./kiln models rollback {version.Name} production; start afresh by deleting {TrackingUri}.");
        }

        Cli.Err.MarkupLine("[bold]3. Resolve and score[/] the registered package in-process (checksums verified on load)");
        var locator = new RegistryModelLocator(stores);
        var resolved = await locator.ResolveAsync(uri, ct);
        using var scorer = Scorers.Open(resolved.PackageDirectory);
        var example = scorer.Package.ReadInputExample();
        var predictions = scorer.ScoreAll(JsonRowsDecoder.ToTable(example, scorer.Package.Signature));
        var t = new Table().AddColumns("input", "prediction", "probability");
        for (var i = 0; i < predictions.Length; i++)
            t.AddRow(Markup.Escape(string.Join(", ", example[i].Select(kv => $"{kv.Key}={kv.Value}"))), Markup.Escape(predictions[i].Label ?? ""),
                predictions[i].Value.ToString("0.000", System.Globalization.CultureInfo.InvariantCulture));
        Cli.Err.Write(t);

        Cli.Err.MarkupLine($"[bold]4. Serve[/] {uri} over HTTP and ask for a prediction");
        await using var server = await ServingHost.BuildAsync(new ServeOptions
        {
            Models = [ModelSpec.Parse(uri)],
            Locator = locator,
            Port = 0,
            GrpcPort = null,
            LogDirectory = Path.GetFullPath(Path.Combine(".kiln", "prediction-log")),
        });
        await server.StartAndLoadAsync(ct); // the first load ends before the request, so it is never answered 503 "not loaded yet"
        using var http = new HttpClient { BaseAddress = server.HttpUri };
        var body = System.Text.Json.JsonSerializer.Serialize(example[0], CliJson.Default.DictionaryStringJsonElement);
        using var response = await http.PostAsync(new Uri("/predict", UriKind.Relative), new StringContent(body, System.Text.Encoding.UTF8, "application/json"), ct);
        var answer = await response.Content.ReadAsStringAsync(ct);
        Cli.Err.MarkupLineInterpolated($"POST {server.HttpUri}predict {body}");
        Cli.Err.MarkupLineInterpolated($"-> {(int)response.StatusCode} {answer}");
        await server.StopAsync(CancellationToken.None);
        if (!response.IsSuccessStatusCode) throw new Kiln.Core.KilnException($"the served model answered {(int)response.StatusCode}: {answer}");
        Cli.Err.MarkupLineInterpolated($"To keep it served: [bold]./kiln serve --model {uri}[/] (port 8080, gRPC 8081); promote another version with ./kiln models alias set fraud production N and it swaps in within seconds.");
        return uri;
    }
}
