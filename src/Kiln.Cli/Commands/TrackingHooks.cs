using Kiln.Core;
using Kiln.Training;

namespace Kiln.Cli.Commands;

/// <summary>What `kiln train` does with a tracking store after training (logging the run, registering).</summary>
internal static class TrackingHooks
{
    public static Task AfterTrainingAsync(string? trackingUri, string? experiment, string? register, TrainingSpec spec, TrainingResult result, CancellationToken ct)
    {
        _ = experiment; _ = spec; _ = result; _ = ct;
        if (trackingUri is null && register is not null) throw new KilnException("--register needs --tracking-uri");
        if (trackingUri is not null) throw new KilnException("--tracking-uri: the tracking store is not available in this build yet");
        return Task.CompletedTask;
    }
}
