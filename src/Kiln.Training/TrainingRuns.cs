using System.Globalization;
using Kiln.Core;
using Kiln.Core.Packaging;
using Kiln.Tracking;

namespace Kiln.Training;

/// <summary>What `kiln train` (and the quickstart) does with a tracking store after training: log the run, upload the package, register it.</summary>
public static class TrainingRuns
{
    /// <summary>The run's artifact path that holds the package.</summary>
    public const string PackageArtifactPath = "package";

    /// <summary>
    /// Logs the training run (params, metrics, the package) and registers a version when asked; returns it, or null.
    /// Each step done is told to <paramref name="report"/> as one line.
    /// </summary>
    public static async Task<ModelVersion?> LogAsync(string? trackingUri, string? experiment, string? register, TrainingSpec spec,
        TrainingResult result, Action<string>? report, CancellationToken ct)
    {
        if (trackingUri is null)
        {
            if (register is not null) throw new KilnException("--register needs --tracking-uri (a local path such as ./.kiln, or http://host:5000)");
            return null;
        }
        var stores = TrackingStores.Open(trackingUri);
        await using var storesScope = stores.ConfigureAwait(false);
        var client = new TrackingClient(stores);
        var package = ModelPackage.Load(result.PackageDirectory);
        var run = await client.StartRunAsync(experiment ?? spec.Name, runName: $"{spec.Name}-{DateTime.UtcNow:yyyyMMdd-HHmmss}",
            tags: [new KeyValue("kiln.task", spec.Task.ToString().ToLowerInvariant()), new KeyValue("kiln.trainer", spec.Trainer.Kind),
                   .. package.Metadata.GitCommit is { } git ? new[] { new KeyValue("mlflow.source.git.commit", git) } : []], ct: ct).ConfigureAwait(false);
        try
        {
            var @params = new Dictionary<string, string>(StringComparer.Ordinal)
            {
                ["task"] = spec.Task.ToString().ToLowerInvariant(),
                ["data"] = spec.FeaturesFrom?.Entities ?? spec.Data,
                ["label"] = spec.Label,
                ["features"] = string.Join(",", spec.Features.Select(f => f.Name)),
                ["trainer"] = spec.Trainer.Kind,
                ["holdout"] = spec.Holdout.ToString(CultureInfo.InvariantCulture),
                ["seed"] = spec.Seed.ToString(CultureInfo.InvariantCulture),
                ["dataset_sha256"] = package.Metadata.Dataset?.Sha256 ?? "",
            };
            foreach (var (k, v) in package.Metadata.Trainer?.Parameters ?? []) @params[$"trainer.{k}"] = v;
            if (package.Metadata.FeatureStore is { } fs)
            {
                @params["feature_service"] = fs.Service;
                @params["feature_project"] = fs.Project;
                @params["feature_definitions_version"] = fs.DefinitionsVersion.ToString(CultureInfo.InvariantCulture);
            }
            await run.LogParamsAsync(@params, ct).ConfigureAwait(false);
            var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
            await run.LogMetricsAsync([.. result.Metrics.Select(m => new Metric(m.Key, m.Value, now, 0))], ct).ConfigureAwait(false);
            var source = await run.LogArtifactsAsync(result.PackageDirectory, PackageArtifactPath, ct).ConfigureAwait(false);
            await run.EndAsync(ct: ct).ConfigureAwait(false);
            report?.Invoke($"Logged run {run.RunId} to {stores.Uri} (package at {source})");
            if (register is null) return null;
            var version = await client.RegisterModelAsync(register, source, ct: ct).ConfigureAwait(false);
            report?.Invoke($"Registered models:/{version.Name}/{version.Version}");
            return version;
        }
        catch
        {
            await run.EndAsync(RunStatus.Failed, CancellationToken.None).ConfigureAwait(false);
            throw;
        }
    }
}
